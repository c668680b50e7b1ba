"""The image side: turn what a browser or a client sends into the 28x28 tensor MNIST expects.

Pure functions over bytes, Pillow images and numpy arrays; no Flask, no globals that change.
Every refusal is an `ImageError` subclass whose message a person can act on; app.py maps the
classes to HTTP status codes.
"""

import base64
import binascii
import dataclasses
import io
import re

import numpy as np
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError

import plain_png

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # Pillow's format names
_FORMAT_NAMES = [{"WEBP": "WebP"}.get(name, name) for name in ACCEPTED_FORMATS]
SEND_ACCEPTED_FORMAT = "send a " + ", ".join(_FORMAT_NAMES[:-1]) + " or " + _FORMAT_NAMES[-1]
MAX_IMAGE_PIXELS = 25_000_000  # 5000 x 5000; a phone photo is ~12 MP
WORK_LIMIT = 1024              # larger images are reduced to about this on the longer side

MNIST_BOX = 20                   # MNIST fits each digit into 20x20 ...
MNIST_SIZE = 28                  # ... inside a 28x28 field ...
MNIST_CENTRE = 14.0              # ... with the centre of mass here (measured on MNIST itself)
# The network's contract, for recognizer.py, app.py's /api/model and the training script: a
# batch of MNIST-like digits (white ink on black, values in [0, 1]) in, one row of
# probabilities per digit out: the ten digits, then "not a digit".
MODEL_INPUT = "image"            # float32 [N, 28, 28, 1]
MODEL_OUTPUT = "probabilities"   # float32 [N, 11]
DIGIT_CLASSES = 10
NOT_A_DIGIT = 10                 # the output's last class: a letter, a sign, a shape, a scribble
MODEL_CLASSES = DIGIT_CLASSES + 1
MODEL_SIGNATURE = {
    "input": {"name": MODEL_INPUT, "shape": ["N", MNIST_SIZE, MNIST_SIZE, 1], "dtype": "float32"},
    "output": {"name": MODEL_OUTPUT, "shape": ["N", MODEL_CLASSES], "dtype": "float32"},
}
WORK_SIZE = 60                   # longer side at which stroke width is measured and adjusted
MNIST_STROKE = 2.6               # median stroke width of MNIST digits, in 20-px-box pixels
STROKE_TOLERANCE = 0.5           # leave widths within this of MNIST's alone
MAX_THICKEN, MAX_THIN = 9, 5     # largest rank filters: filled loops inflate a width estimate
FAINT = 0.25                     # ink below this fraction of the strongest ink is noise
PAPER_CELLS = 12                 # cells along the longer side when estimating the paper's light
INSIDE_STROKE = 80               # a cell this much darker than its neighbours is inside a stroke
MIN_CONTRAST = 40                # 0-255: weaker ink than this is a blank image
MIN_DIGIT_FRACTION = 0.04        # ink smaller than this share of the image's longer side is a speck

_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),", re.I)


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


# ---------------------------------------------------------------------------
# Bytes in
# ---------------------------------------------------------------------------

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
        return ImageOps.exif_transpose(_reduced(image))
    except Exception:
        raise InvalidImage("The image is truncated or damaged and could not be decoded.") \
            from None


def _reduced(image):
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


# ---------------------------------------------------------------------------
# Pixels: which is ink?
# ---------------------------------------------------------------------------

