import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODEL_PATH = ROOT / "model" / "model.onnx"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def mnist():
    """MNIST as ((x_train, y_train), (x_test, y_test)), uint8, via the training script's loader."""
    import train_mnist

    return train_mnist.load_mnist()


@pytest.fixture(scope="session")
def mnist_test(mnist):
    return mnist[1]
