"""Touching digits (reading/segment.py): what is read apart, what is never split, and what it costs
in calls.

Through the API with the real models, and on segment.read_digits with stand-in networks that
count how they are called.
"""

import math

import numpy as np
import pytest

from drawing import image_ink
from reading import contract, number_reader, segment
from support import drawn_numbers
from training import strokes

CANVAS = drawn_numbers.CANVAS
PEN = 16
OVERLAP = 6  # px by which each digit's ink reaches over its neighbour's


def ellipse(centre_x, centre_y, radius_x, radius_y, points=40, start=0.0, turns=1.0):
    return [(centre_x + radius_x * math.cos(start + 2 * math.pi * turns * k / points),
             centre_y + radius_y * math.sin(start + 2 * math.pi * turns * k / points))
            for k in range(points + 1)]


# Digits wider than most, or in pieces that look like digits: each is one digit. Polylines
# in a box one unit tall.
ONE_DIGIT_SHAPES = {
    "wide 0": ("0", [ellipse(0.65, 0.5, 0.65, 0.5)]),
    "7 with a long bar": ("7", [[(0.0, 0.0), (1.3, 0.0), (0.55, 1.0)]]),
    "5 with a long bar": ("5", [[(1.3, 0.0), (0.15, 0.0), (0.1, 0.45)]
                                + ellipse(0.45, 0.68, 0.4, 0.32, 30, -math.pi * 0.75, 0.8)]),
    "4": ("4", [[(0.55, 0.0), (0.0, 0.65), (0.85, 0.65)], [(0.6, 0.25), (0.6, 1.0)]]),
    "2 with a loop": ("2", [ellipse(0.4, 0.3, 0.4, 0.3, 20, math.pi, 0.6) + [(0.15, 1.0)]
                            + ellipse(0.3, 0.88, 0.15, 0.12, 16, math.pi * 0.5)[1:]
                            + [(0.9, 1.0)]]),
    "1 with a foot": ("1", [[(0.2, 0.2), (0.45, 0.0), (0.45, 1.0)], [(0.05, 1.0), (0.85, 1.0)]]),
}


@pytest.fixture(scope="module")
def touching(mnist_test):
    """touching(number, convention) -> PNG bytes of the first MNIST test image of each digit
    of `number`, written left to right with neighbours' ink overlapping, and no blank column
    between the digits (checked on the drawing)."""
    x_test, y_test = mnist_test

    def write(number, convention="ink_on_transparent"):
        traced = [strokes.digit_strokes(x_test[int((y_test == int(d)).nonzero()[0][0])])
                  for d in number]
        placed = strokes.side_by_side(traced, [160] * len(traced), -OVERLAP, PEN)
        placed = strokes.move_onto_canvas(placed, PEN, CANVAS)
        image = strokes.draw_strokes([s for digit in placed for s in digit], CANVAS, PEN,
                                     convention)
        assert not drawn_numbers.has_blank_column(drawn_numbers.coverage(image, convention)), \
            f"the digits of {number} were meant to touch but a blank column separates them"
        return strokes.png_bytes(image)

    return write


def post(client, png, mode="number"):
    response = client.post(f"/predict?mode={mode}", data=png, content_type="image/png")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


TOUCHING_EXAMPLES = ["27", "86", "52", "407"]
# Of the 4 examples x 3 colour conventions, the shipped network and search read 9 right: the
# touching 86 comes back as 816 in every convention (the credit per extra digit, chosen on
# training numbers, reads more of them right and this one wrong; before the even splits it
# was 816 too, and with the settings of before all 12 were right).
TOUCHING_EXAMPLES_FLOOR = 9


def test_touching_digits_are_read_apart(client, touching):
    readings = {(number, convention): post(client, touching(number, convention))
                for number in TOUCHING_EXAMPLES for convention in strokes.CONVENTIONS}
    for body in readings.values():
        lefts = [entry["box"][0] for entry in body["digits"]]
        assert lefts == sorted(lefts), f"the digits' boxes are not left to right: {body['digits']}"
    misread = {case: body["number"] for case, body in readings.items() if body["number"] != case[0]}
    assert len(readings) - len(misread) >= TOUCHING_EXAMPLES_FLOOR, \
        f"touching examples read wrongly (number, convention): read as {misread}"


def test_digit_mode_never_splits(client, touching):
    body = post(client, touching("27"), mode="digit")
    assert len(body["digits"]) == 1, f"mode=digit split the drawing into {body['digits']}"


