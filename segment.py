"""Segmentation: split the ink of a number into its digits, left to right.

First where blank canvas separates marks (`split_digits`; `mnist_digits` gives each part as
the 28x28 image the network reads); then, for a mark too wide to be one digit or one the
network is unsure of, along cuts through the ink (`read_digits`): the segmentation whose parts
the network reads with the highest joint probability wins.

Pure functions over numpy arrays and Pillow images. The network comes in as a callable,
`score`: float32 [N, 28, 28] in [0, 1] -> float32 [N, 10] probabilities.
"""

import functools

import numpy as np
from PIL import Image

import utils

SEGMENT_SIZE = 128               # longer side of the mask on which separate marks are found
SPECK_FRACTION = 0.15            # marks smaller than this share of the tallest one are specks
FLAT_FRACTION = 0.35             # marks flatter than this share of the tallest one are bars
SMALL_FRACTION = 0.4             # marks shorter than this share of the tallest are not digits
MAX_DIGITS = 12


# ---------------------------------------------------------------------------
# Several digits: split a number written left to right
# ---------------------------------------------------------------------------

def _components(mask):
    """8-connected components of a bool [h, w] mask, found on runs of ink in each row.

    Returns (labels, boxes, areas): int32 [h, w] labels (0 = background, components
    numbered from 1), and per component its box (x0, y0, x1, y1) and pixel count.
    """
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)
    run_ends = np.nonzero(edges == -1)[1]
    parent = list(range(len(run_rows)))

    def root(index):
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    previous, current, row = [], [], -1
    for index, (run_row, start, end) in enumerate(zip(run_rows, run_starts, run_ends)):
        if run_row != row:
            previous = current if run_row == row + 1 else []
            current, row = [], run_row
        for above in previous:  # touching, diagonals included
            if run_starts[above] <= end and start <= run_ends[above]:
                parent[root(above)] = root(index)
        current.append(index)

    labels = np.zeros(mask.shape, np.int32)
    numbers, boxes, areas = {}, [], []
    for index, (run_row, start, end) in enumerate(zip(run_rows, run_starts, run_ends)):
        number = numbers.setdefault(root(index), len(numbers) + 1)
        labels[run_row, start:end] = number
        if number > len(boxes):  # runs come row by row: a component's first is its top
            boxes.append([start, run_row, end, run_row + 1])
            areas.append(0)
        box = boxes[number - 1]
        box[0], box[2], box[3] = min(box[0], start), max(box[2], end), run_row + 1
        areas[number - 1] += end - start
    return labels, [tuple(int(v) for v in box) for box in boxes], areas


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
    """uint8 [H, W] ink map -> [(box, digit_ink)], one per digit, left to right.

    `box` is (x0, y0, x1, y1) in the image's pixels; `digit_ink` is the uint8 ink inside it
    with other digits' strokes removed. Strokes that overlap horizontally stay one digit (a 5
    with a detached bar, a 7 with a crossbar, a 4 in two strokes); specks are dropped.
    With `one_digit`, everything but the specks is one digit.
    """
    left, top, right, bottom = utils.ink_bbox(ink)
    region = ink[top:bottom, left:right]
    if region.any(axis=0).all() and region.any(axis=1).all():
        return [((left, top, right, bottom), region)]  # no blank gap: one part, no specks
    scale = min(1.0, SEGMENT_SIZE / max(region.shape))
    small_size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
    mask = np.asarray(utils.resize(Image.fromarray(region), small_size,
                                   Image.Resampling.BOX)) > 0
    labels, boxes, areas = _components(mask)
    tallest = max(_height(box) for box in boxes)
    total_area = sum(areas)
    kept = [index for index, box in enumerate(boxes)
            if max(_height(box), _width(box)) >= SPECK_FRACTION * tallest
            or areas[index] >= SPECK_FRACTION * total_area]
    groups = ([list(range(len(kept)))] if one_digit
              else _group_into_digits([boxes[index] for index in kept]))
    if len(groups) > MAX_DIGITS:
        raise utils.NothingDrawn(f"The drawing has more than {MAX_DIGITS} separate marks; "
                                 "write one number, left to right.")
    big_labels = np.asarray(Image.fromarray(labels.astype(np.int32)).resize(
        (region.shape[1], region.shape[0]), Image.Resampling.NEAREST))
    digits = []
    for group in groups:
        members = [kept[index] + 1 for index in group]
        digit_ink = np.where(np.isin(big_labels, members), region, 0).astype(np.uint8)
        inside = utils.nonzero_box(digit_ink)
        if inside is None:
            continue
        x0, y0, x1, y1 = inside
        digits.append(((left + x0, top + y0, left + x1, top + y1), digit_ink[y0:y1, x0:x1]))
    if not digits:
        raise utils.NothingDrawn("Nothing is drawn: the image is blank. Draw a digit and try "
                                 "again.")
    return digits


