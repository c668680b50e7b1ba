"""Marks that are not digits, for measuring how often the service says "not a digit".

Five kinds, none of them made by the training script's generator (training/non_digit_strokes.py):
the letters and the signs of the handwriting fonts (evaluation only, like their digits),
shapes drawn with Pillow's own primitives, scribbles as a random walk of the pen, and the
glyphs of the Hershey family kept for evaluation (hershey_glyphs.HELD_OUT). Every
letter is in; those that are digits' shapes (DIGIT_SHAPED_LETTERS, a list fixed beforehand)
are reported apart, "not a digit" and their digit both right there, and are not in the
headline. Only the glyphs a font does not have are left out, judged on the font alone.
Each case varies pen, size, place and colour convention the way tests/support/drawn_digits.py
does.

    python -m tests.support.non_digits     # the whole evaluation, by kind, in both modes
"""

import collections
import math
import random

import numpy as np
from PIL import Image, ImageDraw

from training import hershey_glyphs, strokes

from . import drawn_digits

CANVAS = drawn_digits.CANVAS
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Letters that are digits' shapes, fixed before any answer is seen: reported on their own,
# where "not a digit" and the digit they look like are both right, and left out of the
# letters' and the headline's figures.
DIGIT_SHAPED_LETTERS = {"O": 0, "o": 0, "D": 0, "I": 1, "l": 1, "i": 1, "Z": 2, "z": 2,
                        "S": 5, "s": 5, "b": 6, "G": 6, "B": 8, "g": 9, "q": 9}
SIGNS = "+=#%&@*?$<>~^{}§£€¥©"
PEN_WIDTHS = (6, 30)
HELD_OUT_KIND = "hershey " + hershey_glyphs.HELD_OUT  # the Hershey family no training uses
MISSING = "\ue000"  # a private-use character no handwriting font has: its "missing" glyph


def glyph_cases(characters, seed=0, fonts=None):
    """Yield (RGBA image, character, conditions) for each character of each handwriting
    font, drawn as drawn_digits.font_cases draws digits; a character the font lacks (drawn
    as the font draws MISSING) is skipped."""
    rng = random.Random(seed)
    number = 0
    for path in fonts or drawn_digits.handwriting_fonts():
        missing = drawn_digits.font_glyph(path, MISSING, 0).tobytes()
        for character in characters:
            weight = rng.choice([0, 3, 8])
            if drawn_digits.font_glyph(path, character, 0).tobytes() == missing:
                continue
            coverage, _ = drawn_digits.placed_glyph(drawn_digits.font_glyph(path, character,
                                                                            weight), rng)
            convention = strokes.CONVENTIONS[number % 3]
            number += 1
            yield strokes.colourise(coverage, convention), character, dict(
                source="font:" + path.rsplit("/", 1)[1], convention=convention)


