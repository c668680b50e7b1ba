"""The JSON API, with the real model: every accepted input form, every error code."""

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import MODEL_PATH, data_uri, encode

SEVEN = 0  # MNIST test digit 0 is a 7


@pytest.fixture(scope="module")
def seven(draw_mnist_digit):
    image, label = draw_mnist_digit(SEVEN)
    assert label == 7
    return image


@pytest.fixture(scope="module")
def seven_png(seven):
    return encode(seven, "PNG")


def assert_reads(response, digit):
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["digit"] == digit, f"read {body['digit']} instead of {digit}"
    return body


def tiny_png_declaring(width, height):
    """A valid-looking PNG of a few dozen bytes whose header claims width x height pixels."""
    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


# --- accepted forms ---------------------------------------------------------------------

def post_json_data_uri(client, png):
    return client.post("/predict", json={"image": data_uri(png)})


def post_json_bare_base64(client, png):
    return client.post("/predict", json={"image": base64.b64encode(png).decode()})


def post_form_field_image(client, png):
    return client.post("/predict", data={"image": data_uri(png)})


def post_form_field_data(client, png):
    return client.post("/predict", data={"data": data_uri(png)})


def post_multipart_field(client, png):
    return client.post("/predict", data={"image": data_uri(png), "other": "x"},
                       content_type="multipart/form-data")


def post_multipart_file_image(client, png):
    return client.post("/predict", data={"image": (io.BytesIO(png), "digit.png")},
                       content_type="multipart/form-data")


def post_multipart_file_file(client, png):
    return client.post("/predict", data={"file": (io.BytesIO(png), "digit.png")},
                       content_type="multipart/form-data")


def post_raw_body(client, png):
    return client.post("/predict", data=png, content_type="image/png")


@pytest.mark.parametrize("send", [
    post_json_data_uri, post_json_bare_base64, post_form_field_image, post_form_field_data,
    post_multipart_field, post_multipart_file_image, post_multipart_file_file, post_raw_body,
])
def test_every_accepted_form_reads_the_digit(client, seven_png, send):
    assert_reads(send(client, seven_png), 7)


def test_reply_has_digit_confidence_probabilities_and_preview(client, seven_png):
    body = assert_reads(post_json_data_uri(client, seven_png), 7)
    assert len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - 1) < 1e-4
    assert body["confidence"] == max(body["probabilities"]) and body["confidence"] > 0.9
    assert body["preview"].startswith("data:image/png;base64,")
    preview = Image.open(io.BytesIO(base64.b64decode(body["preview"].split(",", 1)[1])))
    assert preview.size == (28, 28)
    pixels = np.asarray(preview, np.float64)
    rows, columns = np.mgrid[:28, :28]
    centre = ((rows * pixels).sum() / pixels.sum(), (columns * pixels).sum() / pixels.sum())
    assert pixels.max() == 255 and np.allclose(centre, 14, atol=0.6), \
        f"the preview is not the centred MNIST-style digit (centre of mass {centre})"


def flatten_on_white(image):
    return Image.alpha_composite(Image.new("RGBA", image.size, "white"), image).convert("RGB")


