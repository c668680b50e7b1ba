"""How well the whole service reads digits drawn the way people draw (tests/drawn_digits.py).

The floors sit a little below what `python tests/drawn_digits.py` measured on larger samples
(see the README); a drop below them means the model or the pipeline got worse at real
drawings even if MNIST accuracy held.
"""

import drawn_digits

DIGIT_FLOOR = 0.985
NUMBER_FLOOR = 0.95


def test_drawn_single_digits_are_read(client, mnist_test):
    x_test, y_test = mnist_test
    cases = list(drawn_digits.mnist_cases(x_test, y_test, 600, seed=7))
    cases += list(drawn_digits.font_cases(seed=7))
    fonts = drawn_digits.handwriting_fonts()
    assert len(fonts) >= 15, f"handwriting fonts missing (found {len(fonts)}): run make test as root"
    results = drawn_digits.evaluate(client, cases)
    accuracy = drawn_digits.accuracy(results)
    wrong = [(c["source"], c.get("index"), label, answer) for c, label, answer in results
             if label != answer]
    print(f"drawn digits: {100 * accuracy:.2f} % of {len(results)}; wrong: {wrong}")
    assert accuracy >= DIGIT_FLOOR, f"only {100 * accuracy:.2f} % read right; wrong: {wrong}"


def test_drawn_numbers_are_read_exactly(client, mnist_test):
    x_test, y_test = mnist_test
    results = drawn_digits.evaluate(
        client, drawn_digits.number_cases(x_test, y_test, 200, seed=7), mode="number")
    accuracy = drawn_digits.accuracy(results)
    wrong = [(label, answer) for _, label, answer in results if label != answer]
    print(f"drawn numbers: {100 * accuracy:.2f} % of {len(results)}; wrong: {wrong}")
    assert accuracy >= NUMBER_FLOOR, f"only {100 * accuracy:.2f} % read exactly; wrong: {wrong}"