def _luminance(image):
    """Pillow image of any mode -> uint8 [H, W] luminance, transparency flattened.

    Transparent pixels become the colour that contrasts with sparse opaque strokes, so ink
    on a transparent canvas reads the same in any colour; around a mostly opaque sheet they
    become the sheet's colour.
    """
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # A float image may hold NaN or infinities: no light at all, as far as ink goes.
        values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=0.0,
                               neginf=0.0)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"))
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    alpha = rgba.getchannel("A")
    grey = rgba.convert("L")
    lowest_alpha, highest_alpha = alpha.getextrema()
    if lowest_alpha == 255:
        return np.asarray(grey)
    if highest_alpha == 0:
        return np.zeros((image.height, image.width), np.uint8)  # fully transparent: blank
    # The opaque part's colour, weighted by opacity, on a reduced copy (no detail needed).
    # Mostly opaque: it is paper, so transparency becomes paper. Otherwise it is strokes,
    # and transparency becomes the colour that contrasts with them.
    factor = max(1, max(image.size) // 64)
    opacity = np.asarray(alpha.reduce(factor), np.float32)
    weighted = np.asarray(ImageChops.multiply(grey, alpha).reduce(factor), np.float32)
    opaque_colour = 255 * weighted.sum() / opacity.sum()
    if opacity.mean() > 127:
        fill = round(opaque_colour)
    else:
        fill = 255 if opaque_colour < 128 else 0
    background = Image.new("L", image.size, fill)
    return np.asarray(Image.composite(grey, background, alpha))


def read_ink(data, max_pixels=MAX_IMAGE_PIXELS):
    """Image bytes -> uint8 [H, W] ink map: the same as ink_map(open_image(data)), faster.

    A plain PNG (what a browser's canvas gives) is inflated here, and where that is cheap
    only one band is unfiltered: the alpha of a transparent canvas, the grey of an opaque
    image (see _plain_png_ink). Everything else goes through Pillow.
    """
    png = plain_png.scanlines(data, max_pixels)  # None: not a plain PNG
    return _plain_png_ink(*png) if png is not None else ink_map(open_image(data, max_pixels))


def ink_map(image):
    """Pillow image -> uint8 [H, W] ink, 0 = background, 255 = the strongest ink.

    Polarity comes from the image itself: the border is taken to be background, so
    black-on-white, white-on-black and coloured ink all work. The background is estimated
    locally, so a photo's uneven light and grey paper drop out. A bare transparent canvas,
    what the page sends, takes a shortcut: its ink is its opacity.
    """
    if image.mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"))
        if _is_bare_canvas(alpha):
            return _clean_ink(alpha)
    return _ink_from_grey(_luminance(image))


def _plain_png_ink(mode, scanlines):
    """ink_map of a plain PNG (see plain_png) from the one band it needs (the alpha of a
    transparent canvas, the grey of an opaque one) where that is cheap; else from Pillow's
    unfiltering of the rows inflated already."""
    bands = len(mode)
    if plain_png.cheap_to_decode(scanlines):
        if mode.endswith("A") and not plain_png.is_opaque(scanlines, bands):
            alpha = plain_png.decode_bands(scanlines, bands, [bands - 1])[:, :, 0]
            if _is_bare_canvas(alpha):
                return _clean_ink(alpha)
        elif "RGB" not in mode or plain_png.is_grey(scanlines, bands):
            grey = plain_png.decode_bands(scanlines, bands, [0])  # grey, or red = green = blue
            return _ink_from_grey(grey[:, :, 0])
    # Coloured, or a sheet with transparent parts, or rows costly to undo in numpy
    return ink_map(_reduced(plain_png.to_image(mode, scanlines)))


def _is_bare_canvas(alpha):
    """Whether uint8 [H, W] alpha is strokes on a transparent canvas, not an opaque sheet."""
    if alpha[0].any() or alpha[-1].any() or alpha[:, 0].any() or alpha[:, -1].any():
        return False  # an opaque border: not a bare canvas
    return np.count_nonzero(alpha) <= alpha.size // 2  # else a sheet with a transparent margin


def _ink_from_grey(grey):
    """uint8 [H, W] luminance -> uint8 [H, W] ink, its polarity and paper taken from it."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    light_ink = np.median(border) < 128  # light ink on a dark ground: the ink is inverted
    cells = _paper_cells(grey, light_ink)
    if cells.min() == cells.max() == 255:  # evenly lit, as on any canvas: one pass or none
        return _clean_ink(grey if light_ink else 255 - grey)
    if light_ink:
        grey = 255 - grey  # work as if dark on light
    if cells.min() == cells.max():
        paper = int(cells[0, 0])
        return _clean_ink(paper - np.minimum(grey, paper))
    paper = np.asarray(Image.fromarray(cells).resize(grey.shape[::-1],
                                                     Image.Resampling.BILINEAR))
    return _clean_ink(np.maximum(paper, grey) - grey)


def _clean_ink(ink):
    """uint8 [H, W] raw ink -> uint8 [H, W]: what is below an Otsu-derived floor (paper grain,
    JPEG noise, anti-aliasing fringe) set to 0, the strongest ink scaled to 255."""
    strongest = int(ink.max())
    if strongest < MIN_CONTRAST:
        raise NothingDrawn("Nothing is drawn: the image is blank. Draw a digit and try again.")
    # Only the box around the ink needs work; outside it everything is 0 and stays 0.
    x0, y0, x1, y1 = nonzero_box(ink)
    box = np.s_[y0:y1, x0:x1]
    histogram = np.array(Image.fromarray(np.ascontiguousarray(ink[box])).histogram(),
                         np.float64)
    histogram[0] = 0
    levels = np.arange(256)
    scaled = (levels * (255.0 / strongest)).astype(np.uint8)  # one lookup, no float image
    scaled[levels < max(FAINT * strongest, 0.5 * _otsu_threshold(histogram))] = 0
    cleaned = np.zeros(ink.shape, np.uint8)
    cleaned[box] = np.take(scaled, ink[box])
    return cleaned


def _paper_cells(grey, light_ink=False):
    """uint8 [H, W] image -> uint8 [rows, columns]: the paper's light per cell, as if the ink
    were dark on light paper (with `light_ink`, as if the image were inverted).

    The brightest value in each coarse cell is paper (strokes are thinner than a cell; a
    cell inside a fat stroke borrows its neighbours' value); scaling the cell grid back up
    smoothly gives the light falling on the page.
    """
    height, width = grey.shape
    cell = max(8, -(-max(height, width) // PAPER_CELLS))
    whole = height // cell * cell  # rows in whole cells; the last cells may be shorter
    lightest = np.minimum if light_ink else np.maximum  # inverted: the darkest is paper
    row_bands = lightest.reduce(grey[:whole].reshape(-1, cell, width), axis=1)
    if whole < height:
        row_bands = np.vstack([row_bands, lightest.reduce(grey[whole:], axis=0)])
    brightest = lightest.reduceat(row_bands, np.arange(0, width, cell), axis=1)
    if light_ink:
        brightest = 255 - brightest
    neighbours = square_filter(brightest, 3, True)
    # A cell far darker than its neighbours lies inside a stroke; a gentle shadow is not.
    inside_stroke = neighbours.astype(np.int16) - brightest > INSIDE_STROKE
    return np.where(inside_stroke, neighbours, brightest)


def _otsu_threshold(histogram):
    """Otsu's threshold of a 256-bin histogram of ink values (bin 0, no ink, left empty)."""
    total = histogram.sum()
    if total == 0:
        return 0.0
    levels = np.arange(256)
    weight_low = np.cumsum(histogram)
    mean_low = np.cumsum(histogram * levels)
    weight_high = total - weight_low
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_low[-1] * weight_low / total - mean_low) ** 2 / (
            weight_low * weight_high / total)
    return float(np.nanargmax(between[:-1])) if np.isfinite(between[:-1]).any() else 0.0


def nonzero_box(array):
    """(x0, y0, x1, y1) of the nonzero pixels of a 2-D array: left, top, right, bottom, the
    right and bottom exclusive (the order of every box here and in the API); None if all are 0."""
    rows = np.flatnonzero(array.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(array.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1] + 1), int(rows[-1] + 1)


def ink_bbox(ink):
    """(x0, y0, x1, y1) of the ink in a uint8 [H, W] ink map (see nonzero_box); refuses ink
    too small to be a digit."""
    box = nonzero_box(ink)
    if box is None:
        raise NothingDrawn("Nothing is drawn: the image is blank. Draw a digit and try again.")
    x0, y0, x1, y1 = box
    if max(y1 - y0, x1 - x0) < max(3, MIN_DIGIT_FRACTION * max(ink.shape)):
        raise NothingDrawn("The drawing is too small to be a digit. Draw it larger.")
    return box


# ---------------------------------------------------------------------------
# MNIST's recipe: crop, fit into 20x20, centre by centre of mass
# ---------------------------------------------------------------------------

def _resize_longer_side(image, size):
    width, height = image.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    return resize(image, new_size, resample)


def resize(image, size, resample):
    """Pillow's resize of `image` to `size` (width, height), across the rows first, then down
    the columns, whatever its shape.

    Pillow resizes in two passes, each rounded to 8 bits; from Pillow 13 it goes down the
    columns first for some shapes, which changes a few pixels by one level. A fixed order
    keeps the pipeline's output the same on every Pillow version, and lets segment.py
    prepare many parts at once to the bit.
    """
    across = image.resize((size[0], image.height), resample) if size[0] != image.width else image
    return across.resize(size, resample) if size[1] != image.height else across


def stroke_width(ink):
    """Mean stroke width in pixels of a uint8 [H, W] ink map: 2 x area / boundary length."""
    mask = ink >= 128
    area = int(mask.sum())
    if area == 0:
        return 0.0
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), bool)
    padded[1:-1, 1:-1] = mask
    interior = (mask & padded[:-2, 1:-1] & padded[2:, 1:-1]
                & padded[1:-1, :-2] & padded[1:-1, 2:])
    return 2.0 * area / max(int((mask & ~interior).sum()), 1)


