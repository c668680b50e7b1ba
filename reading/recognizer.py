"""The ONNX digit recognizer: one onnxruntime session, and the reading of one image.

Shared by the web service (app.py) and the command line (predict.py); needs neither Flask
nor TensorFlow.
"""

import hashlib
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from drawing import decoding, image_ink
from reading import contract, segment

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "model" / "model.onnx"
READER_FILE = "number.onnx"  # the number reader, in the digit model's folder


def onnx_session(path):
    """An onnxruntime session as the server runs it: all graph optimisations, one thread."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One image is too little work to share between threads; processes scale out instead.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Recognizer:
    """Loads the digit network (model.onnx) and the number reader (number.onnx beside it,
    unless `reader_path` says otherwise) once; `read` turns image bytes into a Reading."""

    def __init__(self, path=DEFAULT_MODEL, reader_path=None):
        reader_path = Path(reader_path or Path(path).with_name(READER_FILE))
        self.session = onnx_session(path)
        self.reader = onnx_session(reader_path)
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        self.sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        self.reader_metadata = self.reader.get_modelmeta().custom_metadata_map
        self.reader_sha256 = hashlib.sha256(reader_path.read_bytes()).hexdigest()
        # warm up before the first user
        self.probabilities(np.zeros((1, contract.IMAGE_SIZE, contract.IMAGE_SIZE), np.float32))
        self.read_strips(np.zeros((1, contract.STRIP_HEIGHT, contract.STRIP_WIDTH),
                                  np.float32))

    def probabilities(self, digits):
        """float32 [N, 28, 28] in [0, 1] -> float32 [N, 11]: each digit, then "not a digit"."""
        return self.session.run([contract.MODEL_OUTPUT],
                                {contract.MODEL_INPUT: digits[..., np.newaxis]})[0]

    def read_strips(self, strips):
        """float32 [N, STRIP_HEIGHT, STRIP_WIDTH] in [0, 1] -> float32 [N, COLUMNS, 11]."""
        return self.reader.run([contract.READER_OUTPUT],
                               {contract.READER_INPUT: strips[..., np.newaxis]})[0]

    def read(self, data, max_pixels=decoding.MAX_IMAGE_PIXELS, one_digit=False):
        """Image bytes -> (segment.Reading, timings in seconds for decode, preprocess,
        inference). With `one_digit`, the drawing is never split.

        `decode` is bytes to ink map (image_ink.read_ink decodes and finds the ink in one go),
        `preprocess` the splitting and the MNIST recipe, `inference` the networks.
        """
        started = time.perf_counter()
        ink = image_ink.read_ink(data, max_pixels)
        decoded = time.perf_counter()
        inference = []

        def timed(network):  # timed apart from the preparation around the calls
            def call(batch):
                calling = time.perf_counter()
                output = network(batch)
                inference.append(time.perf_counter() - calling)
                return output
            return call

        reading = segment.read_digits(ink, timed(self.probabilities), timed(self.read_strips),
                                      one_digit)
        read = time.perf_counter()
        return reading, {"decode": decoded - started,
                         "preprocess": read - decoded - sum(inference),
                         "inference": sum(inference)}
