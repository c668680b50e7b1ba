"""Image files of the kinds clients send: a drawing in other formats and modes, the benchmark's
drawing, phone photos of a written digit, and files made to be refused (blank, bombs that
declare huge sizes)."""

import base64
import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from . import ROOT

PHOTO_SIZE = (600, 800)  # width, height: a downscaled portrait phone photo
CHROMIUM_CANVAS = ROOT / "tests" / "data" / "chromium_canvas.png"  # scripts/canvas_png.py


def encode(image, format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def data_uri(data, media_type="image/png"):
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


def png(image):
    return encode(image, "PNG")


def number_on_a_canvas(draw_mnist_digit, indices, width=140):
    """MNIST test digits `indices` drawn side by side, `width` px apart, on a transparent
    canvas 280 px high (draw_mnist_digit is conftest's fixture)."""
    canvas = Image.new("RGBA", (width * len(indices), 280), (0, 0, 0, 0))
    for position, index in enumerate(indices):
        digit, _ = draw_mnist_digit(index, canvas=(width, 280), height=110)
        canvas.alpha_composite(digit, (position * width, 0))
    return canvas


def seven_on_a_canvas():
    """A 7 drawn on a 280x280 transparent canvas, as the page sends it, without MNIST."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(80, 60), (200, 60), (120, 230)], fill=(0, 0, 0, 255), width=18,
                               joint="curve")
    return image


# --- the same drawing in other formats and modes ---------------------------------------

def flatten_on_white(image):
    return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")


def in_faint_ink(image, contrast):
    """A drawing on a transparent canvas as grey ink `contrast` levels (0-255) darker than
    white paper."""
    paper = Image.new("L", image.size, 255)
    return Image.composite(Image.new("L", image.size, 255 - contrast), paper,
                           image.getchannel("A"))


def as_palette_png(image):
    return png(flatten_on_white(image).convert("P", palette=Image.Palette.ADAPTIVE))


def as_16_bit_png(image):
    grey = np.asarray(flatten_on_white(image).convert("L"), np.uint16) * 257
    return png(Image.fromarray(grey))  # uint16: mode I;16


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


# --- the benchmark's drawing: the page's canvas and opaque PNGs of it --------------------

def canvas_png():
    """A 280x280 transparent canvas with a 7 in an 18 px black pen, as canvas.toDataURL() gives."""
    return png(seven_on_a_canvas())


def opaque_png(ink_colour, paper_colour):
    """The same 7 as an opaque RGB PNG, as a client that flattens the canvas sends it."""
    coverage = seven_on_a_canvas().getchannel("A")
    image = Image.composite(Image.new("RGB", coverage.size, ink_colour),
                            Image.new("RGB", coverage.size, paper_colour), coverage)
    return png(image)


def smooth_png():
    """A 7 with a curved bar and anti-aliased edges, flattened on white, as Pillow writes an RGB
    drawing (rows filtered None, Sub, Up and Paeth: its encoder picks a filter a row)."""
    large = Image.new("L", (1120, 1120))
    ImageDraw.Draw(large).line([(320, 300), (560, 220), (800, 300), (760, 460), (480, 920)],
                               fill=255, width=72, joint="curve")
    coverage = large.resize((280, 280), Image.Resampling.BOX)
    return png(Image.composite(Image.new("RGB", coverage.size, "black"),
                               Image.new("RGB", coverage.size, "white"), coverage))


PNG_KINDS = {
    "Chromium canvas": CHROMIUM_CANVAS.read_bytes,
    "canvas": canvas_png,
    "black on white": lambda: opaque_png("black", "white"),
    "white on black": lambda: opaque_png("white", "black"),
    "anti-aliased, on white": smooth_png,
}


# --- a phone photo of ink written on paper ----------------------------------------------

def photo_of(coverage, seed, tilt=0.0, shadow=0.45):
    """An RGB 'photo' of ink `coverage` ('L', PHOTO_SIZE) on paper lit from one corner."""
    rng = np.random.default_rng(seed)
    if tilt:  # the page sits askew under the camera
        coverage = coverage.rotate(tilt, resample=Image.Resampling.BICUBIC)
    width, height = coverage.size
    rows, columns = np.mgrid[:height, :width]
    light = 1.0 - shadow * (0.7 * columns / width + 0.3 * rows / height) ** 1.5
    paper = np.stack([light * 238, light * 232, light * 214], axis=-1)
    ink_colour = np.array([35, 40, 90], np.float64)  # a blue-black ballpoint
    alpha = np.asarray(coverage, np.float64)[..., np.newaxis] / 255 * 0.92
    pixels = paper * (1 - alpha) + ink_colour * light[..., np.newaxis] * alpha
    pixels += rng.normal(0, 7, pixels.shape)  # paper grain and sensor noise
    for _ in range(25):  # specks of dust and pencil
        y, x, radius = rng.integers(0, height), rng.integers(0, width), rng.integers(1, 3)
        pixels[max(0, y - radius):y + radius, max(0, x - radius):x + radius] *= 0.55
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return photo.filter(ImageFilter.GaussianBlur(1.2))


def numbered_seven(number):
    """PNG bytes of a 7 on the page's 280x280 transparent canvas, placed a little differently
    for each `number` from 0 to 399: as many different drawings, each read as a digit."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    dx, dy = number % 20, number // 20 % 20
    ImageDraw.Draw(image).line([(70 + dx, 50 + dy), (190 + dx, 50 + dy), (110 + dx, 220 + dy)],
                               fill=(0, 0, 0, 255), width=18, joint="curve")
    return png(image)
