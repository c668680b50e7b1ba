"""The training data beyond MNIST's scans, made on every core and cached: each training digit
traced into pen strokes and drawn again on a canvas, non-digits drawn the same way, and the
number reader's strips; all read back through the server's own pipeline.

Used by train_mnist.py only (not in the image); numpy, Pillow and the pipeline's modules, no
TensorFlow.
"""

import hashlib
import inspect
import math
import multiprocessing
import os
import random
from pathlib import Path

import numpy as np

import utils
from drawing import errors, image_ink
from reading import contract
from training import non_digit_strokes, number_strips, strokes

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------
# Tracings: each training digit as pen strokes, for drawing it again (training/strokes.py)
# ---------------------------------------------------------------------------

def _trace_chunk(images):
    traced = [strokes.digit_strokes(image) for image in images]
    traced = [digit if digit and strokes.tracing_is_faithful(image, digit) else []
              for image, digit in zip(images, traced)]
    return {"strokes_per_digit": np.array([len(digit) for digit in traced], np.int32),
            "points_per_stroke": np.array([len(stroke) for digit in traced for stroke in digit],
                                          np.int32),
            "points": np.array([point for digit in traced for stroke in digit
                                for point in stroke], np.float32).reshape(-1, 2)}


def trace_digits(images, cache_dir, processes=None):
    """uint8 [N, 28, 28] -> N tracings, each a list of strokes (lists of (x, y) in [0, 1] of
    the image's frame), [] where the tracing does not keep the digit's holes and ink
    (strokes.tracing_is_faithful: judged on the image alone); cached."""
    chunk = 1000
    found = computed_in_parallel(
        "traces", _trace_chunk, [images[start:start + chunk]
                                 for start in range(0, len(images), chunk)],
        cache_dir, processes, key=[images.tobytes(), _trace_chunk])
    points = iter(map(tuple, found["points"].tolist()))
    all_strokes = iter([[next(points) for _ in range(size)]
                        for size in found["points_per_stroke"].tolist()])
    return [[next(all_strokes) for _ in range(count)]
            for count in found["strokes_per_digit"].tolist()]


# ---------------------------------------------------------------------------
# Canvas renderings: each training digit drawn again with a pen, read by the server's pipeline
# ---------------------------------------------------------------------------

# Wider than any one way of drawing, so the network learns the pipeline's output, not one
# generator's habits: pens from a fine stylus to a fat finger, digits from small to the
# whole canvas, slanted, turned and stretched, in the three colour conventions.
RENDER_CANVAS = (280, 280)
RENDER_PEN = (4.0, 34.0)       # px
RENDER_HEIGHT = (0.18, 0.95)   # share of the canvas height
RENDER_SLANT = (-20.0, 25.0)   # degrees, positive leans right
RENDER_TURN = (-12.0, 12.0)    # degrees
RENDER_STRETCH = (0.75, 1.3)   # width factor


def draw_on_canvas(traced, rng):
    """A traced MNIST digit (trace_digits) -> RGBA canvas image of it drawn with a random pen,
    size, place, slant, turn and colour convention."""
    turn = math.radians(rng.uniform(*RENDER_TURN))
    stretch = rng.uniform(*RENDER_STRETCH)
    cos, sin = math.cos(turn), math.sin(turn)
    traced = [[(0.5 + stretch * (x - 0.5) * cos - (y - 0.5) * sin,
                0.5 + stretch * (x - 0.5) * sin + (y - 0.5) * cos) for x, y in stroke]
              for stroke in traced]
    x0, y0, x1, y1 = strokes.strokes_box(traced)
    width, height = RENDER_CANVAS
    pen = rng.uniform(*RENDER_PEN)
    digit_height = rng.uniform(*RENDER_HEIGHT) * height
    digit_width = min(digit_height * (x1 - x0) / max(y1 - y0, 1e-6), 0.9 * width)
    margin = pen / 2 + 2
    centre = (rng.uniform(min(digit_width / 2 + margin, width / 2),
                          max(width - digit_width / 2 - margin, width / 2)),
              rng.uniform(min(digit_height / 2 + margin, height / 2),
                          max(height - digit_height / 2 - margin, height / 2)))
    placed = strokes.place_strokes(traced, digit_height, centre, rng.uniform(*RENDER_SLANT))
    return strokes.draw_strokes(placed, RENDER_CANVAS, pen, rng.choice(strokes.CONVENTIONS))


