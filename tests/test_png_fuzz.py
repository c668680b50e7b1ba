"""read_ink refuses exactly the damaged PNGs that Pillow's path refuses, and reads the rest alike.

CASES PNGs, each made from one of a handful of valid plain PNGs by one seeded random mutation
(bits flipped, cut short, a chunk's length, an IHDR field with its CRC fixed or left, a CRC,
chunks duplicated, dropped, moved or added, bytes after IEND, the rows scrambled or their zlib
stream damaged and written again), go through both paths: each must give the same ink map, or
the same refusal (the same ImageError class). A failure lists the first cases that differ;
`mutated(index)` makes case `index` again.
"""

import random
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

from drawing import decoding, errors, image_ink
from support.images import CHROMIUM_CANVAS, encode

SEED = 20240611
CASES = 3000
MAX_PIXELS = 100_000           # small: a header mutated to a larger size is refused, not decoded
SIGNATURE = b"\x89PNG\r\n\x1a\n"
IHDR_FIELDS = {"width": (0, "I"), "height": (4, "I"), "bit depth": (8, "B"),
               "colour type": (9, "B"), "compression": (10, "B"), "filter method": (11, "B"),
               "interlace": (12, "B")}  # name -> (offset, struct format)
# Ancillary chunks a plain PNG may have -> their length (the fewest bytes Pillow parses, for
# those it parses); iCCP bodies are made apart
ANCILLARY_LENGTHS = {b"gAMA": 4, b"cHRM": 32, b"sRGB": 1, b"pHYs": 9, b"tIME": 7, b"bKGD": 6}