# Shapes as Pillow draws them in a unit box: each a function (draw, box, pen, rng).
def _sun(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    draw.ellipse([cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2], outline=255, width=pen)
    for k in range(rng.randint(6, 10)):
        angle = 2 * math.pi * k / 8
        draw.line([(cx + 0.65 * r * math.cos(angle), cy + 0.65 * r * math.sin(angle)),
                   (cx + r * math.cos(angle), cy + r * math.sin(angle))], fill=255, width=pen)


def _filled_polygon(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    sides = rng.choice([3, 4, 5])
    turn = rng.uniform(0, 2 * math.pi)
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    draw.polygon([(cx + r * math.cos(turn + 2 * math.pi * k / sides),
                   cy + r * math.sin(turn + 2 * math.pi * k / sides)) for k in range(sides)],
                 fill=255)


def _rectangle(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    squash = rng.uniform(0.5, 1.0)
    draw.rectangle([x0, y0 + (1 - squash) * (y1 - y0) / 2, x1, y1 - (1 - squash) * (y1 - y0) / 2],
                   outline=255, width=pen)


def _crescent(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    start = rng.uniform(0, 360)
    draw.arc(box, start, start + 200, fill=255, width=pen)
    shift = (x1 - x0) * 0.25
    draw.arc([x0 + shift, y0 + shift / 2, x1 - shift / 2, y1 - shift / 2], start + 10,
             start + 190, fill=255, width=pen)


def _bolt(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.line([(x0 + 0.6 * w, y0), (x0 + 0.2 * w, y0 + 0.55 * h), (x0 + 0.7 * w, y0 + 0.45 * h),
               (x0 + 0.3 * w, y1)], fill=255, width=pen, joint="curve")


def _stick_figure(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = x0 + w / 2
    draw.ellipse([cx - 0.12 * h, y0, cx + 0.12 * h, y0 + 0.24 * h], outline=255, width=pen)
    draw.line([(cx, y0 + 0.24 * h), (cx, y0 + 0.65 * h)], fill=255, width=pen)
    draw.line([(x0 + 0.15 * w, y0 + 0.4 * h), (x1 - 0.15 * w, y0 + 0.4 * h)], fill=255, width=pen)
    draw.line([(x0 + 0.2 * w, y1), (cx, y0 + 0.65 * h), (x1 - 0.2 * w, y1)], fill=255, width=pen)


def _tree(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.polygon([(x0 + w / 2, y0), (x0, y0 + 0.7 * h), (x1, y0 + 0.7 * h)], outline=255,
                 width=pen)
    draw.line([(x0 + w / 2, y0 + 0.7 * h), (x0 + w / 2, y1)], fill=255, width=pen)


def _flower(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    petals = rng.randint(5, 8)
    for k in range(petals):
        angle = 2 * math.pi * k / petals
        px, py = cx + 0.6 * r * math.cos(angle), cy + 0.6 * r * math.sin(angle)
        draw.ellipse([px - 0.35 * r, py - 0.35 * r, px + 0.35 * r, py + 0.35 * r], outline=255,
                     width=pen)


def _envelope(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    h = y1 - y0
    top, bottom = y0 + 0.2 * h, y1 - 0.2 * h
    draw.rectangle([x0, top, x1, bottom], outline=255, width=pen)
    draw.line([(x0, top), ((x0 + x1) / 2, (top + bottom) / 2), (x1, top)], fill=255, width=pen)


def _cat_face(draw, box, pen, rng):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    draw.ellipse([x0, y0 + 0.25 * h, x1, y1], outline=255, width=pen)
    draw.line([(x0 + 0.1 * w, y0 + 0.45 * h), (x0 + 0.2 * w, y0), (x0 + 0.4 * w, y0 + 0.28 * h)],
              fill=255, width=pen)
    draw.line([(x1 - 0.1 * w, y0 + 0.45 * h), (x1 - 0.2 * w, y0), (x1 - 0.4 * w, y0 + 0.28 * h)],
              fill=255, width=pen)
    for side in (-1, 1):
        draw.line([(x0 + w / 2 + side * 0.15 * w, y0 + 0.75 * h),
                   (x0 + w / 2 + side * 0.6 * w, y0 + 0.7 * h)], fill=255, width=max(2, pen // 2))


SHAPES = {"sun": _sun, "filled polygon": _filled_polygon, "rectangle": _rectangle,
          "crescent": _crescent, "lightning bolt": _bolt, "stick figure": _stick_figure,
          "tree": _tree, "flower": _flower, "envelope": _envelope, "cat face": _cat_face}


def shape_cases(count, seed=0):
    """Yield (RGBA image, shape name, conditions): `count` shapes of SHAPES in turn, each at a
    random size, place and pen."""
    rng = random.Random(seed)
    names = sorted(SHAPES)
    for number in range(count):
        name = names[number % len(names)]
        height, centre = drawn_digits.random_placement(rng, 1.0)
        pen = round(rng.uniform(PEN_WIDTHS[0], min(PEN_WIDTHS[1], height / 8)))
        coverage = Image.new("L", CANVAS, 0)
        box = [centre[0] - height / 2 + pen, centre[1] - height / 2 + pen,
               centre[0] + height / 2 - pen, centre[1] + height / 2 - pen]
        SHAPES[name](ImageDraw.Draw(coverage), box, pen, rng)
        convention = strokes.CONVENTIONS[number % 3]
        yield strokes.colourise(coverage, convention), name, dict(source="shape",
                                                                  convention=convention)


def scribble_cases(count, seed=0):
    """Yield (RGBA image, "scribble", conditions): a pen wandering at random, its direction
    drifting, for 25 to 80 steps, kept inside a random box of the canvas."""
    rng = random.Random(seed)
    for number in range(count):
        height, centre = drawn_digits.random_placement(rng, 1.0)
        pen = rng.uniform(PEN_WIDTHS[0], min(PEN_WIDTHS[1], height / 6))
        x, y, heading = centre[0], centre[1], rng.uniform(0, 2 * math.pi)
        step = height / rng.uniform(6, 12)
        points = [(x, y)]
        for _ in range(rng.randint(25, 80)):
            heading += rng.gauss(0, 0.9)
            x = min(max(x + step * math.cos(heading), centre[0] - height / 2),
                    centre[0] + height / 2)
            y = min(max(y + step * math.sin(heading), centre[1] - height / 2),
                    centre[1] + height / 2)
            points.append((x, y))
        convention = strokes.CONVENTIONS[number % 3]
        yield strokes.draw_strokes([points], CANVAS, pen, convention), "scribble", dict(
            source="scribble", convention=convention)


def evaluate(client, cases, mode):
    """Post each case as the page does in `mode`; return [(conditions, what it is, reply
    status, whether the reply said "not a digit", what it read instead)]."""
    results = []
    for image, what, conditions in cases:
        response = client.post(f"/predict?mode={mode}", data=strokes.png_bytes(image),
                               content_type="image/png")
        body = response.get_json(silent=True) or {}
        results.append((conditions, what, response.status_code, body.get("not_a_digit") is True,
                        body.get("number") if mode == "number" else body.get("digit")))
    return results


def caught(results):
    """Share of the cases answered "not a digit" (an error reply is not)."""
    return float(np.mean([refused and status == 200 for _, _, status, refused, _ in results]))


def caught_or_read_as_shaped(results):
    """Share of digit-shaped letters answered "not a digit" or read as the digit they look
    like (DIGIT_SHAPED_LETTERS)."""
    return float(np.mean([
        status == 200 and (refused or str(read) == str(DIGIT_SHAPED_LETTERS[what]))
        for _, what, status, refused, read in results]))


def right(kind, results):
    """Share of a kind's cases answered right: "not a digit", or for the digit-shaped letters
    also their digit."""
    return caught_or_read_as_shaped(results) if kind == "digit-shaped" else caught(results)


def errors(results):
    """Share of the cases answered with an error (a 4xx or 5xx reply)."""
    return float(np.mean([status != 200 for _, _, status, _, _ in results]))


def misses(results, most=15):
    """[("what -> read", count)] of the cases not caught, most frequent first; "read" is the
    status of an error reply."""
    return collections.Counter(f"{what} -> {read if status == 200 else f'error {status}'}"
                               for _, what, status, refused, read in results
                               if not (refused and status == 200)).most_common(most)


def hershey_cases(family, seed=0):
    """Yield (RGBA image, glyph's key, conditions) for each Hershey glyph of `family` kept as
    a non-digit (training/hershey_glyphs.py), drawn as a traced test digit is
    (drawn_digits.draw_traced)."""
    rng = random.Random(seed)
    for number, (font, key, lines) in enumerate(hershey_glyphs.glyphs(family)):
        convention = strokes.CONVENTIONS[number % 3]
        image, _, _ = drawn_digits.draw_traced(lines, rng, convention)
        yield image, key, dict(source=f"hershey:{font}", convention=convention)


def all_cases(seed=0, shapes=500, scribbles=500):
    """The whole evaluation's cases by kind: font letters (the digit-shaped ones apart), font
    signs, shapes, scribbles, and the glyphs of the Hershey family training leaves out."""
    fonts = (drawn_digits.handwriting_fonts()
             + drawn_digits.handwriting_fonts(drawn_digits.HOLLOW_FONT_GLOBS))
    letters = list(glyph_cases(LETTERS, seed, fonts))
    return {"letters": [case for case in letters if case[1] not in DIGIT_SHAPED_LETTERS],
            "digit-shaped": [case for case in letters if case[1] in DIGIT_SHAPED_LETTERS],
            "signs": list(glyph_cases(SIGNS, seed + 1, fonts)),
            "shapes": list(shape_cases(shapes, seed + 2)),
            "scribbles": list(scribble_cases(scribbles, seed + 3)),
            HELD_OUT_KIND: list(hershey_cases(hershey_glyphs.HELD_OUT, seed + 4))}


def main():
    import argparse

    parser = argparse.ArgumentParser(description="Non-digit evaluation through the server.")
    parser.add_argument("--model", help="an ONNX model other than model/model.onnx")
    args = parser.parse_args()
    from app import create_app

    client = create_app({"MODEL_PATH": args.model} if args.model else None).test_client()
    cases = all_cases(seed=1)
    fonts = len(drawn_digits.handwriting_fonts()
                + drawn_digits.handwriting_fonts(drawn_digits.HOLLOW_FONT_GLOBS))
    print(f"Left out before any answer, glyphs a font lacks: "
          f"{fonts * len(LETTERS) - len(cases['letters']) - len(cases['digit-shaped'])} "
          f"letters, "
          f"{fonts * len(SIGNS) - len(cases['signs'])} signs")
    print(f"{'kind':20s} {'mode':7s} {'cases':>6s} {'right':>12s} {'errors':>9s}")
    for mode in ("digit", "number"):
        everything = []
        for kind, kind_cases in cases.items():
            results = evaluate(client, kind_cases, mode)
            share = right(kind, results)
            if kind != "digit-shaped":
                everything += results
            print(f"{kind:20s} {mode:7s} {len(results):6d} {100 * share:11.2f}%"
                  f" {100 * errors(results):8.2f}%")
            if kind == "digit-shaped":  # their own digit is a right answer too
                results = [result for result in results
                           if str(result[4]) != str(DIGIT_SHAPED_LETTERS[result[1]])]
            print("    read as digits most often:", misses(results, 8))
        print(f"{'all but digit-shaped':20s} {mode:7s} {len(everything):6d} "
              f"{100 * caught(everything):11.2f}% {100 * errors(everything):8.2f}%")
        if mode == "digit":
            by_letter = collections.defaultdict(list)
            for result in everything:
                if len(result[1]) == 1:
                    by_letter[result[1]].append(result[3])
            print("    per character, caught of cases:",
                  " ".join(f"{c}:{sum(v)}/{len(v)}" for c, v in sorted(by_letter.items())))


if __name__ == "__main__":
    main()
