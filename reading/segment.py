"""Segmentation: split the ink of a number into its digits, left to right.

First where blank canvas separates marks (`split_digits`; `mnist_digits` gives each part as
the 28x28 image the digit network reads); then a mark too wide to be one digit, or one the
digit network is unsure of, is read whole by the number reader (`read_digits`,
reading/number_reader.py), which needs no cuts between touching digits.

Pure functions over numpy arrays and Pillow images. The networks come in as callables.
"""

import dataclasses
import typing

import numpy as np
from PIL import Image

import utils
from drawing import errors, image_ink, regions
from reading import contract, number_reader

SEGMENT_SIZE = 128               # longer side of the mask on which separate marks are found
SPECK_FRACTION = 0.15            # marks smaller than this share of the tallest one are specks
FLAT_FRACTION = 0.35             # marks flatter than this share of the tallest one are bars
SMALL_FRACTION = 0.4             # marks shorter than this share of the tallest are not digits
MAX_DIGITS = 12


# ---------------------------------------------------------------------------
# Several digits: split a number written left to right
# ---------------------------------------------------------------------------

class Mark(typing.NamedTuple):
    """One part of a drawing split at blank gaps: a digit, or touching digits."""
    box: tuple        # (x0, y0, x1, y1) in the image's pixels, right and bottom exclusive
    ink: np.ndarray   # uint8 [h, w]: the ink inside `box`, other marks' strokes removed


def _width(box):
    return box[2] - box[0]


def _height(box):
    return box[3] - box[1]


def _union(a, b):
    """The box (x0, y0, x1, y1) around boxes a and b."""
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


def _group_into_digits(boxes):
    """Merge component boxes (x0, y0, x1, y1) that belong to one digit; returns groups of
    indices, left to right.

    Two marks are one digit when they overlap horizontally by half the narrower one, or by
    a quarter when one is a flat bar (a 5's detached top, a 7's crossbar), or when one
    stands on the other (a stroke broken in two). Marks shorter
    than SMALL_FRACTION of the tallest join the nearest digit, or are dropped if far.
    """
    tallest = max(_height(box) for box in boxes)
    groups = [[index] for index in range(len(boxes))]
    extents = [list(box) for box in boxes]

    def belong_together(a, b):
        overlap = min(a[2], b[2]) - max(a[0], b[0])
        narrower = min(_width(a), _width(b))
        flat = min(_height(a), _height(b)) < FLAT_FRACTION * tallest
        # Digits of a number stand side by side; marks one above the other that (nearly)
        # touch sideways are one digit, such as a 1 broken in two.
        stacked = min(a[3], b[3]) <= max(a[1], b[1]) and overlap > -0.1 * tallest
        return stacked or overlap >= (0.25 if flat else 0.5) * narrower

    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if belong_together(extents[a], extents[b]):
                    groups[a] += groups.pop(b)
                    extents[a] = _union(extents[a], extents.pop(b))
                    merged = True
                    break
            if merged:
                break
    # A mark much shorter than the tallest is never a digit by itself (a 5's bar floating
    # to the right, a fragment of a broken stroke): it joins the nearest digit if close.
    small = [index for index, extent in enumerate(extents)
             if _height(extent) < SMALL_FRACTION * tallest]
    digits = [index for index in range(len(groups)) if index not in small]
    for index in small:
        if not digits:
            break
        gaps = [max(extents[d][0] - extents[index][2], extents[index][0] - extents[d][2], 0)
                for d in digits]
        nearest = digits[int(np.argmin(gaps))]
        if min(gaps) <= SMALL_FRACTION * tallest:
            groups[nearest] += groups[index]
    if not digits:
        digits = list(range(len(groups)))
    return [groups[index] for index in sorted(digits, key=lambda index: extents[index][0])]


