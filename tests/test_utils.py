"""The image pipeline in utils.py, one behaviour at a time."""

import base64

import numpy as np
import pytest
from PIL import Image, ImageFilter

import utils
from drawing import decoding, errors, hollow_strokes, image_ink, rank_filter
from reading import segment
from support.images import encode
from training import strokes


def centre_of_mass(digit):
    rows, columns = np.mgrid[:digit.shape[0], :digit.shape[1]]
    total = digit.sum()
    return (rows * digit).sum() / total, (columns * digit).sum() / total


def read_bytes(data):
    """What the model sees for an image file read as one digit, as the recognizer reads it."""
    [(_, digit)] = segment.mnist_digits(image_ink.read_ink(data), one_digit=True)
    return digit


def read(image):
    return read_bytes(encode(image, "PNG"))


@pytest.mark.parametrize("convention", ["black_on_white", "white_on_black", "ink_on_transparent"])
def test_every_colour_convention_gives_the_same_digit(draw_mnist_digit, convention):
    # The expected digit comes from the ink the pen laid down (a transparent drawing's alpha),
    # handed to segment directly: no image file, no polarity or transparency to find.
    laid_down = np.asarray(draw_mnist_digit(3)[0].getchannel("A"))
    [(_, expected)] = segment.mnist_digits(laid_down, one_digit=True)
    digit = read(draw_mnist_digit(3, convention=convention)[0])
    assert np.abs(digit - expected).max() < 0.05, "polarity or transparency was misread"


@pytest.mark.parametrize("ink, background", [
    ((255, 255, 255, 255), (0, 0, 0, 0)),       # white ink on a transparent canvas
    ((200, 30, 30, 255), (0, 0, 0, 0)),         # red ink on a transparent canvas
    ((20, 20, 160, 255), (255, 255, 210, 255)),  # blue ink on cream paper
    ((250, 250, 250, 255), (40, 60, 40, 255)),   # chalk on a green board
])
def test_ink_is_found_in_any_colour_and_on_transparency(draw_mnist_digit, ink, background):
    coverage = draw_mnist_digit(3, convention="white_on_black")[0].convert("L")
    if background[3] == 0:  # a canvas keeps the ink colour and puts the coverage in alpha
        image = Image.new("RGBA", coverage.size, ink)
        image.putalpha(coverage)
    else:
        image = Image.composite(Image.new("RGBA", coverage.size, ink),
                                Image.new("RGBA", coverage.size, background), coverage)
    reference = read(coverage)
    assert np.abs(read(image) - reference).max() < 0.1


def test_output_is_28x28_float_in_unit_range(draw_mnist_digit):
    digit = read(draw_mnist_digit(0)[0])
    assert digit.shape == (28, 28)
    assert digit.dtype == np.float32
    assert digit.min() == 0.0
    assert digit.max() == 1.0


@pytest.mark.parametrize("centre", [(60, 60), (220, 70), (140, 140), (200, 220)])
def test_centre_of_mass_lands_within_half_a_pixel_of_mnists_centre(draw_mnist_digit, centre):
    digit = read(draw_mnist_digit(5, height=100, centre=centre)[0])
    row, column = centre_of_mass(digit)
    assert abs(row - 14) <= 0.5, f"centre of mass at row {row}"
    assert abs(column - 14) <= 0.5, f"centre of mass at column {column}"


def ink_extent(digit):
    rows = np.flatnonzero(digit.max(axis=1) > 0.3)
    columns = np.flatnonzero(digit.max(axis=0) > 0.3)
    return rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1


def test_longer_side_is_scaled_to_20_pixels_keeping_the_aspect_ratio():
    tall = Image.new("L", (280, 280), 0)
    tall.paste(255, (130, 40, 150, 240))   # a 20 x 200 bar: aspect 1:10
    wide = Image.new("L", (280, 280), 0)
    wide.paste(255, (40, 100, 240, 180))   # a 200 x 80 block: aspect 5:2
    tall_height, tall_width = ink_extent(read(tall))
    wide_height, wide_width = ink_extent(read(wide))
    assert tall_height in (20, 21)
    assert tall_width <= 4
    assert wide_width in (20, 21)
    assert 7 <= wide_height <= 10


