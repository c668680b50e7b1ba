"""The shipped model, model/model.onnx: its contract, its accuracy, its agreement with Keras."""

import numpy as np
import onnxruntime as ort
import pytest

from support import MODEL_PATH, require

REQUIRED_METADATA = ["mnist_test_accuracy", "training_date", "epochs", "seed",
                     "tensorflow_version", "tf2onnx_version", "parameters", "canvas_renderings"]
PARAMETERS = 241_946  # as the README states


@pytest.fixture(scope="module")
def session():
    return ort.InferenceSession(str(MODEL_PATH), providers=["CPUExecutionProvider"])


def as_input(images):
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def test_model_takes_image_and_gives_probabilities(session):
    [model_input] = session.get_inputs()
    [model_output] = session.get_outputs()
    assert model_input.name == "image"
    assert model_input.type == "tensor(float)"
    assert model_input.shape == ["N", 28, 28, 1], "the batch dimension must be dynamic, named N"
    assert model_output.name == "probabilities"
    assert model_output.type == "tensor(float)"
    assert model_output.shape == ["N", 10]


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_probabilities_are_a_distribution_for_any_batch_size(session, mnist_test, batch):
    probabilities = session.run(["probabilities"], {"image": as_input(mnist_test[0][:batch])})[0]
    assert probabilities.shape == (batch, 10)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_metadata_tells_how_the_model_was_made(session):
    metadata = session.get_modelmeta().custom_metadata_map
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    assert not missing, f"model metadata lacks {missing}"
    assert int(metadata["parameters"]) == PARAMETERS
    assert int(metadata["canvas_renderings"]) > 50_000, "the model was not trained on drawings"
    assert int(metadata["number_parts_no_digit"]) > 10_000, \
        "the model was not taught the pieces of numbers that are no digit"


MNIST_FLOOR = 0.994  # measured 99.47 % (the shipped model's report.json)


def test_shipped_model_scores_at_least_99_40_percent_on_mnist_test(session, mnist_test):
    x_test, y_test = mnist_test
    predictions = np.concatenate([
        session.run(["probabilities"], {"image": as_input(x_test[i:i + 1000])})[0].argmax(1)
        for i in range(0, len(x_test), 1000)])
    accuracy = (predictions == y_test).mean()
    print(f"MNIST test accuracy of {MODEL_PATH.name}: {100 * accuracy:.2f} %")
    assert accuracy >= MNIST_FLOOR, \
        f"accuracy {100 * accuracy:.2f} % is below {100 * MNIST_FLOOR:.2f} %"
    recorded = float(session.get_modelmeta().custom_metadata_map["mnist_test_accuracy"])
    assert abs(recorded - accuracy) < 1e-4, "the accuracy in the metadata is not the real one"


def test_shipped_onnx_model_agrees_with_its_keras_original(session, mnist_test):
    tf = require("tensorflow")
    require("train_mnist")  # registers the model's own layer (FusedBatchNormalization)

    images = as_input(mnist_test[0][:1000])
    keras_model = tf.keras.models.load_model(MODEL_PATH.with_name("model.keras"))
    keras_probabilities = keras_model.predict(images, batch_size=500, verbose=0)
    onnx_probabilities = session.run(["probabilities"], {"image": images})[0]
    assert (keras_probabilities.argmax(1) == onnx_probabilities.argmax(1)).all()
    assert np.abs(keras_probabilities - onnx_probabilities).max() <= 1e-4