def split_digits(ink, one_digit=False):
    """uint8 [H, W] ink map -> [Mark], one per digit, left to right.

    Strokes that overlap horizontally stay one digit (a 5 with a detached bar, a 7 with a
    crossbar, a 4 in two strokes); specks are dropped. With `one_digit`, everything but the
    specks is one digit.
    """
    left, top, right, bottom = image_ink.ink_bbox(ink)
    region = ink[top:bottom, left:right]
    if region.any(axis=0).all() and region.any(axis=1).all():
        return [Mark((left, top, right, bottom), region)]  # no blank gap: one part, no specks
    scale = min(1.0, SEGMENT_SIZE / max(region.shape))
    small_size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    mask = np.asarray(utils.resize(Image.fromarray(region), small_size,
                                   Image.Resampling.BOX)) > 0
    labels = regions.connected_regions(mask, diagonal=True)
    boxes, areas = regions.region_boxes(labels)
    tallest = max(_height(box) for box in boxes)
    total_area = sum(areas)
    kept = [index for index, box in enumerate(boxes)
            if max(_height(box), _width(box)) >= SPECK_FRACTION * tallest
            or areas[index] >= SPECK_FRACTION * total_area]
    groups = ([list(range(len(kept)))] if one_digit
              else _group_into_digits([boxes[index] for index in kept]))
    if len(groups) > MAX_DIGITS:
        raise errors.NothingDrawn(f"The drawing has more than {MAX_DIGITS} separate "
                                  "marks; write one number, left to right.")
    big_labels = np.asarray(Image.fromarray(labels.astype(np.int32)).resize(
        (region.shape[1], region.shape[0]), Image.Resampling.NEAREST))
    digits = []
    for group in groups:
        members = [kept[index] + 1 for index in group]
        digit_ink = np.where(np.isin(big_labels, members), region, 0).astype(np.uint8)
        inside = image_ink.nonzero_box(digit_ink)
        if inside is None:
            continue
        x0, y0, x1, y1 = inside
        digits.append(Mark((left + x0, top + y0, left + x1, top + y1), digit_ink[y0:y1, x0:x1]))
    if not digits:
        raise errors.NothingDrawn(errors.BLANK_IMAGE)
    return digits


# ---------------------------------------------------------------------------
# Touching digits: the number reader reads a mark that may hold several
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ReaderGate:
    """Which marks the number reader reads, and when its reading of several digits stands;
    widths are shares of the mark's height. Chosen on numbers and single digits drawn from
    MNIST *training* digits (docs/evaluation.md#numbers)."""
    wide: float = 1.3          # wider than this: read by the number reader alone
    read: float = 0.85         # wider than this (two touching digits often are no wider than
                               # one) ...
    unsure_below: float = 0.8  # ... or read by the digit network with less confidence than
    min_read: float = 0.45     # this in any one digit, and at least this wide: read by both
    sure: float = 1.1          # up to this wide, the reader's digits stand only where it is
                               # surer of its reading than the digit network is of any one
                               # digit (its "not a digit" does not count: to it, several
                               # digits are not one digit)
    overrule: float = 0.35     # where the digit network says "not a digit", the reader's
                               # reading (of one digit or more) stands only if it is at least
                               # this sure of it: a letter is not a number, but one digit
                               # the network doubts is not a whole number's loss (chosen
                               # with scripts/tune_number_mode.py, docs/pipeline.md)
    lone_overrule: float = 0.35  # where the drawing is one mark and the digit network says
                               # "not a digit", the reader's reading stands only if it holds
                               # two digits or more and the reader is at least this sure of
                               # it: one mark read as one digit is what digit mode decides


READER_GATE = ReaderGate()  # the shipped settings


# A mark is "not a digit" only where the digit network gives that more than this: below it,
# the likeliest digit is read, with its low confidence. Chosen on held-out training digits
# and generated non-digits (docs/pipeline.md).
NOT_A_DIGIT_ABOVE = 0.9


def answers(probabilities, not_a_digit_above=NOT_A_DIGIT_ABOVE):
    """float [N, 11] digit network outputs -> int [N]: the likeliest digit, or
    contract.NOT_A_DIGIT where that has more than `not_a_digit_above`."""
    probabilities = np.asarray(probabilities)
    digits = probabilities[..., :contract.DIGIT_CLASSES]
    return np.where(probabilities[..., contract.NOT_A_DIGIT] > not_a_digit_above,
                    contract.NOT_A_DIGIT, digits.argmax(-1))