# ---------------------------------------------------------------------------
# Touching digits: cut one mark into 1 to MAX_PARTS digits
# ---------------------------------------------------------------------------

SEARCH_HEIGHT = utils.WORK_SIZE  # a mark is searched at the size to_mnist works a digit at
WIDE_ASPECT = 1.3                # a mark wider than this share of its height is searched ...
UNSURE_BELOW = 0.8               # ... and so is one the network reads with less confidence ...
MIN_SEARCH_ASPECT = 0.45         # ... unless it is too narrow to hold two digits
MAX_PARTS = 4
SHEARS = (-0.4, -0.2, 0.0, 0.2, 0.4)  # slants tried: sideways px per px of height
MAX_CUTS = 12                    # the cheapest cuts tried per mark, and besides them ...
EVEN_SPLITS = (0.25, 1 / 3, 0.5, 2 / 3, 0.75)  # ... a cut near each of these shares of its width
CUT_SPACING = 0.12               # of the mark's height: closer cuts are the same cut
DIAGONAL_COST = 0.15             # a cut pays this, in pixels of ink, per step sideways
PART_ASPECT = (0.1, 1.3)         # a digit's width as a share of the mark's height
MIN_PART_HEIGHT = 0.5            # a part shorter than this share of the mark is no digit
# The network's probabilities are softened (logits divided by TEMPERATURE) before parts are
# compared, and each digit past the first is credited PART_BONUS, as log-probabilities add
# up against readings with more parts. (The network has learnt pieces of digits as no digit,
# train_mnist.py; the softening and credit only fine-tune what that decides.) All four
# settings chosen with scripts/tune_numbers.py on MNIST training digits only (rerun after
# each new model).
TEMPERATURE = 4.0
PART_BONUS = 1.0


def mnist_digits(ink, one_digit=False):
    """uint8 [H, W] ink map -> [(box, digit)], one per digit split at blank gaps, left to right:
    what the network is shown first (read_digits' first step). `box` is (x0, y0, x1, y1) in
    the image's pixels, `digit` float32 [28, 28] in [0, 1], white ink on black (to_mnist).
    """
    return [(box, digit) for box, _, digit in _parts_as_digits(ink, one_digit)]


def _parts_as_digits(ink, one_digit):
    """[(box, uint8 [h, w] ink of the part, float32 [28, 28] digit)] of split_digits' parts."""
    return [(box, part, utils.to_mnist(part)) for box, part in split_digits(ink, one_digit)]