def test_a_one_pixel_dot_is_nothing_drawn():
    dot = Image.new("L", (280, 280), 255)
    dot.putpixel((140, 140), 0)
    with pytest.raises(errors.NothingDrawn):
        read(dot)


def test_faint_noise_is_ignored(draw_mnist_digit):
    image = draw_mnist_digit(3, convention="white_on_black")[0].convert("L")
    noisy = np.asarray(image).astype(np.int16) + np.random.default_rng(0).integers(0, 30, (280, 280))
    noisy_digit = read(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)))
    assert np.abs(noisy_digit - read(image)).max() < 0.15


@pytest.mark.parametrize("pen", [4, 8, 30, 40])
def test_stroke_width_is_evened_out_towards_mnists(draw_mnist_digit, pen):
    # The same digit drawn with a thin pen and a fat marker ends up with MNIST-like strokes.
    digit = read(draw_mnist_digit(3, height=240 if pen < 10 else 150, pen=pen)[0])
    width = utils.stroke_width((digit * 255).astype(np.uint8))
    assert 1.8 <= width <= 3.8, f"stroke width {width:.2f} px is far from MNIST's 2.6"


def test_a_huge_image_is_reduced_before_the_ink_is_looked_for(draw_mnist_digit):
    image = draw_mnist_digit(3, canvas=(4000, 3000), height=2000, pen=150)[0]
    data = encode(image, "PNG")
    assert max(decoding.open_image(data).size) <= 2 * decoding.WORK_LIMIT
    reference = read(draw_mnist_digit(3, height=200, pen=15)[0])
    assert np.abs(read_bytes(data) - reference).mean() < 0.05, "the reduced image reads differently"


def test_pixel_limit_is_checked_before_decoding():
    data = encode(Image.new("L", (3000, 3000), 0), "PNG")
    with pytest.raises(errors.ImageTooLarge):
        decoding.open_image(data, max_pixels=1_000_000)


@pytest.mark.parametrize("text", [
    "data:image/png;base64,{b64}", "DATA:IMAGE/PNG;BASE64,{b64}", "{b64}", "  {b64}\n",
    "data:image/png;charset=utf-8;base64,{b64}",
])
def test_data_uris_and_bare_base64_decode(text):
    payload = b"\x89PNG\r\n\x1a\nrest"
    text = text.format(b64=base64.b64encode(payload).decode())
    assert decoding.decode_base64_image(text) == payload


@pytest.mark.parametrize("text, error", [
    ("data:image/png;base64,!!!!", errors.InvalidImage),
    ("", errors.InvalidImage),
    ("data:image/png,rawtext", errors.InvalidImage),
    ("data:text/html;base64,PGI+", errors.UnsupportedImage),
    ("data:image/svg+xml;base64,PHN2Zy8+", errors.UnsupportedImage),
])
def test_bad_base64_raises_a_clear_error(text, error):
    with pytest.raises(error):
        decoding.decode_base64_image(text)


@pytest.mark.parametrize("refused", [
    lambda: decoding.decode_base64_image("data:application/pdf;base64,JVBERi0="),
    lambda: decoding.open_image(b"not an image at all"),
], ids=["data URI of another type", "bytes Pillow cannot read"])
def test_refusals_name_every_accepted_format(refused):
    with pytest.raises(errors.ImageError) as error:
        refused()
    for name in decoding.ACCEPTED_FORMATS:
        assert name.lower() in str(error.value).lower(), \
            f"the message does not name {name}: {error.value}"


def test_exif_rotation_is_applied():
    upright = Image.new("L", (60, 200), 255)
    upright.paste(0, (20, 20, 40, 180))  # a vertical bar
    rotated = upright.rotate(90, expand=True)  # stored lying down ...
    exif = Image.Exif()
    exif[0x0112] = 8  # ... with EXIF saying "rotate 90 degrees clockwise to view"
    image = decoding.open_image(encode(rotated.convert("RGB"), "JPEG", exif=exif))
    assert image.size == (60, 200)


