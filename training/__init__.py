"""What training adds to MNIST's scans, for train_mnist.py only (not in the serving image).

mnist_digits loads MNIST offline; strokes traces a digit into pen strokes and draws them on a
canvas again; renders draws every training digit so, reads it back through the server's own
pipeline and caches the result; non_digit_strokes plans letters, signs, shapes and scribbles;
number_strips writes numbers as the number reader's strips; learn_corrections turns the
exported corrections into training examples.
"""