class Reading(typing.NamedTuple):
    """A drawing's digits as read, and how likely the whole reading is."""
    digits: list         # [Digit], left to right
    probability: float   # the product of each mark's reading's probability

    @property
    def not_a_digit(self):
        """Whether some mark is not a digit."""
        return not all(digit.is_digit for digit in self.digits)

    @property
    def number(self):
        """The digits read, left to right, as a string; None where some mark is not a digit."""
        return None if self.not_a_digit else "".join(str(digit.answer) for digit in self.digits)


@dataclasses.dataclass(frozen=True)
class Digit:
    """One mark read in a drawing: a digit, or not a digit."""
    box: tuple                  # (x0, y0, x1, y1) in the image's pixels, right and bottom exclusive
    image: np.ndarray           # float32 [28, 28] in [0, 1]: the mark the MNIST way (the preview)
    probabilities: np.ndarray   # float32 [11]: how likely each digit is, then "not a digit"

    @property
    def answer(self):
        """The digit read, or contract.NOT_A_DIGIT where the network is sure enough of that."""
        return int(answers(self.probabilities))

    @property
    def is_digit(self):
        return self.answer != contract.NOT_A_DIGIT

    @property
    def confidence(self):
        """How likely the network finds what `answer` says."""
        return float(self.probabilities[self.answer])


def mnist_digits(ink, one_digit=False):
    """uint8 [H, W] ink map -> [(box, digit)], one per digit split at blank gaps, left to right:
    what the digit network would be shown of each mark. `box` is (x0, y0, x1, y1) in the
    image's pixels, `digit` float32 [28, 28] in [0, 1], white ink on black (to_mnist).
    """
    return [(box, utils.to_mnist(part)) for box, part in split_digits(ink, one_digit)]


def goes_to_reader(part, probabilities, gate=READER_GATE):
    """Whether a mark (uint8 [h, w] ink) the digit network reads with `probabilities` goes to
    the number reader too: one as wide as two touching digits can be, one the network is
    unsure of that is wide enough for two (ReaderGate `gate`), and one it calls "not a digit"
    (two touching digits often are, to it; and the reader may know a digit it doubts)."""
    height, width = part.shape
    surest_digit = probabilities[:contract.DIGIT_CLASSES].max()
    return (width > gate.read * height
            or (surest_digit < gate.unsure_below and width >= gate.min_read * height)
            or answers(probabilities) == contract.NOT_A_DIGIT)


def overrules(reading, gate=READER_GATE, alone=False):
    """Whether the number reader's `reading` (a Reading, or None) of a mark overrules the
    digit network's "not a digit" (ReaderGate `gate`): in a drawing of more marks, a reading
    of one digit or more the reader is `gate.overrule` sure of; where the mark is `alone`, one
    of two digits or more it is `gate.lone_overrule` sure of."""
    if reading is None:
        return False
    if alone:
        return len(reading.digits) >= 2 and reading.probability >= gate.lone_overrule
    return reading.probability >= gate.overrule


def reading_stands(part, reading, probabilities, gate=READER_GATE, alone=False):
    """Whether the number reader's `reading` (a Reading, or None for no digit) of a mark
    (uint8 [h, w] ink; `alone` in its drawing or not) stands over the digit network's
    `probabilities` for it (ReaderGate `gate`). Where the network says "not a digit", the
    reading stands if it overrules that; otherwise a reading of two digits or more does, in
    a mark up to `gate.sure` wide only if the reader is surer of it than the network is of
    any one digit."""
    if reading is None:
        return False
    if answers(probabilities) == contract.NOT_A_DIGIT:
        return overrules(reading, gate, alone)
    height, width = part.shape
    return len(reading.digits) >= 2 and (
        width > gate.sure * height
        or reading.probability > probabilities[:contract.DIGIT_CLASSES].max())