@pytest.mark.parametrize("ink", [(255, 255, 255), (0, 0, 0), (230, 40, 40)])
def test_thin_ink_on_a_transparent_black_canvas_is_found(ink):
    # What canvas.toDataURL() gives: untouched pixels are (0, 0, 0, 0) whatever the ink colour.
    from PIL import ImageDraw

    image = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(140, 40), (150, 240)], fill=ink + (255,), width=5)
    digit = read(image)
    height, width = ink_extent(digit)
    assert height in (20, 21), f"a thin stroke of any colour must be read as ink: {height} px tall"
    assert width <= 5, f"a thin stroke came out {width} px wide"


def test_an_opaque_sheet_with_a_transparent_margin_is_read_by_its_ink_not_its_outline(
        draw_mnist_digit):
    sheet = draw_mnist_digit(3, convention="black_on_white")[0]
    framed = Image.new("RGBA", (320, 320), (0, 0, 0, 0))
    framed.paste(sheet, (20, 20))
    assert np.abs(read(framed) - read(sheet)).max() < 0.1


def test_the_ink_box_is_left_top_right_bottom_as_in_the_api():
    ink = np.zeros((100, 200), np.uint8)
    ink[10:40, 50:60] = 255
    assert image_ink.ink_bbox(ink) == (50, 10, 60, 40)
    assert image_ink.nonzero_box(np.zeros((5, 5), np.uint8)) is None


@pytest.mark.parametrize("size", [1, 3, 5, 7, 9])
def test_square_filter_is_pillows_max_and_min_filter(size):
    rng = np.random.default_rng(size)
    for _ in range(100):
        height, width = rng.integers(1, 70, 2)
        ink = ((rng.random((height, width)) < rng.random())
               * rng.integers(0, 256, (height, width))).astype(np.uint8)
        image = Image.fromarray(ink)
        np.testing.assert_array_equal(rank_filter.square_filter(ink, size, True),
                                      np.asarray(image.filter(ImageFilter.MaxFilter(size))))
        np.testing.assert_array_equal(rank_filter.square_filter(ink, size, False),
                                      np.asarray(image.filter(ImageFilter.MinFilter(size))))


def test_digits_centred_together_are_centred_as_each_alone():
    rng = np.random.default_rng(5)
    digits = [((rng.random((height, width)) < 0.4) * rng.integers(1, 256, (height, width)))
              .astype(np.uint8) for height, width in rng.integers(1, 21, (30, 2))]
    boxes = np.zeros((len(digits), utils.MNIST_BOX, utils.MNIST_BOX), np.uint8)
    for box, digit in zip(boxes, digits):
        box[:digit.shape[0], :digit.shape[1]] = digit
    together = utils.centre_boxes_by_mass(boxes, np.array([digit.shape for digit in digits]))
    for digit, field in zip(digits, together):
        np.testing.assert_array_equal(field, utils.centre_by_mass(digit))
        assert field.sum(dtype=np.int64) == digit.sum(dtype=np.int64), "ink was lost or moved in"


def regions_by_flood_fill(mask):
    """The background's 4-connected regions, one breadth-first fill at a time from the
    pixels outside the mask: a slow, plain reference. [set of (row, column)], the region
    that reaches the edge first."""
    height, width = mask.shape
    unseen = {(r, c) for r in range(height) for c in range(width) if not mask[r, c]}
    edge = [p for p in sorted(unseen) if p[0] in (0, height - 1) or p[1] in (0, width - 1)]
    regions = []
    for seeds in [edge] + [[p] for p in sorted(unseen)]:
        queue = [p for p in seeds if p in unseen]
        if not queue:
            continue
        unseen.difference_update(queue)
        region = set(queue)
        while queue:
            r, c = queue.pop()
            for near in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                if near in unseen:
                    unseen.discard(near)
                    region.add(near)
                    queue.append(near)
        regions.append(region)
    return regions


def test_background_regions_number_the_outside_one_and_each_hole_from_two():
    rng = np.random.default_rng(0)
    for _ in range(100):
        mask = rng.random(tuple(rng.integers(3, 30, 2))) < rng.uniform(0.2, 0.7)
        mask[0, 0] = False  # some background on the edge
        labels = hollow_strokes.background_regions(mask)
        found = [{tuple(p) for p in np.argwhere(labels == label)}
                 for label in range(1, labels.max() + 1)]
        assert ((labels == 0) == mask).all()
        assert found == regions_by_flood_fill(mask)  # the holes numbered by where they start