def normalise_stroke_width(image):
    """Thicken a thin pen or thin a fat marker towards MNIST's stroke width.

    `image` is an 'L' ink image whose longer side is WORK_SIZE; returns the same kind.
    """
    scale = MNIST_BOX / WORK_SIZE
    width = stroke_width(np.asarray(image)) * scale
    if abs(width - MNIST_STROKE) <= STROKE_TOLERANCE:
        return image
    # A rank filter of size k widens (max) or narrows (min) a stroke by k - 1 pixels.
    change = abs(MNIST_STROKE - width) / scale
    size = 2 * int(round(change / 2)) + 1
    if size < 3:
        return image
    if width < MNIST_STROKE:
        return Image.fromarray(square_filter(np.asarray(image), min(size, MAX_THICKEN), True))
    thinned = Image.fromarray(square_filter(np.asarray(image), min(size, MAX_THIN), False))
    # Never thin a stroke away: keep the fat version if erosion leaves too little ink.
    if np.count_nonzero(np.asarray(thinned) >= 128) < 0.25 * np.count_nonzero(
            np.asarray(image) >= 128):
        return image
    return thinned


@dataclasses.dataclass(frozen=True)
class OutlineFill:
    """Which holes in the ink fill_outlines takes for the gap inside a hollow stroke (a
    digit's own loops are rounder or wider). Chosen by scripts/tune_hollow.py."""
    elongation: float = 4.0   # a hole at least this much longer than wide (area / width²) ...
    solidity: float = 0.65    # ... that fills at most this share of its convex hull, or
    straight: float = 8.0     # ... one this much longer than wide
    wall: int = 1             # ink this bright encloses a gap: a thin outline fades when reduced


