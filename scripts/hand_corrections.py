"""Corrections made by hand, for trying `train_mnist.py --corrections`: digits in styles the
shipped network misreads (a European 1 with its long upstroke; a 3, 6, 8 and 9 in straight
segments, as on a digital display), written here by hand as pen strokes, drawn with some
variety, and read by the app in-process; the ones it reads wrong are saved through
POST /corrections with the digits that were meant, and the store is exported as
`flask --app app corrections export` does.

    .venv/bin/python -m scripts.hand_corrections /tmp/corrections   # then:
    .venv/bin/python train_mnist.py --corrections /tmp/corrections --epochs 1 --limit 2000 \\
        --out /tmp/corr-demo
"""

import argparse
import collections
import random
import tempfile
from pathlib import Path

from tests.support import MODEL_PATH
from tests.support.images import data_uri
from training import strokes

# A digital display's segments in a unit box, y downwards: top, upper right, lower right,
# bottom, lower left, upper left, middle.
SEGMENTS = {"a": [(0.2, 0.0), (0.8, 0.0)], "b": [(0.8, 0.0), (0.8, 0.5)],
            "c": [(0.8, 0.5), (0.8, 1.0)], "d": [(0.2, 1.0), (0.8, 1.0)],
            "e": [(0.2, 0.5), (0.2, 1.0)], "f": [(0.2, 0.0), (0.2, 0.5)],
            "g": [(0.2, 0.5), (0.8, 0.5)]}


def segments(names):
    return [SEGMENTS[name] for name in names]


# Each style: the digit meant and its strokes in a unit box, y downwards. Chosen because the
# shipped model reads them wrong more often than not (other hand-written styles tried, a
# slashed 0, a closed 4, a flat-topped 3, a looped 2, were read right).
STYLES = {
    "European 1": ("1", [[(0.2, 0.35), (0.62, 0.02), (0.6, 0.98)]]),
    "segment 3": ("3", segments("abgcd")),
    "segment 6": ("6", segments("afgedc")),
    "segment 8": ("8", segments("abcdefg")),
    "segment 9": ("9", segments("abcdfg")),
}


def vary(template, rng):
    """The template's strokes with each point moved a little (a hand never repeats itself)."""
    return [[(x + rng.gauss(0, 0.02), y + rng.gauss(0, 0.02)) for x, y in stroke]
            for stroke in template]


def draw_digit(template, rng):
    placed = strokes.place_strokes(vary(template, rng), rng.uniform(150, 230),
                                   (140 + rng.uniform(-25, 25), 140 + rng.uniform(-15, 15)),
                                   rng.uniform(-10, 15))
    return strokes.png_bytes(strokes.draw_strokes(placed, (280, 280), rng.uniform(10, 26)))


def draw_number(templates, rng):
    """Two to three styles written side by side on the number canvas, apart."""
    pen, height, slant = rng.uniform(10, 22), rng.uniform(110, 170), rng.uniform(-8, 12)
    step = 520 / len(templates)
    placed = []
    for index, template in enumerate(templates):
        centre = (20 + step * (index + 0.5) + rng.uniform(-8, 8), 140 + rng.uniform(-10, 10))
        placed += strokes.place_strokes(vary(template, rng), height, centre, slant)
    return strokes.png_bytes(strokes.draw_strokes(placed, (560, 280), pen))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder to export the corrections to")
    parser.add_argument("--per-style", type=int, default=50, help="drawings of each style")
    parser.add_argument("--numbers", type=int, default=60, help="numbers of 2-3 styles")
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args(argv)
    from app import create_app
    from corrections import store

    rng = random.Random(args.seed)
    database = Path(tempfile.mkdtemp(prefix="hand-corrections-")) / "store.sqlite3"
    app = create_app({"MODEL_PATH": str(MODEL_PATH), "DATABASE_URL": f"sqlite:///{database}",
                      "CORRECTIONS_PER_MINUTE": 0})
    client = app.test_client()
    drawings = [(name, "digit", label, draw_digit(template, rng))
                for name, (label, template) in STYLES.items() for _ in range(args.per_style)]
    for _ in range(args.numbers):
        names = rng.sample(sorted(STYLES), rng.choice((2, 3)))
        drawings.append(("number", "number", "".join(STYLES[name][0] for name in names),
                         draw_number([STYLES[name][1] for name in names], rng)))
    misread = collections.Counter()
    drawn = collections.Counter()
    for name, mode, label, image in drawings:
        drawn[name] += 1
        reply = client.post("/predict", json={"image": data_uri(image), "mode": mode})
        if reply.status_code != 200:
            continue
        answer = reply.get_json()["number"]
        if answer != label:
            misread[name] += 1
            saved = client.post("/corrections", json={"image": data_uri(image), "label": label,
                                                      "answer": answer, "mode": mode})
            assert saved.status_code in (200, 201), saved.get_json()
    for name in drawn:
        print(f"{name:30} {misread[name]:3} of {drawn[name]:3} misread, saved as corrections")
    with app.app_context():
        written = store.export(store.connection(), args.out)
    print(f"Wrote {written} corrections to {args.out}")


if __name__ == "__main__":
    main()
