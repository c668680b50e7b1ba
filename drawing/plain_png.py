"""Plain PNGs, what a browser's canvas and most clients send, decoded a band at a time.

`scanlines` inflates a plain PNG (8 bits per band, grey or RGB with or without alpha, not
interlaced, nothing that changes its pixels) with zlib-ng, many times faster than the zlib
Pillow uses on a canvas's long runs of blank pixels; `decode_bands` undoes the rows' filters
for only the bands asked for (the alpha of a transparent canvas, one band of a grey image);
`is_opaque` and `is_grey` tell which are needed from the filtered bytes themselves. Where
many rows are Average or Paeth filtered (as Pillow and libpng write drawings and photos),
`cheap_to_decode` says no and `to_image` hands the inflated rows to Pillow's unfiltering in
C, without inflating them again. image_ink.read_ink uses them; anything not plain goes through
Pillow there.

A file is plain only where Pillow reads it too, to the same pixels: each check by which
Pillow's PNG reader can refuse such a file is made here (`_as_pillow_reads`), and a file that
fails one is left to Pillow's path, which refuses it with its message.
"""

import struct
import zlib

import numpy as np
import zlib_ng.zlib_ng as zlib_ng
from PIL import Image, PngImagePlugin

FAST_PNG_PIXELS = 1024 * 1024    # larger PNGs are left to Pillow
# Chunks that do not change the pixels Pillow decodes: a PNG with only these is plain.
PLAIN_PNG_CHUNKS = {b"IHDR", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"pHYs",
                    b"tIME", b"bKGD"}
# The fewest bytes of each chunk that Pillow parses: a shorter one makes it refuse the file.
MIN_CHUNK_LENGTHS = {b"IHDR": 13, b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9}
MAX_PAETH_PASSES = 8            # a Paeth row that takes more passes goes to Pillow
MAX_ROWS_IN_ORDER = 2           # more Average and Paeth rows: Pillow unfilters the whole image
PNG_COLOUR_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}  # colour type -> mode, 8-bit only
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def scanlines(data, max_pixels):
    """(mode, uint8 [H, 1 + W * bands] filtered scanlines) of a plain PNG; None for others.

    Plain: 8 bits per band, grey or RGB with or without alpha, not interlaced, no chunk that
    changes the pixels (palette, transparency key, EXIF), at most FAST_PNG_PIXELS, and read
    by Pillow as it is read here (`_as_pillow_reads`). zlib-ng inflates a canvas's long runs
    of blank pixels many times faster than Pillow's zlib.
    """
    chunks = _chunks(data)
    if chunks is None or not _as_pillow_reads(chunks):
        return None
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1][:13])
    mode = PNG_COLOUR_MODES.get(colour)
    if (mode is None or depth != 8 or compression or filtering or interlace
            or not 0 < width * height <= min(FAST_PNG_PIXELS, max_pixels)):
        return None
    size = height * (1 + width * len(mode))
    try:
        inflated = zlib_ng.decompressobj().decompress(
            b"".join(body for kind, body, _ in chunks if kind == b"IDAT"), size + 1)
    except zlib_ng.error:
        return None  # damaged: Pillow's path gives the error its message
    if len(inflated) != size:
        return None
    rows = np.frombuffer(inflated, np.uint8).reshape(height, -1)
    if rows[:, 0].max() > 4:
        return None  # not a PNG filter: Pillow's path refuses the file with a message
    return mode, rows


def cheap_to_decode(scanlines):
    """Whether decode_bands is cheaper than Pillow's unfiltering of the whole image: at most
    MAX_ROWS_IN_ORDER rows are Average or Paeth filtered (each is decoded on its own)."""
    return np.count_nonzero(scanlines[:, 0] > 2) <= MAX_ROWS_IN_ORDER


def to_image(mode, scanlines):
    """The Pillow image of a plain PNG's filtered scanlines, by Pillow's PNG decoder (zlib
    and unfiltering, in C) on them stored without compression: nothing is inflated again."""
    height, width = len(scanlines), (scanlines.shape[1] - 1) // len(mode)
    return Image.frombytes(mode, (width, height), zlib_ng.compress(scanlines.tobytes(), 0),
                           "zip", mode)


