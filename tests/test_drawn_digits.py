"""How well the whole service reads digits drawn the way people draw (tests/support/drawn_digits.py).

The samples are fixed (seed 7), so what they measure is exact: each floor sits at most about 1.5
points below it, a few cases, and a drop below means the model or the pipeline got worse at real
drawings even if MNIST accuracy held. Beside each floor, what the sample measured and what the
whole evaluation, `python -m tests.support.drawn_digits`, measured (docs/evaluation.md). The
sample is drawn first; digits whose tracing loses a hole or ink are left out before any
prediction, judged on the images alone, and counted.
"""

import random

import numpy as np
import pytest

from support import drawn_digits

# Each: the test's sample, then the whole evaluation (python -m tests.support.drawn_digits)
MNIST_FLOOR = 0.985   # sample 99.25 % of 536 (4 wrong); whole evaluation 99.20 % of 4,368
FONT_FLOOR = 0.96     # sample 97.17 % of 460 (13 wrong); whole 97.39 % of 690, hollow included
HOLLOW_FLOOR = 0.94   # double-line pen: sample 95.50 % of 200 (9 wrong); whole 96.73 % of 1,500
MOST_LEFT_OUT = 0.12  # sample 64 of 600 (10.67 %); whole 632 of 5,000 (12.64 %)
SAMPLE = 600
HOLLOW_SAMPLE = 200


@pytest.fixture(scope="module")
def drawn_mnist_cases(mnist_test):
    x_test, y_test = mnist_test
    included, excluded = drawn_digits.sample_test_digits(x_test, SAMPLE,
                                                         random.Random(7))
    print(f"left out before predicting (tracing loses a hole or ink), per class: "
          f"{np.bincount(y_test[excluded], minlength=10).tolist()}")
    return included, excluded


def report(results):
    wrong = [(c["source"], c.get("index"), label, answer) for c, label, answer in results
             if label != answer]
    return (f"{100 * drawn_digits.accuracy(results):.2f} % of {len(results)} read right; "
            f"confusions {drawn_digits.confusions(results)}; wrong: {wrong}")


def test_few_sampled_digits_are_left_out(drawn_mnist_cases, mnist_test):
    included, excluded = drawn_mnist_cases
    per_class = np.bincount(mnist_test[1][excluded], minlength=10)
    assert len(excluded) <= MOST_LEFT_OUT * SAMPLE, (
        f"{len(excluded)} of {SAMPLE} left out: {per_class}")


def test_redrawn_mnist_test_digits_are_read(client, mnist_test, drawn_mnist_cases):
    x_test, y_test = mnist_test
    results = drawn_digits.evaluate(
        client, drawn_digits.mnist_cases(x_test, y_test, drawn_mnist_cases[0], seed=7))
    print("redrawn MNIST:", report(results))
    assert drawn_digits.accuracy(results) >= MNIST_FLOOR, report(results)


def test_handwriting_font_digits_are_read(client):
    fonts = (drawn_digits.handwriting_fonts()
             + drawn_digits.handwriting_fonts(drawn_digits.HOLLOW_FONT_GLOBS))
    assert len(fonts) >= 16, f"handwriting fonts missing (found {len(fonts)}): run make test as root"
    results = drawn_digits.evaluate(client, drawn_digits.font_cases(seed=7, fonts=fonts))
    print("fonts:", report(results))
    assert drawn_digits.accuracy(results) >= FONT_FLOOR, report(results)


def test_digits_drawn_with_a_double_line_pen_are_read(client, mnist_test, drawn_mnist_cases):
    x_test, y_test = mnist_test
    results = drawn_digits.evaluate(client, drawn_digits.hollow_mnist_cases(
        x_test, y_test, drawn_mnist_cases[0][:HOLLOW_SAMPLE], seed=7))
    print("double-line pen:", report(results))
    assert drawn_digits.accuracy(results) >= HOLLOW_FLOOR, report(results)