def read_digits(ink, score, read_strips, one_digit=False, gate=READER_GATE):
    """uint8 [H, W] ink map -> Reading: its Digits, left to right, and their probability.

    Marks are split at blank gaps. A mark wider than `gate.wide` (ReaderGate) is read whole
    by the number reader, `read_strips`: float32 [N, STRIP_HEIGHT, STRIP_WIDTH] -> float32
    [N, COLUMNS, 11] (reading/number_reader.py), and its reading of two digits or more
    stands where it `overrules` the digit network. A narrower one is read by the digit
    network, `score`: float32 [N, 28, 28] -> float32 [N, 11] (contract.MODEL_OUTPUT), and by
    the reader too where goes_to_reader says; so is a wide one the reader reads otherwise.
    Which reading stands, reading_stands decides.
    Each network is called once, the digit network a second time only for the wide marks it
    reads. With `one_digit`, the drawing is one digit and the reader is not asked.
    """
    parts = split_digits(ink, one_digit)
    wide = set() if one_digit else {index for index, (_, part) in enumerate(parts)
                                    if part.shape[1] > gate.wide * part.shape[0]}
    read_alone = {}  # index -> (28x28 digit, probabilities) from the digit network
    _score(score, parts, [index for index in range(len(parts)) if index not in wide],
           read_alone)
    to_read = [] if one_digit else [index for index, (_, part) in enumerate(parts)
                                    if index in wide
                                    or goes_to_reader(part, read_alone[index][1], gate)]
    strips = {index: number_reader.to_strip(parts[index].ink) for index in to_read}
    columns = dict(zip(to_read, read_strips(np.stack([strips[index][0] for index in to_read]))
                       if to_read else []))
    readings = {index: _reader_digits(*parts[index], *strips[index], columns[index])
                for index in to_read}
    alone = len(parts) == 1
    _score(score, parts, [index for index in wide if readings[index] is None
                          or len(readings[index].digits) < 2
                          or not overrules(readings[index], gate, alone)], read_alone)
    for index, reading in readings.items():
        if index in read_alone and not reading_stands(parts[index].ink, reading,
                                                      read_alone[index][1], gate, alone):
            readings[index] = None
    digits, confidence = [], 1.0
    for index, (box, _) in enumerate(parts):
        if readings.get(index) is None:
            digit, probabilities = read_alone[index]
            digits.append(Digit(box, digit, probabilities))
            confidence *= digits[-1].confidence
        else:
            digits += readings[index].digits
            confidence *= readings[index].probability
    return Reading(digits, confidence)


def _score(score, parts, indices, found):
    """Read the marks `indices` of `parts` with the digit network (one call, none if there
    are none); store (28x28 digit, probabilities) of each in `found`."""
    if not indices:
        return
    digits = [utils.to_mnist(parts[index].ink) for index in indices]
    for index, digit, probabilities in zip(indices, digits, score(np.stack(digits))):
        found[index] = (digit, probabilities)


def _reader_digits(box, part, strip, scale, columns):
    """The number reader's reading of one mark -> Reading, or None when it reads no digit,
    or when some digit's columns hold no ink (the reading cannot be placed on the drawing).
    Each digit's box is around the mark's ink (`part`) in its columns
    (number_reader.digit_spans), its image the strip's, its probabilities those of its surest
    output column, without the blank (the reader has no "not a digit")."""
    path = number_reader.best_path(columns)
    if not path:
        return None
    spans = number_reader.digit_spans(path, scale, part.shape[1], strip)
    images = number_reader.digit_images(strip, [in_strip for in_strip, _ in spans])
    insides = [image_ink.nonzero_box(part[:, left:right]) for _, (left, right) in spans]
    if images is None or None in insides:
        return None
    digits = []
    for (label, first, last), (_, (left, _)), image, (x0, y0, x1, y1) in zip(
            path, spans, images, insides):
        surest = columns[first + int(columns[first:last + 1, label].argmax())]
        digit_probabilities = surest[:contract.BLANK] / surest[:contract.BLANK].sum()
        digits.append(Digit((box[0] + left + x0, box[1] + y0, box[0] + left + x1, box[1] + y1),
                            image, np.append(digit_probabilities, np.float32(0))))
    return Reading(digits, number_reader.sequence_probability(columns,
                                                              [label for label, _, _ in path]))
