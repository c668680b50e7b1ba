"""Numbers written the way people write them quickly, for the number evaluation.

Each number is 2-4 MNIST digits traced into strokes and redrawn with one pen on the 560x280
number canvas, in one of the three colour conventions:

- `touching_number_cases`: the digits touch or overlap, no blank column anywhere between the
  first ink and the last;
- `spaced_number_cases`: a blank column between every two digits.

The layout is checked on the drawing itself and, where it misses, redrawn with the digits
moved closer (or further apart) by a fixed step, all before anything is read. Which digits
are used depends on the images alone (drawn_digits.faithful_indices), never on a reply.
The evaluation's figures are in docs/evaluation.md.

    python -m tests.support.drawn_numbers           # the evaluation on MNIST test digits
    python -m tests.support.drawn_numbers --train   # the same on MNIST training digits
"""

import argparse
import collections
import random
import time

import numpy as np

from training import strokes

from . import drawn_digits

CANVAS = (560, 280)  # the page's canvas in number mode
INKED = 128            # a column with less coverage than this (0-255) counts as blank
TOUCHING_GAP = (-0.12, 0.0)  # horizontal gap between two digits' ink, of the digit height
SPACED_GAP = (0.08, 0.5)
GAP_STEP = 0.04        # how far a layout that missed its kind is moved, of the digit height
MIN_SPACE = 2          # px of blank canvas between spaced digits


def coverage(image, convention):
    """An RGBA drawing in one of strokes.CONVENTIONS -> uint8 [H, W] ink coverage, 0-255."""
    rgba = np.asarray(image)
    if convention == "ink_on_transparent":
        return rgba[..., 3]
    if convention == "white_on_black":
        return rgba[..., 0]
    return 255 - rgba[..., 0]


def has_blank_column(ink):
    """Whether a uint8 [H, W] coverage has a blank column between its first and last inked
    columns."""
    inked = np.flatnonzero(ink.max(axis=0) >= INKED)
    return bool(inked.size) and not (ink[:, inked[0]:inked[-1] + 1].max(axis=0) >= INKED).all()


def lay_out(traced, rng):
    """Random pen, size, slant, position and per-digit wobble of a number, as a function of the
    gap between digits: place(gap) -> (strokes of each digit in canvas px, pen width)."""
    pen = rng.uniform(6, 24)
    digit_height = rng.uniform(0.35, 0.8) * CANVAS[1]
    slant = rng.uniform(-8, 12)
    sizes = [digit_height * rng.uniform(0.9, 1.1) for _ in traced]
    lifts = [rng.uniform(-0.05, 0.05) * digit_height for _ in traced]
    where = (rng.random(), rng.random())

    def place(gap):
        digits = strokes.side_by_side(traced, sizes, gap * digit_height, pen, slant, lifts)
        return strokes.move_onto_canvas(digits, pen, CANVAS, where), pen

    return place


def ink_extents(digits, pen):
    """(left, right) of each placed digit's ink, in canvas px."""
    return [(strokes.strokes_box(digit)[0] - pen / 2, strokes.strokes_box(digit)[2] + pen / 2)
            for digit in digits]


def all_apart(extents):
    """Whether MIN_SPACE px of canvas separate every two neighbouring (left, right) extents."""
    return all(right + MIN_SPACE <= next_left
               for (_, right), (next_left, _) in zip(extents, extents[1:]))


def number_cases(x, y, count, seed, touching):
    """Yield (RGBA image, number string, conditions) for `count` numbers of 2-4 digits of the
    images `x` (uint8 [N, 28, 28]) labelled `y`, touching or spaced."""
    rng = random.Random(seed)
    for number in range(count):
        indices = drawn_digits.faithful_indices(x, rng.randint(2, 4), rng)
        traced = [strokes.digit_strokes(x[index]) for index in indices]
        place = lay_out(traced, rng)
        gap = rng.uniform(*(TOUCHING_GAP if touching else SPACED_GAP))
        convention = strokes.CONVENTIONS[number % 3]
        moves = 0
        while True:  # decided on the drawing alone, before anything reads it
            digits, pen = place(gap)
            image = strokes.draw_strokes([s for digit in digits for s in digit], CANVAS, pen,
                                         convention)
            if (not has_blank_column(coverage(image, convention)) if touching
                    else all_apart(ink_extents(digits, pen))):
                break
            gap += -GAP_STEP if touching else GAP_STEP
            moves += 1
        label = "".join(str(int(y[index])) for index in indices)
        yield image, label, dict(kind="touching" if touching else "spaced", pen=pen,
                                 convention=convention, indices=indices, moves=moves)


def touching_number_cases(x, y, count, seed=0):
    return number_cases(x, y, count, seed, touching=True)


def spaced_number_cases(x, y, count, seed=0):
    return number_cases(x, y, count, seed, touching=False)


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------

UNSURE_BELOW = 0.6  # the page says "not very sure" below this confidence (static/app.js)
CONFIDENCE_BINS = ((0.9, 1.0), (UNSURE_BELOW, 0.9), (0.0, UNSURE_BELOW))


def by_confidence(results):
    """[(name, share of the readings, share of those read right)] for the readings in each
    of CONFIDENCE_BINS, from the highest."""
    rows = []
    for low, high in CONFIDENCE_BINS:  # [low, high); a confidence of 1.0 is in the top one
        inside = [r for r in results if low <= min(r[0]["confidence"] or 0, 0.999999) < high]
        rows.append((f"confidence {low:.1f}-{high:.1f}", len(inside) / len(results),
                     drawn_digits.accuracy(inside) if inside else float("nan")))
    return rows