def drawing(size, ink, paper):
    """An RGBA image of `size`: a stroke like a digit's, RGBA `ink` on `paper`."""
    image = Image.new("RGBA", size, paper)
    width, height = size
    ImageDraw.Draw(image).line([(width * 0.2, height * 0.2), (width * 0.8, height * 0.2),
                                (width * 0.4, height * 0.85)], fill=ink,
                               width=max(2, height // 8))
    return image


def sources():
    """{name: bytes} of valid plain PNGs: a browser's canvas, and Pillow's in each plain mode,
    with other compression levels (and so other filters) and with ancillary chunks."""
    canvas = drawing((60, 50), (20, 30, 200, 255), (0, 0, 0, 0))
    on_paper = drawing((120, 80), (30, 40, 150, 255), (250, 240, 210, 255))
    grey = chunks_of(encode(on_paper.convert("L"), "PNG", icc_profile=b"profile " * 40))
    with_ancillary = (grey[:2] + [(b"gAMA", struct.pack(">I", 45455)), (b"sRGB", b"\0"),
                                  (b"bKGD", struct.pack(">H", 255))]
                      + grey[2:-1] + [(b"tIME", struct.pack(">HBBBBB", 2024, 6, 11, 12, 0, 0)),
                                      grey[-1]])
    return {
        "chromium canvas": CHROMIUM_CANVAS.read_bytes(),
        "RGBA canvas": encode(canvas, "PNG"),
        "L stored": encode(on_paper.convert("L").resize((40, 30)), "PNG", compress_level=0),
        "RGB optimized": encode(on_paper.convert("RGB"), "PNG", optimize=True),
        "LA level 1": encode(canvas.convert("LA").resize((64, 48)), "PNG", compress_level=1),
        "RGBA sheet with pHYs": encode(on_paper.resize((200, 100)), "PNG", dpi=(96, 96)),
        "L with iCCP, gAMA, sRGB, bKGD, tIME": png(with_ancillary),
    }


def chunks_of(data):
    """[(type, body), ...] of a valid PNG's chunks, in order."""
    chunks, position = [], len(SIGNATURE)
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunks.append((kind, data[position + 8:position + 8 + length]))
        position += 12 + length
    return chunks


def chunk(kind, body, crc=None):
    """A chunk's bytes, with its right CRC unless one is given."""
    crc = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def png(chunks):
    return SIGNATURE + b"".join(chunk(kind, body) for kind, body in chunks)


def with_image_data(chunks, body, rng):
    """`chunks` with their IDAT chunks replaced by `body` in 1 to 4 IDAT chunks."""
    cuts = sorted(rng.randrange(len(body) + 1) for _ in range(rng.randrange(4)))
    pieces = [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)])]
    first = next(number for number, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    rest = [(kind, data) for kind, data in chunks[first:] if kind != b"IDAT"]
    return chunks[:first] + [(b"IDAT", piece) for piece in pieces] + rest


def image_data(chunks):
    return b"".join(body for kind, body in chunks if kind == b"IDAT")


# --- mutations: (random.Random, source chunks) -> (what was done, PNG bytes) ---------------

def flip_bits(rng, chunks):
    data = bytearray(png(chunks))
    flips = rng.choice([1, 1, 2, 3, 8])
    for _ in range(flips):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return f"{flips} bits flipped", bytes(data)


def cut_short(rng, chunks):
    data = png(chunks)
    end = rng.randrange(len(data))
    return f"cut at {end} of {len(data)}", data[:end]


def change_a_length(rng, chunks):
    number = rng.randrange(len(chunks))
    kind, body = chunks[number]
    length = rng.choice([0, len(body) - 1, len(body) + 1, len(body) + rng.randint(2, 100),
                         len(body) - rng.randint(2, 100), rng.getrandbits(31),
                         2 ** 31 + rng.getrandbits(31), 2 ** 32 - 1]) % 2 ** 32
    pieces = [chunk(*each) for each in chunks]
    pieces[number] = struct.pack(">I", length) + pieces[number][4:]
    return f"{kind.decode()} {number} length {len(body)} -> {length}", SIGNATURE + b"".join(pieces)


def change_an_ihdr_field(rng, chunks):
    name = rng.choice(list(IHDR_FIELDS))
    offset, form = IHDR_FIELDS[name]
    header = bytearray(chunks[0][1])
    old = struct.unpack_from(">" + form, header, offset)[0]
    if form == "I":
        new = rng.choice([0, 1, old - 1, old + 1, old * 2, old // 2, 65535, 2 ** 31,
                          2 ** 32 - 1, rng.getrandbits(32)]) % 2 ** 32
    else:
        new = rng.choice([0, 1, 2, 3, 4, 5, 6, 8, 16, old ^ 1, rng.getrandbits(8)]) % 256
    struct.pack_into(">" + form, header, offset, new)
    fixed = rng.random() < 0.5
    crc = None if fixed else zlib.crc32(b"IHDR" + chunks[0][1])
    data = SIGNATURE + chunk(b"IHDR", bytes(header), crc) + png(chunks[1:])[len(SIGNATURE):]
    return f"IHDR {name} {old} -> {new}, CRC {'fixed' if fixed else 'left'}", data


def resize_the_ihdr(rng, chunks):
    header = chunks[0][1]
    length = rng.choice([0, 8, 12, 14, 17])
    body = (header + bytes(8))[:length]
    return f"IHDR of {length} bytes", png([(b"IHDR", body)] + chunks[1:])


def corrupt_a_crc(rng, chunks):
    number = rng.randrange(len(chunks))
    kind, body = chunks[number]
    pieces = [chunk(*each) for each in chunks]
    crc = zlib.crc32(kind + body) ^ (1 << rng.randrange(32))
    pieces[number] = chunk(kind, body, crc)
    return f"{kind.decode()} {number} CRC wrong", SIGNATURE + b"".join(pieces)


def duplicate_a_chunk(rng, chunks):
    number, place = rng.randrange(len(chunks)), rng.randrange(len(chunks) + 1)
    changed = chunks[:place] + [chunks[number]] + chunks[place:]
    return f"{chunks[number][0].decode()} {number} repeated at {place}", png(changed)


def remove_a_chunk(rng, chunks):
    number = rng.randrange(len(chunks))
    return (f"{chunks[number][0].decode()} {number} removed",
            png(chunks[:number] + chunks[number + 1:]))


def move_a_chunk(rng, chunks):
    changed = list(chunks)
    number, place = rng.randrange(len(chunks)), rng.randrange(len(chunks))
    changed.insert(place, changed.pop(number))
    return f"{chunks[number][0].decode()} {number} moved to {place}", png(changed)


def append_after_iend(rng, chunks):
    how = rng.choice(["bytes", "an IDAT", "an IHDR", "a chunk cut short", "a PNG"])
    tail = {"bytes": bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 40))),
            "an IDAT": chunk(b"IDAT", zlib.compress(bytes(50))),
            "an IHDR": chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 3, 8, 0, 0, 0, 0)),
            "a chunk cut short": chunk(b"gAMA", bytes(4))[:7],
            "a PNG": png(chunks)}[how]
    return f"{how} after IEND", png(chunks) + tail


