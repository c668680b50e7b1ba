"""How well the service reads numbers through POST /predict?mode=number (tests/support/drawn_numbers.py).

Small fixed samples (seed 7) of what `python -m tests.support.drawn_numbers` measures on larger
ones (docs/evaluation.md). What a fixed sample measures is exact, so each floor allows one case
more than it measured (of 60 numbers, 1.7 points); beside it, the sample's figure and the whole
evaluation's. The cases are drawn and checked (touching, or spaced) before anything is read.
"""

import pytest

from support import drawn_digits, drawn_numbers

# Each: the test's sample, then the whole evaluation (python -m tests.support.drawn_numbers)
TOUCHING_FLOOR = 0.915      # sample 93.33 % of 60 (4 misread); whole evaluation 92.33 % of 600
SPACED_FLOOR = 0.945        # sample 96.67 % of 60 (2 misread); whole 97.50 % of 600
MOST_SINGLES_SPLIT = 0.005  # sample 0 of 262 single digits; whole 0.15 % of 2,608


def misread(results):
    return [(label, answer) for _, label, answer in results if label != answer]


@pytest.mark.parametrize("kind, cases, floor", [
    ("touching", drawn_numbers.touching_number_cases, TOUCHING_FLOOR),
    ("spaced", drawn_numbers.spaced_number_cases, SPACED_FLOOR),
])
def test_numbers_are_read(client, mnist_test, kind, cases, floor):
    x_test, y_test = mnist_test
    results = drawn_digits.evaluate(client, cases(x_test, y_test, 60, seed=7), mode="number")
    accuracy = drawn_digits.accuracy(results)
    print(f"{kind} numbers: {100 * accuracy:.1f} % of {len(results)}; "
          f"misread: {misread(results)}")
    assert accuracy >= floor, (
        f"only {100 * accuracy:.1f} % of {kind} numbers read exactly; "
        f"misread (number, read): {misread(results)}")


def test_single_digits_are_seldom_split_in_number_mode(client, mnist_test):
    x_test, y_test = mnist_test
    results = drawn_digits.evaluate(
        client, drawn_digits.sampled_mnist_cases(x_test, y_test, 300, seed=7), mode="number")
    share = drawn_numbers.split_share(results)
    split = [(label, answer) for conditions, label, answer in results
             if drawn_numbers.is_split(conditions, answer)]
    assert share <= MOST_SINGLES_SPLIT, (
        f"{100 * share:.2f} % of single digits were read as several or got an error: {split}")