def read_digits(ink, score, one_digit=False):
    """uint8 [H, W] ink map -> (boxes, digits, probabilities), one entry per digit, left to right.

    `boxes` are (x0, y0, x1, y1) in the image's pixels, `digits` float32 [N, 28, 28] in [0, 1]
    (what the network read), `probabilities` float32 [N, 10]. Marks are split at blank gaps;
    a mark too wide for one digit, or one the network is unsure of, is searched for touching
    digits. `score` is called once, or twice when the network is unsure of a narrow mark.
    With `one_digit`, the drawing is one digit and nothing is searched. It starts from the
    digits mnist_digits makes.
    """
    parts = _parts_as_digits(ink, one_digit)
    boxes = [box for box, _, _ in parts]
    digits = [digit for _, _, digit in parts]
    wide = [] if one_digit else [index for index, (_, part, _) in enumerate(parts)
                                 if part.shape[1] > WIDE_ASPECT * part.shape[0]]
    searches = {index: candidate_parts(*parts[index][:2], readable_only=True) for index in wide}
    probabilities = _score_together(score, digits, searches.values())
    if not one_digit:
        unsure = {index: candidate_parts(box, part, readable_only=True)
                  for index, (box, part, _) in enumerate(parts)
                  if index not in searches and probabilities[index].max() < UNSURE_BELOW
                  and part.shape[1] >= MIN_SEARCH_ASPECT * part.shape[0]}
        _score_together(score, [], unsure.values())
        searches.update(unsure)
    read = []
    for index, box in enumerate(boxes):
        whole = (box, digits[index], probabilities[index])
        read += _best_reading(whole, searches[index]) if index in searches else [whole]
    return [box for box, _, _ in read], np.stack([d for _, d, _ in read]), np.stack(
        [p for _, _, p in read])


def _score_together(score, digits, searches):
    """Score `digits` and every search's candidate parts in one call; store each candidate's
    probabilities in its search and return those of `digits`."""
    candidates = [candidate for search in searches for candidate in search["parts"]]
    batch = list(digits) + [candidate["digit"] for candidate in candidates]
    if not batch:
        return np.zeros((0, 10), np.float32)
    # Cut lines that part the ink alike give the same image (about one part in seven of a
    # search): the network reads each different image once.
    row_of, distinct, rows = {}, [], []
    for digit in batch:
        key = digit.tobytes()
        if key not in row_of:
            row_of[key] = len(distinct)
            distinct.append(digit)
        rows.append(row_of[key])
    probabilities = score(np.stack(distinct))[rows]
    for candidate, row in zip(candidates, probabilities[len(digits):]):
        candidate["probabilities"] = row
    return probabilities[:len(digits)]


