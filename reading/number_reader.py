"""The number reader's arithmetic: a mark of ink as the strip the reader network reads, and
the network's per-column output as digits, boxes and a probability (its contract, the
strip's size and the columns' labels, is in reading/contract.py).

The reader reads a mark (one or several digits, touching or not) as a sequence, trained with
CTC (connectionist temporal classification): each of its COLUMNS output columns gives the
probability of each digit and of "no digit here" (BLANK); a reading is the columns' best
labels with repeats merged and blanks dropped. Pure functions over numpy arrays; the
network comes in as its output.
"""

import numpy as np
from PIL import Image

import utils
from drawing import errors, image_ink
from reading.contract import BLANK, DOWNSAMPLE, STRIP_HEIGHT, STRIP_WIDTH

DIGIT_HEIGHT = utils.MNIST_BOX    # the ink is scaled to this height, as MNIST fits a digit in 20
MARGIN = 4                        # px of black above, below and left of the ink


def to_strip(mark):
    """uint8 [h, w] ink of one mark -> (float32 [STRIP_HEIGHT, STRIP_WIDTH] in [0, 1],
    the strip's pixels per mark pixel across).

    to_mnist's recipe along a line: crop, fill hollow strokes and even out the stroke width
    at the working height (utils.evened_strokes), scale to DIGIT_HEIGHT, then set at the left,
    MARGIN from the top. A mark too wide for the strip is narrowed to fit.
    """
    crop = utils.crop_to_ink(mark)
    work = utils.evened_strokes(_to_height(crop, utils.WORK_SIZE,
                                           STRIP_WIDTH * utils.WORK_SIZE // DIGIT_HEIGHT))
    ink = _to_height(work, DIGIT_HEIGHT, STRIP_WIDTH - MARGIN)
    pixels = np.asarray(ink).astype(np.float32)
    if pixels.max() == 0:
        raise errors.NothingDrawn(errors.TOO_FAINT)
    strip = np.zeros((STRIP_HEIGHT, STRIP_WIDTH), np.float32)
    strip[MARGIN:MARGIN + ink.height, MARGIN:MARGIN + ink.width] = pixels / pixels.max()
    return strip, ink.width / crop.width


def _to_height(image, height, max_width):
    """Scale an 'L' image to `height` px, its width in proportion up to `max_width`."""
    width = min(max_width, max(1, round(image.width * height / image.height)))
    resample = (Image.Resampling.BOX if height < image.height
                else Image.Resampling.BILINEAR)
    return utils.resize(image, (width, height), resample)


def best_path(columns):
    """float [COLUMNS, 11] -> [(digit, first column, last column)] of the greedy reading:
    each column's likeliest label, repeats merged, blanks dropped."""
    labels = columns.argmax(axis=1)
    runs = []
    for column, label in enumerate(labels.tolist()):
        if runs and runs[-1][0] == label and runs[-1][2] == column - 1:
            runs[-1][2] = column
        else:
            runs.append([label, column, column])
    return [(label, first, last) for label, first, last in runs if label != BLANK]


def sequence_probability(columns, digits):
    """The probability the reader gives the reading `digits` (ints), summed over every way
    of placing it in the columns (CTC's forward pass), float64."""
    extended = [BLANK]
    for digit in digits:
        extended += [digit, BLANK]
    probabilities = columns[:, extended].astype(np.float64)
    states = len(extended)
    # A state may be entered from itself, from the one before, and from two before when it
    # is a digit unlike the digit two before (between equal digits a blank must come).
    skip = np.zeros(states, bool)
    skip[3::2] = [digits[k] != digits[k - 1] for k in range(1, len(digits))]
    alpha = np.zeros(states)
    alpha[:2] = probabilities[0, :2]
    for column in probabilities[1:]:
        previous = alpha
        alpha = previous.copy()
        alpha[1:] += previous[:-1]
        alpha[2:] += np.where(skip[2:], previous[:-2], 0.0)
        alpha *= column
    return float(alpha[-2:].sum()) if states > 1 else float(alpha[-1])


MIN_SPAN = 2  # strip px of ink each digit's share keeps, wherever the reader places it


def digit_spans(path, scale, mark_width, strip):
    """The greedy reading's runs -> each digit's [left, right) columns in the strip and in
    the mark. Digits are parted halfway between one's output columns and the next one's,
    less the reader's lag: CTC emits a digit anywhere over its ink, this reader mostly
    towards its right, so the partings move by as much as the runs' mean lies right of the
    ink's middle. Then each digit keeps at least MIN_SPAN columns of the strip's ink.
    `scale` is the strip's pixels per mark pixel (to_strip)."""
    inked = np.flatnonzero(strip.any(axis=0))
    first_ink, end_ink = int(inked[0]), int(inked[-1]) + 1
    centres = [(first + last + 1) * DOWNSAMPLE / 2 for _, first, last in path]
    lag = np.mean(centres) - (first_ink + end_ink) / 2
    edges = [int(round((left + right) / 2 - lag)) for left, right in zip(centres, centres[1:])]
    for k in range(len(edges)):  # room for the digits to the left, then to the right
        edges[k] = max(edges[k], (edges[k - 1] if k else first_ink) + MIN_SPAN)
    for k in reversed(range(len(edges))):
        edges[k] = min(edges[k], (edges[k + 1] if k + 1 < len(edges) else end_ink) - MIN_SPAN)
    in_strip = [0] + edges + [STRIP_WIDTH]
    in_mark = [0] + [int(np.clip(round((edge - MARGIN) / scale), 0, mark_width))
                     for edge in edges] + [mark_width]
    return [((a, b), (c, d)) for a, b, c, d in zip(in_strip, in_strip[1:], in_mark, in_mark[1:])]


def digit_images(strip, spans):
    """The digits of a strip, each its columns [left, right) of `spans` -> float32
    [n, 28, 28] in [0, 1], MNIST's way: the strip's ink there (already DIGIT_HEIGHT tall,
    stroke evened out), fitted into MNIST_BOX if wider, at full white, centred by centre of
    mass. None when some digit's columns hold no ink."""
    boxes = np.zeros((len(spans), utils.MNIST_BOX, utils.MNIST_BOX), np.uint8)
    sizes = np.zeros((len(spans), 2), np.int64)
    for index, (left, right) in enumerate(spans):
        found = image_ink.nonzero_box(strip[:, left:right])
        if found is None:
            return None
        x0, y0, x1, y1 = found
        ink = np.rint(strip[y0:y1, left + x0:left + x1] * 255).astype(np.uint8)
        if ink.shape[1] > utils.MNIST_BOX:
            ink = np.asarray(utils.scaled_longer_side(Image.fromarray(ink), utils.MNIST_BOX))
        ink = utils.at_full_white(ink)
        boxes[index, :ink.shape[0], :ink.shape[1]] = ink
        sizes[index] = ink.shape
    return utils.centre_boxes_by_mass(boxes, sizes).astype(np.float32) / 255.0
