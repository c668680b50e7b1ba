"""Marks that are not digits, for teaching the digit network its "not a digit" class: letters
built from pen strokes, signs and shapes, scribbles, and two training digits drawn over each
other. Each comes as strokes in a unit frame (lists of (x, y), y down, as training/strokes.py's
tracings), which train_mnist.py draws on a canvas like a digit and reads back through the
server's pipeline.

Used by train_mnist.py only. Nothing here comes from an evaluation set: the letters are
drawn from the stroke plans below, not from the handwriting fonts the evaluation uses.
Letters that people write as digits (O, o, I, l, and D, a 0 with a flat side) and shapes
a 0 may look like (a ring, a square, a diamond, rings in rings) are left out on purpose: a
drawn 0 is all of those.
"""

import math

import numpy as np

JITTER = 0.035    # each plan point moves by up to this share of the mark's height
KINDS = {"letter": 0.4, "shape": 0.3, "scribble": 0.15, "overlaid digits": 0.15}


def arc(cx, cy, rx, ry, start, end, points=12):
    """Points along an ellipse's arc from `start` to `end` degrees (0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a)))
            for a in np.linspace(start, end, points)]


# Letters as pen plans in a box about 1 high: each a list of strokes.
LETTERS = {
    "A": [[(0, 1), (0.4, 0), (0.8, 1)], [(0.18, 0.6), (0.62, 0.6)]],
    "C": [arc(0.4, 0.5, 0.4, 0.5, -50, -310)],
    "E": [[(0.7, 0), (0, 0), (0, 1), (0.7, 1)], [(0, 0.5), (0.55, 0.5)]],
    "F": [[(0.7, 0), (0, 0), (0, 1)], [(0, 0.5), (0.55, 0.5)]],
    "H": [[(0, 0), (0, 1)], [(0.7, 0), (0.7, 1)], [(0, 0.5), (0.7, 0.5)]],
    "K": [[(0, 0), (0, 1)], [(0.65, 0), (0, 0.6)], [(0.2, 0.45), (0.7, 1)]],
    "L": [[(0, 0), (0, 1), (0.6, 1)]],
    "M": [[(0, 1), (0.05, 0), (0.45, 0.65), (0.85, 0), (0.9, 1)]],
    "N": [[(0, 1), (0, 0), (0.7, 1), (0.7, 0)]],
    "P": [[(0, 1), (0, 0)] + arc(0.2, 0.27, 0.4, 0.27, -90, 90) + [(0, 0.54)]],
    "Q": [arc(0.45, 0.5, 0.45, 0.5, 0, 360, 20), [(0.5, 0.7), (0.95, 1.05)]],
    "R": [[(0, 1), (0, 0)] + arc(0.2, 0.27, 0.4, 0.27, -90, 90) + [(0, 0.54)],
          [(0.2, 0.54), (0.65, 1)]],
    "T": [[(0, 0), (0.8, 0)], [(0.4, 0), (0.4, 1)]],
    "U": [[(0, 0)] + arc(0.35, 0.62, 0.35, 0.38, 180, 0) + [(0.7, 0)]],
    "V": [[(0, 0), (0.35, 1), (0.7, 0)]],
    "W": [[(0, 0), (0.2, 1), (0.45, 0.35), (0.7, 1), (0.9, 0)]],
    "X": [[(0, 0), (0.7, 1)], [(0.7, 0), (0, 1)]],
    "Y": [[(0, 0), (0.35, 0.5), (0.7, 0)], [(0.35, 0.5), (0.35, 1)]],
    "a": [arc(0.3, 0.7, 0.3, 0.3, -30, -390, 16), [(0.6, 0.4), (0.6, 1), (0.7, 1.05)]],
    "e": [[(0.05, 0.7), (0.6, 0.7)] + arc(0.33, 0.7, 0.3, 0.3, 0, -300, 14)],
    "h": [[(0, 0), (0, 1)], [(0, 0.7)] + arc(0.28, 0.7, 0.28, 0.25, 180, 360, 8) + [(0.56, 1)]],
    "k": [[(0, 0), (0, 1)], [(0.5, 0.45), (0, 0.75), (0.55, 1)]],
    "m": [[(0, 0.4), (0, 1)], [(0, 0.6)] + arc(0.2, 0.6, 0.2, 0.2, 180, 360, 8) + [(0.4, 1)],
          [(0.4, 0.6)] + arc(0.6, 0.6, 0.2, 0.2, 180, 360, 8) + [(0.8, 1)]],
    "n": [[(0, 0.4), (0, 1)], [(0, 0.65)] + arc(0.25, 0.65, 0.25, 0.25, 180, 360, 8)
          + [(0.5, 1)]],
    "r": [[(0, 0.4), (0, 1)], [(0, 0.65)] + arc(0.25, 0.65, 0.25, 0.22, 180, 300, 6)],
    "t": [[(0.25, 0), (0.25, 0.9), (0.5, 1)], [(0, 0.35), (0.55, 0.35)]],
    "u": [[(0, 0.4)] + arc(0.25, 0.75, 0.25, 0.25, 180, 0, 8) + [(0.5, 0.4), (0.5, 1)]],
    "v": [[(0, 0.4), (0.3, 1), (0.6, 0.4)]],
    "w": [[(0, 0.4), (0.18, 1), (0.4, 0.55), (0.62, 1), (0.8, 0.4)]],
    "x": [[(0, 0.4), (0.6, 1)], [(0.6, 0.4), (0, 1)]],
    "y": [[(0, 0.3), (0.3, 0.75)], [(0.6, 0.3), (0.15, 1.2)]],
    "f": [arc(0.5, 0.2, 0.2, 0.2, -20, -180, 6) + [(0.3, 1)], [(0.05, 0.45), (0.6, 0.45)]],
    "&": [[(0.8, 1), (0.15, 0.35)] + arc(0.3, 0.2, 0.17, 0.2, 150, -150, 10)
          + [(0.05, 0.75)] + arc(0.3, 0.75, 0.25, 0.25, 180, 20, 8) + [(0.8, 0.55)]],
}


def letter(rng):
    """A letter's strokes from LETTERS."""
    return [list(stroke) for stroke in LETTERS[rng.choice(sorted(LETTERS))]]