def work_size_ink(draw, *args):
    """An ink map drawn on a WORK_SIZE square, as fill_outlines receives it."""
    size = (utils.WORK_SIZE, utils.WORK_SIZE)
    return np.asarray(draw(*args[:1], size, *args[1:], "white_on_black").convert("L"))


SEVEN = [[(8, 10), (50, 10), (24, 54)]]                 # a bent stroke
NARROW_ZERO = [[(30, 5), (36, 15), (37, 30), (36, 45), (30, 55), (24, 45), (23, 30),
                (24, 15), (30, 5)]]
ROUND_ZERO = [[(30, 6), (48, 14), (54, 30), (48, 46), (30, 54), (12, 46), (6, 30),
               (12, 14), (30, 6)]]
EIGHT = [[(30, 30), (42, 22), (42, 10), (30, 4), (18, 10), (18, 22), (30, 30), (44, 40),
          (44, 50), (30, 56), (16, 50), (16, 40), (30, 30)]]


def test_a_hollow_stroke_is_filled_into_the_stroke_it_outlines():
    hollow = work_size_ink(strokes.draw_hollow_strokes, SEVEN, 14, 2.5)
    solid = work_size_ink(strokes.draw_strokes, SEVEN, 14)
    filled = np.asarray(hollow_strokes.fill_outlines(Image.fromarray(hollow))) > 0
    assert (filled & (solid >= 128)).sum() >= 0.98 * (solid >= 128).sum()
    assert (filled & (solid == 0)).sum() == 0
    assert ((hollow > 0) & (solid >= 128)).sum() < 0.7 * (solid >= 128).sum()  # it was hollow


def test_a_straight_hollow_stroke_is_filled_too():
    one = [[(30, 8), (30, 52)]]
    hollow = work_size_ink(strokes.draw_hollow_strokes, one, 7, 2)
    filled = np.asarray(hollow_strokes.fill_outlines(Image.fromarray(hollow))) > 0
    assert hollow_strokes.background_regions(hollow > 0).max() == 2  # a hollow 1 is a thin ring ...
    assert hollow_strokes.background_regions(filled).max() == 1      # ... filled into a bar
    solid = work_size_ink(strokes.draw_strokes, one, 7)
    assert (filled & (solid >= 128)).sum() >= 0.98 * (solid >= 128).sum()


@pytest.mark.parametrize("loops", [NARROW_ZERO, ROUND_ZERO, EIGHT], ids=["narrow 0", "0", "8"])
@pytest.mark.parametrize("pen", [2, 4])
def test_a_digits_own_loops_stay_open(loops, pen):
    ink = work_size_ink(strokes.draw_strokes, loops, pen)
    assert hollow_strokes.background_regions(ink >= 128).max() >= 2  # it has a loop to keep
    assert (np.asarray(hollow_strokes.fill_outlines(Image.fromarray(ink))) == ink).all()


def test_a_hollow_zero_is_filled_around_its_loop_and_the_loop_stays_open():
    hollow = work_size_ink(strokes.draw_hollow_strokes, ROUND_ZERO, 12, 2)
    assert hollow_strokes.background_regions(hollow > 0).max() == 3  # the gap and the loop
    filled = np.asarray(hollow_strokes.fill_outlines(Image.fromarray(hollow))) > 0
    assert hollow_strokes.background_regions(filled).max() == 2  # the loop alone
    assert filled.sum() > 1.5 * (hollow > 0).sum()


def test_a_hollow_digit_reaches_the_model_as_the_solid_digit(mnist_test):
    placed = strokes.place_strokes(strokes.digit_strokes(mnist_test[0][7]), 200, (140, 140))
    solid = read(strokes.draw_strokes(placed, (280, 280), 26, "black_on_white"))
    hollow_drawing = strokes.draw_hollow_strokes(placed, (280, 280), 26, 3, "black_on_white")
    hollow = read(hollow_drawing)
    [(_, hollow_ink)] = segment.split_digits(image_ink.read_ink(encode(hollow_drawing, "PNG")),
                                             one_digit=True)
    unfilled = utils.to_mnist(hollow_ink, fill=None)
    difference = np.abs(hollow - solid).mean()
    assert difference < 0.5 * np.abs(unfilled - solid).mean(), difference
    assert difference < 0.04, f"mean difference {difference:.3f}"
