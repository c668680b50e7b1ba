"""Segmentation: split the ink of a number into its digits, left to right.

First where blank canvas separates marks (`split_digits`; `mnist_digits` gives each part as
the 28x28 image the network reads); then, for a mark too wide to be one digit or one the
network is unsure of, along cuts through the ink (`read_digits`): the segmentation whose parts
the network reads with the highest joint probability wins.

Pure functions over numpy arrays and Pillow images. The network comes in as a callable,
`score`: float32 [N, 28, 28] in [0, 1] -> float32 [N, 10] probabilities.
"""

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
    mask = np.asarray(Image.fromarray(region).resize(small_size, Image.Resampling.BOX)) > 0
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
MAX_CUTS = 12                    # the cheapest cuts tried per mark
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
    searches = {index: candidate_parts(*parts[index][:2]) for index in wide}
    probabilities = _score_together(score, digits, searches.values())
    if not one_digit:
        unsure = {index: candidate_parts(box, part) for index, (box, part, _) in enumerate(parts)
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
    probabilities = score(np.stack(batch))
    for candidate, row in zip(candidates, probabilities[len(digits):]):
        candidate["probabilities"] = row
    return probabilities[:len(digits)]


def candidate_parts(box, part):
    """A mark (its box (x0, y0, x1, y1) in the image, uint8 [h, w] ink) -> {"cuts": number
    of cut lines, the mark's two sides included, "parts": [...], "aspect": width / height
    upright, "work": the upright working copy that was cut, "lines": the cut lines, int [h]
    columns of it, "to_mark": (x, y) of it -> (x, y) in the mark}. Each part lies between
    cut lines i < j, with its box in the image, its upright width as a share of the mark's
    height, and its float32 [28, 28] digit."""
    work, to_mark = _working_copy(part)
    height, width = work.shape
    cuts = _cut_lines(work)
    lines = [np.zeros(height, np.int64)] + cuts + [np.full(height, width, np.int64)]
    left_of = [np.arange(width) < line[:, None] for line in lines]  # bool [h, w] each
    middle = height // 2
    parts = []
    for i in range(len(lines) - 1):
        for j in range(i + 1, len(lines)):
            if (i, j) == (0, len(lines) - 1):
                continue  # the whole mark is read as it is, not from the working copy
            span = (lines[j][middle] - lines[i][middle]) / height
            if span > PART_ASPECT[1] + 2 * CUT_SPACING:
                break
            # Only the columns between the two lines' extremes can hold the piece's ink.
            lo, hi = max(0, int(lines[i].min())), min(width, int(lines[j].max()))
            piece = np.where(left_of[j][:, lo:hi] & ~left_of[i][:, lo:hi], work[:, lo:hi], 0)
            inside = utils.nonzero_box(piece)
            if inside is None:
                continue
            x0, y0, x1, y1 = inside[0] + lo, inside[1], inside[2] + lo, inside[3]
            if (y1 - y0 < MIN_PART_HEIGHT * height
                    or not PART_ASPECT[0] <= (x1 - x0) / height <= PART_ASPECT[1]):
                continue
            corners = [to_mark(x, y) for x in (x0, x1) for y in (y0, y1)]
            xs, ys = [x for x, _ in corners], [y for _, y in corners]
            parts.append({
                "i": i, "j": j, "aspect": (x1 - x0) / height,
                "box": (box[0] + max(0, int(min(xs))), box[1] + max(0, int(min(ys))),
                        box[0] + min(part.shape[1], int(np.ceil(max(xs)))),
                        box[1] + min(part.shape[0], int(np.ceil(max(ys))))),
                "digit": _to_mnist_prepared(piece[y0:y1, x0 - lo:x1 - lo])})
    return {"cuts": len(lines), "parts": parts, "aspect": width / height,
            "work": work, "lines": lines, "to_mark": to_mark}


def _working_copy(part):
    """uint8 [h, w] ink of a mark -> (uint8 ink SEARCH_HEIGHT px tall with MNIST's stroke
    width and its slant undone, a function mapping its (x, y) back to the mark's pixels)."""
    height, width = part.shape
    scale = SEARCH_HEIGHT / height
    size = (max(1, round(width * scale)), SEARCH_HEIGHT)
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    image = utils.normalise_stroke_width(
        Image.fromarray(np.ascontiguousarray(part)).resize(size, resample))
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
    """uint8 [h, w] upright ink -> up to MAX_CUTS cut lines, left to right: int [h] arrays of
    the column each row is cut at, the cheapest first. A cut is either the cheapest
    top-to-bottom path (ink crossed, plus DIAGONAL_COST per sideways step) through a low
    point of the row a quarter, half or three quarters down, which follows the gap between
    two strokes as far as it goes and crosses ink where it is thinnest; or a straight cut at
    a minimum of the column profile."""
    cost = work.astype(np.float32) / 255.0
    height, width = cost.shape
    from_top, top_steps = _cheapest_paths(cost)
    from_bottom, bottom_steps = _cheapest_paths(cost[::-1])
    from_bottom = from_bottom[::-1]
    margin = max(1, int(PART_ASPECT[0] * height))
    if width <= 2 * margin:
        return []
    reach = max(1, int(CUT_SPACING * height))
    found = []  # (cost, middle column, line)
    for row in (height // 4, height // 2, 3 * height // 4):
        through = from_top[row] + from_bottom[row] - cost[row]
        starts = _lowest_points(through, margin, reach)
        if not len(starts):
            continue
        upper = _trace(top_steps[:row + 1], starts)
        lower = _trace(bottom_steps[:height - row], starts)[::-1]
        lines = np.concatenate([upper, lower[1:]])
        found += [(float(through[x]), int(lines[height // 2, k]), lines[:, k])
                  for k, x in enumerate(starts)]
    # Straight cuts at the thinnest columns, for strokes that touch along a slant.
    profile = cost.sum(axis=0)
    for x in _lowest_points(profile, margin, reach):
        found.append((float(profile[x]), int(x), np.full(height, x, np.int64)))
    kept = []
    for total, centre, line in sorted(found, key=lambda item: item[0]):
        if len(kept) < MAX_CUTS and all(abs(centre - other) > 1 for _, other, _ in kept):
            kept.append((total, centre, line))
    return [line for _, _, line in sorted(kept, key=lambda item: item[1])]


def _lowest_points(through, margin, reach):
    """Columns of a row where `through` is lowest within `reach`, at least `margin` from the
    ends; a flat run of them counts once, at its centre."""
    padded = np.pad(through, reach, constant_values=np.inf)
    lowest_near = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).min(axis=1)
    minima = np.flatnonzero(through <= lowest_near)
    minima = minima[(minima >= margin) & (minima < len(through) - margin)]
    if not minima.size:
        return minima
    runs = np.split(minima, np.flatnonzero(np.diff(minima) > 1) + 1)
    return np.array([run[len(run) // 2] for run in runs])


def _cheapest_paths(cost):
    """float32 [h, w] -> (total, steps): total[r, x] the cost of the cheapest path from the top
    row to pixel (r, x), moving down one row and at most one column per step; steps[r, x] where
    that path comes from in row r - 1: 0, 1 or 2 for column x - 1, x or x + 1 (the leftmost of
    equally cheap ones)."""
    height, width = cost.shape
    total = cost.copy()
    steps = np.ones((height, width), np.int64)
    options = np.full((3, width), np.inf, np.float32)  # from the left, above, the right
    columns = np.arange(width)
    for row in range(1, height):
        previous = total[row - 1]
        np.add(previous[:-1], DIAGONAL_COST, out=options[0, 1:])
        options[1] = previous
        np.add(previous[1:], DIAGONAL_COST, out=options[2, :-1])
        steps[row] = options.argmin(axis=0)
        total[row] += options[steps[row], columns]
    return total, steps


def _trace(steps, ends):
    """Follow the cheapest paths of `_cheapest_paths` (its `steps`) back from columns `ends`
    of the last row to the first; returns int [h, len(ends)] columns, top row first."""
    columns = np.empty((len(steps), len(ends)), np.int64)
    position = np.asarray(ends, np.int64)
    columns[-1] = position
    for row in range(len(steps) - 1, 0, -1):
        position = position + steps[row, position] - 1
        columns[row - 1] = position
    return columns


def _to_mnist_prepared(ink):
    """uint8 [h, w] ink cropped to a digit, already SEARCH_HEIGHT-scaled with MNIST's stroke
    width -> float32 [28, 28] in [0, 1]: the rest of to_mnist's recipe."""
    height, width = ink.shape
    scale = utils.MNIST_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    digit = np.asarray(Image.fromarray(np.ascontiguousarray(ink)).resize(size, resample),
                       np.float32)
    digit *= 255.0 / max(float(digit.max()), 1.0)
    return utils.centre_by_mass(np.rint(digit).astype(np.uint8)).astype(np.float32) / 255.0


def _best_reading(whole, search):
    """The reading of one mark whose parts have the highest joint softened log-probability,
    plus PART_BONUS per extra digit: [(box, digit, probabilities)], left to right. `whole`
    is the mark read as one digit, (box, digit, probabilities)."""
    end = search["cuts"] - 1
    by_start = {}
    for candidate in search["parts"]:
        by_start.setdefault(candidate["i"], []).append(candidate)
    best_score, reading = _log_confidence(whole[2]), [whole]
    # layer[j]: (score, parts) of the best reading, in k parts, of the mark up to cut line j
    layer = {0: (0.0, [])}
    for k in range(1, MAX_PARTS + 1):
        next_layer = {}
        for i, (score, chosen) in layer.items():
            for candidate in by_start.get(i, []):
                total = score + _log_confidence(candidate["probabilities"])
                if total > next_layer.get(candidate["j"], (-np.inf,))[0]:
                    next_layer[candidate["j"]] = (total, chosen + [candidate])
        layer = next_layer
        if k > 1 and end in layer and layer[end][0] + PART_BONUS * (k - 1) > best_score:
            best_score = layer[end][0] + PART_BONUS * (k - 1)
            reading = [(c["box"], c["digit"], c["probabilities"]) for c in layer[end][1]]
    return reading


def _log_confidence(probabilities):
    """float [10] probabilities -> the log-probability of the best class, softened."""
    logits = np.log(np.maximum(probabilities, 1e-30)) / TEMPERATURE
    return float(logits.max() - np.logaddexp.reduce(logits))