def _chunks(data):
    """[(chunk type, chunk data, CRC), ...] of a PNG file up to IEND; None if it is not one or
    is cut short before IEND (what follows IEND is ignored, as Pillow ignores it)."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    chunks, position = [], 8
    while position + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data):
            return None
        chunks.append((kind, data[position + 8:end - 4], int.from_bytes(data[end - 4:end], "big")))
        position = end
        if kind == b"IEND":
            return chunks
    return None


def _as_pillow_reads(chunks):
    """Whether Pillow reads a PNG of these chunks (from `_chunks`) and decodes the pixels that
    `scanlines` decodes: all are plain; IHDR is the first and only one (Pillow takes the last
    before the image data); the IDAT chunks are one run (Pillow decodes the first run only);
    each chunk before them has its right CRC; each chunk has the bytes Pillow parses in it,
    and an iCCP chunk a profile Pillow can read.

    Pillow checks the CRCs of the chunks before the image data only: those of IDAT and of the
    chunks after it are read past, so they are not computed here either. It parses the chunks
    after the image data as it parses those before.
    """
    kinds = [kind for kind, _, _ in chunks]
    idat = [number for number, kind in enumerate(kinds) if kind == b"IDAT"]
    if (not set(kinds) <= PLAIN_PNG_CHUNKS or kinds[0] != b"IHDR" or kinds.count(b"IHDR") > 1
            or not idat or idat[-1] - idat[0] + 1 != len(idat)):
        return False
    header = chunks[:idat[0]]
    if any(zlib_ng.crc32(body, zlib_ng.crc32(kind)) != crc for kind, body, crc in header):
        return False
    return all(len(body) >= MIN_CHUNK_LENGTHS.get(kind, 0)
               and (kind != b"iCCP" or _pillow_reads_iccp(body)) for kind, body, _ in chunks)


def _pillow_reads_iccp(body):
    """Whether Pillow reads an iCCP chunk's data without refusing the file: a name ended by a
    NUL, compression method 0, and a profile that inflates to at most MAX_TEXT_CHUNK bytes
    (one zlib cannot inflate is dropped, not refused). Inflated by zlib, as Pillow inflates
    it, so that the limit falls where Pillow's does."""
    name_end = body.find(b"\0")
    if name_end < 0 or body[name_end + 1:name_end + 2] != b"\0":
        return False
    inflater = zlib.decompressobj()
    try:
        inflater.decompress(body[name_end + 2:], PngImagePlugin.MAX_TEXT_CHUNK)
    except zlib.error:
        return True
    return not inflater.unconsumed_tail


def decode_bands(scanlines, bands, chosen):
    """uint8 [H, W, len(chosen)] pixels of the chosen bands (indices) of filtered PNG
    scanlines with `bands` bands per pixel (filter types checked by `scanlines`).

    PNG's filters predict a byte from the same band only, so bands decode independently.
    None rows are the pixels; a Sub row is a running sum along the row; Up rows are running
    sums down each column from the last row that is not Up, all taken in one pass; all
    modulo 256. Average and Paeth rows need the decoded row above them, so they are taken
    in order, between those passes: Paeth rows in numpy (`_undo_paeth`), Average rows, and
    Paeth rows that do not settle, by Pillow as a two-row PNG. Each costs about as much as
    Pillow's unfiltering of a whole small image: `cheap_to_decode` tells when to leave the
    whole image to Pillow instead (`to_image`).
    """
    kinds = scanlines[:, 0]
    height, count = len(kinds), len(chosen)
    pixels = scanlines[:, 1:].reshape(height, -1, bands)
    width = pixels.shape[1]
    values = np.array(pixels[:, :, chosen[0]] if count == 1
                      else pixels[:, :, chosen].reshape(height, width * count))
    sub = kinds == 1
    if sub.any():
        values[sub] = np.cumsum(values[sub].reshape(-1, width, count), axis=1,
                                dtype=np.uint8).reshape(-1, width * count)
    start = 0
    for row in [*np.flatnonzero(kinds > 2).tolist(), height]:
        _undo_up_rows(values, kinds, start, row)
        if row == height:
            break
        above = values[row - 1] if row else np.zeros(width * count, np.uint8)
        decoded = _undo_paeth(values[row], above, count) if kinds[row] == 4 else None
        if decoded is None:  # one row of `count` bands under the decoded row above it
            two_rows = np.array([np.concatenate([[0], above]),
                                 np.concatenate([[kinds[row]], values[row]])], np.uint8)
            decoded = _unfilter_with_pillow(two_rows, count)[1]
        values[row] = decoded
        start = row + 1
    return values.reshape(height, width, count)


def _undo_up_rows(values, kinds, start, end):
    """Decode, in place, the Up rows among rows start <= r < end of `values`, none of which
    is Average or Paeth; the row above `start` is decoded already (zeros above the top).

    An Up row is the sum down its column from the nearest row above that is not Up (or from
    row start - 1): a difference of one running sum over all the rows, modulo 256.
    """
    up = kinds[start:end] == 2
    if not up.any():
        return
    first = max(start - 1, 0)
    rows = values[first:end]
    resets = np.concatenate([[True], ~up]) if start else ~up  # rows that are pixels already
    resets[0] = True  # the decoded row above, or the top row (under zeros: pixels already)
    if not resets[1:].any():  # Up rows all the way down, as a browser's canvas writes them
        np.cumsum(rows, axis=0, dtype=np.uint8, out=rows)
        return
    sums = np.zeros((len(rows) + 1, rows.shape[1]), np.uint8)
    np.cumsum(rows, axis=0, dtype=np.uint8, out=sums[1:])
    last_reset = np.maximum.accumulate(np.where(resets, np.arange(len(rows)), 0))
    rows[:] = sums[1:] - sums[last_reset]