def render_canvas_digit(traced, rng):
    """A traced MNIST digit -> uint8 [28, 28]: the digit drawn on a canvas (draw_on_canvas)
    and read by image_ink.ink_map and utils.to_mnist, the server's own path (the ink map of the
    drawing is what the server makes of its PNG, which is lossless, only sooner); None when
    there is nothing faithful to draw."""
    if not traced:
        return None
    drawing = draw_on_canvas(traced, rng)
    try:
        digit = utils.to_mnist(image_ink.ink_map(drawing))
    except errors.ImageError:  # averaged away at 28x28: nothing to learn from
        return None
    return np.rint(digit * 255).astype(np.uint8)


def _render_chunk(task):
    start, traced, seed = task
    digits = [render_canvas_digit(digit, random.Random(seed * 1_000_003 + start + offset))
              for offset, digit in enumerate(traced)]
    ok = np.array([digit is not None for digit in digits])
    blank = np.zeros((28, 28), np.uint8)
    return {"images": np.stack([blank if digit is None else digit for digit in digits]),
            "ok": ok}


def render_canvas_digits(images, traced, seed, cache_dir, processes=None):
    """uint8 [N, 28, 28] digits, their tracings (trace_digits) -> (uint8 [N, 28, 28]
    renderings, bool [N] which ones succeeded), on every core, cached (computed_in_parallel)."""
    chunk = 500
    tasks = [(start, traced[start:start + chunk], seed) for start in range(0, len(images), chunk)]
    settings = (RENDER_CANVAS, RENDER_PEN, RENDER_HEIGHT, RENDER_SLANT, RENDER_TURN,
                RENDER_STRETCH)
    result = computed_in_parallel(
        "renders", _render_chunk, tasks, cache_dir, processes,
        key=[images.tobytes(), str(seed), repr(settings), draw_on_canvas, render_canvas_digit])
    return result["images"], result["ok"]


# The code a rendering goes through: a change to any of it makes the cache stale. A folder
# stands for every module in it, so a module added to a package is covered without a list.
PIPELINE_CODE = ("utils.py", "drawing", "training/strokes.py")
READER_CODE = PIPELINE_CODE + ("reading", "training/number_strips.py",
                               "training/non_digit_strokes.py")


def code_files(code):
    """The files of `code` (paths from the repository's root, a folder meaning each .py in
    it), sorted."""
    return sorted(path for part in code
                  for path in ((ROOT / part).glob("*.py") if (ROOT / part).is_dir()
                               else [ROOT / part]))


def computed_in_parallel(name, work, tasks, cache_dir, processes, key, code=PIPELINE_CODE):
    """Concatenated dicts of arrays that `work` returns for each task, run on every core and
    cached in `cache_dir`.

    Rendering takes milliseconds a digit, hence the cores and the cache. The cache key covers
    `key` (bytes, strings, functions by their source) and the files `code` of the server's
    pipeline, so a change to them computes everything again.
    """
    digest = hashlib.sha256()
    for part in key:
        text = inspect.getsource(part) if callable(part) else part
        digest.update(text.encode() if isinstance(text, str) else text)
    for path in code_files(code):
        digest.update(path.read_bytes())
    cache = Path(cache_dir) / f"{name}-{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return {field: data[field] for field in data.files}
    if processes == 1:  # in this process: it may itself be a pool's worker
        parts = [work(task) for task in tasks]
    else:
        # fork: spawn would import TensorFlow again in every worker.
        with multiprocessing.get_context("fork").Pool(processes or os.cpu_count()) as pool:
            parts = pool.map(work, tasks)
    result = {field: np.concatenate([part[field] for part in parts]) for field in parts[0]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **result)
    return result


# ---------------------------------------------------------------------------
# Non-digits: letters, signs, shapes, scribbles, overlaid digits (non_digit_strokes.py)
# ---------------------------------------------------------------------------

NON_DIGITS = 15_000   # drawn like the digits above and read by the same pipeline


