"""Choose ReaderGate.overrule and .lone_overrule, number mode's whole-drawing "not a digit",
on MNIST *training* digits and non-digits that are not the evaluation's.

Where the digit network calls a mark "not a digit", the number reader's reading of it stands
only if the reader is sure enough of it: `overrule` in a drawing of several marks, and
`lone_overrule` (two digits or more) where the mark is the whole drawing. Too low, and letters
are read as numbers; too high, and numbers of real digits are answered "not a digit" because
of one mark. For each pair of candidates this reads, through the server's pipeline and the
shipped models, numbers of touching and of spaced training digits, single training digits
(number mode), marks of training/non_digit_strokes.py drawn with a seed training never uses,
and every Hershey glyph that is not a digit's shape (training/hershey_glyphs.py, a source the
shipped networks never learnt from), and prints how each fares. The test set and the fonts
are never looked at.

    python -m scripts.tune_number_mode --numbers 300 --singles 800 --non-digits 800
"""

import argparse
import dataclasses
import random

import numpy as np

from drawing import errors, image_ink
from reading import segment
from reading.recognizer import Recognizer
from tests.support import drawn_digits, drawn_numbers
from training import hershey_glyphs, mnist_digits, non_digit_strokes, number_strips

# (overrule, lone_overrule) pairs
CANDIDATES = [(0.35, lone) for lone in (0.0, 0.35, 0.5, 0.7, 0.9, 0.95, 0.99)] + [
    (overrule, 0.35) for overrule in (0.0, 0.5, 0.7, 0.9, 0.99)]
NON_DIGIT_SEED = 777_777  # training draws non-digits with seeds below 100,000


def non_digit_drawings(count, seed):
    """RGBA drawings of marks that are not digits (letters, shapes, scribbles) drawn as
    number_strips.non_digit_strips draws them for the reader."""
    rng = random.Random(seed)
    for _ in range(count):
        _, plan = non_digit_strokes.non_digit(rng, None, number_strips.NON_DIGIT_KINDS)
        yield number_strips.draw_non_digit(plan, rng)


def hershey_drawings(seed):
    """(family, RGBA drawing) of every Hershey glyph kept as a non-digit, once each, drawn as
    the reader's non-digits are."""
    rng = random.Random(seed)
    for family in hershey_glyphs.FAMILIES:
        for _, _, plan in hershey_glyphs.glyphs(family):
            yield family, number_strips.draw_non_digit(plan, rng)


def answers(recognizer, inks, overrule=None, lone_overrule=None, one_digit=False):
    """The number each ink map is read as with ReaderGate's `overrule` and `lone_overrule`
    (the shipped ones where None), or in digit mode with `one_digit`: a string, None for "not
    a digit", or "error"."""
    gate = dataclasses.replace(
        segment.READER_GATE,
        overrule=segment.READER_GATE.overrule if overrule is None else overrule,
        lone_overrule=segment.READER_GATE.lone_overrule if lone_overrule is None
        else lone_overrule)
    found = []
    for ink in inks:
        try:
            found.append(segment.read_digits(ink, recognizer.probabilities,
                                             recognizer.read_strips, one_digit, gate).number)
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
    hershey = [(family, image_ink.ink_map(image))
               for family, image in hershey_drawings(NON_DIGIT_SEED)]
    sets["Hershey glyphs"] = [(ink, None) for _, ink in hershey]
    print(f"cases: { {name: len(cases) for name, cases in sets.items()} }")
    print("overrule, lone | touching: right, not a digit | spaced: right, not a digit | "
          "singles: right, split | non-digits: not a digit | Hershey: not a digit")
    for overrule, lone_overrule in CANDIDATES:
        row = []
        for name, cases in sets.items():
            got = answers(recognizer, [ink for ink, _ in cases], overrule, lone_overrule)
            labels = [label for _, label in cases]
            if labels[0] is None:  # non-digits
                row.append(np.mean([answer is None for answer in got]))
                continue
            row.append(np.mean([a == b for a, b in zip(got, labels)]))
            row.append(np.mean([a is not None and a.isdigit() and len(a) > 1 for a in got])
                       if name == "single digits" else np.mean([a is None for a in got]))
        print(f"{overrule:4.2f}, {lone_overrule:4.2f} | "
              + " | ".join(f"{100 * value:6.2f} %" for value in row))
    print("Hershey glyphs answered 'not a digit' by family, shipped gate: number mode, "
          "digit mode")
    families = np.array([family for family, _ in hershey])
    inks = [ink for _, ink in hershey]
    number_mode = np.array([answer is None for answer in answers(recognizer, inks)])
    digit_mode = np.array([answer is None for answer in answers(recognizer, inks,
                                                                one_digit=True)])
    for family in hershey_glyphs.FAMILIES:
        own = families == family
        print(f"{family:10s} {own.sum():5d} | {100 * number_mode[own].mean():6.2f} % | "
              f"{100 * digit_mode[own].mean():6.2f} %")

if __name__ == "__main__":
    main()