def _undo_paeth(row, above, bands):
    """A Paeth-filtered row of uint8 pixels with `bands` bands, under the decoded row `above`
    -> the decoded row, or None if it does not settle in MAX_PAETH_PASSES passes.

    Paeth predicts each byte from the decoded byte to its left (a), above (b) or above-left
    (c), whichever is nearest to a + b - c: a chain along the row. Guess the row, choose each
    byte's predictor from the guess, decode (a running sum from each byte predicted from b
    or c), and repeat until the choices no longer change. Choices that agree with the
    decoded row are the filter's own, so the row is exact; each pass fixes at least the
    first wrong choice, and a row like the one above it settles in two.
    """
    width = len(row) // bands
    if bands > 1:  # one band after another: bands do not predict each other
        row, above = row.reshape(width, bands).T.ravel(), above.reshape(width, bands).T.ravel()
    first = np.zeros(len(row), bool)
    first[::width] = True  # nothing to the left of these

    def shifted_right(values):  # each byte's left neighbour, 0 where there is none
        result = np.empty(len(values), np.int16)
        result[1:] = values[:-1]
        result[first] = 0
        return result

    b = above.astype(np.int16)
    c = shifted_right(b)
    from_b, from_c = (row + b).astype(np.uint8), (row + c).astype(np.uint8)
    to_a, b_minus_2c = np.abs(b - c), b - 2 * c  # p - a = b - c; p - c = a + b - 2c
    running = np.cumsum(row, dtype=np.uint8)
    positions = np.arange(len(row))
    left, previous, decoded = c, None, None  # the first guess: the row above, shifted right
    for _ in range(MAX_PAETH_PASSES):
        to_b, to_c = np.abs(left - c), np.abs(left + b_minus_2c)
        use_a = (to_a <= to_b) & (to_a <= to_c)
        use_b = to_b <= to_c
        choice = 2 * use_a.view(np.uint8) + use_b  # 2 or 3: a, 1: b, 0: c
        if previous is not None and np.array_equal(choice, previous):
            return decoded if bands == 1 else decoded.reshape(bands, width).T.ravel()
        previous = choice
        start = np.where(use_a, row, np.where(use_b, from_b, from_c))
        restart = np.maximum.accumulate(np.where(use_a & ~first, 0, positions))
        decoded = start[restart] + running - running[restart]
        left = shifted_right(decoded)
    return None


def _unfilter_with_pillow(scanlines, bands):
    """uint8 [H, 1 + W * bands] filtered PNG scanlines -> uint8 [H, W * bands] pixels."""
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bands]
    return np.asarray(to_image(mode, scanlines)).reshape(len(scanlines), -1)


def grey_png(pixels):
    """uint8 [H, W] grey pixels -> the bytes of a plain PNG of them (rows unfiltered): a few
    microseconds for a preview, where Pillow's encoder spends most of its time in Python."""
    height, width = pixels.shape
    rows = np.zeros((height, width + 1), np.uint8)  # each row: filter type 0, then its bytes
    rows[:, 1:] = pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"".join([PNG_SIGNATURE, _chunk(b"IHDR", header),
                     _chunk(b"IDAT", zlib_ng.compress(rows.tobytes())), _chunk(b"IEND", b"")])


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib_ng.crc32(data, zlib_ng.crc32(kind))))


def is_opaque(scanlines, bands):
    """Whether the alpha band (the last) is 255 in every pixel, judged on the filtered bytes.

    Row by row, each filter turns an all-255 row under an all-255 row (or under nothing, at
    the top) into one known pattern: a first byte and the same byte for the rest.
    """
    kinds = scanlines[:, 0]
    alpha = scanlines[:, bands::bands]
    top = np.arange(len(kinds)) == 0
    # filter:              None  Sub   Up           Average            Paeth
    first = np.choose(kinds.clip(0, 4), [255, 255, np.where(top, 255, 0),
                                         np.where(top, 255, 128), np.where(top, 255, 0)])
    rest = np.choose(kinds.clip(0, 4), [255, 0, np.where(top, 255, 0),
                                        np.where(top, 128, 0), 0])
    return bool((alpha[:, 0] == first).all() and (alpha[:, 1:] == rest[:, np.newaxis]).all())


def is_grey(scanlines, bands):
    """Whether red, green and blue are equal in every pixel, judged on the filtered bytes:
    equal bytes under the same filters decode to equal values. Along the bytes of the
    pixels, red to green and green to blue must never change; the rest may."""
    pixel_bytes = scanlines[:, 1:].ravel()
    changes = np.flatnonzero(pixel_bytes[:-1] != pixel_bytes[1:])
    return not (changes % bands < 2).any()
