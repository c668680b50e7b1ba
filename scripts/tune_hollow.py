"""Choose hollow_strokes.fill_outlines' thresholds on MNIST *training* digits.

Draws training digits twice: with a round pen, as training renders them (the fill must leave
them alone), and with a double-line pen (the fill should make them solid again); reads both
through the server's pipeline and the shipped model for each pair of thresholds, and prints
how many drawings the fill changed and how many were read right. The test set and the fonts
are never looked at; the drawn-digit evaluation uses another double-line generator.

    python -m scripts.tune_hollow --digits 3000 --hollow 1000
"""

import argparse
import math
import random

import numpy as np

import utils
from drawing import hollow_strokes, image_ink
from reading import segment
from reading.recognizer import Recognizer
from training import mnist_digits, strokes

# hollow_strokes.OutlineFill's (elongation, solidity, straight); inf: no straight gaps filled
SETTINGS = [(3.0, 0.65, math.inf), (4.0, 0.55, math.inf), (4.0, 0.65, math.inf),
            (4.0, 0.75, math.inf), (5.0, 0.65, math.inf), (4.0, 0.65, 6.0), (4.0, 0.65, 8.0),
            (4.0, 0.65, 10.0), (4.0, 0.65, 12.0)]


def drawing(image, rng, hollow):
    """An RGBA 280x280 drawing of a 28x28 digit: a round pen 4-34 px, or the outline (1.5 px
    to 0.3 of the pen wide) of a 14-40 px pen; None when the tracing is not faithful."""
    traced = strokes.digit_strokes(image)
    if not traced or not strokes.tracing_is_faithful(image, traced):
        return None
    height = rng.uniform(0.45 if hollow else 0.18, 0.95) * 280
    pen = rng.uniform(14, 40) if hollow else rng.uniform(4, 34)
    placed = strokes.place_strokes(traced, max(height - pen, 20), (140, 140),
                                   rng.uniform(-20, 25))
    convention = rng.choice(strokes.CONVENTIONS)
    if hollow:
        return strokes.draw_hollow_strokes(placed, (280, 280), pen, rng.uniform(1.5, 0.3 * pen),
                                           convention)
    return strokes.draw_strokes(placed, (280, 280), pen, convention)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", type=int, default=3000, help="drawn with a round pen")
    parser.add_argument("--hollow", type=int, default=1000, help="drawn with a double-line pen")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    (x_train, y_train), _ = mnist_digits.load_mnist()
    rng = random.Random(args.seed)
    picked = rng.sample(range(len(x_train)), args.digits + args.hollow)
    kinds = {}
    for kind, indices in (("round pen", picked[:args.digits]),
                          ("double-line pen", picked[args.digits:])):
        drawn = [(drawing(x_train[i], rng, kind != "round pen"), y_train[i]) for i in indices]
        kinds[kind] = ([image_ink.read_ink(strokes.png_bytes(image)) for image, _ in drawn
                        if image is not None],
                       np.array([label for image, label in drawn if image is not None]))
    recognizer = Recognizer()

    def read(inks, fill):
        """(the model's answers, how many drawings `fill` changed) with the fill's settings
        `fill` in to_mnist (None: no fill)."""
        changed = sum(fill is not None and hollow_strokes.fill_outlines(work, fill) is not work
                      for work in map(utils.work_image, inks))
        digits = np.stack([utils.to_mnist(ink, fill) for ink in inks])
        return segment.answers(recognizer.probabilities(digits)), changed

    print(f"{'elongation':>10s} {'solidity':>8s} {'straight':>8s}  " + "  ".join(
        f"{kind + ': changed, read right':>36s}" for kind in kinds))
    for setting in [None] + SETTINGS:
        fill = None if setting is None else hollow_strokes.OutlineFill(*setting)
        cells = []
        for inks, labels in kinds.values():
            answers, changed = read(inks, fill)
            cells.append(f"{changed:5d} of {len(labels):5d}, "
                         f"{100 * (answers == labels).mean():6.2f} %")
        chosen = " (shipped)" if fill == hollow_strokes.OUTLINE_FILL else ""
        name = "no fill" if setting is None else "{:10.1f} {:8.2f} {:8.1f}".format(*setting)
        print(f"{name:>28s}  " + "  ".join(f"{cell:>36s}" for cell in cells) + chosen)


if __name__ == "__main__":
    main()