OUTLINE_FILL = OutlineFill()  # the shipped settings


def fill_outlines(image, settings=OUTLINE_FILL):
    """Fill the gaps inside hollow strokes (outlined lettering, a double-line pen) so that
    they read as the solid strokes they outline.

    `image` is an 'L' ink image whose longer side is WORK_SIZE; returns the same kind (the
    same object when nothing is filled). Left alone, normalise_stroke_width would thicken the
    two thin lines into a blob. A gap is a hole in the ink that is long and thin (area >=
    `settings.elongation` x its width squared) and either bent (at most `settings.solidity`
    of its convex hull: it follows the stroke it is inside) or very long
    (`settings.straight`: the outline of a straight 1). A digit's own loops (0, 6, 8, 9, a
    closed 4) are round or, in a narrow 0, straight but wider, and stay open.
    """
    ink = np.asarray(image)
    labels = background_regions(ink >= settings.wall)
    holes = labels > 1  # region 1 is the background around the digit
    if not holes.any():
        return image
    area = np.bincount(labels.ravel())
    # Width: twice the number of 3x3 erosions a hole survives, eroded only as far as some
    # hole could still be long enough.
    widest = np.floor(np.sqrt(area / settings.elongation) / 2)  # half-widths, long enough
    narrowest = np.floor(np.sqrt(area / settings.straight) / 2)  # ... straight or not
    half_width = np.full(len(area), np.inf)
    remaining = holes.astype(np.uint8)
    for step in range(1, int(widest[2:].max()) + 1):
        remaining = square_filter(remaining, 3, False)
        present = np.zeros(len(area), bool)
        present[labels[remaining > 0]] = True
        half_width[~present & np.isinf(half_width)] = step
        if not remaining.any():
            break
    gaps = [label for label in range(2, len(area))
            if half_width[label] <= narrowest[label]
            or (half_width[label] <= widest[label]
                and _convex_share(labels == label) <= settings.solidity)]
    if not gaps:
        return image
    # The gaps and the lines around them become one solid stroke: a thin outline is faint
    # at this size, and would leave the stroke with dim edges.
    gap = np.isin(labels, gaps)
    filled = ink.copy()
    filled[gap | ((square_filter(gap.view(np.uint8), 3, True) > 0) & (ink > 0))] = 255
    return Image.fromarray(filled)