def is_split(conditions, answer):
    """Whether a single digit came back as two or more digits, or with an error (no reading at
    all, which must not pass for a digit left whole)."""
    return drawn_digits.is_error(conditions) or (isinstance(answer, str) and answer.isdigit()
                                                 and len(answer) > 1)


def split_share(results):
    """Share of single digits split (is_split)."""
    return float(np.mean([is_split(conditions, answer) for conditions, _, answer in results]))


def count_errors(results):
    """How the wrong readings of numbers went wrong: (dropped, added, misread) shares of all
    readings, where a digit was dropped (fewer digits read than drawn), added (more) or
    misread (as many, some wrong). Not a digit and errors are counted by refused()."""
    answers = [(label, answer) for _, label, answer in results
               if isinstance(answer, str) and answer.isdigit() and answer != label]
    total = len(results)
    return (sum(len(answer) < len(label) for label, answer in answers) / total,
            sum(len(answer) > len(label) for label, answer in answers) / total,
            sum(len(answer) == len(label) for label, answer in answers) / total)


def confusions(results, most=12):
    """The most frequent (label, answer) pairs among the wrong readings."""
    return collections.Counter((label, answer) for _, label, answer in results
                               if label != answer).most_common(most)


def digit_confusions(results, most=12):
    """For numbers read with the right count of digits: the most frequent (drawn, read)
    digit pairs."""
    pairs = collections.Counter()
    for _, label, answer in results:
        if isinstance(answer, str) and len(answer) == len(label):
            pairs.update((a, b) for a, b in zip(label, answer) if a != b)
    return pairs.most_common(most)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", action="store_true",
                        help="draw MNIST training digits (to tune on) instead of test digits")
    parser.add_argument("--numbers", type=int, default=600, help="numbers of each kind")
    parser.add_argument("--singles", type=int, default=3000, help="single digits")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", help="a digit network other than model/model.onnx (the "
                                        "number reader beside it)")
    arguments = parser.parse_args()
    from app import create_app
    from training import mnist_digits

    client = create_app({"MODEL_PATH": arguments.model} if arguments.model else None
                        ).test_client()
    (x_train, y_train), (x_test, y_test) = mnist_digits.load_mnist()
    x, y = (x_train, y_train) if arguments.train else (x_test, y_test)
    print(f"MNIST {'training' if arguments.train else 'test'} digits, seed {arguments.seed}")
    print(f"{'numbers read through POST /predict?mode=number':48s} {'cases':>6s} {'result':>9s}")

    def row(name, value, count, unit="% exact"):
        print(f"{name:48s} {count:6d} {100 * value:8.2f} {unit}")

    for kind, cases in (("touching or overlapping", touching_number_cases),
                        ("spaced", spaced_number_cases)):
        started = time.perf_counter()
        results = drawn_digits.evaluate(client, cases(x, y, arguments.numbers, arguments.seed),
                                        mode="number")
        row(f"{kind}, 2-4 digits", drawn_digits.accuracy(results), len(results))
        row("  some digit answered not a digit, or an error", drawn_digits.refused(results),
            len(results), "% refused")
        row("  answered with an error", drawn_digits.errors(results), len(results), "% errors")
        for name, share in zip(("dropped", "added", "misread"), count_errors(results)):
            row(f"  a digit {name}" if name != "misread" else "  as many digits, some misread",
                share, len(results), f"% {name}")
        for digits in (2, 3, 4):
            part = [r for r in results if len(r[1]) == digits]
            row(f"  {digits} digits", drawn_digits.accuracy(part), len(part))
        repeated = [r for r in results if len(set(r[1])) < len(r[1])]
        row("  with a repeated digit", drawn_digits.accuracy(repeated), len(repeated))
        for convention in strokes.CONVENTIONS:
            part = [r for r in results if r[0]["convention"] == convention]
            row(f"  {convention}", drawn_digits.accuracy(part), len(part))
        for name, share, right in by_confidence(results):
            print(f"  {name}: {100 * share:.1f} % of readings, {100 * right:.2f} % of them right")
        moved = sum(r[0]["moves"] > 0 for r in results)
        print(f"  layouts moved to be {kind.split()[0]}: {moved}; "
              f"{time.perf_counter() - started:.0f} s")
        print("  most frequent misreadings (number, read):", confusions(results))
        print("  most frequent digit confusions (drawn, read):", digit_confusions(results))
    singles = drawn_digits.evaluate(
        client, drawn_digits.sampled_mnist_cases(x, y, arguments.singles, seed=arguments.seed),
        mode="number")
    in_digit_mode = drawn_digits.evaluate(
        client, drawn_digits.sampled_mnist_cases(x, y, arguments.singles, seed=arguments.seed),
        mode="digit")
    row("single digits split into 2+, or an error", split_share(singles), len(singles),
        "% split")
    row("single digits read right", drawn_digits.accuracy(singles), len(singles))
    row("  the same digits read right in digit mode", drawn_digits.accuracy(in_digit_mode),
        len(in_digit_mode))
    row("single digits answered not a digit, or an error", drawn_digits.refused(singles),
        len(singles), "% refused")
    row("single digits answered with an error", drawn_digits.errors(singles), len(singles),
        "% errors")
    print("  split or misread (drawn, read):", confusions(singles))


if __name__ == "__main__":
    main()