def iccp_body(rng):
    """(what it is, body) of an iCCP chunk, readable or one of the kinds Pillow refuses."""
    how = rng.choice(["readable", "no name end", "empty", "name only", "method 1",
                      "not zlib", "over MAX_TEXT_CHUNK"])
    profile = zlib.compress(b"profile " * 50)
    return how, {"readable": b"icc\0\0" + profile, "no name end": b"icc", "empty": b"",
                 "name only": b"icc\0", "method 1": b"icc\0\1" + profile,
                 "not zlib": b"icc\0\0not zlib",
                 "over MAX_TEXT_CHUNK": b"icc\0\0" + zlib.compress(
                     bytes(PngImagePlugin.MAX_TEXT_CHUNK + 1))}[how]


def add_an_ancillary_chunk(rng, chunks):
    kind = rng.choice([*ANCILLARY_LENGTHS, b"iCCP"])
    if kind == b"iCCP":
        how, body = iccp_body(rng)
    else:
        length = ANCILLARY_LENGTHS[kind]
        length = rng.choice([length, length, 0, length - 1, length + 3])
        how, body = f"{length} bytes", bytes(rng.getrandbits(8) for _ in range(length))
    place = rng.randrange(len(chunks))  # anywhere before IEND, even before IHDR
    right = rng.random() < 0.75
    pieces = [chunk(*each) for each in chunks]
    pieces.insert(place, chunk(kind, body, None if right else zlib.crc32(kind + body) ^ 1))
    return (f"{kind.decode()} ({how}, CRC {'right' if right else 'wrong'}) at {place}",
            SIGNATURE + b"".join(pieces))


def scramble_rows(rng, chunks):
    """Mutated filtered rows, compressed again, in valid chunks."""
    width, height = struct.unpack(">II", chunks[0][1][:8])
    rows = np.frombuffer(zlib.decompress(image_data(chunks)), np.uint8).reshape(height, -1)
    rows, draw = rows.copy(), np.random.default_rng(rng.getrandbits(64))
    how = rng.choice(["shuffled", "filters changed", "an invalid filter", "bytes changed",
                      "rows dropped", "bytes added", "bytes removed"])
    if how == "shuffled":
        rows = rows[draw.permutation(height)]
    elif how == "filters changed":
        chosen = draw.random(height) < draw.random()
        rows[chosen, 0] = draw.integers(0, 5, np.count_nonzero(chosen))
    elif how == "an invalid filter":
        rows[draw.integers(height), 0] = draw.integers(5, 256)
    elif how == "bytes changed":
        rows.ravel()[draw.integers(0, rows.size, draw.integers(1, 20))] = draw.integers(0, 256)
    raw = rows.tobytes()
    if how == "rows dropped":
        raw = raw[:rows.shape[1] * int(draw.integers(0, height))]
    elif how == "bytes added":
        raw += bytes(int(draw.integers(1, 2 * rows.shape[1])))
    elif how == "bytes removed":
        raw = raw[:-int(draw.integers(1, 2 * rows.shape[1]))]
    level = rng.randrange(10)
    return f"rows {how}, zlib level {level}", png(with_image_data(chunks,
                                                                  zlib.compress(raw, level), rng))


