"""Hollow strokes (outlined lettering, a double-line pen) filled into the solid strokes they
outline, so that stroke-width evening does not thicken two thin lines into a blob."""

import dataclasses

import numpy as np
from PIL import Image

from drawing.rank_filter import square_filter
from drawing.regions import connected_regions


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

    `image` is an 'L' ink image whose longer side is utils.WORK_SIZE; returns the same kind
    (the same object when nothing is filled). Left alone, utils.normalise_stroke_width would
    thicken the two thin lines into a blob. A gap is a hole in the ink that is long and thin
    (area >= `settings.elongation` x its width squared) and either bent (at most
    `settings.solidity` of its convex hull: it follows the stroke it is inside) or very long
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
    ink encloses), numbered by where they start."""
    height, width = mask.shape
    # A frame of background around the ink: it starts first, so it is region 1.
    background = np.ones((height + 2, width + 2), bool)
    background[1:-1, 1:-1] = ~mask
    return connected_regions(background, diagonal=False)[1:-1, 1:-1]


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

