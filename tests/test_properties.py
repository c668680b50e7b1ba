"""Property-based tests: whatever arrives, the pipeline raises only errors.ImageError and
the API never answers 5xx."""

import base64
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import utils
from drawing import decoding, errors, image_ink
from reading import contract, segment
from support.images import data_uri, encode

MODERATE = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(MODERATE, max_examples=60)


def unsure_of_everything(digits):
    """A stand-in network that is never sure, so every mark wide enough goes to the reader."""
    classes = contract.MODEL_CLASSES
    return np.full((len(digits), classes), 1 / classes, np.float32)


def reads_two_threes(strips):
    """A stand-in number reader that reads every strip as 33, one 3 on each half."""
    labels = np.full(contract.COLUMNS, contract.BLANK)
    labels[[contract.COLUMNS // 4, 3 * contract.COLUMNS // 4]] = 3
    columns = np.eye(contract.BLANK + 1, dtype=np.float32)[labels]
    return np.repeat(columns[np.newaxis], len(strips), axis=0)


def read_digits(ink, one_digit=False):
    """The server's pipeline from the ink map on (segment.read_digits, with every mark wide
    enough read as two digits): [(box, digit)], left to right."""
    digits, _ = segment.read_digits(ink, unsure_of_everything, reads_two_threes, one_digit)
    return [(digit.box, digit.image) for digit in digits]


def read_image(image, one_digit=False):
    """(ink map, [(box, digit)]) of a Pillow image."""
    ink = image_ink.ink_map(image)
    return ink, read_digits(ink, one_digit)


def centre_of_mass(digit):
    rows, columns = np.mgrid[:digit.shape[0], :digit.shape[1]]
    return (rows * digit).sum() / digit.sum(), (columns * digit).sum() / digit.sum()


# centre_by_mass puts the centre within half a pixel of MNIST's, unless the digit would leave
# the 28x28 field: a lopsided digit 20 px long stops at the edge, up to 6 px away.
MAX_CENTRE_OFFSET = 6.0


def assert_mnist_shaped(digit):
    assert digit.shape == (28, 28), f"the digit is {digit.shape}, not 28x28"
    assert digit.dtype == np.float32, f"the digit is {digit.dtype}, not float32"
    assert np.isfinite(digit).all(), "the digit has NaN or infinite values"
    assert digit.min() >= 0, f"the digit has values below 0: {digit.min()}"
    assert digit.max() <= 1, f"the digit has values above 1: {digit.max()}"
    assert digit.max() > 0, "the digit is blank"
    for axis, centre in zip(("row", "column"), centre_of_mass(digit)):
        assert abs(centre - utils.MNIST_CENTRE) <= MAX_CENTRE_OFFSET, \
            f"the digit's centre of mass is at {axis} {centre:.1f}, far from MNIST's 14"


def assert_read_or_refused(read, *arguments):
    """`read(*arguments)` gives (ink map, [(box, digit)]) that pass assert_digits_read, or
    raises an ImageError; nothing else."""
    try:
        ink, found = read(*arguments)
    except errors.ImageError:
        return
    assert_digits_read(found, ink)


def assert_digits_read(found, ink):
    """At least one MNIST-like digit, each with a box inside the uint8 [H, W] ink map."""
    assert found, "the pipeline returned no digit and raised nothing"
    height, width = ink.shape
    for box, digit in found:
        assert_mnist_shaped(digit)
        x0, y0, x1, y1 = box
        assert 0 <= x0 < x1 <= width, f"the box {box} leaves the image, {width} px wide"
        assert 0 <= y0 < y1 <= height, f"the box {box} leaves the image, {height} px tall"


# --- pixels ---------------------------------------------------------------------------------

side = st.integers(1, 48)
pixel_arrays = st.one_of(
    hnp.arrays(np.uint8, st.tuples(side, side)),                         # L
    hnp.arrays(np.uint8, st.tuples(side, side, st.sampled_from([2, 3, 4]))),  # LA, RGB, RGBA
    hnp.arrays(np.uint16, st.tuples(side, side)),                        # I;16
    hnp.arrays(np.float32, st.tuples(side, side),                        # F, even inf and NaN
               elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
)


def scatter(size, dots, background, ink):
    """A (width, height) greyscale drawing: `background` with square dots (x, y in [0, 1],
    radius) of `ink`."""
    width, height = size
    array = np.full((height, width), background, np.uint8)
    for x, y, radius in dots:
        row, column = int(y * (height - 1)), int(x * (width - 1))
        array[max(0, row - radius):row + radius, max(0, column - radius):column + radius] = ink
    return array


# Sparse drawings: mostly background with a few marks, nearer to what people send.
sparse_arrays = st.builds(
    scatter, st.tuples(st.integers(1, 300), st.integers(1, 300)),
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(1, 12)), max_size=8),
    st.integers(0, 255), st.integers(0, 255))


def faint_corners(size, value=1):
    """An ink map with one faint dot in two opposite corners."""
    ink = np.zeros((size, size), np.uint8)
    ink[0, 0] = ink[-1, -1] = value
    return ink


@MODERATE
@given(pixel_arrays, st.booleans())
def test_any_pixels_give_28x28_digits_or_an_image_error(array, one_digit):
    assert_read_or_refused(read_image, Image.fromarray(array), one_digit)


@MODERATE
@given(sparse_arrays, st.booleans())
@example(scatter((2000, 2000), [(0.1, 0.1, 1), (0.9, 0.9, 1)], 255, 0), True)  # far specks
@example(scatter((2000, 2000), [(0.1, 0.1, 1), (0.9, 0.9, 1)], 255, 0), False)
def test_sparse_drawings_give_28x28_digits_or_an_image_error(array, one_digit):
    assert_read_or_refused(read_image, Image.fromarray(array), one_digit)


@MODERATE
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))))
@example(faint_corners(200))
def test_to_mnist_on_any_ink_map_gives_a_digit_or_an_image_error(ink):
    # to_mnist's input is any uint8 ink map; faint ink must not turn into NaN or a crash.
    try:
        digit = utils.to_mnist(ink)
    except errors.ImageError:
        return
    assert_mnist_shaped(digit)


