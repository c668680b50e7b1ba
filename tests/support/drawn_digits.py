"""Digits drawn the way people draw on a 280x280 canvas, for the drawn-digit evaluation.

Two sources: MNIST *test* digits traced into strokes and redrawn with another pen (and,
reported apart, with a double-line pen that draws only the outline of a stroke), and the
digits of handwriting fonts. The sample of test digits is drawn first; those whose tracing
loses a hole or ink (strokes.tracing_is_faithful, judged on the images alone, never on the
label or the model) are left out and counted per class. Each case varies pen width (6-30 px),
digit height (25-90 % of the canvas), position (off-centre), slant, and colour convention.

    python -m tests.support.drawn_digits     # the full evaluation with a table by condition

Numbers are drawn_numbers.py's.
"""

import collections
import glob
import itertools
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training import strokes

CANVAS = (280, 280)
PEN_WIDTHS = (6, 30)
HEIGHT_FRACTIONS = (0.25, 0.9)
SLANT_DEGREES = (-10, 15)
# A double-line pen: the outline, 2-5 px wide (at most a quarter of the pen), of what a pen
# 10-20 % of the digit's height would fill.
HOLLOW_PEN_SHARES = (0.1, 0.2)
HOLLOW_LINE_WIDTHS = (2, 5)
# Handwriting fonts from Debian. femkeklaver is reported on its own: its digits are hollow
# sketched outlines, not pen strokes (see docs/pipeline.md, "Hollow lettering").
HOLLOW_FONT_GLOBS = ["/usr/share/fonts/truetype/femkeklaver/*.ttf"]
FONT_GLOBS = ["/usr/share/fonts/truetype/fifthhorseman/dkg*.ttf",
              "/usr/share/fonts/truetype/breip/*.ttf",
              "/usr/share/fonts/opentype/bwht/*.otf",
              "/usr/share/fonts/truetype/humor-sans/*.ttf",
              "/usr/share/fonts/truetype/rufscript/*.ttf",
              "/usr/share/fonts/opentype/dancingscript/*.otf",
              "/usr/share/fonts/opentype/comic-neue/*.otf"]


def handwriting_fonts(globs=FONT_GLOBS):
    return sorted(path for pattern in globs for path in glob.glob(pattern))


def random_placement(rng, aspect):
    """(height, centre) of a digit of width/height `aspect` that fits inside the canvas."""
    height = rng.uniform(*HEIGHT_FRACTIONS) * CANVAS[1]
    half_width, half_height = min(height * aspect, CANVAS[0] * 0.95) / 2, height / 2
    margin = 4
    centre = (rng.uniform(half_width + margin, CANVAS[0] - half_width - margin),
              rng.uniform(half_height + margin, CANVAS[1] - half_height - margin))
    return height, centre


def traces_faithfully(image):
    """Whether a 28x28 digit's traced strokes keep its holes and ink
    (strokes.tracing_is_faithful: the image alone, never the label or the model)."""
    return strokes.tracing_is_faithful(image, strokes.digit_strokes(image))


def sample_test_digits(x_test, count, rng):
    """(included, excluded): `count` random test-set indices, split by traces_faithfully
    (on the images alone: the labels are not even given)."""
    included, excluded = [], []
    for index in rng.sample(range(len(x_test)), count):
        (included if traces_faithfully(x_test[index]) else excluded).append(index)
    return included, excluded


def faithful_indices(x_test, count, rng):
    """`count` random test-set indices whose digits trace faithfully (for numbers, where
    each digit must be readable by a person)."""
    shuffled = rng.sample(range(len(x_test)), len(x_test))
    return list(itertools.islice((index for index in shuffled
                                  if traces_faithfully(x_test[index])), count))


def draw_test_digit(x_test, index, rng, convention):
    """(RGBA image, conditions) of MNIST test digit `index` drawn with a random pen, size,
    place and slant."""
    image, pen, height = draw_traced(strokes.digit_strokes(x_test[index]), rng, convention)
    return image, dict(source="mnist", pen=pen, height=height / CANVAS[1],
                       convention=convention, index=int(index))


def draw_traced(traced, rng, convention):
    """(RGBA image, pen, height) of strokes in a unit frame drawn on CANVAS with a random
    pen, size, place and slant."""
    x0, y0, x1, y1 = strokes.strokes_box(traced)
    pen = rng.uniform(*PEN_WIDTHS)
    slant = rng.uniform(*SLANT_DEGREES)
    height, centre = random_placement(rng, (x1 - x0) / max(y1 - y0, 1e-6) + 0.2)
    image = strokes.draw_strokes(strokes.place_strokes(traced, height, centre, slant),
                                 CANVAS, pen, convention)
    return image, pen, height