def candidate_parts(box, part, readable_only=False):
    """A mark (its box (x0, y0, x1, y1) in the image, uint8 [h, w] ink) -> {"cuts": number
    of cut lines, the mark's two sides included, "parts": [...], "aspect": width / height
    upright, "work": the upright working copy that was cut, "lines": the cut lines, int [h]
    columns of it, "to_mark": (x, y) of it -> (x, y) in the mark}. Each part lies between
    cut lines i < j, with its box in the image, its upright width as a share of the mark's
    height, and its float32 [28, 28] digit. With `readable_only`, only the parts that some
    reading of the whole mark in 2 to MAX_PARTS parts uses: the others cannot change it."""
    work, to_mark = _working_copy(part)
    height, width = work.shape
    lines = [np.zeros(height, np.int64)] + _cut_lines(work) + [np.full(height, width, np.int64)]
    middle = height // 2
    # Every pair of lines i < j not too far apart, but the two sides: the whole mark is read
    # as it is, not from the working copy.
    first, second = np.triu_indices(len(lines), 1)
    stacked = np.stack(lines)
    span = (stacked[second, middle] - stacked[first, middle]) / height
    keep = (span <= PART_ASPECT[1] + 2 * CUT_SPACING) & ~(
        (first == 0) & (second == len(lines) - 1))
    first, second = first[keep], second[keep]
    boxes = _boxes_between(work, stacked[first], stacked[second])
    found = [(i, j, (x0, y0, x1, y1)) for i, j, (x0, y0, x1, y1)
             in zip(first.tolist(), second.tolist(), boxes.tolist())
             if x1 > x0 and y1 - y0 >= MIN_PART_HEIGHT * height
             and PART_ASPECT[0] <= (x1 - x0) / height <= PART_ASPECT[1]]
    if readable_only:
        found = _in_some_reading(found, len(lines) - 1)
    upright_boxes = np.array([part_box for _, _, part_box in found], np.int64).reshape(-1, 4)
    # Each part's box in the image: its upright box's corners mapped back onto the mark.
    xs, ys = to_mark(upright_boxes[:, [0, 0, 2, 2]], upright_boxes[:, [1, 3, 1, 3]])
    image_boxes = np.stack([box[0] + np.maximum(0, xs.min(axis=1).astype(np.int64)),
                            box[1] + np.maximum(0, ys.min(axis=1).astype(np.int64)),
                            box[0] + np.minimum(part.shape[1], np.ceil(xs.max(axis=1))),
                            box[1] + np.minimum(part.shape[0], np.ceil(ys.max(axis=1)))],
                           axis=1).astype(np.int64).tolist()
    pairs = np.array([(i, j) for i, j, _ in found], np.int64).reshape(-1, 2)
    digits = _parts_to_mnist(work, stacked[pairs[:, 0]], stacked[pairs[:, 1]], upright_boxes)
    parts = [{"i": i, "j": j, "aspect": (x1 - x0) / height, "box": tuple(image_box),
              "digit": digit}
             for (i, j, (x0, _, x1, _)), image_box, digit in zip(found, image_boxes, digits)]
    return {"cuts": len(lines), "parts": parts, "aspect": width / height,
            "work": work, "lines": lines, "to_mark": to_mark}


def _in_some_reading(found, end):
    """The (i, j, box) parts, i < j sorted, that lie on a chain of at most MAX_PARTS parts
    from line 0 to line `end`."""
    fewest_to = {0: 0}      # line -> fewest parts from line 0 to it
    for i, j, _ in found:   # sorted by i: every way into line i is known when it is reached
        if i in fewest_to:
            fewest_to[j] = min(fewest_to.get(j, fewest_to[i] + 1), fewest_to[i] + 1)
    fewest_from = {end: 0}  # line -> fewest parts from it to line `end`
    for i, j, _ in sorted(found, key=lambda item: -item[1]):
        if j in fewest_from:
            fewest_from[i] = min(fewest_from.get(i, fewest_from[j] + 1), fewest_from[j] + 1)
    return [(i, j, box) for i, j, box in found if i in fewest_to and j in fewest_from
            and fewest_to[i] + 1 + fewest_from[j] <= MAX_PARTS]


def _boxes_between(work, left, right):
    """uint8 [h, w] ink, int [n, h] left and right lines -> int [n, 4] boxes (x0, y0, x1, y1)
    of the ink with left <= column < right in each row; x1 <= x0 where there is none."""
    height, width = work.shape
    inked = work > 0
    columns = np.arange(width + 1)
    # next_ink[r, x]: the first inked column >= x in row r (width if none); last_ink[r, x]:
    # the last inked column < x (-1 if none).
    marks = np.full((height, width + 1), width)
    marks[:, :width] = np.where(inked, columns[:width], width)
    next_ink = np.minimum.accumulate(marks[:, ::-1], axis=1)[:, ::-1]
    marks = np.full((height, width + 1), -1)
    marks[:, 1:] = np.where(inked, columns[:width], -1)
    last_ink = np.maximum.accumulate(marks, axis=1)
    rows = np.arange(height)
    left, right = np.clip(left, 0, width), np.clip(right, 0, width)
    starts = next_ink[rows, left]
    has_ink = starts < right
    x0 = np.where(has_ink, starts, width).min(axis=1)
    x1 = np.where(has_ink, last_ink[rows, right], -1).max(axis=1) + 1
    y0 = has_ink.argmax(axis=1)
    y1 = height - has_ink[:, ::-1].argmax(axis=1)
    return np.stack([x0, y0, x1, y1], axis=1)