@pytest.mark.parametrize("mode, format", [
    ("1", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("P", "PNG"), ("RGB", "PNG"), ("RGBA", "PNG"),
    ("I;16", "PNG"), ("I", "TIFF"), ("F", "TIFF"), ("CMYK", "JPEG"), ("RGB", "WEBP"),
    ("L", "GIF"), ("RGB", "BMP"),
])
def test_a_large_drawing_is_read_in_any_mode(mode, format):
    # Large enough that the pipeline shrinks it first, in modes Pillow cannot shrink directly.
    drawing = Image.new("L", (3000, 2000), 255)
    drawing.paste(0, (1400, 300, 1600, 1700))  # a 1
    image = drawing.convert(mode) if mode != "I;16" else Image.fromarray(
        np.asarray(drawing, np.uint16) * 257)
    try:
        ink, found = read_image(decoding.open_image(encode(image, format)))
    except errors.ImageError as error:
        pytest.fail(f"a clear 3000x2000 drawing in mode {mode} ({format}) was refused: {error}")
    assert len(found) == 1, f"the 1 was read as {len(found)} digits"
    assert_digits_read(found, ink)


# --- bytes ----------------------------------------------------------------------------------

def _sample_files():
    """A small drawing in each accepted format, the seeds for byte-level mutations."""
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (15, 5, 25, 35))
    rgb = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")
    return [encode(image, "PNG"), encode(rgb, "JPEG"), encode(rgb.convert("L"), "GIF"),
            encode(rgb, "BMP"), encode(rgb, "TIFF"), encode(image, "WEBP"),
            encode(rgb.convert("P"), "PNG"), encode(rgb.convert("CMYK"), "JPEG")]


SAMPLE_FILES = _sample_files()


