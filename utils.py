"""MNIST's recipe: the ink of one digit into the 28x28 tensor the network reads.

Crop to the ink, fill hollow strokes, even out the stroke width, fit into 20x20 and centre by
centre of mass in 28x28, as MNIST's digits were made. Pure functions over Pillow images and
numpy arrays.
"""

import numpy as np
from PIL import Image

from drawing.errors import TOO_FAINT, NothingDrawn
from drawing.hollow_strokes import OUTLINE_FILL, fill_outlines
from drawing.image_ink import ink_bbox
from drawing.rank_filter import square_filter

MNIST_BOX = 20                   # MNIST fits each digit into 20x20 ...
MNIST_SIZE = 28                  # ... inside a 28x28 field ...
MNIST_CENTRE = 14.0              # ... with the centre of mass here (measured on MNIST itself)
WORK_SIZE = 60                   # longer side at which stroke width is measured and adjusted
MNIST_STROKE = 2.6               # median stroke width of MNIST digits, in 20-px-box pixels
STROKE_TOLERANCE = 0.5           # leave widths within this of MNIST's alone
MAX_THICKEN, MAX_THIN = 9, 5     # largest rank filters: filled loops inflate a width estimate


def scaled_longer_side(image, size):
    """'L' image -> the same, its longer side `size` px (aspect ratio kept): averaged when
    it shrinks, interpolated when it grows."""
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
    keeps the pipeline's output the same on every Pillow version, and lets reading/segment.py
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


def crop_to_ink(ink):
    """uint8 [H, W] ink map -> 'L' image of the box around its ink (image_ink.ink_bbox, which
    refuses ink too small to be a digit)."""
    x0, y0, x1, y1 = ink_bbox(ink)
    return Image.fromarray(np.ascontiguousarray(ink[y0:y1, x0:x1]))


def evened_strokes(work, fill=OUTLINE_FILL):
    """'L' ink image at the working size -> the same with hollow strokes filled (fill_outlines
    with the settings `fill`; None: not at all), the stroke width evened out towards MNIST's,
    and cropped to its ink again. The number reader's strip takes the same steps."""
    if fill is not None:
        work = fill_outlines(work, fill)
    work = normalise_stroke_width(work)
    return work.crop(work.getbbox() or (0, 0) + work.size)


def at_full_white(pixels):
    """uint8 [h, w] ink -> uint8 [h, w], scaled so the strongest ink is 255, as in MNIST's
    digits (shrinking dims thin strokes); no ink stays none."""
    strongest = int(pixels.max())
    if strongest in (0, 255):
        return pixels
    # In float32, as the 28x28 digits the network was trained on were made.
    return np.rint(pixels.astype(np.float32) * np.float32(255.0 / strongest)).astype(np.uint8)


def work_image(ink):
    """uint8 [H, W] ink map of one digit -> 'L' image of its ink, cropped, the longer side
    WORK_SIZE: what hollow strokes are filled and stroke widths evened out on."""
    return scaled_longer_side(crop_to_ink(ink), WORK_SIZE)


def to_mnist(ink, fill=OUTLINE_FILL):
    """uint8 [H, W] ink map of one digit -> float32 [28, 28] in [0, 1], the MNIST way.

    Crop to the ink, fill hollow strokes and even out the stroke width at the working size
    (evened_strokes), scale the longer side to 20 px with anti-aliasing (aspect ratio kept),
    bring the strongest ink to full white, then centre by centre of mass in 28x28.
    """
    digit = np.asarray(scaled_longer_side(evened_strokes(work_image(ink), fill), MNIST_BOX))
    if not digit.any():  # faint, sparse ink that scaling down to 20 px averaged away
        raise NothingDrawn(TOO_FAINT)
    return centre_by_mass(at_full_white(digit)).astype(np.float32) / 255.0
