"""Non-digits from a real, independent stroke source: the Hershey vector fonts (Debian's
`hershey-fonts-data`, .jhf files), each glyph pen strokes as a plotter draws them. Roman, script,
Gothic, Greek, Cyrillic and Japanese letters, and the symbol fonts' mathematics, astrology,
meteorology, music and markers.

Strokes come in a unit frame, y down, like training/strokes.py's tracings, so they are drawn
on a canvas with the page's pens like a digit. What is or draws as a digit is left out by its
key, the same in every font: the digits' keys (which the symbol fonts give to symbols), the
letters people write as digits (DIGIT_SHAPED), the bars and brackets a 1 is drawn as
(ONE_SHAPED, any glyph narrower than BAR of its height, any straight stroke at a slant) and
the ring after "~"; and by font and key, the other alphabets' and the symbols' glyphs that
draw as a digit (LOOKS_LIKE_A_DIGIT). So are the marks too small to be drawn alone (DOTS) and
the dashes.
"""

import functools
from pathlib import Path

import numpy as np

from training import strokes

DIGIT_SHAPED = "0123456789OoDQIil|!ZzSsbGBgq"
ONE_SHAPED = "/\\()[]{}"
DOTS = " .,'`\"-_:;"
BAR = 0.2
# The glyph after "~" is a ring, a square or a slanted bar in most fonts: a 0 or a 1.
RING = "\x7f"
# Glyphs of other alphabets and symbols that draw as a digit, found by looking at every
# glyph drawn at 28 x 28: rings and ovals, diamonds (0), Theta, sigma (0), Zeta (2),
# Ze (3), Che (4), delta, Ve (8).
LOOKS_LIKE_A_DIGIT = {
    "greek": "Vd", "timesg": "Vd", "greekc": "FHdrt", "greeks": "FHdrt",
    "cyrilc_1": "CHRcehr", "cyrillic": "CVcdrv~",
    "markers": "Aad", "music": "$%", "symbolic": "HKn", "astrology": "#",
}
# Whole sources, to hold one out and measure a kind never seen.
FAMILIES = {
    "roman": ("futural", "futuram", "rowmand", "rowmans", "rowmant", "timesr", "timesrb",
              "timesi", "timesib"),
    "script": ("cursive", "scriptc", "scripts"),
    "gothic": ("gothgbt", "gothgrt", "gothiceng", "gothicger", "gothicita", "gothitt"),
    "greek": ("greek", "greekc", "greeks", "timesg"),
    "cyrillic": ("cyrilc_1", "cyrillic"),
    "japanese": ("japanese",),
    "symbols": ("astrology", "markers", "mathlow", "mathupp", "meteorology", "music",
                "symbolic"),
}
# For evaluation only (tests/support/non_digits.py): what trains on these glyphs leaves this
# family out, so that it measures a kind never seen.
HELD_OUT = "japanese"


FOLDER = Path("/usr/share/hershey-fonts")


def jhf_glyphs(text):
    """The glyphs of a .jhf font file's text -> [strokes], in the file's order (the ASCII
    fonts' 95 glyphs start at the space), strokes as lists of (x, y), y down.

    Each glyph is a number (5 characters), how many points follow, the first of them its
    left and right edges (3), then points as two characters each, coordinates counted from
    "R", and " R" where the pen lifts; a long glyph goes on over more lines."""
    found, lines = [], iter(text.splitlines())
    for line in lines:
        if not line.strip():
            continue
        count = int(line[5:8])
        points = line[8:]
        while len(points) < 2 * count:
            points += next(lines)
        strokes, stroke = [], []
        for index in range(2, 2 * count, 2):
            pair = points[index:index + 2]
            if pair == " R":
                strokes.append(stroke)
                stroke = []
            else:
                stroke.append((float(ord(pair[0]) - ord("R")), float(ord(pair[1]) - ord("R"))))
        found.append([*strokes, stroke])
    return found


@functools.lru_cache(maxsize=None)
def glyphs(family, folder=FOLDER):
    """[(font, key, strokes)] of every glyph of a family (FAMILIES) kept as a non-digit,
    strokes as lists of (x, y) points, y down, the glyph 1 high; `key` is the character the
    glyph's place in the file gives it."""
    found = []
    for font in FAMILIES[family]:
        text = (Path(folder) / f"{font}.jhf").read_text(encoding="ascii")
        for index, lines in enumerate(jhf_glyphs(text)):
            key = chr(ord(" ") + index)
            if (key in DIGIT_SHAPED + ONE_SHAPED + DOTS + RING
                    or key in LOOKS_LIKE_A_DIGIT.get(font, "")):
                continue
            lines = [stroke for stroke in lines if len(stroke) >= 2]
            if lines and not _bar(lines) and not _straight(lines):
                found.append((font, key, unit_frame(lines)))
    return found


def _bar(lines):
    """Whether a glyph is narrower than BAR of its height (a 1), or flatter than that of its
    width (a dash: placed by its height, it would have none)."""
    x0, y0, x1, y1 = strokes.strokes_box(lines)
    return x1 - x0 < BAR * (y1 - y0) or y1 - y0 < BAR * (x1 - x0)


def _straight(lines):
    """Whether a glyph's points lie along one straight line at any slant (a 1): across
    the line they spread less than BAR of their spread along it."""
    points = np.array([point for stroke in lines for point in stroke], float)
    spread = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return spread[-1] < BAR * spread[0]


def unit_frame(lines):
    """Strokes scaled to 1 high (or wide, when flat), their box's corner at (0, 0)."""
    x0, y0, x1, y1 = strokes.strokes_box(lines)
    size = max(y1 - y0, x1 - x0, 1e-6)
    return [[((x - x0) / size, (y - y0) / size) for x, y in stroke] for stroke in lines]

