"""Numbers for training the number reader: traced MNIST training digits written side by side
with a random pen on the page's canvas, and read back by the server's own pipeline into the
strips the reader reads, each labelled with the digits it holds.

Used by train_mnist.py only; never given an evaluation digit.
"""

import random

import numpy as np

from drawing import errors, image_ink
from reading import contract, number_reader, segment
from training import non_digit_strokes, strokes

CANVAS = (560, 280)                    # the page's canvas in number mode
LENGTHS = (1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 6)  # digits in a number, one of these at random
REPEAT = 0.3                           # chance a digit repeats the one before (11, 00, 1001)
GAP = (-0.3, 0.15)                     # between neighbouring digits' ink, of their height:
                                       # from deep overlap to apart ...
MAX_OVERLAP = 0.4                      # ... but never over this share of the narrower one's
                                       # width: two 1s on top of each other are one 1
PEN = (4.0, 30.0)                      # px
HEIGHT = (0.25, 0.85)                  # share of the canvas height
SLANT = (-15.0, 20.0)                  # degrees, the number's
DIGIT_SLANT = (-6.0, 6.0)              # degrees more or less, each digit's
SIZE = (0.85, 1.15)                    # each digit's height, of the number's
LIFT = (-0.07, 0.07)                   # each digit raised or lowered, of the number's height
MAX_LABELS = 8                         # digits a strip's label holds at most


def pick_digits(by_class, rng):
    """Indices of digits for one number, `by_class[d]` the indices of digit d's: a length
    from LENGTHS, classes at random, each repeating the one before with chance REPEAT."""
    classes = []
    for _ in range(rng.choice(LENGTHS)):
        classes.append(classes[-1] if classes and rng.random() < REPEAT else rng.randrange(10))
    return [rng.choice(by_class[label]) for label in classes]


def overlap_at_most(gap, width, next_width):
    """A gap between two digits' ink (negative: they overlap), limited to an overlap of
    MAX_OVERLAP of the narrower digit's width."""
    return max(gap, -MAX_OVERLAP * min(width, next_width))


def write_number(traced, rng):
    """Traced digits (strokes.digit_strokes) -> (RGBA drawing of them written as one number on
    CANVAS, each digit's strokes in canvas pixels, the pen's width)."""
    pen = rng.uniform(*PEN)
    height = rng.uniform(*HEIGHT) * CANVAS[1]
    sizes = [height * rng.uniform(*SIZE) for _ in traced]
    lifts = [height * rng.uniform(*LIFT) for _ in traced]
    slant = rng.uniform(*SLANT)
    slants = [slant + rng.uniform(*DIGIT_SLANT) for _ in traced]
    boxes = [strokes.strokes_box(strokes.place_strokes(digit, size, (0, 0), lean))
             for digit, size, lean in zip(traced, sizes, slants)]
    widths = [x1 - x0 + pen for x0, _, x1, _ in boxes]  # of the ink
    gaps = [overlap_at_most(height * rng.uniform(*GAP), widths[k], widths[k + 1])
            for k in range(len(traced) - 1)]
    digits = strokes.side_by_side(traced, sizes, gaps, pen, slants, lifts)
    digits = strokes.move_onto_canvas(digits, pen, CANVAS, (rng.random(), rng.random()))
    drawing = strokes.draw_strokes([stroke for digit in digits for stroke in digit], CANVAS,
                                   pen, rng.choice(strokes.CONVENTIONS))
    return drawing, digits, pen


def mark_labels(boxes, digits, pen):
    """Which digits each mark holds, left to right: a digit is in the mark its strokes lie
    across. None when a digit's strokes reach over two marks (a piece of it stands apart)."""
    labels = [[] for _ in boxes]
    for index, digit in enumerate(digits):
        x0, _, x1, _ = strokes.strokes_box(digit)
        inside = [k for k, box in enumerate(boxes)
                  if box[0] - pen <= x0 and x1 <= box[2] + pen]
        if len(inside) != 1:
            return None
        labels[inside[0]].append(index)
    return labels


def number_strips(traced, labels, rng):
    """Traced digits (strokes.digit_strokes) labelled `labels` -> [(uint8 strip, [digits])]:
    the number written (write_number), read by the server's pipeline, one strip per mark;
    [] when a mark cannot be labelled."""
    drawing, digits, pen = write_number(traced, rng)
    try:
        marks = segment.split_digits(image_ink.ink_map(drawing))
        held = mark_labels([box for box, _ in marks], digits, pen)
        if held is None:
            return []
        strips = [number_reader.to_strip(mark)[0] for _, mark in marks]
    except errors.ImageError:
        return []
    return [(np.rint(strip * 255).astype(np.uint8), [int(labels[k]) for k in digits_held])
            for strip, digits_held in zip(strips, held) if 0 < len(digits_held) <= MAX_LABELS]


def strips_chunk(task):
    """(first number's index, [(traced digits, their labels)] one per number, seed) -> dict of
    uint8 [M, STRIP_HEIGHT, STRIP_WIDTH] strips and int8 [M, MAX_LABELS] labels, -1 padded."""
    start, numbers, seed = task
    rng = random.Random(seed * 1_000_003 + start)
    return _as_arrays([found for traced, labels in numbers
                       for found in number_strips(traced, labels, rng)])


# Marks that are not digits, for the reader to read as no digits at all. Not two digits drawn
# over each other: to the reader those are much like digits that overlap.
NON_DIGIT_KINDS = {kind: weight for kind, weight in non_digit_strokes.KINDS.items()
                   if kind != "overlaid digits"}