@pytest.mark.parametrize("convention", strokes.CONVENTIONS)
@pytest.mark.parametrize("name", ONE_DIGIT_SHAPES)
def test_one_wide_or_many_stroked_digit_is_never_split(client, name, convention):
    label, polylines = ONE_DIGIT_SHAPES[name]
    placed = strokes.place_strokes(polylines, 180, (CANVAS[0] / 2, CANVAS[1] / 2))
    body = post(client, strokes.png_bytes(strokes.draw_strokes(placed, CANVAS, PEN, convention)))
    assert body["number"] == label, f"a {name} was read as {body['number']}"


# ---------------------------------------------------------------------------
# What reading asks of the two networks
# ---------------------------------------------------------------------------

class CountingNetwork:
    """Stands in for the digit network: answers every image with the same `confidence` for
    `answer` (digit 3 unless told; contract.NOT_A_DIGIT for "not a digit"), and records each
    batch it was given."""

    def __init__(self, confidence, answer=3):
        self.confidence = confidence
        self.answer = answer
        self.batches = []

    def __call__(self, digits):
        assert digits.dtype == np.float32, f"the network was given {digits.dtype}"
        assert digits.shape[1:] == (28, 28), f"the network was given {digits.shape}"
        self.batches.append(len(digits))
        classes = contract.MODEL_CLASSES
        probabilities = np.full((len(digits), classes), (1 - self.confidence) / (classes - 1),
                                np.float32)
        probabilities[:, self.answer] = self.confidence
        return probabilities


