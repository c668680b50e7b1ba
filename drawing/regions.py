"""Connected regions of a mask, labelled in one pass over its runs: the marks of a number
(reading/segment.py) and the holes inside hollow strokes (drawing/hollow_strokes.py)."""

import numpy as np


def connected_regions(mask, diagonal):
    """bool [h, w] -> int64 [h, w]: 0 off the mask, and 1, 2, ... on each connected region of
    it, numbered in the order of their first pixels row by row. Pixels are connected across
    their edges, and with `diagonal` across their corners too."""
    height, width = mask.shape
    padded = np.zeros((height, width + 1), bool)  # a column off the mask: no run wraps a row
    padded[:, :width] = mask
    flat = padded.ravel()
    # Runs along each row, then runs joined where one touches another in the next row,
    # merged by their smallest number until nothing changes (union-find, all runs at once).
    starts = flat.copy()
    starts[1:] &= ~flat[:-1]
    runs = np.cumsum(starts) * flat
    row = width + 1
    neighbours = [row - 1, row, row + 1] if diagonal else [row]
    pairs = [(runs[:-step], runs[step:]) for step in neighbours]
    above = np.concatenate([upper for upper, _ in pairs])
    below = np.concatenate([lower for _, lower in pairs])
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
    # Each region's root is its first run, so numbering the roots in order numbers the
    # regions by where they start.
    roots = np.unique(parent[1:])
    labels = np.searchsorted(roots, parent[runs]) + 1
    labels[runs == 0] = 0
    return labels.reshape(height, width + 1)[:, :width]


def region_boxes(labels):
    """int [h, w] labels (connected_regions) -> (boxes, areas): per region, in its number's
    order, its box (x0, y0, x1, y1), right and bottom exclusive, and its pixel count."""
    count = int(labels.max())
    rows, columns = np.nonzero(labels)
    region = labels[rows, columns] - 1
    first_column = np.full(count, labels.shape[1])
    first_row = np.full(count, labels.shape[0])
    end_column = np.zeros(count, np.int64)
    end_row = np.zeros(count, np.int64)
    np.minimum.at(first_column, region, columns)
    np.minimum.at(first_row, region, rows)
    np.maximum.at(end_column, region, columns + 1)
    np.maximum.at(end_row, region, rows + 1)
    boxes = np.stack([first_column, first_row, end_column, end_row], axis=1).tolist()
    return [tuple(box) for box in boxes], np.bincount(region, minlength=count).tolist()
