import importlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL_PATH = ROOT / "model" / "model.onnx"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason):
    """This test cannot run here: skipped on a developer machine, a failure in CI."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must run every test)", pytrace=False)
    pytest.skip(reason)


def require(module):
    """Import `module` for a test that needs it; if it is not installed, the test is unavailable."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        unavailable(f"{module} cannot be imported ({error}); `make test` installs what the tests "
                    "need")


@pytest.fixture(scope="session")
def mnist():
    """MNIST as ((x_train, y_train), (x_test, y_test)), uint8, by the training script's loader
    (numpy only: no TensorFlow needed)."""
    import mnist_digits

    return mnist_digits.load_mnist()


@pytest.fixture(scope="session")
def mnist_test(mnist):
    return mnist[1]


@pytest.fixture(scope="session")
def draw_mnist_digit(mnist_test):
    """Draw MNIST test digit `index` as a person would on a canvas; returns (RGBA image, label)."""
    import strokes

    def draw(index, canvas=(280, 280), height=200, centre=None, pen=18,
             convention="ink_on_transparent", slant=0.0):
        centre = centre or (canvas[0] / 2, canvas[1] / 2)
        placed = strokes.place_strokes(strokes.digit_strokes(mnist_test[0][index]), canvas,
                                       height, centre, slant)
        return strokes.draw_strokes(placed, canvas, pen, convention), int(mnist_test[1][index])

    return draw


@pytest.fixture(scope="session")
def app():
    from app import create_app

    return create_app({"TESTING": True, "MODEL_PATH": str(MODEL_PATH)})


@pytest.fixture()
def client(app):
    return app.test_client()


def data_uri(data, media_type="image/png"):
    import base64

    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


def encode(image, format, **options):
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()