class CountingReader:
    """Stands in for the number reader: reads every strip as `digits`, spread evenly over the
    strip's ink, each column `sure` of its label, and records each batch it was given."""

    def __init__(self, digits, sure=0.99):
        self.digits = digits
        self.sure = sure
        self.batches = []
        self.columns = []

    def __call__(self, strips):
        assert strips.dtype == np.float32, f"the reader was given {strips.dtype}"
        assert strips.shape[1:] == (contract.STRIP_HEIGHT, contract.STRIP_WIDTH), \
            f"the reader was given {strips.shape}"
        self.batches.append(strips.copy())
        self.columns = [self.read(strip) for strip in strips]
        return np.stack(self.columns)

    def read(self, strip):
        inked = np.flatnonzero(strip.any(axis=0))
        width = (inked[-1] + 1 - inked[0]) / len(self.digits)
        labels = np.full(contract.COLUMNS, contract.BLANK)
        for index, digit in enumerate(self.digits):
            middle = inked[0] + (index + 0.5) * width
            labels[int(middle) // contract.DOWNSAMPLE] = digit
        columns = np.full((contract.COLUMNS, contract.BLANK + 1), (1 - self.sure) / 10,
                          np.float32)
        columns[np.arange(contract.COLUMNS), labels] = self.sure
        return columns


def read(png, network, reader, one_digit=False):
    return segment.read_digits(image_ink.read_ink(png), network, reader, one_digit)


def test_a_narrow_digit_the_network_is_sure_of_is_not_read_again(draw_mnist_digit):
    image, _ = draw_mnist_digit(2, canvas=CANVAS)  # a 1, narrower than READER_GATE.read
    network, reader = CountingNetwork(confidence=0.999), CountingReader([2, 7])
    digits, confidence = read(strokes.png_bytes(image), network, reader)
    assert network.batches == [1] and reader.batches == [], \
        f"one sure, narrow digit cost {network.batches} digit images, {reader.batches} strips"
    assert [int(d.probabilities.argmax()) for d in digits] == [3]
    assert confidence == pytest.approx(0.999)


def test_a_wide_mark_goes_to_the_reader_alone_and_its_sure_reading_stands(touching):
    network = CountingNetwork(confidence=0.999)
    reader = CountingReader([2, 7, 7, 1], sure=0.9995)
    png = touching("2771")
    digits, confidence = read(png, network, reader)
    assert network.batches == [], f"the digit network was given {network.batches}"
    assert [len(batch) for batch in reader.batches] == [1], "the mark was not read once, whole"
    assert [int(d.probabilities.argmax()) for d in digits] == [2, 7, 7, 1]
    assert confidence == pytest.approx(number_reader.sequence_probability(
        reader.columns[0], [2, 7, 7, 1]))
    (box, _), = segment.split_digits(image_ink.read_ink(png))
    lefts = [d.box[0] for d in digits]
    assert lefts == sorted(lefts) and len(set(lefts)) == 4, f"boxes {[d.box for d in digits]}"
    for digit in digits:
        assert box[0] <= digit.box[0] < digit.box[2] <= box[2]
        assert box[1] <= digit.box[1] < digit.box[3] <= box[3]
        assert digit.image.shape == (28, 28) and digit.image.max() > 0


@pytest.mark.parametrize("network_says, answers", [
    (3, [2, 7, 7, 1]), (contract.NOT_A_DIGIT, [contract.NOT_A_DIGIT])])
def test_an_unsure_reading_of_a_wide_mark_is_checked_by_the_digit_network(touching,
                                                                          network_says, answers):
    network = CountingNetwork(0.9999, network_says)
    reader = CountingReader([2, 7, 7, 1], sure=0.95)
    digits, _ = read(touching("2771"), network, reader)
    assert number_reader.sequence_probability(reader.columns[0], [2, 7, 7, 1]) \
        < segment.READER_GATE.overrule
    assert network.batches == [1], "the digit network did not check the unsure reading"
    assert [d.answer for d in digits] == answers


def test_the_reader_sees_the_mark_whole(touching):
    reader = CountingReader([2, 7, 7, 1])
    png = touching("2771")
    read(png, CountingNetwork(confidence=0.999), reader)
    (_, mark), = segment.split_digits(image_ink.read_ink(png))
    np.testing.assert_array_equal(reader.batches[0][0], number_reader.to_strip(mark)[0])


def test_a_reading_of_one_digit_leaves_the_digit_networks_answer(touching):
    network, reader = CountingNetwork(confidence=0.999), CountingReader([8])
    digits, confidence = read(touching("2771"), network, reader)
    assert len(reader.batches) == 1 and network.batches == [1]
    assert [int(d.probabilities.argmax()) for d in digits] == [3]
    assert confidence == pytest.approx(0.999)


def test_a_narrow_mark_the_network_is_unsure_of_goes_to_the_reader(touching):
    network, reader = CountingNetwork(confidence=0.5), CountingReader([1, 1])
    digits, _ = read(touching("11"), network, reader)
    assert [len(batch) for batch in reader.batches] == [1], "an unsure reading was not read again"
    assert [int(d.probabilities.argmax()) for d in digits] == [1, 1]


def test_in_a_narrow_mark_the_surer_network_wins(touching):
    png = touching("14")
    (_, mark), = segment.split_digits(image_ink.read_ink(png))
    gate = segment.READER_GATE
    assert gate.read * mark.shape[0] < mark.shape[1] <= gate.sure * mark.shape[0], \
        "the test's 14 is not of the width tested"
    reader = CountingReader([1, 4], sure=0.995)
    digits, confidence = read(png, CountingNetwork(confidence=0.9999), reader)
    assert len(reader.batches) == 1
    reading = number_reader.sequence_probability(reader.columns[0], [1, 4])
    assert 0.6 < reading < 0.9999
    assert [int(d.probabilities.argmax()) for d in digits] == [3], "the less sure reader won"
    assert confidence == pytest.approx(0.9999)
    digits, confidence = read(png, CountingNetwork(confidence=0.6),
                              CountingReader([1, 4], sure=0.995))
    assert [int(d.probabilities.argmax()) for d in digits] == [1, 4], "the surer reader lost"
    assert confidence == pytest.approx(reading)


def test_digit_mode_asks_for_nothing_but_the_drawing(touching):
    network, reader = CountingNetwork(confidence=0.5), CountingReader([2, 7, 7, 1])
    digits, _ = read(touching("2771"), network, reader, one_digit=True)
    assert network.batches == [1], f"the network was called for {network.batches} images"
    assert reader.batches == [], "mode=digit asked the number reader"
    assert len(digits) == 1, f"mode=digit read {len(digits)} digits"


def test_a_mark_the_network_calls_no_digit_is_one_unless_the_reader_is_sure_of_digits(
        touching):
    """The digit network's "not a digit" stands unless the reader reads one digit or more
    and is at least gate.overrule sure of it: then the reader's reading stands (to the digit
    network, several digits are not one digit), and a reader's digits are never "not a
    digit"."""
    png = touching("14")
    sure, unsure = CountingReader([1, 4], sure=0.9995), CountingReader([1, 4], sure=0.95)
    for reader in (sure, unsure):
        read(png, CountingNetwork(0.9999, contract.NOT_A_DIGIT), reader)
    assert (number_reader.sequence_probability(unsure.columns[0], [1, 4])
            < segment.READER_GATE.overrule
            <= number_reader.sequence_probability(sure.columns[0], [1, 4]))
    digits, confidence = read(png, CountingNetwork(0.9999, contract.NOT_A_DIGIT),
                              CountingReader([1, 4], sure=0.95))
    assert [d.answer for d in digits] == [contract.NOT_A_DIGIT], "an unsure reader overruled"
    assert confidence == pytest.approx(0.9999)
    digits, _ = read(png, CountingNetwork(0.85, contract.NOT_A_DIGIT), CountingReader([1]))
    assert digits[0].is_digit, "'not a digit' at 0.85 is not sure enough"
    digits, _ = read(png, CountingNetwork(0.9999, contract.NOT_A_DIGIT),
                     CountingReader([1, 4], sure=0.9995))
    assert [d.answer for d in digits] == [1, 4], "a sure reader's two digits did not stand"
    assert all(d.probabilities.shape == (contract.MODEL_CLASSES,) for d in digits)
    assert all(d.probabilities[contract.NOT_A_DIGIT] == 0 for d in digits)
    digits, _ = read(png, CountingNetwork(0.9999, contract.NOT_A_DIGIT),
                     CountingReader([7], sure=0.9995))
    assert [d.answer for d in digits] == [contract.NOT_A_DIGIT], \
        "one mark alone read as one digit overruled the network: digit mode would not"


def test_in_a_drawing_of_marks_a_sure_reader_keeps_a_doubted_digit(mnist_test):
    """Where a drawing has several marks, a reader's reading of one digit `gate.overrule`
    sure of it overrules the network's "not a digit": one doubted mark does not make a
    number of real digits no number."""
    x_test, y_test = mnist_test
    traced = [strokes.digit_strokes(x_test[int((y_test == d).nonzero()[0][0])]) for d in (4, 7)]
    placed = strokes.move_onto_canvas(strokes.side_by_side(traced, [160, 160], 60, PEN), PEN,
                                      CANVAS)
    png = strokes.png_bytes(strokes.draw_strokes([s for digit in placed for s in digit],
                                                 CANVAS, PEN))
    digits, _ = read(png, CountingNetwork(0.9999, contract.NOT_A_DIGIT),
                     CountingReader([7], sure=0.9995))
    assert [d.answer for d in digits] == [7, 7], "a sure reader's one digit did not stand"
    digits, _ = read(png, CountingNetwork(0.9999, contract.NOT_A_DIGIT),
                     CountingReader([7], sure=0.2))
    assert [d.answer for d in digits] == [contract.NOT_A_DIGIT] * 2, "an unsure reader overruled"


@pytest.mark.parametrize("held, sure, alone, stands", [
    (1, 0.9, False, True), (1, 0.2, False, False), (1, 0.99, True, False),
    (2, 0.9, True, True), (2, 0.2, True, False), (2, 0.2, False, False)])
def test_a_reading_overrules_not_a_digit_by_its_digits_and_the_drawings_marks(held, sure,
                                                                              alone, stands):
    gate = segment.ReaderGate(overrule=0.35, lone_overrule=0.5)
    digit = segment.Digit((0, 0, 1, 1), np.zeros((28, 28), np.float32),
                          np.eye(contract.MODEL_CLASSES, dtype=np.float32)[3])
    reading = segment.Reading([digit] * held, sure)
    assert segment.overrules(reading, gate, alone) == stands
    assert not segment.overrules(None, gate, alone)


@pytest.mark.parametrize("width, surest, goes_to_reader", [
    (60, "digit 3 at 0.9", False), (60, "digit 3 at 0.7", True),
    (60, "not a digit at 0.9", True), (30, "digit 3 at 0.7", False),
    (30, "not a digit at 0.95", True)])
def test_a_narrow_mark_goes_to_the_reader_when_no_digit_is_likely(width, surest,
                                                                  goes_to_reader):
    # 0.6 x its height wide: wide enough for two touching digits, narrower than gate.read;
    # 0.3 x: too narrow for two, read again only if the network calls it "not a digit"
    part = np.zeros((100, width), np.uint8)
    probabilities = np.full(contract.MODEL_CLASSES, 0.01, np.float32)
    probabilities[contract.NOT_A_DIGIT if surest.startswith("not") else 3] = \
        float(surest.split()[-1])
    assert segment.goes_to_reader(part, probabilities) == goes_to_reader, \
        f"a mark read as {surest} {'should' if goes_to_reader else 'should not'} go to the reader"


def test_a_gate_given_as_a_value_decides_which_marks_the_reader_reads(touching):
    png = touching("2771")
    never = segment.ReaderGate(wide=100.0, read=100.0, unsure_below=0.0)
    network, reader = CountingNetwork(confidence=0.5), CountingReader([2, 7, 7, 1])
    digits, _ = segment.read_digits(image_ink.read_ink(png), network, reader, gate=never)
    assert reader.batches == [] and [d.answer for d in digits] == [3]
    digits, _ = segment.read_digits(image_ink.read_ink(png), network, reader)
    assert len(reader.batches) == 1 and [d.answer for d in digits] == [2, 7, 7, 1]
