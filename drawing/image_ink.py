"""Which pixels are ink: image bytes or a Pillow image to a uint8 ink map, 0 = background.

Polarity, transparency and the paper's uneven light are taken from the image itself; an
Otsu-derived floor drops paper grain and JPEG noise. Pure functions over numpy arrays.
"""

import numpy as np
from PIL import Image, ImageChops

from drawing import plain_png
from drawing.decoding import MAX_IMAGE_PIXELS, open_image, reduced
from drawing.errors import BLANK_IMAGE, TOO_SMALL, NothingDrawn
from drawing.rank_filter import square_filter

FAINT = 0.25                     # ink below this fraction of the strongest ink is noise
PAPER_CELLS = 12                 # cells along the longer side when estimating the paper's light
INSIDE_STROKE = 80               # a cell this much darker than its neighbours is inside a stroke
MIN_CONTRAST = 40                # 0-255: weaker ink than this is a blank image
MIN_DIGIT_FRACTION = 0.04        # ink smaller than this share of the image's longer side is a speck


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
    image (see ink_from_scanlines). Everything else goes through Pillow.
    """
    png = plain_png.scanlines(data, max_pixels)  # None: not a plain PNG
    return ink_from_scanlines(*png) if png is not None else ink_map(open_image(data, max_pixels))


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


def ink_from_scanlines(mode, scanlines):
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
    return ink_map(reduced(plain_png.to_image(mode, scanlines)))


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
        raise NothingDrawn(BLANK_IMAGE)
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
        raise NothingDrawn(BLANK_IMAGE)
    x0, y0, x1, y1 = box
    if max(y1 - y0, x1 - x0) < max(3, MIN_DIGIT_FRACTION * max(ink.shape)):
        raise NothingDrawn(TOO_SMALL)
    return box

