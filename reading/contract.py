"""What the two ONNX networks take and give: the contract between training (train_mnist.py),
serving (reading/recognizer.py, app.py's /api/model) and the image side (utils.py,
reading/number_reader.py).

The digit network reads a batch of MNIST-like digits (white ink on black, values in [0, 1])
and gives one row of probabilities per digit: the ten digits, then "not a digit". The number
reader reads a batch of strips, each a mark of one or more digits set at the left, and gives
per column the probabilities of the ten digits and of BLANK ("no digit here").
"""

import utils

IMAGE_SIZE = utils.MNIST_SIZE    # MNIST's 28x28 field
MODEL_INPUT = "image"            # float32 [N, IMAGE_SIZE, IMAGE_SIZE, 1]
MODEL_OUTPUT = "probabilities"   # float32 [N, MODEL_CLASSES], softmax
DIGIT_CLASSES = 10
NOT_A_DIGIT = 10                 # the output's last class: a letter, a sign, a shape, a scribble
NOT_A_DIGIT_NAME = "not a digit"  # what the API, the page and the command line call it
MODEL_CLASSES = DIGIT_CLASSES + 1
MODEL_SIGNATURE = {
    "input": {"name": MODEL_INPUT, "shape": ["N", IMAGE_SIZE, IMAGE_SIZE, 1], "dtype": "float32"},
    "output": {"name": MODEL_OUTPUT, "shape": ["N", MODEL_CLASSES], "dtype": "float32"},
}

READER_INPUT = "strip"           # float32 [N, STRIP_HEIGHT, STRIP_WIDTH, 1], white ink on black
READER_OUTPUT = "columns"        # float32 [N, COLUMNS, DIGIT_CLASSES + 1], softmax
STRIP_HEIGHT = IMAGE_SIZE        # a strip is MNIST's height ...
STRIP_WIDTH = 112                # ... and four digits' width
DOWNSAMPLE = 4                   # strip pixels per output column
COLUMNS = STRIP_WIDTH // DOWNSAMPLE
BLANK = DIGIT_CLASSES            # a column's label for "no digit here"
READER_SIGNATURE = {
    "input": {"name": READER_INPUT, "shape": ["N", STRIP_HEIGHT, STRIP_WIDTH, 1],
              "dtype": "float32"},
    "output": {"name": READER_OUTPUT, "shape": ["N", COLUMNS, BLANK + 1], "dtype": "float32"},
}
