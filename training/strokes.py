"""Turn MNIST digits into pen strokes and draw them the way people draw on a canvas.

`digit_strokes` traces the skeleton of a 28x28 digit into polylines; `draw_strokes` renders
polylines with a round pen of any width, at any size and position, in the three colour
conventions a browser or client sends. Training renders MNIST training digits with them
(train_mnist.py); the drawn-digit evaluation and the browser tests draw test digits.
"""

import io
import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from drawing import hollow_strokes

SUPERSAMPLE = 3  # draw at 3x and shrink, so edges are anti-aliased like a canvas
CONVENTIONS = ("black_on_white", "white_on_black", "ink_on_transparent")
_NEIGHBOURS = [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]


def _thinning_tables():
    """For each step of Zhang-Suen thinning, bool [256]: whether a pixel whose neighbours
    p2..p9 (clockwise from the top) are the bits of the index is removed."""
    tables = []
    for step in (0, 1):
        table = np.zeros(256, bool)
        for code in range(256):
            p2, p3, p4, p5, p6, p7, p8, p9 = ((code >> bit) & 1 for bit in range(8))
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            transitions = sum(a == 0 and b == 1 for a, b in zip(ring[:-1], ring[1:]))
            if step == 0:
                edge = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
            else:
                edge = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
            table[code] = 2 <= sum(ring[:8]) <= 6 and transitions == 1 and edge
        tables.append(table)
    return tables


_THINNING_TABLES = _thinning_tables()


