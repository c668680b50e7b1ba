"""drawing/regions.py: the one labeller of connected pixels, for a number's marks (corners
join) and for the holes inside hollow strokes (edges only)."""

import numpy as np
import pytest

from drawing.regions import connected_regions, region_boxes

DIAGONAL_PAIR = np.array([[1, 0, 0],
                          [0, 1, 0],
                          [0, 0, 0]], bool)


@pytest.mark.parametrize("diagonal, expected", [
    (True, [[1, 0, 0], [0, 1, 0], [0, 0, 0]]),
    (False, [[1, 0, 0], [0, 2, 0], [0, 0, 0]]),
])
def test_pixels_touching_at_a_corner_are_one_region_only_with_diagonals(diagonal, expected):
    assert connected_regions(DIAGONAL_PAIR, diagonal).tolist() == expected


def test_regions_are_numbered_by_their_first_pixel_row_by_row():
    # The U's arms start on the top row, left of the bar that starts there too; the arms
    # meet only on the bottom row, so the U is one region numbered before the bar.
    mask = np.array([[1, 0, 1, 0, 1, 1],
                     [1, 0, 1, 0, 0, 0],
                     [1, 1, 1, 0, 1, 0]], bool)
    assert connected_regions(mask, diagonal=False).tolist() == [[1, 0, 1, 0, 2, 2],
                                                                [1, 0, 1, 0, 0, 0],
                                                                [1, 1, 1, 0, 3, 0]]


def test_a_region_does_not_run_on_from_one_row_end_to_the_next_row_start():
    mask = np.array([[0, 0, 1],
                     [1, 0, 0]], bool)
    assert connected_regions(mask, diagonal=True).max() == 2


def test_region_boxes_are_each_regions_box_and_pixel_count():
    mask = np.zeros((6, 8), bool)
    mask[1:4, 2] = True       # a bar, 3 px
    mask[0, 5:8] = True       # a dash and, joined at a corner, a dot below its right end
    mask[1, 4] = True
    labels = connected_regions(mask, diagonal=True)
    assert region_boxes(labels) == ([(4, 0, 8, 2), (2, 1, 3, 4)], [4, 3])


def test_a_random_mask_is_labelled_as_a_flood_fill_labels_it():
    rng = np.random.default_rng(7)
    mask = rng.random((40, 50)) < 0.45
    labels = connected_regions(mask, diagonal=True)
    assert (labels > 0).tolist() == mask.tolist()
    for label in range(1, labels.max() + 1):
        region = _flood(mask, tuple(np.argwhere(labels == label)[0]))
        assert region == {tuple(p) for p in np.argwhere(labels == label).tolist()}, label


def _flood(mask, start):
    """The 8-connected pixels of `mask` reached from `start`, one at a time."""
    found, pending = {start}, [start]
    while pending:
        row, column = pending.pop()
        for step_row in (-1, 0, 1):
            for step_column in (-1, 0, 1):
                near = (row + step_row, column + step_column)
                if (0 <= near[0] < mask.shape[0] and 0 <= near[1] < mask.shape[1]
                        and mask[near] and near not in found):
                    found.add(near)
                    pending.append(near)
    return found
