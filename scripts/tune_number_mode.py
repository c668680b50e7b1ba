"""Choose ReaderGate.overrule, number mode's whole-drawing "not a digit", on MNIST *training*
digits and the training script's own non-digits.

Where the digit network calls a mark "not a digit", the number reader's reading of it stands
only if the reader is at least `overrule` sure of it. Too low, and letters are read as numbers
of ones; too high, and numbers of real digits are answered "not a digit" because of one mark.
For each candidate this reads, through the server's pipeline and the shipped models, numbers
of touching and of spaced training digits, single training digits (number mode) and marks of
training/non_digit_strokes.py drawn with a seed training never uses, and prints how each
fares. The test set and the fonts are never looked at.

    python -m scripts.tune_number_mode --numbers 400 --singles 1000 --non-digits 1000
"""

import argparse
import dataclasses
import random

import numpy as np

from drawing import errors, image_ink
from reading import segment
from reading.recognizer import Recognizer
from tests.support import drawn_digits, drawn_numbers
from training import mnist_digits, non_digit_strokes, number_strips, strokes

CANDIDATES = (0.0, 0.2, 0.35, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)
NON_DIGIT_SEED = 777_777  # training draws non-digits with seeds below 100,000


def non_digit_drawings(count, seed):
    """RGBA drawings of marks that are not digits (letters, shapes, scribbles) drawn as
    number_strips.non_digit_strips draws them for the reader."""
    rng = random.Random(seed)
    for _ in range(count):
        _, plan = non_digit_strokes.non_digit(rng, None, number_strips.NON_DIGIT_KINDS)
        pen = rng.uniform(*number_strips.PEN)
        placed = strokes.place_strokes(plan, rng.uniform(*number_strips.HEIGHT)
                                       * number_strips.CANVAS[1], (0, 0),
                                       rng.uniform(*number_strips.SLANT))
        [placed] = strokes.move_onto_canvas([placed], pen, number_strips.CANVAS,
                                            (rng.random(), rng.random()))
        yield strokes.draw_strokes(placed, number_strips.CANVAS, pen,
                                   rng.choice(strokes.CONVENTIONS))


def answers(recognizer, inks, overrule):
    """The number each ink map is read as with ReaderGate.overrule `overrule`: a string, None
    for "not a digit", or "error"."""
    gate = dataclasses.replace(segment.READER_GATE, overrule=overrule)
    found = []
    for ink in inks:
        try:
            found.append(segment.read_digits(ink, recognizer.probabilities,
                                             recognizer.read_strips, gate=gate).number)
        except errors.ImageError:
            found.append("error")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=400, help="numbers of each kind")
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--non-digits", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    arguments = parser.parse_args()
    (x, y), _ = mnist_digits.load_mnist()
    recognizer = Recognizer()

    def inks(cases):
        return [(image_ink.ink_map(image), str(label)) for image, label, _ in cases]

    sets = {
        "touching numbers": inks(drawn_numbers.touching_number_cases(
            x, y, arguments.numbers, arguments.seed)),
        "spaced numbers": inks(drawn_numbers.spaced_number_cases(
            x, y, arguments.numbers, arguments.seed)),
        "single digits": inks(drawn_digits.sampled_mnist_cases(
            x, y, arguments.singles, seed=arguments.seed)),
        "non-digits": [(image_ink.ink_map(image), None) for image in
                       non_digit_drawings(arguments.non_digits, NON_DIGIT_SEED)],
    }
    print("overrule | touching: right, not a digit | spaced: right, not a digit | "
          "singles: right, split | non-digits: not a digit")
    for overrule in CANDIDATES:
        row = []
        for name, cases in sets.items():
            got = answers(recognizer, [ink for ink, _ in cases], overrule)
            labels = [label for _, label in cases]
            if name == "non-digits":
                row.append(np.mean([answer is None for answer in got]))
                continue
            row.append(np.mean([a == b for a, b in zip(got, labels)]))
            row.append(np.mean([a is not None and a.isdigit() and len(a) > 1 for a in got])
                       if name == "single digits" else np.mean([a is None for a in got]))
        print(f"{overrule:8.2f} | " + " | ".join(f"{100 * value:6.2f} %" for value in row))


if __name__ == "__main__":
    main()