def _working_copy(part):
    """uint8 [h, w] ink of a mark -> (uint8 ink SEARCH_HEIGHT px tall with MNIST's stroke
    width and its slant undone, a function mapping its (x, y) back to the mark's pixels)."""
    height, width = part.shape
    scale = SEARCH_HEIGHT / height
    size = (max(1, round(width * scale)), SEARCH_HEIGHT)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    image = utils.normalise_stroke_width(
        utils.resize(Image.fromarray(np.ascontiguousarray(part)), size, resample))
    # Upright digits are separated by vertical gaps: of a few shears, keep the one whose
    # column profile is the most peaked (measured on the ink's pixels, not on images).
    ink = np.asarray(image)
    rows, columns = np.nonzero(ink)
    weights = ink[rows, columns].astype(np.float32)

    def peakedness(shear):
        sheared = np.rint(columns - shear * rows).astype(np.int64)
        profile = np.bincount(sheared - sheared.min(), weights)
        return float(np.dot(profile, profile))

    shear = max(SHEARS, key=peakedness)
    widen = int(np.ceil(abs(shear) * SEARCH_HEIGHT))
    # Output (x, y) shows input (x + shear * (y - centre) - widen / 2, y).
    offset = -shear * SEARCH_HEIGHT / 2 - widen / 2
    upright = np.asarray(image.transform((size[0] + widen, SEARCH_HEIGHT),
                                         Image.Transform.AFFINE, (1, shear, offset, 0, 1, 0),
                                         Image.Resampling.BILINEAR))
    used = np.flatnonzero(upright.any(axis=0))
    upright = upright[:, used[0]:used[-1] + 1]

    def to_mark(x, y):
        return (x + used[0] + shear * y + offset) / scale, y / scale

    return upright, to_mark