def skeleton(mask):
    """Zhang-Suen thinning of a bool [H, W] mask to one-pixel-wide lines."""
    image = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for table in _THINNING_TABLES:
            p2, p3, p4 = image[:-2, 1:-1], image[:-2, 2:], image[1:-1, 2:]
            p5, p6, p7 = image[2:, 2:], image[2:, 1:-1], image[2:, :-2]
            p8, p9 = image[1:-1, :-2], image[:-2, :-2]
            code = (p2 | p3 << 1 | p4 << 2 | p5 << 3 | p6 << 4 | p7 << 5 | p8 << 6 | p9 << 7)
            remove = (image[1:-1, 1:-1] == 1) & table[code]
            if remove.any():
                image[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return image[1:-1, 1:-1].astype(bool)


def _trace(skel):
    """Walk a skeleton into pixel paths: lists of (row, col)."""
    pixels = set(zip(*(index.tolist() for index in np.nonzero(skel))))  # Python ints: fast
    unvisited = set(pixels)

    def free_neighbours(p):
        return [(p[0] + dr, p[1] + dc) for dr, dc in _NEIGHBOURS
                if (p[0] + dr, p[1] + dc) in unvisited]

    free = {p: len(free_neighbours(p)) for p in pixels}  # kept up to date by visit

    def visit(p):
        unvisited.discard(p)
        for dr, dc in _NEIGHBOURS:
            if (p[0] + dr, p[1] + dc) in free:
                free[p[0] + dr, p[1] + dc] -= 1

    paths = []
    while unvisited:
        # Start where a pen would: at a line end if there is one.
        start = min(unvisited, key=lambda p: (free[p], p))
        visit(start)
        path = [start]
        joined = [(start[0] + dr, start[1] + dc) for dr, dc in _NEIGHBOURS
                  if (start[0] + dr, start[1] + dc) in pixels
                  and (start[0] + dr, start[1] + dc) not in unvisited]
        if joined:  # continue from a line already drawn rather than leave a gap
            path.insert(0, joined[0])
        direction = (0, 0)
        while True:
            options = free_neighbours(path[-1])
            if not options:
                break
            here = path[-1]
            step = max(options, key=lambda p: (p[0] - here[0]) * direction[0]
                       + (p[1] - here[1]) * direction[1] - 0.01 * abs(p[0] - here[0])
                       * abs(p[1] - here[1]))
            direction = (step[0] - here[0], step[1] - here[1])
            visit(step)
            path.append(step)
        paths.append(path)
    return paths


def digit_strokes(image, upscale=4, threshold=0.45, min_points=3):
    """uint8 or float [28, 28] digit -> polylines of (x, y) in [0, 1] of the image's frame."""
    image = np.asarray(image, np.float32)
    if image.max() > 1:
        image = image / 255.0
    size = image.shape[0] * upscale
    big = Image.fromarray((image * 255).astype(np.uint8)).resize((size, size),
                                                                 Image.Resampling.BICUBIC)
    paths = _trace(skeleton(np.asarray(big) >= threshold * 255))
    strokes = []
    for path in paths:
        if len(path) < min_points and len(paths) > 1:
            continue
        points = path[::2] + ([path[-1]] if len(path) % 2 == 0 else [])
        strokes.append([((col + 0.5) / size, (row + 0.5) / size) for row, col in points])
    return strokes


def _holes(mask):
    """Number of holes in a bool mask: 4-connected background regions that do not reach the
    border (hollow_strokes.background_regions numbers them from 2)."""
    return max(int(hollow_strokes.background_regions(mask).max()) - 1, 0)


def tracing_is_faithful(image, strokes, min_coverage=0.9):
    """Whether traced strokes still show the 28x28 digit: the same number of holes, and at
    least `min_coverage` of its ink under the redrawn pen.

    Thinning fills small holes and eats blobs, so a blotted 8 can trace into a 'Y'; such
    digits would test the tracer, not the recognizer. Judged on the images alone: neither the
    label nor the model is consulted.
    """
    image = np.asarray(image)
    size = image.shape[0]
    redrawn = draw_strokes([[(x * size, y * size) for x, y in stroke] for stroke in strokes],
                           (size, size), 2.6, "white_on_black").convert("L")
    original = image >= 0.5 * image.max()
    traced = np.asarray(redrawn) >= 128
    covered = np.asarray(redrawn.filter(ImageFilter.MaxFilter(3))) >= 128
    return (_holes(original) == _holes(traced)
            and (original & covered).sum() >= min_coverage * original.sum())


def strokes_box(strokes):
    """(x0, y0, x1, y1) of all stroke points."""
    xs = [x for stroke in strokes for x, _ in stroke]
    ys = [y for stroke in strokes for _, y in stroke]
    return min(xs), min(ys), max(xs), max(ys)


def place_strokes(strokes, height, centre, slant_degrees=0.0):
    """Scale strokes so the digit is `height` px tall with its box centred at `centre` (x, y),
    sheared by `slant_degrees` (positive leans right, as handwriting does)."""
    x0, y0, x1, y1 = strokes_box(strokes)
    scale = height / max(y1 - y0, 1e-6)
    shear = math.tan(math.radians(slant_degrees))
    mid_x, mid_y = (x0 + x1) / 2, (y0 + y1) / 2
    placed = []
    for stroke in strokes:
        placed.append([(centre[0] + (x - mid_x) * scale - (y - mid_y) * scale * shear,
                        centre[1] + (y - mid_y) * scale) for x, y in stroke])
    return placed


def side_by_side(traced, sizes, gaps, pen=0.0, slant=0.0, lifts=None):
    """Place traced digits (strokes in [0, 1]) left to right as one number, `sizes` px tall,
    leaning by `slant` degrees (one for all or one per digit), raised by `lifts` px; `gaps`
    px of canvas separate one digit's ink from the next one's (negative: they overlap), one
    number for all or one per pair. Ink reaches `pen` / 2 beyond the strokes. Returns each
    digit's strokes in px, the first ink at x = 0."""
    gaps = list(gaps) if np.ndim(gaps) else [gaps] * (len(traced) - 1)
    slants = list(slant) if np.ndim(slant) else [slant] * len(traced)
    digits, right = [], None
    for index, (digit_strokes, size) in enumerate(zip(traced, sizes)):
        lift = lifts[index] if lifts else 0.0
        placed = place_strokes(digit_strokes, size, (0, lift), slants[index])
        x0 = strokes_box(placed)[0] - pen / 2
        shift = -x0 if right is None else right + gaps[index - 1] - x0
        digits.append([[(x + shift, y) for x, y in stroke] for stroke in placed])
        right = strokes_box(digits[-1])[2] + pen / 2
    return digits


def move_onto_canvas(digits, pen, canvas_size, where=(0.5, 0.5)):
    """Move placed digits onto a canvas of `canvas_size`, at relative position `where` of the
    room left, and shrink them (as a person writes smaller) only if they would not fit."""
    x0, y0, x1, y1 = strokes_box([stroke for digit in digits for stroke in digit])
    width, height = canvas_size
    margin = pen / 2 + 4
    scale = min(1.0, (width - 2 * margin) / (x1 - x0), (height - 2 * margin) / (y1 - y0))
    left = margin + where[0] * (width - 2 * margin - (x1 - x0) * scale)
    top = margin + where[1] * (height - 2 * margin - (y1 - y0) * scale)
    return [[[(left + (x - x0) * scale, top + (y - y0) * scale) for x, y in stroke]
             for stroke in digit] for digit in digits]


def draw_strokes(strokes, canvas_size, pen_width, convention="ink_on_transparent"):
    """Render placed strokes (pixel coordinates) into an RGBA image of `canvas_size`."""
    return colourise(_coverage(strokes, canvas_size, pen_width), convention)


def draw_hollow_strokes(strokes, canvas_size, pen_width, line_width,
                        convention="ink_on_transparent"):
    """Render placed strokes as a double-line pen (or hollow lettering) draws them: only the
    outline, `line_width` px wide, of what a `pen_width` pen would fill."""
    outer = _coverage(strokes, canvas_size, pen_width)
    inner = _coverage(strokes, canvas_size, pen_width - 2 * line_width)
    return colourise(ImageChops.subtract(outer, inner), convention)


def _coverage(strokes, canvas_size, pen_width):
    """An 'L' image of `canvas_size`: how much of each pixel a round pen covers."""
    width, height = canvas_size
    big = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(big)
    pen = pen_width * SUPERSAMPLE
    for stroke in strokes:
        points = [(x * SUPERSAMPLE, y * SUPERSAMPLE) for x, y in stroke]
        if len(points) > 1:
            draw.line(points, fill=255, width=max(1, round(pen)), joint="curve")
        for x, y in points:  # round caps and joins
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=255)
    return big.resize(canvas_size, Image.Resampling.BOX)


def colourise(coverage, convention):
    """An 'L' ink-coverage image -> RGBA in one of the three colour conventions.

    black_on_white and white_on_black are opaque; ink_on_transparent is dark ink on a
    transparent canvas, what `canvas.toDataURL()` gives when the page draws in black.
    """
    size = coverage.size
    if convention == "black_on_white":
        grey = Image.eval(coverage, lambda v: 255 - v)
        return Image.merge("RGBA", (grey, grey, grey, Image.new("L", size, 255)))
    if convention == "white_on_black":
        return Image.merge("RGBA", (coverage, coverage, coverage, Image.new("L", size, 255)))
    if convention == "ink_on_transparent":
        ink = Image.new("L", size, 20)
        return Image.merge("RGBA", (ink, ink, ink, coverage))
    raise ValueError(f"unknown convention {convention!r}")


def png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # the same pixels, sooner
    return buffer.getvalue()