def _non_digit_chunk(task):
    start, count, traced_by_class, seed = task
    rng = random.Random(seed * 1_000_003 + start)
    classes = [digit for digit in range(len(traced_by_class)) if traced_by_class[digit]]

    def traced_pair():
        first, second = rng.sample(classes, 2)
        return rng.choice(traced_by_class[first]), rng.choice(traced_by_class[second])

    images = []
    while len(images) < count:
        _, plan = non_digit_strokes.non_digit(rng, traced_pair)
        image = render_canvas_digit(plan, rng)
        if image is not None:
            images.append(image)
    return {"images": np.stack(images)}


def render_non_digits(traced, labels, count, seed, cache_dir, processes=None):
    """uint8 [count, 28, 28]: non-digits drawn on a canvas like draw_on_canvas draws a digit
    and read by the server's pipeline; the overlaid digits are two of the traced training
    digits `traced` (trace_digits) of different classes, never a 1. Cached."""
    chunk = 500
    by_class = [[traced[index] for index in np.flatnonzero(labels == digit)[:300]
                 if traced[index]] if digit != 1 else []
                for digit in range(contract.DIGIT_CLASSES)]
    tasks = [(start, min(chunk, count - start), by_class, seed)
             for start in range(0, count, chunk)]
    return computed_in_parallel(
        "non-digits", _non_digit_chunk, tasks, cache_dir, processes,
        key=[labels.tobytes(), str((seed, count)), draw_on_canvas, render_canvas_digit,
             _non_digit_chunk],
        code=PIPELINE_CODE + ("training/non_digit_strokes.py",))["images"]


# ---------------------------------------------------------------------------
# Numbers: what the number reader learns from (number_strips.py)
# ---------------------------------------------------------------------------

# A set of numbers for the number reader (train_mnist.py makes one for every epoch):
NUMBERS = 7_500          # numbers written with the traced training digits, 1 to 6 digits each
PASTED_NUMBERS = 5_000   # numbers pasted from the scans themselves
READER_NON_DIGITS = 2_500  # and marks that are not digits, read as none (number_strips.py)
NUMBERS_CHUNK = 250      # numbers per task of the process pool


def number_strips_of(images, traced, labels, count, seed, cache_dir, pasted=0, non_digits=0,
                     processes=None):
    """`count` numbers written with the digits `images` (their tracings `traced`, from
    trace_digits), `pasted` numbers pasted from the images themselves, and `non_digits`
    marks that are not digits, all read by the server's pipeline -> (uint8 [M, STRIP_HEIGHT,
    STRIP_WIDTH] strips, one per mark; int8 [M, MAX_LABELS] the digits each holds, -1 after
    the last, so all -1 for a non-digit). Cached."""
    rng = random.Random(seed)
    every_digit = [np.flatnonzero(labels == digit).tolist()
                   for digit in range(contract.DIGIT_CLASSES)]
    faithful = [[index for index in indices if traced[index]] for indices in every_digit]
    written = [number_strips.pick_digits(faithful, rng) for _ in range(count)]
    pasted_from = [number_strips.pick_digits(every_digit, rng) for _ in range(pasted)]
    tasks = [(number_strips.strips_chunk,
              (start, [([traced[k] for k in picked], labels[picked].tolist())
                       for picked in written[start:start + NUMBERS_CHUNK]], seed))
             for start in range(0, count, NUMBERS_CHUNK)]
    tasks += [(number_strips.pasted_chunk,
               (start, [(images[picked], labels[picked].tolist())
                        for picked in pasted_from[start:start + NUMBERS_CHUNK]], seed))
              for start in range(0, pasted, NUMBERS_CHUNK)]
    tasks += [(number_strips.non_digits_chunk,
               (start, min(NUMBERS_CHUNK, non_digits - start), seed))
              for start in range(0, non_digits, NUMBERS_CHUNK)]
    settings = [getattr(number_strips, name) for name in dir(number_strips)
                if name.isupper()]
    result = computed_in_parallel(
        "strips", _run_task, tasks, cache_dir, processes,
        key=[images.tobytes(), labels.tobytes(), str((seed, count, pasted, non_digits)),
             repr(settings)],
        code=READER_CODE)
    return result["strips"], result["labels"]


def _run_task(task):
    work, arguments = task
    return work(arguments)