def _polygon(sides, turn, step=1):
    corners = [(0.5 + 0.5 * math.cos(turn + 2 * math.pi * k * step / sides),
                0.5 + 0.5 * math.sin(turn + 2 * math.pi * k * step / sides))
               for k in range(sides + 1)]
    return [corners]


def _star(points, turn, inner):
    path = []
    for k in range(2 * points + 1):
        radius = 0.5 if k % 2 == 0 else 0.5 * inner
        angle = turn + math.pi * k / points
        path.append((0.5 + radius * math.cos(angle), 0.5 + radius * math.sin(angle)))
    return [path]


def _heart():
    return [arc(0.27, 0.3, 0.23, 0.22, 150, -180, 8) + [(0.5, 0.95)],
            arc(0.73, 0.3, 0.23, 0.22, 30, 360, 8)[::-1] + [(0.5, 0.95)]]


def _smiley(rng):
    mouth = rng.uniform(0.1, 0.2)
    eyes = [arc(x, 0.35, 0.06, 0.07, 0, 360, 8) for x in (0.33, 0.67)]
    return [arc(0.5, 0.5, 0.5, 0.5, 0, 360, 24), *eyes,
            arc(0.5, 0.55, 0.25, mouth, 20, 160, 8)]


def _spiral(rng):
    turns = rng.uniform(1.6, 3.2)
    angles = np.linspace(0, 2 * math.pi * turns, 40)
    return [[(0.5 + 0.5 * (a / angles[-1]) * math.cos(a), 0.5 + 0.5 * (a / angles[-1]) * math.sin(a))
             for a in angles]]


def _hatching(rng):
    """A filled patch, as a pen fills a shape back and forth."""
    lines = rng.randint(5, 10)
    return [[(0.1 + 0.8 * (k % 2), k / (lines - 1)) for k in range(lines)]]


def _bars(count, length):
    return [[(0.5 - length / 2, k / max(count - 1, 1)), (0.5 + length / 2, k / max(count - 1, 1))]
            for k in range(count)]


