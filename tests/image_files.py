"""Image files of the kinds clients send, for the tests: a drawing in other formats and modes,
and files made to be refused (blank, bombs that declare huge sizes)."""

import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

from conftest import encode


def png(image):
    return encode(image, "PNG")


def seven_on_a_canvas():
    """A 7 drawn on a 280x280 transparent canvas, as the page sends it, without MNIST."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(80, 60), (200, 60), (120, 230)], fill=(0, 0, 0, 255), width=18)
    return image


# --- the same drawing in other formats and modes ---------------------------------------

def flatten_on_white(image):
    return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")


def as_palette_png(image):
    return png(flatten_on_white(image).convert("P", palette=Image.Palette.ADAPTIVE))


def as_16_bit_png(image):
    grey = np.asarray(flatten_on_white(image).convert("L"), np.uint16) * 257
    return png(Image.fromarray(grey, mode="I;16"))


def as_jpeg(image):
    return encode(flatten_on_white(image), "JPEG", quality=80)


def as_cmyk_jpeg(image):
    return encode(flatten_on_white(image).convert("CMYK"), "JPEG", quality=90)


def as_webp(image):
    return encode(image, "WEBP", lossless=True)


def as_first_frame_of_gif(image):
    other = Image.new("L", image.size, 255)  # a blank second frame must not be read
    first = flatten_on_white(image).convert("L")
    return encode(first, "GIF", save_all=True, append_images=[other], duration=100)


def as_bmp(image):
    return encode(flatten_on_white(image), "BMP")


def as_tiff(image):
    return encode(flatten_on_white(image), "TIFF")


def as_grey_alpha_png(image):
    return png(image.convert("LA"))


# --- files to be refused ----------------------------------------------------------------

def blank(colour, mode="RGB", size=(280, 280)):
    return png(Image.new(mode, size, colour))


def specks(size):
    """Two one-pixel dots far apart: too little ink to survive scaling down to 20 pixels."""
    image = Image.new("L", (size, size), 255)
    image.putpixel((size // 10, size // 10), 0)
    image.putpixel((size * 9 // 10, size * 9 // 10), 0)
    return png(image)


def tiny_png_declaring(width, height):
    """A valid-looking PNG of a few dozen bytes whose header claims width x height pixels."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def declaring_huge_size(kind):
    """A real 8x8 JPEG or GIF whose header is patched to claim a 65,000-pixel square."""
    data = bytearray(encode(Image.new("L", (8, 8)), kind))
    if kind == "JPEG":
        frame = data.index(b"\xff\xc0") + 5  # start-of-frame: height, width (big-endian)
        data[frame:frame + 4] = struct.pack(">HH", 65000, 65000)
    else:
        data[6:10] = struct.pack("<HH", 65535, 65535)  # GIF logical screen: width, height
    return bytes(data)