def as_palette_png(image):
    return encode(flatten_on_white(image).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def as_16_bit_png(image):
    grey = np.asarray(flatten_on_white(image).convert("L"), np.uint16) * 257
    return encode(Image.fromarray(grey, mode="I;16"), "PNG")


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
    return encode(image.convert("LA"), "PNG")


@pytest.mark.parametrize("convert", [as_palette_png, as_16_bit_png, as_jpeg, as_cmyk_jpeg,
                                     as_webp, as_first_frame_of_gif, as_bmp, as_tiff,
                                     as_grey_alpha_png])
def test_common_raster_formats_are_read(client, seven, convert):
    assert_reads(client.post("/predict", json={"image": data_uri(convert(seven))}), 7)


# --- errors ----------------------------------------------------------------------------

def blank(colour, mode="RGB"):
    return encode(Image.new(mode, (280, 280), colour), "PNG")


ERROR_CASES = [
    # name, request kwargs, expected status
    ("empty body", dict(), 400),
    ("malformed JSON", dict(data=b'{"image": ', content_type="application/json"), 400),
    ("JSON null", dict(data=b"null", content_type="application/json"), 400),
    ("JSON without image", dict(json={"picture": "x"}), 400),
    ("image not a string", dict(json={"image": 12}), 400),
    ("bad base64", dict(json={"image": "data:image/png;base64,@@@not base64@@@"}), 400),
    ("base64 of random bytes", dict(json={"image": base64.b64encode(bytes(range(256)) * 4).decode()}), 400),
    ("form without image", dict(data={"name": "x"}), 400),
    ("text/plain body", dict(data=b"hello", content_type="text/plain"), 415),
    ("SVG body", dict(data=b"<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/svg+xml"), 415),
    ("SVG data URI", dict(json={"image": data_uri(b"<svg/>", "image/svg+xml")}), 415),
    ("PDF data URI", dict(json={"image": data_uri(b"%PDF-1.4", "application/pdf")}), 415),
    ("SVG sent as image/png", dict(data=b"<?xml version='1.0'?><svg/>", content_type="image/png"), 415),
    ("pixel bomb", dict(data=tiny_png_declaring(30000, 30000), content_type="image/png"), 413),
    ("body over the limit", dict(data=b"\x89PNG" + b"\0" * (3 * 1024 * 1024), content_type="image/png"), 413),
    ("blank white", dict(json={"image": data_uri(blank("white"))}), 422),
    ("blank black", dict(json={"image": data_uri(blank("black"))}), 422),
    ("blank transparent", dict(json={"image": data_uri(blank((0, 0, 0, 0), "RGBA"))}), 422),
]


@pytest.mark.parametrize("name, kwargs, status", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_requests_get_a_clear_json_error(client, name, kwargs, status):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, f"{name}: {response.status_code} {response.data[:200]}"
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and len(body["error"]) > 10
    assert "Traceback" not in response.get_data(as_text=True)


def test_a_truncated_png_is_400(client, seven_png):
    response = client.post("/predict", data=seven_png[: len(seven_png) // 2],
                           content_type="image/png")
    assert response.status_code == 400 and "truncated" in response.get_json()["error"]


def test_unknown_paths_and_methods_answer_json(client):
    assert client.get("/api/nothing").status_code == 404
    assert "error" in client.get("/api/nothing").get_json()
    response = client.get("/predict")
    assert response.status_code == 405 and "error" in response.get_json()


# --- the other endpoints -----------------------------------------------------------------

def test_healthz_says_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_model_endpoint_gives_metadata_and_the_files_sha256(client):
    import hashlib

    body = client.get("/api/model").get_json()
    assert body["sha256"] == hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest()
    assert float(body["metadata"]["mnist_test_accuracy"]) >= 0.995
    assert body["input"]["name"] == "image" and body["output"]["name"] == "probabilities"


def test_page_is_served_with_the_canvas(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for hook in ['data-testid="canvas"', 'data-testid="predict"', 'data-testid="clear"',
                 'data-testid="result"']:
        assert hook in html, f"the page lacks {hook}"


def test_timing_split_is_reported_in_server_timing(client, seven_png):
    timing = post_raw_body(client, seven_png).headers["Server-Timing"]
    assert [part.split(";")[0] for part in timing.split(", ")] == ["decode", "preprocess",
                                                                  "inference"]


# --- whole numbers ---------------------------------------------------------------------

def draw_number(draw_mnist_digit, indices, width=140):
    canvas = Image.new("RGBA", (width * len(indices), 280), (0, 0, 0, 0))
    for position, index in enumerate(indices):
        digit, _ = draw_mnist_digit(index, canvas=(width, 280), height=110)
        canvas.alpha_composite(digit, (position * width, 0))
    return canvas


def test_a_single_digit_also_gets_number_and_one_digits_entry(client, seven_png):
    body = assert_reads(post_raw_body(client, seven_png), 7)
    assert body["number"] == "7"
    [entry] = body["digits"]
    assert entry["digit"] == 7 and entry["confidence"] == body["confidence"]
    assert entry["preview"] == body["preview"]
    x0, y0, x1, y1 = entry["box"]
    assert 0 <= x0 < x1 <= 280 and 0 <= y0 < y1 <= 280


def test_a_number_is_read_left_to_right(client, draw_mnist_digit):
    response = client.post("/predict", data=encode(draw_number(draw_mnist_digit, [1, 3, 1, 4]),
                                                   "PNG"), content_type="image/png")
    body = response.get_json()
    assert response.status_code == 200 and body["number"] == "2024", body.get("number")
    assert body["digit"] is None and body["probabilities"] is None and body["preview"] is None
    assert [entry["digit"] for entry in body["digits"]] == [2, 0, 2, 4]
    boxes = [entry["box"] for entry in body["digits"]]
    assert all(a[2] <= b[0] for a, b in zip(boxes, boxes[1:])), "boxes must run left to right"
    product = np.prod([entry["confidence"] for entry in body["digits"]])
    assert abs(body["confidence"] - product) < 1e-5


@pytest.mark.parametrize("name, strokes_of_one_digit", [
    ("5 with a detached top bar", [[(0.3, 0.5), (0.3, 0.2)], [(0.38, 0.15), (0.75, 0.15)],
                                   [(0.3, 0.5), (0.6, 0.5), (0.7, 0.7), (0.55, 0.88), (0.3, 0.85)]]),
    ("7 with a crossbar", [[(0.25, 0.15), (0.75, 0.15), (0.45, 0.9)], [(0.35, 0.5), (0.7, 0.5)]]),
    ("4 in two strokes", [[(0.45, 0.1), (0.25, 0.6), (0.75, 0.6)], [(0.62, 0.35), (0.62, 0.92)]]),
    ("1 broken in two", [[(0.55, 0.1), (0.5, 0.45)], [(0.49, 0.58), (0.45, 0.92)]]),
])
def test_one_digit_in_several_strokes_is_not_split(client, name, strokes_of_one_digit):
    import strokes

    placed = strokes.place_strokes(strokes_of_one_digit, (280, 280), 200, (140, 140))
    image = strokes.draw_strokes(placed, (280, 280), 16)
    body = client.post("/predict", data=encode(image, "PNG"), content_type="image/png").get_json()
    assert len(body["digits"]) == 1, f"{name} was split into {body['number']}"
    assert body["number"] == name[0]


def test_specks_are_not_read_as_digits(client, seven):
    specked = seven.copy()
    for x, y in [(10, 10), (265, 20), (20, 268)]:
        specked.paste((0, 0, 0, 255), (x, y, x + 3, y + 3))
    assert assert_reads(client.post("/predict", data=encode(specked, "PNG"),
                                    content_type="image/png"), 7)["number"] == "7"


@pytest.mark.parametrize("send", [
    lambda client, png: client.post("/predict", json={"image": data_uri(png), "mode": "digit"}),
    lambda client, png: client.post("/predict", data={"image": data_uri(png), "mode": "digit"}),
    lambda client, png: client.post("/predict?mode=digit", data=png, content_type="image/png"),
], ids=["json", "form", "query"])
def test_digit_mode_reads_one_digit_even_when_marks_are_apart(client, draw_mnist_digit, send):
    png = encode(draw_number(draw_mnist_digit, [2, 2]), "PNG")  # two 1s, far apart
    assert send(client, png).get_json()["number"] == "1"
    assert client.post("/predict", data=png, content_type="image/png").get_json()["number"] == "11"


@pytest.mark.parametrize("mode", ["digits", "DIGIT", 5, ["digit"]])
def test_an_unknown_mode_is_400(client, seven_png, mode):
    response = client.post("/predict", json={"image": data_uri(seven_png), "mode": mode})
    assert response.status_code == 400 and "mode" in response.get_json()["error"]
