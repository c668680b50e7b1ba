"""plain_png and image_ink.read_ink's own PNG decoding give exactly Pillow's pixels and ink maps.

PNGs are written here row by row with each of PNG's five filters, so every path of the decoder
(numpy for None, Sub, Up and Paeth rows that settle; Pillow for Average rows and Paeth rows
that do not, and for whole images with many of them) is taken on purpose.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from drawing import decoding, errors, image_ink, plain_png
from support.images import encode

MODES = {"L": 0, "LA": 4, "RGB": 2, "RGBA": 6}  # mode -> PNG colour type
FILTER_PATTERNS = {  # the filter of each row, repeating
    "None": [0], "Sub": [1], "Up": [2], "Average": [3], "Paeth": [4],
    "mixed simple": [1, 2, 2, 0, 2], "a few Paeth rows among Up": [2] * 11 + [4],
    "Average and Paeth runs": [2, 2, 3, 3, 1, 4, 4, 0],
    "two Paeth rows among Up": [2] * 139 + [4],  # rows 139 and 279 of a 280-row canvas
}


def filtered_png(pixels, mode, pattern):
    """uint8 [H, W, bands] pixels -> PNG bytes, row r filtered with pattern[r % len]."""
    height, bands = pixels.shape[0], len(mode)
    rows = pixels.reshape(height, -1).astype(np.int16)
    scanlines = []
    for number, row in enumerate(rows):
        kind = pattern[number % len(pattern)]
        above = rows[number - 1] if number else np.zeros_like(row)
        left = np.concatenate([np.zeros(bands, np.int16), row[:-bands]])
        upper_left = np.concatenate([np.zeros(bands, np.int16), above[:-bands]])
        estimate = left + above - upper_left
        paeth = np.where((abs(estimate - left) <= abs(estimate - above))
                         & (abs(estimate - left) <= abs(estimate - upper_left)), left,
                         np.where(abs(estimate - above) <= abs(estimate - upper_left), above,
                                  upper_left))
        predicted = [0, left, above, (left + above) // 2, paeth][kind]
        scanlines.append(bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes())

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", pixels.shape[1], height, 8, MODES[mode], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(scanlines))) + chunk(b"IEND", b""))


def pillow_pixels(data):
    image = Image.open(io.BytesIO(data))
    return np.asarray(image).reshape(image.height, image.width, -1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pattern", FILTER_PATTERNS, ids=list(FILTER_PATTERNS))
def test_every_band_decodes_to_pillows_pixels(mode, pattern):
    rng = np.random.default_rng(len(mode) * 10 + len(pattern))
    pixels = rng.integers(0, 256, (23, 37, len(mode)), dtype=np.uint8)
    data = filtered_png(pixels, mode, FILTER_PATTERNS[pattern])
    assert np.array_equal(pillow_pixels(data), pixels)  # the test's own encoder is right
    _, scanlines = plain_png.scanlines(data, decoding.MAX_IMAGE_PIXELS)
    for band in range(len(mode)):
        decoded = plain_png.decode_bands(scanlines, len(mode), [band])
        assert np.array_equal(decoded[:, :, 0], pixels[:, :, band]), \
            f"{mode} band {band} with {pattern} filters decodes differently from Pillow"
    if len(mode) >= 3:
        decoded = plain_png.decode_bands(scanlines, len(mode), [0, 1, 2])
        assert np.array_equal(decoded, pixels[:, :, :3]), f"RGB of {mode} with {pattern}"


def paeth_filtered(row, above, bands):
    """The Paeth filter of one uint8 row of `bands`-band pixels under `above`, by the test's
    own encoder: its second scanline without the filter byte."""
    pixels = np.stack([above, row]).reshape(2, -1, bands)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bands]
    _, scanlines = plain_png.scanlines(filtered_png(pixels, mode, [0, 4]),
                                       decoding.MAX_IMAGE_PIXELS)
    return scanlines[1, 1:]


@pytest.mark.parametrize("bands", [1, 2, 3, 4])
def test_paeth_rows_are_undone_exactly_or_left_to_pillow(bands):
    rng = np.random.default_rng(bands)
    settled = 0
    for trial in range(60):
        width = int(rng.integers(1, 60))
        above = rng.integers(0, 256, width * bands, dtype=np.uint8)
        if trial % 2:  # a row like the one above it, as in a drawing
            row = np.clip(above.astype(int) + rng.integers(-3, 4, above.shape), 0, 255)
            row = row.astype(np.uint8)
        else:
            row = rng.integers(0, 256, width * bands, dtype=np.uint8)
        decoded = plain_png._undo_paeth(paeth_filtered(row, above, bands), above, bands)
        if decoded is not None:
            settled += 1
            assert np.array_equal(decoded, row), f"Paeth row {trial} of {bands} bands"
    assert settled >= 30, f"only {settled} of 60 Paeth rows settled in numpy"


def test_a_drawings_paeth_rows_are_undone_in_numpy():
    image = drawn_seven("black on white").convert("RGB")
    pixels = np.asarray(image)
    data = filtered_png(pixels, "RGB", [2] * 39 + [4])  # 7 Paeth rows, as Pillow might write
    _, scanlines = plain_png.scanlines(data, decoding.MAX_IMAGE_PIXELS)
    paeth_rows = np.flatnonzero(scanlines[:, 0] == 4)
    assert len(paeth_rows) == 7
    for row in paeth_rows:  # a row that does not settle in numpy would go to Pillow
        undone = plain_png._undo_paeth(scanlines[row, 1:], pixels[row - 1].ravel(), 3)
        assert undone is not None, f"Paeth row {row} of a drawing does not settle in numpy"
    assert np.array_equal(plain_png.decode_bands(scanlines, 3, [0, 1, 2]), pixels)


@pytest.mark.parametrize("pattern", FILTER_PATTERNS, ids=list(FILTER_PATTERNS))
def test_opaque_and_grey_are_recognised_from_the_filtered_bytes(pattern):
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, (19, 29, 1), dtype=np.uint8)
    pixels = np.concatenate([grey, grey, grey, np.full_like(grey, 255)], axis=2)
    _, scanlines = plain_png.scanlines(filtered_png(pixels, "RGBA", FILTER_PATTERNS[pattern]),
                                       decoding.MAX_IMAGE_PIXELS)
    assert plain_png.is_opaque(scanlines, 4), "an opaque image was judged transparent"
    assert plain_png.is_grey(scanlines, 4), "a grey image was judged coloured"
    pixels[9, 14] = (10, 11, 10, 254)  # one pixel neither grey nor opaque
    _, scanlines = plain_png.scanlines(filtered_png(pixels, "RGBA", FILTER_PATTERNS[pattern]),
                                       decoding.MAX_IMAGE_PIXELS)
    assert not plain_png.is_opaque(scanlines, 4)
    assert not plain_png.is_grey(scanlines, 4)


def drawn_seven(convention):
    """A 7 on a 280x280 canvas as RGBA in one of the colour conventions, with a colour tint."""
    coverage = Image.new("L", (280, 280))
    ImageDraw.Draw(coverage).line([(80, 60), (200, 60), (120, 230)], fill=255, width=18)
    ink = {"transparent": (20, 30, 200), "black on white": (0, 0, 0),
           "white on black": (255, 255, 255), "blue on cream": (30, 40, 150)}[convention]
    paper = {"transparent": (0, 0, 0, 0), "black on white": (255, 255, 255, 255),
             "white on black": (0, 0, 0, 255), "blue on cream": (250, 240, 210, 255)}[convention]
    return Image.composite(Image.new("RGBA", coverage.size, ink + (255,)),
                           Image.new("RGBA", coverage.size, paper), coverage)


@pytest.mark.parametrize("convention, mode", [
    (convention, mode)
    for convention in ("transparent", "black on white", "white on black", "blue on cream")
    for mode in ("RGBA", "RGB", "LA", "L")
    if "A" in mode or convention != "transparent"  # without alpha nothing is transparent
])
@pytest.mark.parametrize("pattern", ["Pillow's own", "Up", "two Paeth rows among Up",
                                     "a few Paeth rows among Up"])
def test_read_ink_equals_ink_map_of_pillows_image(convention, mode, pattern):
    image = drawn_seven(convention).convert(mode)
    if pattern == "Pillow's own":
        data = encode(image, "PNG")
    else:
        pixels = np.asarray(image).reshape(image.height, image.width, -1)
        data = filtered_png(pixels, mode, FILTER_PATTERNS[pattern])
    expected = image_ink.ink_map(decoding.open_image(data))
    assert np.array_equal(image_ink.read_ink(data), expected), \
        f"read_ink differs from the Pillow path for {convention} {mode} ({pattern})"


@pytest.mark.parametrize("convention", ["ink_on_transparent", "black_on_white"])
def test_a_png_costly_to_undo_in_numpy_is_read_from_the_rows_inflated_once(draw_mnist_digit,
                                                                           convention):
    # Pillow writes an anti-aliased drawing with several Paeth rows: Pillow unfilters the
    # rows zlib-ng inflated. The ink comes from those rows alone, not the file's bytes.
    image, _ = draw_mnist_digit(0, convention=convention)
    data = encode(image if convention == "ink_on_transparent" else image.convert("RGB"), "PNG")
    mode, scanlines = plain_png.scanlines(data, decoding.MAX_IMAGE_PIXELS)
    assert not plain_png.cheap_to_decode(scanlines), "the test's PNG has too few Paeth rows"
    expected = image_ink.ink_map(decoding.open_image(data))
    assert np.array_equal(image_ink.ink_from_scanlines(mode, scanlines), expected)
    assert np.array_equal(image_ink.read_ink(data), expected)


@pytest.mark.parametrize("damage", ["an unknown filter type", "a short IDAT", "bad zlib data"])
def test_a_damaged_plain_png_is_refused_as_invalid(damage):
    pixels = np.full((20, 30, 4), 255, np.uint8)
    data = filtered_png(pixels, "RGBA", [2])
    header_end = data.index(b"IDAT") - 4
    _, scanlines = plain_png.scanlines(data, decoding.MAX_IMAGE_PIXELS)
    raw = bytearray(scanlines.tobytes())
    if damage == "an unknown filter type":
        raw[len(scanlines) // 2 * scanlines.shape[1]] = 7  # the filter byte of a middle row
        body = zlib.compress(bytes(raw))
    elif damage == "a short IDAT":
        body = zlib.compress(bytes(raw[:-50]))
    else:
        body = b"not zlib at all"
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(
        ">I", zlib.crc32(b"IDAT" + body))
    damaged = data[:header_end] + chunk + data[data.index(b"IEND") - 4:]
    with pytest.raises(errors.InvalidImage):
        image_ink.read_ink(damaged)