def background_regions(mask):
    """bool [h, w] ink mask -> int64 [h, w]: 0 on ink; 1 on the background around the ink
    (4-connected to the edge); 2, 3, ... on each hole (a 4-connected background region the
    ink encloses)."""
    height, width = mask.shape
    background = np.ones((height + 2, width + 2), bool)  # a frame of background around
    background[1:-1, 1:-1] = ~mask
    flat = background.ravel()
    # Runs of background along each row, then runs joined where one lies on another,
    # merged by their smallest number until nothing changes (union-find, all runs at once).
    starts = flat.copy()
    starts[1:] &= ~flat[:-1]
    starts[::width + 2] = True  # every row starts a run in the frame
    runs = np.cumsum(starts) * flat
    above, below = runs[:-(width + 2)], runs[width + 2:]
    joined = (above > 0) & (below > 0)
    above, below = above[joined], below[joined]
    parent = np.arange(runs.max() + 1)
    while True:
        lowest = np.minimum(parent[above], parent[below])
        np.minimum.at(parent, parent[above], lowest)
        np.minimum.at(parent, parent[below], lowest)
        while not np.array_equal(parent, parent[parent]):
            parent = parent[parent]
        if np.array_equal(parent[above], parent[below]):
            break
    # Each region's root is its first run, so the frame's region is 1; numbering the roots
    # in order numbers the holes by where they start.
    roots = np.unique(parent[1:])
    labels = np.searchsorted(roots, parent[runs]) + 1
    labels[runs == 0] = 0
    return labels.reshape(height + 2, width + 2)[1:-1, 1:-1]


def _convex_share(region):
    """The share of its convex hull that a bool [h, w] region fills (pixels as unit
    squares; the hull of each row's outermost corners, Andrew's monotone chain)."""
    rows = np.flatnonzero(region.any(axis=1))
    left = region[rows].argmax(axis=1)
    right = region.shape[1] - region[rows, ::-1].argmax(axis=1)
    corners = sorted({(x, y + dy)
                      for y, a, b in zip(rows.tolist(), left.tolist(), right.tolist())
                      for x in (a, b) for dy in (0, 1)})

    def chain(points):
        kept = []
        for x, y in points:
            while len(kept) >= 2 and ((kept[-1][0] - kept[-2][0]) * (y - kept[-2][1])
                                      - (kept[-1][1] - kept[-2][1]) * (x - kept[-2][0])) <= 0:
                kept.pop()
            kept.append((x, y))
        return kept

    hull = chain(corners)[:-1] + chain(reversed(corners))[:-1]
    hull_area = 0.5 * abs(sum(x0 * y1 - x1 * y0
                              for (x0, y0), (x1, y1) in zip(hull, hull[1:] + hull[:1])))
    return region.sum() / max(hull_area, 1.0)


def square_filter(ink, size, biggest):
    """uint8 [h, w] -> the largest (`biggest`) or smallest value in the size x size square
    around each pixel, squares cut off at the edges: Pillow's MaxFilter and MinFilter to the
    bit, done as one pass along each axis, some forty times faster on a number's width."""
    half = size // 2
    pick = np.maximum if biggest else np.minimum
    filtered = ink
    for axis in (0, 1):
        along = np.moveaxis(filtered, axis, 0)
        length = len(along)
        padded = np.concatenate([along[:1]] * half + [along] + [along[-1:]] * half)
        picked = padded[:length].copy()
        for shift in range(1, size):
            pick(picked, padded[shift:shift + length], out=picked)
        filtered = np.moveaxis(picked, 0, axis)
    return np.ascontiguousarray(filtered)


