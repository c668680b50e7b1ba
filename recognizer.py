"""The ONNX digit recognizer: one onnxruntime session, and the reading of one image.

Shared by the web service (app.py) and the command line (predict.py); needs neither Flask
nor TensorFlow.
"""

import hashlib
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import segment
import utils

DEFAULT_MODEL = Path(__file__).resolve().parent / "model" / "model.onnx"


class Recognizer:
    """Loads model.onnx once; `read` turns image bytes into the reply the API sends."""

    def __init__(self, path=DEFAULT_MODEL):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One image is too little work to share between threads; processes scale out instead.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.metadata = self.session.get_modelmeta().custom_metadata_map
        self.sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        blank = np.zeros((1, utils.MNIST_SIZE, utils.MNIST_SIZE), np.float32)
        self.probabilities(blank)  # warm up before the first user

    def probabilities(self, digits):
        """float32 [N, 28, 28] in [0, 1] -> float32 [N, 10]."""
        return self.session.run([utils.MODEL_OUTPUT],
                                {utils.MODEL_INPUT: digits[..., np.newaxis]})[0]

    def read(self, data, max_pixels=utils.MAX_IMAGE_PIXELS, one_digit=False):
        """Image bytes -> (reply dict, timings in seconds for decode, preprocess, inference).

        `decode` is bytes to ink map (utils.read_ink decodes and finds the ink in one go),
        `preprocess` the splitting and the MNIST recipe, `inference` the network.

        The reply: `number` and `digits` (one entry per digit, left to right); for a single
        digit also `digit`, `confidence`, `probabilities` and `preview` of it; for several,
        those are None except `confidence`, the chance that the whole number is right.
        With `one_digit`, the drawing is never split.
        """
        started = time.perf_counter()
        ink = utils.read_ink(data, max_pixels)
        decoded = time.perf_counter()
        inference = []

        def score(digits):  # timed apart: segmentation scores its candidate parts as it goes
            scoring = time.perf_counter()
            probabilities = self.probabilities(digits)
            inference.append(time.perf_counter() - scoring)
            return probabilities

        boxes, digit_images, probabilities = segment.read_digits(ink, score, one_digit)
        segmented = time.perf_counter()

        answers = probabilities.argmax(axis=1)
        confidences = probabilities[np.arange(len(answers)), answers]
        previews = [utils.preview_data_uri(digit) for digit in digit_images]
        digits = [{"digit": int(answer), "confidence": round(float(confidence), 6),
                   "box": list(box), "preview": preview}
                  for answer, confidence, box, preview
                  in zip(answers, confidences, boxes, previews)]
        single = len(digits) == 1
        reply = {
            "digit": int(answers[0]) if single else None,
            "confidence": round(float(np.prod(confidences, dtype=np.float64)), 6),
            "probabilities": [round(float(p), 6) for p in probabilities[0]] if single else None,
            "preview": previews[0] if single else None,
            "number": "".join(str(int(answer)) for answer in answers),
            "digits": digits,
        }
        timings = {"decode": decoded - started,
                   "preprocess": segmented - decoded - sum(inference),
                   "inference": sum(inference)}
        return reply, timings
