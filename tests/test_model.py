"""The shipped models, model/model.onnx (digits) and model/number.onnx (numbers): their
contracts, their accuracy, their agreement with Keras."""

import numpy as np
import onnxruntime as ort
import pytest

from reading import contract, segment
from support import MODEL_PATH, READER_PATH, require

REQUIRED_METADATA = ["mnist_test_accuracy", "training_date", "epochs", "seed",
                     "tensorflow_version", "tf2onnx_version", "parameters", "canvas_renderings"]
READER_METADATA = ["training_date", "epochs", "seed", "training_numbers", "pasted_numbers",
                   "numbers_per_set", "number_sets", "strips_per_epoch", "parameters",
                   "evaluation_strips_read"]


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
    assert model_output.shape == ["N", 11], "the ten digits, then not a digit"


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_probabilities_are_a_distribution_for_any_batch_size(session, mnist_test, batch):
    probabilities = session.run(["probabilities"], {"image": as_input(mnist_test[0][:batch])})[0]
    assert probabilities.shape == (batch, 11)
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_metadata_tells_how_the_model_was_made(session):
    metadata = session.get_modelmeta().custom_metadata_map
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    assert not missing, f"model metadata lacks {missing}"
    tf = require("tensorflow")
    require("train_mnist")
    keras_model = tf.keras.models.load_model(MODEL_PATH.with_name("model.keras"))
    assert int(metadata["parameters"]) == keras_model.count_params()
    assert int(metadata["canvas_renderings"]) > 50_000, "the model was not trained on drawings"
    assert int(metadata["non_digits"]) >= 10_000, "the model was not taught what is no digit"


MNIST_FLOOR = 0.9925  # measured 99.29 % as the server answers (the shipped model's report.json)


def test_shipped_model_reads_mnist_test_digits_above_the_floor(session, mnist_test):
    x_test, y_test = mnist_test
    predictions = np.concatenate([  # as the server answers: "not a digit" counts as wrong
        segment.answers(session.run(["probabilities"], {"image": as_input(x_test[i:i + 1000])})[0])
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


# ---------------------------------------------------------------------------
# The number reader
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reader():
    return ort.InferenceSession(str(READER_PATH), providers=["CPUExecutionProvider"])


def test_reader_takes_strips_and_gives_columns(reader):
    [given], [answer] = reader.get_inputs(), reader.get_outputs()
    signature = contract.READER_SIGNATURE
    assert (given.name, given.shape) == (signature["input"]["name"], signature["input"]["shape"])
    assert (answer.name, answer.shape) == (signature["output"]["name"],
                                           signature["output"]["shape"])
    assert given.type == answer.type == "tensor(float)"


@pytest.mark.parametrize("batch", [1, 5])
def test_reader_columns_are_distributions_for_any_batch_size(reader, batch):
    strips = np.random.default_rng(batch).random(
        (batch, contract.STRIP_HEIGHT, contract.STRIP_WIDTH, 1), np.float32)
    columns = reader.run(None, {contract.READER_INPUT: strips})[0]
    assert columns.shape == (batch, contract.COLUMNS, contract.BLANK + 1)
    np.testing.assert_allclose(columns.sum(axis=2), 1.0, atol=1e-5)


def test_reader_metadata_tells_how_it_was_made(reader):
    metadata = reader.get_modelmeta().custom_metadata_map
    missing = [key for key in READER_METADATA if key not in metadata]
    assert not missing, f"reader metadata lacks {missing}"
    # shipped: 19 sets of 15,000 numbers, 18 epochs of 75,008 strips; 96.41 % read exactly
    assert int(metadata["numbers_per_set"]) * int(metadata["number_sets"]) >= 285_000, \
        "the reader saw too few numbers"
    assert int(metadata["strips_per_epoch"]) * int(metadata["epochs"]) >= 1_350_000
    assert float(metadata["evaluation_strips_read"]) > 0.955


def test_shipped_reader_agrees_with_its_keras_original(reader):
    tf = require("tensorflow")
    require("train_mnist")

    strips = np.random.default_rng(0).random(
        (50, contract.STRIP_HEIGHT, contract.STRIP_WIDTH, 1), np.float32) ** 8
    keras_reader = tf.keras.models.load_model(READER_PATH.with_name("number.keras"),
                                              compile=False)
    keras_columns = keras_reader.predict(strips, verbose=0)
    onnx_columns = reader.run(None, {contract.READER_INPUT: strips})[0]
    assert (keras_columns.argmax(2) == onnx_columns.argmax(2)).all()
    assert np.abs(keras_columns - onnx_columns).max() <= 1e-4