@st.composite
def damaged_files(draw):
    """A valid image file with a few bytes overwritten, a piece cut out, or its end cut off."""
    data = bytearray(draw(st.sampled_from(SAMPLE_FILES)))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        start = draw(st.integers(0, len(data) - 1))
        del data[start:start + draw(st.integers(1, 64))]
    return bytes(data[:draw(st.integers(0, len(data)))])


def decode_and_read(data):
    """(ink map, [(box, digit)]) of image bytes, decoded as the server decodes them."""
    ink = image_ink.read_ink(data, max_pixels=1_000_000)
    return ink, read_digits(ink)


@MODERATE
@given(st.binary(max_size=2048))
def test_any_bytes_decode_or_raise_an_image_error(data):
    assert_read_or_refused(decode_and_read, data)


@MODERATE
@given(damaged_files())
def test_damaged_image_files_decode_or_raise_an_image_error(data):
    assert_read_or_refused(decode_and_read, data)


@MODERATE
@given(st.one_of(st.text(), st.text(alphabet="data:image/pngbase64;,+/=-_ \n\r\tAZaz09%\u00e9\ud800"),
                 st.builds(lambda data: data_uri(data), st.binary(max_size=256))))
def test_any_text_decodes_to_bytes_or_raises_an_image_error(text):
    try:
        assert isinstance(decoding.decode_base64_image(text), bytes)
    except errors.ImageError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children,
                                                                      max_size=4),
    max_leaves=20)


@MODERATE
@given(json_values)
def test_any_json_value_as_image_decodes_or_raises_an_image_error(value):
    try:
        assert isinstance(decoding.decode_base64_image(value), bytes)
    except errors.ImageError:
        pass


# --- the API --------------------------------------------------------------------------------

def assert_no_server_error(response, what):
    assert response.status_code < 500, \
        f"{what} made the server fail ({response.status_code}): {response.data[:300]!r}"
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict), \
            f"{what} got an error that is not JSON: {response.data[:300]!r}"
        assert isinstance(body.get("error"), str), f"{what} got an error without 'error': {body!r}"


@pytest.fixture(scope="module")
def api(app):
    return app.test_client()


@FEW
@given(json_values)
def test_api_on_any_json_never_answers_5xx(api, value):
    body = json.dumps(value).encode()  # NaN and Infinity too: Python's json reads them
    assert_no_server_error(api.post("/predict", data=body, content_type="application/json"),
                           f"the JSON {body[:200]!r}")


@FEW
@given(json_values | st.text() | st.builds(data_uri, st.binary(max_size=512)))
def test_api_on_any_image_field_never_answers_5xx(api, value):
    assert_no_server_error(api.post("/predict", json={"image": value}),
                           f"the image field {value!r:.200}")


@FEW
@given(json_values)
def test_api_on_any_mode_never_answers_5xx(api, mode):
    image = data_uri(SAMPLE_FILES[0])
    assert_no_server_error(api.post("/predict", json={"image": image, "mode": mode}),
                           f"the mode {mode!r:.200}")


@FEW
@given(st.binary(max_size=2048) | damaged_files(),
       st.sampled_from(["application/json", "image/png", "image/jpeg", "image/svg+xml",
                        "text/plain", "application/x-www-form-urlencoded",
                        "multipart/form-data", "multipart/form-data; boundary=x", None]))
def test_api_on_any_body_never_answers_5xx(api, body, content_type):
    assert_no_server_error(api.post("/predict", data=body, content_type=content_type),
                           f"the {content_type} body {body[:100]!r}")


@FEW
@given(damaged_files())
def test_api_on_damaged_uploads_never_answers_5xx(api, data):
    response = api.post("/predict", data={"image": (io.BytesIO(data), "digit.png")},
                        content_type="multipart/form-data")
    assert_no_server_error(response, f"the upload {data[:100]!r}")
    response = api.post("/predict", json={"image": base64.b64encode(data).decode()})
    assert_no_server_error(response, f"the base64 {data[:100]!r}")
