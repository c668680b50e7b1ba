"""People's corrections as training data, for `train_mnist.py --corrections DIR`.

DIR is what `flask --app app corrections export DIR` writes: each drawing as it was sent and
DIR/labels.csv (file, label, answer, mode, created). Each drawing is read into 28x28 digits by
the server's own pipeline (image_ink.read_ink, then the MNIST recipe): a digit-mode drawing is one
digit; a number-mode drawing counts only where its blank gaps split it into as many marks as
the label has digits (segment.mnist_digits). A fixed share of the drawings, chosen by their
sha256 before any answer is looked at, is kept apart; the served model and the newly trained
one are measured on it, reading each drawing the way the server does.

Needs numpy, Pillow and onnxruntime, not TensorFlow.
"""

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import utils
from drawing import errors, image_ink
from reading import contract, segment
from reading.recognizer import DEFAULT_MODEL, Recognizer

HELD_OUT_EVERY = 5   # one drawing in five (by its sha256) is kept apart to measure on
REPEATS = 20         # a training correction is seen this often an epoch: a few hundred of them
                     # against some 130,000 MNIST digits, renderings and parts
LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class Drawing:
    """One exported correction: the bytes as sent, the digits written (`label`), what the app
    read (`answer`), `mode` "digit" or "number", and the sha256 of the bytes."""
    file: str
    image: bytes
    label: str
    answer: str
    mode: str
    sha256: str


@dataclass(frozen=True)
class HeldOut:
    """The drawings kept apart, and the share of them the served model read right."""
    drawings: list
    served_model: str
    before: float


def load_export(directory):
    """The Drawings of an export folder, in labels.csv's order."""
    directory = Path(directory)
    table = directory / LABELS_FILE
    if not table.exists():
        raise SystemExit(f"{table} is missing: make the folder with "
                         "`flask --app app corrections export DIR`.")
    drawings = []
    with open(table, newline="") as rows:
        for row in csv.DictReader(rows):
            image = (directory / row["file"]).read_bytes()
            drawings.append(Drawing(row["file"], image, row["label"], row["answer"],
                                    row["mode"], hashlib.sha256(image).hexdigest()))
    return drawings


def is_held_out(drawing):
    """Whether a drawing is kept apart: decided by its bytes alone, so the same drawing is on
    the same side in every run, whatever its label or answer."""
    return int(drawing.sha256[:8], 16) % HELD_OUT_EVERY == 0


def training_digits(drawing):
    """uint8 [k, 28, 28] digits and int64 [k] labels of a drawing, read by the server's
    pipeline; none where the drawing cannot be read or a number's gaps split it into another
    count of marks than its label has digits."""
    try:
        digits = [digit for _, digit in segment.mnist_digits(
            image_ink.read_ink(drawing.image), one_digit=drawing.mode == "digit")]
    except errors.ImageError:
        digits = []
    if len(digits) != len(drawing.label):
        return np.zeros((0, utils.MNIST_SIZE, utils.MNIST_SIZE), np.uint8), np.zeros(0, np.int64)
    images = np.rint(np.stack(digits) * 255).astype(np.uint8)
    return images, np.array([int(digit) for digit in drawing.label], np.int64)


def accuracy(model_path, drawings):
    """The share of `drawings` that the model at `model_path` reads as their label, each read
    as the server reads it (Recognizer.read, in the drawing's mode)."""
    if not drawings:
        return float("nan")
    recognizer = Recognizer(model_path)
    right = 0
    for drawing in drawings:
        try:
            reading, _ = recognizer.read(drawing.image, one_digit=drawing.mode == "digit")
        except errors.ImageError:
            continue
        right += reading.number == drawing.label
    return right / len(drawings)


def add_to_training(directory, x_all, y_all, is_rendering, served_model=DEFAULT_MODEL):
    """Add the training share of the corrections in `directory` to the training arrays.

    x_all float32 [N, 28, 28, 1], y_all float32 [N, 10] targets, is_rendering bool [N] (False:
    augmented like MNIST's scans, since each correction is repeated REPEATS times). Returns
    (HeldOut, x_all, y_all, is_rendering) with the corrections' digits appended; the held-out
    share is measured with `served_model` now, before a run that writes over it.
    """
    drawings = load_export(directory)
    held_out = [drawing for drawing in drawings if is_held_out(drawing)]
    training = [drawing for drawing in drawings if not is_held_out(drawing)]
    read = [training_digits(drawing) for drawing in training]
    nothing = np.zeros((0, utils.MNIST_SIZE, utils.MNIST_SIZE), np.uint8)
    images = np.concatenate([images for images, _ in read] or [nothing])
    labels = np.concatenate([labels for _, labels in read] or [np.zeros(0, np.int64)])
    unused = sum(len(labels_of) == 0 for _, labels_of in read)
    before = accuracy(served_model, held_out)
    print(f"Corrections in {directory}: {len(drawings)} drawings; {len(training)} for training "
          f"({len(labels)} digits, {unused} drawings not split into their label's digits), "
          f"each {REPEATS} times; {len(held_out)} held out")
    print(f"Held-out corrections read right by the served model ({served_model}): "
          f"{_percent(before)}")
    images = np.repeat(images, REPEATS, axis=0)
    labels = np.repeat(labels, REPEATS)
    x_all = np.concatenate([x_all, (images.astype(np.float32) / 255.0)[..., np.newaxis]])
    y_all = np.concatenate([y_all, np.eye(contract.MODEL_CLASSES, dtype=np.float32)[labels]])
    is_rendering = np.concatenate([is_rendering, np.zeros(len(labels), bool)])
    return HeldOut(held_out, str(served_model), before), x_all, y_all, is_rendering


def report_after(held_out, model_path):
    """Measure the new model on the held-out corrections; print and return the figures (a dict
    for report.json)."""
    after = accuracy(model_path, held_out.drawings)
    print(f"Held-out corrections read right: before {_percent(held_out.before)} (served model), "
          f"after {_percent(after)} (this run's model), {len(held_out.drawings)} drawings")
    return {"held_out_drawings": len(held_out.drawings), "served_model": held_out.served_model,
            "held_out_accuracy_before": held_out.before, "held_out_accuracy_after": after}


def _percent(share):
    return "n/a (none held out)" if math.isnan(share) else f"{100 * share:.1f} %"