def hollow_mnist_cases(x_test, y_test, indices, seed=0):
    """Yield (RGBA image, label, conditions): the given MNIST test digits drawn with a
    double-line pen (hollow strokes), the colour conventions taken in turn."""
    rng = random.Random(seed)
    for number, index in enumerate(indices):
        traced = strokes.digit_strokes(x_test[index])
        x0, y0, x1, y1 = strokes.strokes_box(traced)
        slant = rng.uniform(*SLANT_DEGREES)
        height, centre = random_placement(rng, (x1 - x0) / max(y1 - y0, 1e-6) + 0.3)
        pen = rng.uniform(*HOLLOW_PEN_SHARES) * height
        line = min(rng.uniform(*HOLLOW_LINE_WIDTHS), pen / 4)
        height -= pen  # the ink reaches pen / 2 beyond the strokes
        convention = strokes.CONVENTIONS[number % 3]
        image = strokes.draw_hollow_strokes(strokes.place_strokes(traced, height, centre, slant),
                                            CANVAS, pen, line, convention)
        yield image, int(y_test[index]), dict(source="mnist-hollow", pen=pen, line=line,
                                              height=height / CANVAS[1],
                                              convention=convention, index=int(index))


def sampled_mnist_cases(x_test, y_test, count, seed=0):
    """mnist_cases for the faithful ones of `count` randomly sampled test digits."""
    included, _ = sample_test_digits(x_test, count, random.Random(seed))
    return mnist_cases(x_test, y_test, included, seed)


def mnist_cases(x_test, y_test, indices, seed=0):
    """Yield (RGBA image, label, conditions) for the given MNIST test digits, the colour
    conventions taken in turn."""
    rng = random.Random(seed)
    for number, index in enumerate(indices):
        image, conditions = draw_test_digit(x_test, index, rng,
                                            strokes.CONVENTIONS[number % 3])
        yield image, int(y_test[index]), conditions


def font_glyph(path, digit, weight):
    """An 'L' coverage image of one digit in a font, cropped to the ink; `weight` in px adds
    an outline to imitate a fatter pen."""
    font = ImageFont.truetype(path, 200)
    image = Image.new("L", (400, 400), 0)
    ImageDraw.Draw(image).text((100, 50), str(digit), font=font, fill=255,
                               stroke_width=weight, stroke_fill=255)
    return image.crop(image.getbbox())


def placed_glyph(glyph, rng):
    """(an 'L' coverage image of CANVAS with `glyph` scaled and placed at random
    (random_placement), the glyph's height in px)."""
    target_height, centre = random_placement(rng, glyph.width / glyph.height)
    scale = target_height / glyph.height
    glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(target_height))),
                         Image.Resampling.LANCZOS)
    coverage = Image.new("L", CANVAS, 0)
    coverage.paste(glyph, (round(centre[0] - glyph.width / 2),
                           round(centre[1] - glyph.height / 2)))
    return coverage, target_height


def font_cases(seed=0, repeats=2, fonts=None):
    """Yield (RGBA image, label, conditions) for each digit of each handwriting font."""
    rng = random.Random(seed)
    number = 0
    for path in fonts or handwriting_fonts():
        for digit in range(10):
            for _ in range(repeats):
                glyph = font_glyph(path, digit, weight=rng.choice([0, 3, 8]))
                slant = math.tan(math.radians(rng.uniform(-5, 10)))
                width, height = glyph.size
                glyph = glyph.transform((width + int(abs(slant) * height), height),
                                        Image.Transform.AFFINE,
                                        (1, slant, -max(slant, 0) * height, 0, 1, 0),
                                        Image.Resampling.BILINEAR)
                coverage, target_height = placed_glyph(glyph, rng)
                convention = strokes.CONVENTIONS[number % 3]
                number += 1
                yield strokes.colourise(coverage, convention), digit, dict(
                    source="font:" + path.rsplit("/", 1)[1], height=target_height / CANVAS[1],
                    convention=convention, pen=None)


def evaluate(client, cases, mode="digit"):
    """Post each case to /predict as the page does in `mode` ("digit": one digit, never split;
    "number"); return a list of (conditions with the reply's `status`, `confidence` and
    `not_a_digit` added, label, answer (None for "not a digit") or error). In number mode label
    and answer are strings: a digit split in two is read as two digits, and wrong."""
    key = "digit" if mode == "digit" else "number"
    results = []
    for image, label, conditions in cases:
        response = client.post(f"/predict?mode={mode}", data=strokes.png_bytes(image),
                               content_type="image/png")
        body = response.get_json(silent=True) or {}
        conditions = {**conditions, "status": response.status_code,
                      "confidence": body.get("confidence"),
                      "not_a_digit": body.get("not_a_digit") is True}
        results.append((conditions, label if mode == "digit" else str(label),
                        body.get(key) if response.status_code == 200
                        else f"{response.status_code}: {body.get('error')}"))
    return results


def is_error(conditions):
    """Whether the case was answered with an error (a 4xx or 5xx reply)."""
    return conditions["status"] != 200


