"""Bytes in: a data URI or base64 text to bytes, and image bytes to a Pillow image, safely.

The size is checked before any pixel is decoded (no decompression bombs), and large photos
are reduced on decoding: a digit needs no more than about WORK_LIMIT pixels across.
"""

import base64
import binascii
import io
import re

from PIL import Image, ImageOps, UnidentifiedImageError

from drawing.errors import ImageTooLarge, InvalidImage, UnsupportedImage

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # Pillow's format names
_FORMAT_NAMES = [{"WEBP": "WebP"}.get(name, name) for name in ACCEPTED_FORMATS]
SEND_ACCEPTED_FORMAT = "send a " + ", ".join(_FORMAT_NAMES[:-1]) + " or " + _FORMAT_NAMES[-1]
MAX_IMAGE_PIXELS = 25_000_000  # 5000 x 5000; a phone photo is ~12 MP
WORK_LIMIT = 1024              # larger images are reduced to about this on the longer side

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),", re.I)


def decode_base64_image(text):
    """Return the bytes of a data URI (`data:image/png;base64,...`) or of bare base64 text."""
    if not isinstance(text, str):
        raise InvalidImage("The image must be a string: a data URI or base64 text.")
    text = text.strip()
    match = _DATA_URI.match(text)
    if match:
        media_type = (match.group("type") or "").lower()
        if media_type and not media_type.startswith("image/"):
            raise UnsupportedImage(f"A data URI of type {media_type} is not an image; "
                                   f"{SEND_ACCEPTED_FORMAT}.")
        if media_type == "image/svg+xml":
            raise UnsupportedImage("SVG is not supported; send a raster image such as PNG.")
        if ";base64" not in match.group("params").lower():
            raise InvalidImage("The data URI must be base64-encoded (data:image/png;base64,...).")
        text = text[match.end():]
    payload = "".join(text.split())  # no whitespace (str.split is ~15x faster than re.sub)
    if not payload:
        raise InvalidImage("The image is empty.")
    payload = payload.replace("-", "+").replace("_", "/")  # accept the URL-safe alphabet too
    payload += "=" * (-len(payload) % 4)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage("The image is not valid base64.") from None


def open_image(data, max_pixels=MAX_IMAGE_PIXELS):
    """Decode image bytes into a loaded Pillow image (first frame, EXIF rotation applied).

    The size is checked from the header before any pixel is decoded, so a decompression
    bomb costs nothing. Photos are brought down to about WORK_LIMIT px on the longer side:
    a digit needs no more, and the pipeline's time grows with the pixels.
    """
    if not data:
        raise InvalidImage("The image is empty.")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        head = data[:512].lstrip().lower()
        if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head:
            raise UnsupportedImage("SVG is not supported; send a raster image such as PNG.") \
                from None
        raise InvalidImage(f"The data is not an image Pillow can read; {SEND_ACCEPTED_FORMAT}.") \
            from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"The image declares more pixels than the {max_pixels:,} allowed. "
                            "Send a smaller image.") from None
    except Exception:  # Pillow raises many kinds on hostile headers
        raise InvalidImage("The image header is damaged.") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidImage("The image has no pixels.")
    if width * height > max_pixels:
        raise ImageTooLarge(f"The image is {width}x{height} pixels; the limit is "
                            f"{max_pixels:,} pixels. Send a smaller image.")
    try:
        image.seek(0)
        if image.format == "JPEG":  # decode a big photo at 1/2, 1/4 or 1/8 scale: far faster
            image.draft(image.mode, (WORK_LIMIT, WORK_LIMIT))
        image.load()
        return ImageOps.exif_transpose(reduced(image))
    except Exception:
        raise InvalidImage("The image is truncated or damaged and could not be decoded.") \
            from None


def reduced(image):
    """A loaded image brought down to about WORK_LIMIT px on the longer side if it is over
    twice that."""
    if max(image.size) > 2 * WORK_LIMIT:
        return _reduce(image, max(image.size) // WORK_LIMIT)
    return image


def _reduce(image, factor):
    """`image.reduce(factor)` for every mode Pillow decodes, at the cost of one band.

    Pillow's reduce refuses 1, P and I;16 images, and makes a premultiplied full-size copy of
    LA and RGBA ones (100 MB for a 25-megapixel canvas): those go band by band instead.
    """
    if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F", "CMYK"):
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("I" if image.mode.startswith("I;16") else "L" if image.mode == "1"
                              else "RGBA" if has_alpha else "RGB")
    if "A" not in image.mode:
        return image.reduce(factor)
    return Image.merge(image.mode, [image.getchannel(band).reduce(factor)
                                    for band in range(len(image.getbands()))])