def draw_non_digit(plan, rng):
    """Strokes of a mark that is not a digit, in a unit frame -> an RGBA drawing on CANVAS
    with a pen, size, slant, place and colour convention as write_number draws a number."""
    pen = rng.uniform(*PEN)
    placed = strokes.place_strokes(plan, rng.uniform(*HEIGHT) * CANVAS[1], (0, 0),
                                   rng.uniform(*SLANT))
    [placed] = strokes.move_onto_canvas([placed], pen, CANVAS, (rng.random(), rng.random()))
    return strokes.draw_strokes(placed, CANVAS, pen, rng.choice(strokes.CONVENTIONS))


def non_digit_strips(plan, rng):
    """Strokes of a mark that is not a digit (non_digit_strokes.py) -> [(uint8 strip, [])]:
    drawn by draw_non_digit, read by the server's pipeline, one strip per mark, each holding
    no digits."""
    drawing = draw_non_digit(plan, rng)
    try:
        marks = segment.split_digits(image_ink.ink_map(drawing))
        return [(np.rint(number_reader.to_strip(mark)[0] * 255).astype(np.uint8), [])
                for _, mark in marks]
    except errors.ImageError:
        return []


def non_digits_chunk(task):
    """(first mark's index, how many, seed) -> as strips_chunk: strips of marks that are not
    digits (non_digit_strips), labelled with no digits."""
    start, count, seed = task
    rng = random.Random(seed * 1_000_003 + start)
    found = []
    for _ in range(count):
        _, plan = non_digit_strokes.non_digit(rng, None, NON_DIGIT_KINDS)
        found += non_digit_strips(plan, rng)
    return _as_arrays(found)


def _as_arrays(found):
    """[(uint8 strip, [digits])] -> the dict of arrays strips_chunk returns."""
    shape = (contract.STRIP_HEIGHT, contract.STRIP_WIDTH)
    return {"strips": np.array([strip for strip, _ in found], np.uint8).reshape(-1, *shape),
            "labels": np.array([digits + [-1] * (MAX_LABELS - len(digits))
                                for _, digits in found], np.int8).reshape(-1, MAX_LABELS)}


# ---------------------------------------------------------------------------
# Numbers pasted from the scans themselves: MNIST's own strokes, no tracing
# ---------------------------------------------------------------------------

SCAN_HEIGHT = 60   # px of a digit before the strip's own scaling
STRETCH = (0.8, 1.2)


def paste_number(images, rng):
    """uint8 [k, 28, 28] digits -> uint8 ink of them pasted side by side as one number, each
    cropped to its ink, scaled to about SCAN_HEIGHT, stretched, raised and spaced at random
    (GAP, SIZE, LIFT, as write_number), the whole slanted (SLANT)."""
    from PIL import Image

    pieces = []
    for image in images:
        x0, y0, x1, y1 = image_ink.nonzero_box(image)
        height = SCAN_HEIGHT * rng.uniform(*SIZE)
        width = max(1, round((x1 - x0) * height / (y1 - y0) * rng.uniform(*STRETCH)))
        pieces.append(np.asarray(Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1]))
                                 .resize((width, round(height)), Image.Resampling.BILINEAR)))
    lifts = [round(SCAN_HEIGHT * rng.uniform(*LIFT)) for _ in pieces]
    lefts = [0]
    for piece, next_piece in zip(pieces, pieces[1:]):
        gap = overlap_at_most(SCAN_HEIGHT * rng.uniform(*GAP), piece.shape[1],
                              next_piece.shape[1])
        lefts.append(max(0, lefts[-1] + piece.shape[1] + round(gap)))
    top = max(0, -min(lifts))
    height = max(top + lift + piece.shape[0] for lift, piece in zip(lifts, pieces))
    width = max(left + piece.shape[1] for left, piece in zip(lefts, pieces))
    slant = np.tan(np.radians(rng.uniform(*SLANT)))
    margin = int(abs(slant) * height) + 1
    ink = np.zeros((height, width + 2 * margin), np.uint8)
    for left, lift, piece in zip(lefts, lifts, pieces):
        window = ink[top + lift:top + lift + piece.shape[0],
                     margin + left:margin + left + piece.shape[1]]
        np.maximum(window, piece, out=window)
    # x_in = x_out + slant * (y - height / 2): the top leans right for a positive slant
    sheared = Image.fromarray(ink).transform(
        ink.shape[::-1], Image.Transform.AFFINE, (1, slant, -slant * height / 2, 0, 1, 0),
        Image.Resampling.BILINEAR)
    return np.asarray(sheared)


def pasted_strip(images, labels, rng):
    """uint8 [k, 28, 28] digits labelled `labels` -> [(uint8 strip, [digits])]: the number
    pasted (paste_number) and read whole, as one mark; [] when nothing readable is left."""
    try:
        strip, _ = number_reader.to_strip(paste_number(images, rng))
    except errors.ImageError:
        return []
    return [(np.rint(strip * 255).astype(np.uint8), list(labels))]


def pasted_chunk(task):
    """(first number's index, [(uint8 [k, 28, 28] digits, their labels)], seed) -> as
    strips_chunk, one strip per number."""
    start, numbers, seed = task
    rng = random.Random(seed * 1_000_003 + start)
    return _as_arrays([found for images, labels in numbers
                       for found in pasted_strip(images, labels, rng)])