def accuracy(results):
    """Share of the cases read right; "not a digit" and an error reply are never right."""
    return float(np.mean([label == answer and not is_error(conditions)
                          for conditions, label, answer in results]))


def errors(results):
    """Share of the cases answered with an error."""
    return float(np.mean([is_error(conditions) for conditions, _, _ in results]))


def refused(results):
    """Share of the cases given no digit: answered "not a digit" or with an error (so that a
    service failing on every drawing cannot pass for one that seldom refuses a digit)."""
    return float(np.mean([conditions["not_a_digit"] or is_error(conditions)
                          for conditions, _, _ in results]))


def confusions(results, most=12):
    """The most frequent mistakes as [("true -> read", count)], most frequent first."""
    counts = collections.Counter(f"{label} -> {answer}" for _, label, answer in results
                                 if label != answer)
    return counts.most_common(most)


def main():
    import argparse

    parser = argparse.ArgumentParser(description="Drawn-digit evaluation through the server.")
    parser.add_argument("--digits", type=int, default=5000, help="MNIST test digits sampled")
    parser.add_argument("--model", help="an ONNX model other than model/model.onnx")
    parser.add_argument("--mode", choices=("digit", "number"), default="digit",
                        help="read as the page does in digit mode (never split) or number mode")
    parser.add_argument("--hollow", type=int, default=1500,
                        help="of the included test digits, this many also drawn hollow")
    args = parser.parse_args()
    from app import create_app
    from training import mnist_digits

    client = create_app({"MODEL_PATH": args.model} if args.model else None).test_client()
    _, (x_test, y_test) = mnist_digits.load_mnist()
    included, excluded = sample_test_digits(x_test, args.digits, random.Random(1))
    print(f"MNIST test digits sampled: {args.digits}; left out before any prediction because "
          f"their tracing loses a hole or ink: {len(excluded)}, per class "
          f"{np.bincount(y_test[excluded], minlength=10).tolist()}")
    mnist_results = evaluate(client, mnist_cases(x_test, y_test, included, seed=1), args.mode)
    font_results = evaluate(client, font_cases(seed=1, repeats=3), args.mode)
    hollow_results = evaluate(client, font_cases(
        seed=1, repeats=3, fonts=handwriting_fonts(HOLLOW_FONT_GLOBS)), args.mode)
    everything = mnist_results + font_results + hollow_results  # the whole evaluation
    # The same included test digits again, the first --hollow of them, with a double-line
    # pen: reported on their own, not in "all drawn digits" (comparable with earlier runs).
    double_line_results = evaluate(client, hollow_mnist_cases(
        x_test, y_test, included[:args.hollow], seed=1), args.mode)
    print(f"{'condition':38s} {'cases':>6s} {'accuracy':>9s} {'refused':>9s} {'errors':>9s}")

    def row(name, results):
        if results:
            print(f"{name:38s} {len(results):6d} {100 * accuracy(results):8.2f}%"
                  f" {100 * refused(results):8.2f}% {100 * errors(results):8.2f}%")

    row("all drawn digits", everything)
    row("MNIST test digits, redrawn", mnist_results)
    row("handwriting fonts, all", font_results + hollow_results)
    row("  stroke fonts", font_results)
    row("  hollow lettering (femkeklaver)", hollow_results)
    row("MNIST test digits, double-line pen", double_line_results)
    for convention in strokes.CONVENTIONS:
        row(f"  double-line pen, {convention}",
            [r for r in double_line_results if r[0]["convention"] == convention])
    for name, results in (("MNIST", mnist_results), ("fonts", font_results)):
        for convention in strokes.CONVENTIONS:
            row(f"  {name}, {convention}",
                [r for r in results if r[0]["convention"] == convention])
    for low, high in [(6, 12), (12, 20), (20, 30.1)]:
        row(f"  pen {low}-{int(high)} px (MNIST)",
            [r for r in mnist_results if low <= r[0]["pen"] < high])
    for low, high in [(0.25, 0.45), (0.45, 0.7), (0.7, 0.91)]:
        row(f"  height {int(low * 100)}-{int(high * 100)} % of canvas",
            [r for r in everything if low <= r[0]["height"] < high])
    for font in sorted({r[0]["source"] for r in font_results}):
        row(f"  {font}", [r for r in font_results if r[0]["source"] == font])
    print("most frequent confusions, MNIST redrawn (true -> read, count):",
          confusions(mnist_results))
    print("most frequent confusions, fonts:", confusions(font_results))
    print("most frequent confusions, hollow lettering:", confusions(hollow_results))
    print("most frequent confusions, double-line pen:", confusions(double_line_results))
    wrong = [(r[0]["source"], r[0].get("index"), r[1], r[2]) for r in everything if r[1] != r[2]]
    print("wrong (source, MNIST index, label, answer):", wrong[:60])

if __name__ == "__main__":
    main()
