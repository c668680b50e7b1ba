"""reading/number_reader.py: the strip the number reader reads, and the arithmetic on its output."""

import itertools

import numpy as np
import pytest

import utils
from drawing import errors
from reading import contract, number_reader

BLANK = contract.BLANK


def columns_for(labels, sure=0.9):
    """float32 [len(labels), 11]: each column `sure` of its label, the rest spread evenly."""
    columns = np.full((len(labels), BLANK + 1), (1 - sure) / BLANK, np.float32)
    columns[np.arange(len(labels)), labels] = sure
    return columns


def test_the_best_path_merges_repeats_and_drops_blanks():
    path = number_reader.best_path(columns_for([BLANK, 2, 2, BLANK, 7, 7, 7, BLANK]))
    assert path == [(2, 1, 2), (7, 4, 6)]


def test_a_blank_between_equal_digits_keeps_both():
    path = number_reader.best_path(columns_for([1, 1, BLANK, 1, BLANK, 0, 0]))
    assert [label for label, _, _ in path] == [1, 1, 0]


def test_all_blank_reads_nothing():
    assert number_reader.best_path(columns_for([BLANK] * contract.COLUMNS)) == []


def brute_force(columns):
    """{reading: probability}, summed over every path through the columns."""
    readings = {}
    for path in itertools.product(range(BLANK + 1), repeat=len(columns)):
        reading = tuple(label for k, label in enumerate(path)
                        if label != BLANK and (k == 0 or path[k - 1] != label))
        readings[reading] = readings.get(reading, 0.0) + float(
            np.prod(columns[np.arange(len(columns)), path], dtype=np.float64))
    return readings


def test_the_sequence_probability_sums_every_path_of_a_reading():
    rng = np.random.default_rng(3)
    columns = rng.dirichlet(np.full(BLANK + 1, 0.3), size=4).astype(np.float32)
    readings = brute_force(columns)
    assert sum(readings.values()) == pytest.approx(1.0)
    for reading in [(), (3,), (3, 3), (1, 2), (5, 5, 5), (0, 1, 0, 1)]:
        assert number_reader.sequence_probability(columns, list(reading)) == pytest.approx(
            readings.get(reading, 0.0), abs=1e-12), f"reading {reading}"


def test_a_reading_longer_than_the_columns_allow_has_no_chance():
    columns = columns_for([3, BLANK, 3])
    assert number_reader.sequence_probability(columns, [3, 3, 3]) == 0.0


def run_at(digit, centre):
    """A run of the greedy path (digit, first column, last column) centred at `centre` px
    of the strip (a multiple of contract.DOWNSAMPLE)."""
    column = centre // contract.DOWNSAMPLE
    return (digit, column - 1, column)


def test_the_spans_part_the_strip_and_the_mark_between_the_digits_columns():
    path = [run_at(4, 12), run_at(2, 28), run_at(9, 44)]
    scale = 0.5  # strip px per mark px
    strip = np.zeros((contract.STRIP_HEIGHT, contract.STRIP_WIDTH), np.float32)
    strip[5:20, 4:52] = 1  # ink centred at 28 px, as the runs are: no lag
    spans = number_reader.digit_spans(path, scale, 120, strip)
    in_strip = [span for span, _ in spans]
    in_mark = [span for _, span in spans]
    for edges, end in ((in_strip, contract.STRIP_WIDTH), (in_mark, 120)):
        assert edges[0][0] == 0 and edges[-1][1] == end
        assert all(left < right for left, right in edges)
        assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
    assert [right for _, right in in_strip[:-1]] == [20, 36]  # halfway between the runs
    assert in_mark[0][1] == round((20 - number_reader.MARGIN) / scale)


def test_the_spans_follow_the_ink_when_the_reader_reads_late():
    path = [run_at(4, 20), run_at(2, 40)]  # mean 30 px
    strip = np.zeros((contract.STRIP_HEIGHT, contract.STRIP_WIDTH), np.float32)
    strip[5:20, 4:36] = 1  # ink centred at 20 px: the reader reads 10 px late
    [(first, _), (second, _)] = number_reader.digit_spans(path, 1.0, 200, strip)
    assert first == (0, 20) and second == (20, contract.STRIP_WIDTH)


def test_a_digit_read_beside_the_ink_still_gets_some_of_it():
    # the reader places its third digit at 80 px, right of the ink (4 to 40 px)
    path = [run_at(5, 12), run_at(1, 28), run_at(1, 80)]
    strip = np.zeros((contract.STRIP_HEIGHT, contract.STRIP_WIDTH), np.float32)
    strip[4:24, number_reader.MARGIN:40] = 1
    spans = number_reader.digit_spans(path, 0.1, 360, strip)
    for (left, right), _ in spans:
        assert strip[:, left:right].sum(axis=0).astype(bool).sum() >= number_reader.MIN_SPAN
    assert spans[-1][0][1] == contract.STRIP_WIDTH and spans[-1][1][1] == 360


def test_a_digits_image_is_its_columns_of_the_strip_centred_the_mnist_way():
    strip = np.zeros((contract.STRIP_HEIGHT, contract.STRIP_WIDTH), np.float32)
    strip[4:24, 10:14] = 1.0   # a bar, 20 px tall
    strip[4:24, 30:60] = 0.5   # a block 30 px wide: narrowed to 20
    bar, block = number_reader.digit_images(strip, [(0, 20), (20, 70)])
    assert bar.shape == (28, 28) and bar.dtype == np.float32
    assert (bar > 0).sum() == 20 * 4 and bar.max() == 1.0
    rows, columns = np.nonzero(bar)
    assert abs(rows.mean() - utils.MNIST_CENTRE + 0.5) <= 1 and abs(
        columns.mean() - utils.MNIST_CENTRE + 0.5) <= 1
    assert np.flatnonzero(block.any(axis=0)).size == utils.MNIST_BOX
    assert block.max() == 1.0, "a digit's ink reaches full white, as to_mnist's does"
    assert number_reader.digit_images(strip, [(0, 20), (70, 112)]) is None


def test_a_strip_is_the_mark_at_mnists_height_on_the_left():
    mark = np.zeros((200, 300), np.uint8)
    mark[20:180, 30:270:40] = 255  # six upright bars, 160 px tall
    strip, scale = number_reader.to_strip(mark)
    assert strip.shape == (contract.STRIP_HEIGHT, contract.STRIP_WIDTH)
    assert strip.dtype == np.float32 and strip.max() == 1.0 and strip.min() == 0.0
    rows = np.flatnonzero(strip.any(axis=1))
    columns = np.flatnonzero(strip.any(axis=0))
    assert rows[0] == number_reader.MARGIN
    assert rows[-1] + 1 - rows[0] == number_reader.DIGIT_HEIGHT
    assert columns[0] == number_reader.MARGIN
    assert scale == pytest.approx(number_reader.DIGIT_HEIGHT / 160, rel=0.1)


def test_a_mark_too_long_for_the_strip_is_narrowed_to_fit():
    mark = np.zeros((50, 2000), np.uint8)
    mark[10:40, 5:1995] = 255
    strip, scale = number_reader.to_strip(mark)
    columns = np.flatnonzero(strip.any(axis=0))
    assert (columns[0], columns[-1] + 1) == (number_reader.MARGIN, contract.STRIP_WIDTH)
    assert scale == pytest.approx((contract.STRIP_WIDTH - number_reader.MARGIN) / 1990)


def test_a_blank_mark_is_nothing_drawn():
    with pytest.raises(errors.NothingDrawn):
        number_reader.to_strip(np.zeros((40, 40), np.uint8))