def damage_the_zlib_stream(rng, chunks):
    body = bytearray(image_data(chunks))
    how = rng.choice(["Adler-32 dropped", "Adler-32 wrong", "stream cut", "garbage appended",
                      "a second stream appended", "a bit flipped", "header changed"])
    if how == "Adler-32 dropped":
        body = body[:-4]
    elif how == "Adler-32 wrong":
        body[-1] ^= 1
    elif how == "stream cut":
        body = body[:rng.randrange(len(body))]
    elif how == "garbage appended":
        body += bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 30)))
    elif how == "a second stream appended":
        body += zlib.compress(bytes(100))
    elif how == "a bit flipped":
        body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    else:
        body[rng.randrange(2)] = rng.getrandbits(8)
    return f"zlib stream: {how}", png(with_image_data(chunks, bytes(body), rng))


def interrupt_the_image_data(rng, chunks):
    """The IDAT data split in two runs of IDAT chunks with another chunk between them."""
    changed = with_image_data(chunks, image_data(chunks), rng)
    first = next(number for number, (kind, _) in enumerate(changed) if kind == b"IDAT")
    body = changed[first][1]
    cut = rng.randrange(len(body) + 1)
    between = rng.choice([(b"tIME", bytes(7)), (b"gAMA", struct.pack(">I", 45455)),
                          (b"IEND", b"")])
    changed[first:first + 1] = [(b"IDAT", body[:cut]), between, (b"IDAT", body[cut:])]
    return f"{between[0].decode()} inside the IDAT data at {cut}", png(changed)


MUTATIONS = [flip_bits, cut_short, change_a_length, change_an_ihdr_field, resize_the_ihdr,
             corrupt_a_crc, duplicate_a_chunk, remove_a_chunk, move_a_chunk, append_after_iend,
             add_an_ancillary_chunk, scramble_rows, damage_the_zlib_stream,
             interrupt_the_image_data]
SOURCES = sources()


def mutated(index):
    """(description, PNG bytes) of fuzz case `index`: the same for the same SEED."""
    rng = random.Random(SEED * 1_000_003 + index)
    name = rng.choice(list(SOURCES))
    mutation = rng.choice(MUTATIONS)
    done, data = mutation(rng, chunks_of(SOURCES[name]))
    return f"case {index}: {name}, {mutation.__name__}: {done}", data


def outcome(read, data):
    """The ink map `read` gives, or the class of the ImageError it raises, or a description
    of any other exception (never expected)."""
    try:
        return read(data, MAX_PIXELS)
    except errors.ImageError as error:
        return type(error)
    except Exception as error:  # a crash: it differs from anything
        return f"{type(error).__name__}: {error}"


def pillow_path(data, max_pixels):
    return image_ink.ink_map(decoding.open_image(data, max_pixels))


def described(result):
    if isinstance(result, np.ndarray):
        return f"an ink map {result.shape}"
    return result.__name__ if isinstance(result, type) else result


def test_mutated_pngs_are_read_or_refused_as_pillows_path_does():
    assert all(image_ink.read_ink(data, MAX_PIXELS).any() for data in SOURCES.values())
    differing, read = [], 0
    for index in range(CASES):
        description, data = mutated(index)
        fast, pillow = outcome(image_ink.read_ink, data), outcome(pillow_path, data)
        if isinstance(fast, np.ndarray) and isinstance(pillow, np.ndarray):
            same = fast.shape == pillow.shape and np.array_equal(fast, pillow)
            read += same
        else:
            same = isinstance(fast, type) and fast is pillow
        if not same:
            differing.append(f"{description}: read_ink {described(fast)}, "
                             f"Pillow's path {described(pillow)}")
    assert not differing, (f"{len(differing)} of {CASES} mutated PNGs (seed {SEED}) differ:\n"
                           + "\n".join(differing[:12]))
    assert read > CASES // 10, f"only {read} of {CASES} mutated PNGs were read: a weak test"