def centre_by_mass(digit):
    """Place a uint8 [h, w] digit (h, w <= 20) in a 28x28 field, centre of mass at (14, 14)."""
    box = np.zeros((1, MNIST_BOX, MNIST_BOX), np.uint8)
    box[0, :digit.shape[0], :digit.shape[1]] = digit
    return centre_boxes_by_mass(box, np.array([digit.shape]))[0]


def centre_boxes_by_mass(boxes, sizes):
    """uint8 [n, 20, 20], digit k in the top-left sizes[k] = (height, width) of boxes[k] and
    zeros around it -> uint8 [n, 28, 28]: each digit in a 28x28 field with its centre of mass
    at (14, 14) (as near as the field allows), all in one go."""
    fields = np.zeros((len(boxes), MNIST_SIZE, MNIST_SIZE), np.uint8)
    if not len(boxes):
        return fields
    # Sums of whole numbers below 2**24: exact in any order, padding or not. Ink too faint
    # to have a centre stays where it is.
    mass = boxes.astype(np.float32)
    total = np.maximum(mass.sum(axis=(1, 2)), 1)
    steps = np.arange(MNIST_BOX, dtype=np.float32)
    row_mass = (mass.sum(axis=2) * steps).sum(axis=1) / total
    column_mass = (mass.sum(axis=1) * steps).sum(axis=1) / total
    heights, widths = sizes[:, 0], sizes[:, 1]
    tops = np.clip(np.rint(MNIST_CENTRE - row_mass.astype(np.float64)), 0,
                   MNIST_SIZE - heights).astype(np.int64).tolist()
    lefts = np.clip(np.rint(MNIST_CENTRE - column_mass.astype(np.float64)), 0,
                    MNIST_SIZE - widths).astype(np.int64).tolist()
    for index, (top, left, height, width) in enumerate(zip(tops, lefts, heights.tolist(),
                                                           widths.tolist())):
        fields[index, top:top + height, left:left + width] = boxes[index, :height, :width]
    return fields


def work_image(ink):
    """uint8 [H, W] ink map of one digit -> 'L' image of its ink, cropped, the longer side
    WORK_SIZE: what hollow strokes are filled and stroke widths evened out on."""
    x0, y0, x1, y1 = ink_bbox(ink)
    return _resize_longer_side(Image.fromarray(np.ascontiguousarray(ink[y0:y1, x0:x1])),
                               WORK_SIZE)


def to_mnist(ink, fill=OUTLINE_FILL):
    """uint8 [H, W] ink map of one digit -> float32 [28, 28] in [0, 1], the MNIST way.

    Crop to the ink, fill hollow strokes (fill_outlines with the settings `fill`; None: not
    at all), even out the stroke width, scale the longer side to 20 px with anti-aliasing
    (aspect ratio kept), then centre by centre of mass in 28x28.
    """
    work = work_image(ink)
    if fill is not None:
        work = fill_outlines(work, fill)
    work = normalise_stroke_width(work)
    work = work.crop(work.getbbox() or (0, 0) + work.size)
    digit = np.asarray(_resize_longer_side(work, MNIST_BOX)).astype(np.float32)
    if digit.max() == 0:  # faint, sparse ink that scaling down to 20 px averaged away
        raise NothingDrawn("The drawing is too faint or too thin to read. Draw it bolder.")
    digit *= 255.0 / digit.max()  # MNIST digits reach full white; resizing dims thin strokes
    return centre_by_mass(np.rint(digit).astype(np.uint8)).astype(np.float32) / 255.0


# ---------------------------------------------------------------------------
# Out
# ---------------------------------------------------------------------------

def preview_data_uri(digit):
    """float32 [28, 28] in [0, 1] -> a PNG data URI of what the model saw (white on black)."""
    png = plain_png.grey_png(np.rint(np.clip(digit, 0, 1) * 255).astype(np.uint8))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
