"""The image side's refusals: each an `ImageError` whose message says what was wrong and what
to do. app.py maps the classes to HTTP status codes in one place."""


class ImageError(ValueError):
    """An image the service cannot use; the message says why and what to do."""


class InvalidImage(ImageError):
    """Malformed input: bad base64, not an image, a truncated file."""


class UnsupportedImage(ImageError):
    """A well-formed file of a type we do not read (SVG, PDF, ...)."""


class ImageTooLarge(ImageError):
    """More pixels than MAX_IMAGE_PIXELS."""


class NothingDrawn(ImageError):
    """A blank canvas, or ink too faint or too small to be a digit."""


# What NothingDrawn says, written once for every stage that finds nothing to read
BLANK_IMAGE = "Nothing is drawn: the image is blank. Draw a digit and try again."
TOO_SMALL = "The drawing is too small to be a digit. Draw it larger."
TOO_FAINT = "The drawing is too faint or too thin to read. Draw it bolder."
