"""The training side: the MNIST loader, the canvas renderings, and a short training run that
exports a working model."""

import base64
import io
import json
import random
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT

# Digits per class in MNIST's training and test sets (LeCun et al.).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# A one-epoch run on 3,000 digits (and their renderings) measured 94.05 % on MNIST's test
# digits; chance is 10 %.
SMOKE_TEST_FLOOR = 0.90


def test_loader_returns_exactly_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == x_test.dtype == y_train.dtype == y_test.dtype == np.uint8
    assert x_train.min() == 0 and x_train.max() == 255, "pixels must be MNIST's bytes 0-255"
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert y_train[0] == 5 and y_test[0] == 7
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # MNIST's first training image, a 5, has 166 ink pixels and its darkest value is 255.
    assert np.count_nonzero(x_train[0]) == 166 and x_train[0].max() == 255


def test_loader_reads_a_keras_npz_file_given_with_data(tmp_path, mnist):
    import mnist_digits

    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train[:100], y_train=y_train[:100],
             x_test=x_test[:50], y_test=y_test[:50])
    (xt, yt), (xs, ys) = mnist_digits.load_mnist(path)
    assert np.array_equal(xt, x_train[:100]) and np.array_equal(ys, y_test[:50])
    assert xt.dtype == np.uint8 and yt.dtype == np.uint8


@pytest.mark.parametrize("index", range(6))
def test_a_rendering_is_what_the_server_makes_of_the_same_drawing(client, mnist, index):
    import train_mnist
    from strokes import png_bytes

    (x_train, _), _ = mnist
    drawing = train_mnist.draw_on_canvas(x_train[index], random.Random(index))
    assert drawing is not None, f"training digit {index} could not be drawn"
    rendering = train_mnist.render_canvas_digit(x_train[index], random.Random(index))
    response = client.post("/predict?mode=digit", data=png_bytes(drawing),
                           content_type="image/png")
    assert response.status_code == 200, response.get_json()
    preview = response.get_json()["preview"].split(",", 1)[1]
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(preview))))
    assert np.array_equal(seen, rendering), \
        "the training rendering differs from the 28x28 image the server makes of the drawing"


def test_renderings_are_cached_and_keyed_by_their_digits(tmp_path, mnist):
    import train_mnist

    (x_train, y_train), _ = mnist
    digits = x_train[:40]
    rendered, ok = train_mnist.render_canvas_digits(digits, seed=3, cache_dir=tmp_path,
                                                    processes=2)
    assert rendered.shape == (40, 28, 28) and rendered.dtype == np.uint8
    assert ok.sum() >= 30, f"only {ok.sum()} of 40 digits could be rendered"
    assert (rendered[ok].max(axis=(1, 2)) == 255).all(), "renderings must reach full ink"
    assert not rendered[~ok].any(), "digits that were not rendered must be blank"
    [cache] = tmp_path.iterdir()
    marked = rendered.copy()
    marked[0, 0, 0] = 7  # a pixel no rendering made: it can only come back from the cache
    np.savez(cache, images=marked, ok=ok)
    again, ok_again = train_mnist.render_canvas_digits(digits, seed=3, cache_dir=tmp_path)
    assert np.array_equal(again, marked) and np.array_equal(ok_again, ok), \
        "the second call rendered again instead of reading the cache"
    train_mnist.render_canvas_digits(x_train[40:80], seed=3, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2, "other digits need a cache file of their own"


def test_a_one_epoch_training_run_learns_and_exports_a_model_that_agrees_with_keras(
        tmp_path, mnist_test):
    import onnxruntime as ort
    import tensorflow as tf

    result = subprocess.run(
        [sys.executable, str(ROOT / "train_mnist.py"), "--epochs", "1", "--limit", "3000",
         "--out", str(tmp_path), "--cache", str(tmp_path / "renders")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, \
        f"training failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    for name in ["model.onnx", "model.keras", "report.json", "report.png", "misclassified.png"]:
        assert (tmp_path / name).stat().st_size > 0, f"training did not write {name}"
    assert "Accuracy on the MNIST test digits (onnxruntime)" in result.stdout, \
        "training did not report its accuracy on the test digits"

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mnist_test_accuracy"] >= SMOKE_TEST_FLOOR, \
        f"one epoch learned too little: {100 * report['mnist_test_accuracy']:.1f} % on MNIST test"
    assert report["canvas_renderings"] >= 0.8 * 3000

    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["N", 28, 28, 1]
    assert session.get_outputs()[0].shape == ["N", 10]
    images = (mnist_test[0][:1000].astype(np.float32) / 255.0)[..., np.newaxis]
    onnx_probabilities = session.run(["probabilities"], {"image": images})[0]
    keras_probabilities = tf.keras.models.load_model(tmp_path / "model.keras").predict(
        images, verbose=0)
    assert (onnx_probabilities.argmax(1) == keras_probabilities.argmax(1)).all(), \
        "onnxruntime and Keras pick different digits"
    assert np.abs(onnx_probabilities - keras_probabilities).max() <= 1e-4
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata["epochs"] == "1"
    assert metadata["training_digits"] == "3000"
    x_test, y_test = mnist_test
    all_test = (x_test.astype(np.float32) / 255.0)[..., np.newaxis]
    accuracy = (session.run(["probabilities"], {"image": all_test})[0].argmax(1) == y_test).mean()
    assert abs(float(metadata["mnist_test_accuracy"]) - accuracy) < 1e-4, \
        "the accuracy written into the model's metadata is not the model's real accuracy"