SHAPES = {
    "triangle": lambda rng: _polygon(3, rng.uniform(0, 2 * math.pi)),
    "pentagram": lambda rng: _polygon(5, rng.uniform(0, 2 * math.pi), step=2),
    "star": lambda rng: _star(rng.choice([4, 5, 6]), rng.uniform(0, 2 * math.pi),
                              rng.uniform(0.3, 0.55)),
    "plus": lambda rng: [[(0.5, 0), (0.5, 1)], [(0, 0.5), (1, 0.5)]],
    "cross": lambda rng: [[(0, 0), (1, 1)], [(1, 0), (0, 1)]],
    "hash": lambda rng: [[(0.35, 0), (0.3, 1)], [(0.7, 0), (0.65, 1)],
                         [(0, 0.33), (1, 0.33)], [(0, 0.66), (1, 0.66)]],
    "equals": lambda rng: _bars(rng.choice([2, 3]), 1.0),
    "arrow": lambda rng: [[(0, 0.5), (1, 0.5)], [(0.65, 0.2), (1, 0.5), (0.65, 0.8)]],
    "up arrow": lambda rng: [[(0.5, 1), (0.5, 0)], [(0.15, 0.35), (0.5, 0), (0.85, 0.35)]],
    "check": lambda rng: [[(0, 0.55), (0.35, 1), (1, 0)]],
    "heart": lambda rng: _heart(),
    "smiley": _smiley,
    "spiral": _spiral,
    "crossed ring": lambda rng: [arc(0.5, 0.5, 0.5, 0.5, 0, 360, 24), [(0.5, -0.1), (0.5, 1.1)],
                                 [(-0.1, 0.5), (1.1, 0.5)]],
    "house": lambda rng: [[(0, 1), (0, 0.4), (0.5, 0), (1, 0.4), (1, 1), (0, 1)]],
    "zigzag": lambda rng: [[(k / 5, (k % 2) * rng.uniform(0.5, 1)) for k in range(6)]],
    "wave": lambda rng: [[(t, 0.5 + 0.4 * math.sin(t * rng.uniform(2.5, 4.5) * math.pi))
                          for t in np.linspace(0, 1, 24)]],
    "filled patch": _hatching,
    "grid": lambda rng: [[(k / 3, 0), (k / 3, 1)] for k in range(4)]
                        + [[(0, k / 3), (1, k / 3)] for k in range(4)],
    "percent": lambda rng: [[(0.9, 0), (0.1, 1)], arc(0.2, 0.2, 0.15, 0.18, 0, 360, 10),
                            arc(0.8, 0.8, 0.15, 0.18, 0, 360, 10)],
}


def shape(rng):
    """A sign or shape's strokes from SHAPES."""
    return SHAPES[rng.choice(sorted(SHAPES))](rng)


def scribble(rng):
    """One to three smooth random curves through random points of the unit square."""
    result = []
    for _ in range(rng.choice([1, 1, 2, 3])):
        points = np.array([(rng.random(), rng.random()) for _ in range(rng.randint(5, 12))])
        steps = np.linspace(0, len(points) - 1, 8 * len(points))
        # Catmull-Rom through the points: smooth, as a hand moves
        padded = np.vstack([points[:1], points, points[-1:]])
        curve = []
        for s in steps:
            k = min(int(s), len(points) - 2)
            t = s - k
            p0, p1, p2, p3 = padded[k:k + 4]
            curve.append(tuple(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3)
                                      * t * t + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3)))
        result.append(curve)
    return result


def overlaid_digits(first, second, rng):
    """Two traced digits (strokes in [0, 1]) of different classes drawn over each other, the
    second moved sideways by a fifth to a third of the height and turned a little: no digit,
    though made of digit strokes."""
    turn = math.radians(rng.uniform(-25, 25))
    dx = rng.choice([-1, 1]) * rng.uniform(0.2, 0.35)
    dy = rng.uniform(-0.15, 0.15)
    cos, sin = math.cos(turn), math.sin(turn)
    moved = [[(0.5 + dx + (x - 0.5) * cos - (y - 0.5) * sin,
               0.5 + dy + (x - 0.5) * sin + (y - 0.5) * cos) for x, y in stroke]
             for stroke in second]
    return [list(stroke) for stroke in first] + moved


def jittered(strokes, rng, amount=JITTER):
    """Each point moved at random by up to `amount` of the mark's height, and the whole
    stretched a little, so no two drawings of a plan are the same."""
    ys = [y for stroke in strokes for _, y in stroke]
    height = max(max(ys) - min(ys), 0.3)
    stretch_x, stretch_y = rng.uniform(0.8, 1.25), rng.uniform(0.8, 1.25)
    return [[(x * stretch_x + rng.uniform(-amount, amount) * height,
              y * stretch_y + rng.uniform(-amount, amount) * height) for x, y in stroke]
            for stroke in strokes]


def non_digit(rng, traced_pairs, kinds=KINDS):
    """(kind, strokes) of one random mark that is not a digit, its kind drawn with the
    weights `kinds`. `traced_pairs()` gives two traced training digits of different classes
    (for the overlaid kind)."""
    kind = rng.choices(sorted(kinds), [kinds[k] for k in sorted(kinds)])[0]
    if kind == "overlaid digits":
        return kind, overlaid_digits(*traced_pairs(), rng)
    plan = {"letter": letter, "shape": shape, "scribble": scribble}[kind](rng)
    return kind, jittered(plan, rng)