def _cut_lines(work):
    """uint8 [h, w] upright ink -> cut lines, left to right: int [h] arrays of the column
    each row is cut at. A cut is either the cheapest top-to-bottom path (ink crossed, plus
    DIAGONAL_COST per sideways step) through a low point of the row a quarter, half or three
    quarters down, which follows the gap between two strokes as far as it goes and crosses
    ink where it is thinnest; or a straight cut at a minimum of the column profile. The
    MAX_CUTS cheapest are kept, and beside them the cheapest paths through points of the
    middle row near EVEN_SPLITS of the width."""
    cost = work.astype(np.float32) / 255.0
    height, width = cost.shape
    margin = max(1, int(PART_ASPECT[0] * height))
    if width <= 2 * margin:
        return []
    reach = max(1, int(CUT_SPACING * height))
    # From the top and from the bottom (the cost upside down) in one pass.
    totals, steps = _cheapest_paths(np.stack([cost, cost[::-1]]))
    from_top, from_bottom = totals[0], totals[1, ::-1]
    start_rows, start_columns, start_costs = [], [], []
    middle = height // 2
    # through[row][x]: the cheapest top-to-bottom path through pixel (row, x)
    through = {row: from_top[row] + from_bottom[row] - cost[row]
               for row in (height // 4, middle, 3 * height // 4)}
    for row, costs in through.items():
        starts = _lowest_points(costs, margin, reach)
        start_rows += [row] * len(starts)
        start_columns += list(starts)
        start_costs += [float(costs[x]) for x in starts]
    # Digits that overlap may have no low point between them: also cut through the cheapest
    # point near each place where 2, 3 or 4 digits of equal width would meet.
    for fraction in EVEN_SPLITS:
        centre = round(fraction * width)
        lowest = max(margin, centre - reach // 2)
        highest = min(width - margin, centre + reach // 2 + 1)
        if lowest < highest:
            start_rows.append(middle)
            start_columns.append(lowest + int(np.argmin(through[middle][lowest:highest])))
            start_costs.append(None)  # kept beside the MAX_CUTS cheapest
    found = []  # (cost, middle column, line)
    if start_rows:
        start_rows, start_columns = np.array(start_rows), np.array(start_columns, np.int64)
        count = len(start_rows)
        # Up from each start to the top, and in the upside-down map up to the bottom.
        traced = _trace(steps, np.repeat([0, 1], count),
                        np.concatenate([start_rows, height - 1 - start_rows]),
                        np.concatenate([start_columns, start_columns]))
        upper, lower = traced[:, :count], traced[::-1, count:]
        lines = np.where(np.arange(height)[:, None] <= start_rows, upper, lower)
        found += [(total, int(lines[height // 2, k]), lines[:, k])
                  for k, total in enumerate(start_costs)]
    # Straight cuts at the thinnest columns, for strokes that touch along a slant.
    profile = cost.sum(axis=0)
    for x in _lowest_points(profile, margin, reach):
        found.append((float(profile[x]), int(x), np.full(height, x, np.int64)))
    kept = []
    cheapest = sorted((item for item in found if item[0] is not None), key=lambda item: item[0])
    for total, centre, line in cheapest:
        if len(kept) < MAX_CUTS and all(abs(centre - other) > 1 for _, other, _ in kept):
            kept.append((total, centre, line))
    for total, centre, line in found:
        if total is None and all(abs(centre - other) > 1 for _, other, _ in kept):
            kept.append((total, centre, line))
    return [line for _, _, line in sorted(kept, key=lambda item: item[1])]


def _lowest_points(through, margin, reach):
    """Columns of a row where `through` is lowest within `reach`, at least `margin` from the
    ends; a flat run of them counts once, at its centre."""
    padded = np.full(len(through) + 2 * reach, np.inf, through.dtype)
    padded[reach:-reach] = through
    lowest_near = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).min(axis=1)
    minima = np.flatnonzero(through <= lowest_near)
    minima = minima[(minima >= margin) & (minima < len(through) - margin)]
    if not minima.size:
        return minima
    runs = np.split(minima, np.flatnonzero(np.diff(minima) > 1) + 1)
    return np.array([run[len(run) // 2] for run in runs])


def _cheapest_paths(cost):
    """float32 [k, h, w], k cost maps -> (total, steps), each [k, h, w]: total[., r, x] the
    cost of the cheapest path from the top row to pixel (r, x), moving down one row and at
    most one column per step; steps[., r, x] where that path comes from in row r - 1: 0, 1
    or 2 for column x - 1, x or x + 1 (the leftmost of equally cheap ones)."""
    total = cost.copy()
    from_side = np.empty_like(total[:, 0])
    best = np.empty_like(from_side)
    for row in range(1, cost.shape[1]):
        previous = total[:, row - 1]
        np.add(previous, DIAGONAL_COST, out=from_side)
        np.copyto(best, previous)                                        # from above
        np.minimum(best[:, 1:], from_side[:, :-1], out=best[:, 1:])      # from the left
        np.minimum(best[:, :-1], from_side[:, 1:], out=best[:, :-1])     # from the right
        total[:, row] += best
    # Where each path comes from, read off the totals in one go: the loop stays short.
    previous = total[:, :-1]
    sideways = previous + np.float32(DIAGONAL_COST)
    options = np.full((3,) + previous.shape, np.inf, np.float32)
    options[0, ..., 1:] = sideways[..., :-1]
    options[1] = previous
    options[2, ..., :-1] = sideways[..., 1:]
    steps = np.ones(cost.shape, np.int64)
    steps[:, 1:] = options.argmin(axis=0)
    return total, steps


def _trace(steps, maps, rows, columns):
    """Follow the cheapest paths of `_cheapest_paths` (its `steps`) back from pixels
    (rows[k], columns[k]) of cost map maps[k] to the top row; returns int [h, k] columns:
    each path's column in every row down to its start (below it, the start column)."""
    position = np.array(columns, np.int64)
    lines = np.empty((steps.shape[1], len(position)), np.int64)
    lines[rows.max():] = position
    for row in range(rows.max(), 0, -1):
        moved = position + steps[maps, row, position] - 1
        position = np.where(rows >= row, moved, position)
        lines[row - 1] = position
    return lines


def _parts_to_mnist(work, left, right, boxes):
    """uint8 [h, w] upright ink (already SEARCH_HEIGHT tall with MNIST's stroke width), int
    [n, h] left and right cut lines of n parts and int [n, 4] the boxes (x0, y0, x1, y1) of
    their ink -> float32 [n, 28, 28] in [0, 1]: each part's ink (left <= column < right in
    each row) cropped to its box, through the rest of to_mnist's recipe.

    Exactly what Pillow's BOX resize of each part would give, without cutting the parts out:
    a BOX output pixel is a window's sum of inputs times one fixed-point weight, and each
    window's sum along the rows is a difference of running sums of `work`, clipped to the
    part's lines; down the columns, a matrix product."""
    x0, y0, x1, y1 = boxes.T
    heights, widths = y1 - y0, x1 - x0
    # A part is at least MIN_PART_HEIGHT * SEARCH_HEIGHT = 30 px tall: it always shrinks.
    scales = utils.MNIST_BOX / np.maximum(np.maximum(heights, widths), 1)
    new_widths = np.maximum(1, np.rint(widths * scales)).astype(np.int64)
    new_heights = np.maximum(1, np.rint(heights * scales)).astype(np.int64)
    unit = 1.0 / (1 << PRECISION_BITS)  # dividing by a power of two is exact
    # Pillow's order: along the rows first, rounded to 8 bits, then down the columns. All
    # whole numbers below 2**53: every sum is exact.
    first, last, weight = _windows(widths, new_widths)
    height, width = work.shape
    rows = y0[:, None] + np.arange(heights.max(initial=0))   # [n, rows]: each part's rows
    lines_row = np.minimum(rows, height - 1)
    rows = np.where(rows < y1[:, None], rows, height)        # below a part: an empty row
    start = np.maximum((x0[:, None] + first)[:, None, :],    # [n, rows, MNIST_BOX]
                       np.take_along_axis(left, lines_row, axis=1)[..., None])
    end = np.maximum(start, np.minimum((x0[:, None] + last)[:, None, :],
                                       np.take_along_axis(right, lines_row, axis=1)[..., None]))
    running = np.zeros((height + 1, width + 1), np.int64)  # running sums along each row
    np.cumsum(work, axis=1, out=running[:height, 1:])
    row_starts = (rows * (width + 1))[..., None]
    sums = running.ravel().take(row_starts + end) - running.ravel().take(row_starts + start)
    across = np.floor(sums * weight[:, None, :] * unit + 0.5)   # [n, rows, MNIST_BOX]
    first, last, weight = _windows(heights, new_heights)
    rows = np.arange(across.shape[1])
    down = ((rows >= first[:, :, None]) & (rows < last[:, :, None])) * weight[:, :, None]
    digits = np.floor(down @ across * unit + 0.5).astype(np.float32)
    # As to_mnist: full white at the brightest pixel, then centred by mass.
    peaks = digits.max(axis=(1, 2), initial=0).astype(np.float64)
    digits *= (255.0 / np.maximum(peaks, 1.0)).astype(np.float32)[:, np.newaxis, np.newaxis]
    digits = np.rint(digits).astype(np.uint8)
    return utils.centre_boxes_by_mass(digits, np.stack([new_heights, new_widths], axis=1)
                                      ).astype(np.float32) / 255.0


PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling: 2**22 is 1


def _windows(sizes, new_sizes):
    """int [n] sizes resized to int [n] new sizes (each at most MNIST_BOX) -> (first, last,
    weight), each int [n, MNIST_BOX]: output pixel m of resize k sums the inputs first[k, m]
    <= i < last[k, m], times weight[k, m] / 2**PRECISION_BITS; the padding sums nothing."""
    windows = [_box_window(size, new_size)
               for size, new_size in zip(sizes.tolist(), new_sizes.tolist())]
    stacked = np.stack(windows) if windows else np.zeros((0, 3, utils.MNIST_BOX), np.int64)
    return stacked[:, 0], stacked[:, 1], stacked[:, 2]


@functools.lru_cache(maxsize=None)
def _box_window(in_size, out_size):
    """Pillow's BOX filter from in_size to out_size pixels as int [3, MNIST_BOX] windows:
    first input, last input + 1 and weight of each output pixel (the inputs whose centres
    fall in its box, each weighing 1 / their count in fixed point: all alike), padded with
    empty windows."""
    weights = _box_weights(in_size, out_size)
    used = weights > 0
    window = np.zeros((3, utils.MNIST_BOX), np.int64)
    window[0, :out_size] = used.argmax(axis=1)
    window[1, :out_size] = in_size - used[:, ::-1].argmax(axis=1)
    window[2, :out_size] = weights.max(axis=1)
    return window


def _box_weights(in_size, out_size):
    """float64 [out_size, in_size]: Pillow's fixed-point BOX filter weights (Resample.c's
    precompute_coeffs and normalize_coeffs_8bpc): each output pixel averages the input
    pixels whose centres fall in its box."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = 0.5 * filter_scale
    centres = (np.arange(out_size) + 0.5) * scale
    lowest = np.maximum((centres - support + 0.5).astype(np.int64), 0)
    highest = np.minimum((centres + support + 0.5).astype(np.int64), in_size)
    inputs = np.arange(in_size)
    offset = (inputs - centres[:, None] + 0.5) * (1.0 / filter_scale)
    weights = ((offset > -0.5) & (offset <= 0.5) & (inputs >= lowest[:, None])
               & (inputs < highest[:, None])).astype(np.float64)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
    return np.floor(0.5 + weights * (1 << PRECISION_BITS))


def _best_reading(whole, search):
    """The reading of one mark whose parts have the highest joint softened log-probability,
    plus PART_BONUS per extra digit: [(box, digit, probabilities)], left to right. `whole`
    is the mark read as one digit, (box, digit, probabilities)."""
    end = search["cuts"] - 1
    candidates = search["parts"]
    confidences = _log_confidence(np.stack([whole[2]] + [c["probabilities"] for c in candidates]))
    by_start = {}
    for candidate, confidence in zip(candidates, confidences[1:].tolist()):
        by_start.setdefault(candidate["i"], []).append((candidate, confidence))
    best_score, reading = float(confidences[0]), [whole]
    # layer[j]: (score, parts) of the best reading, in k parts, of the mark up to cut line j
    layer = {0: (0.0, [])}
    for k in range(1, MAX_PARTS + 1):
        next_layer = {}
        for i, (score, chosen) in layer.items():
            for candidate, confidence in by_start.get(i, []):
                total = score + confidence
                if total > next_layer.get(candidate["j"], (-np.inf,))[0]:
                    next_layer[candidate["j"]] = (total, chosen + [candidate])
        layer = next_layer
        if k > 1 and end in layer and layer[end][0] + PART_BONUS * (k - 1) > best_score:
            best_score = layer[end][0] + PART_BONUS * (k - 1)
            reading = [(c["box"], c["digit"], c["probabilities"]) for c in layer[end][1]]
    return reading


def _log_confidence(probabilities):
    """float [n, 10] probabilities -> float [n]: the log-probability of each row's best
    class, softened."""
    logits = np.log(np.maximum(probabilities, 1e-30)) / TEMPERATURE
    return logits.max(axis=1) - np.logaddexp.reduce(logits, axis=1)
