"""Hostile and odd requests to /predict, sent to the production server (gunicorn) for real.

A real server, not the test client: a 50 MB body really travels, and a worker's memory can be read
from /proc before and after.
"""

import base64
import json
import re
import socket
import struct
from types import SimpleNamespace

import pytest
import requests
from PIL import Image, ImageDraw

import conftest
import live_server
from conftest import data_uri, encode
from test_api import (as_16_bit_png, as_cmyk_jpeg, as_palette_png, as_webp, flatten_on_white,
                      tiny_png_declaring)

MB = 1024 * 1024
DIGIT = 1  # MNIST test digit 1, a 2: any digit would do, this one differs from test_api's 7

SVG_WITH_SCRIPT = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                   b'width="280" height="280"><script>alert(document.cookie)</script>'
                   b'<path d="M60 40 H220 L120 250" stroke="black" stroke-width="18"/></svg>')
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nnewpath 0 0 moveto 28 28 lineto stroke\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server.gunicorn(conftest.MODEL_PATH,
                              tmp_path_factory.mktemp("abuse") / "gunicorn.log") as server:
        server.first_workers = server.worker_pids
        yield server


@pytest.fixture(scope="module")
def drawn(draw_mnist_digit):
    """A digit drawn the way the page's canvas sends it: image, label, png, uri, and draw to
    draw others."""
    image, label = draw_mnist_digit(DIGIT)
    return SimpleNamespace(image=image, label=label, png=png(image), uri=data_uri(png(image)),
                           draw=draw_mnist_digit)


def post(server, request):
    return requests.post(server.url + "/predict", timeout=60, **request)


# --- request builders: each returns keyword arguments for requests.post ---------------------

def raw(body, content_type=None):
    return {"data": body, "headers": {"Content-Type": content_type} if content_type else {}}


def as_json(value):
    return raw(json.dumps(value).encode(), "application/json")


def image_json(data, media_type="image/png"):
    return as_json({"image": data_uri(data, media_type)})


def upload(data, filename="digit.png", content_type="image/png"):
    return {"files": {"image": (filename, data, content_type)}}


def chunked(total, first=b""):
    """A body without Content-Length, sent in 64 KB chunks: the server cannot know its size."""
    def chunks():
        yield first
        for _ in range(total // (64 * 1024)):
            yield bytes(64 * 1024)
    return {"data": chunks(), "headers": {"Content-Type": "image/png"}}


def png(image):
    return encode(image, "PNG")


def blank(colour, mode="RGB", size=(280, 280)):
    return png(Image.new(mode, size, colour))


def declaring_huge_size(kind):
    """A real 8x8 JPEG or GIF whose header is patched to claim a 65,000-pixel square."""
    data = bytearray(encode(Image.new("L", (8, 8)), kind))
    if kind == "JPEG":
        frame = data.index(b"\xff\xc0") + 5  # start-of-frame: height, width (big-endian)
        data[frame:frame + 4] = struct.pack(">HH", 65000, 65000)
    else:
        data[6:10] = struct.pack("<HH", 65535, 65535)  # GIF logical screen: width, height
    return bytes(data)


def strip_with_a_line():
    image = Image.new("L", (1, 4000), 255)
    image.paste(0, (0, 1500, 1, 2500))
    return png(image)


def big_canvas(drawn):
    return png(huge_canvas(drawn, 2000))


def huge_canvas(drawn, size=3000):
    """The digit drawn on a size x size canvas, larger than the pipeline works at."""
    image, _ = drawn.draw(DIGIT, canvas=(size, size), height=size * 0.7, pen=size // 16)
    return image


def animated_gif(digit_image):
    """40 frames: the first is the digit, the others scribbles that must not be read."""
    first = flatten_on_white(digit_image).convert("L")
    others = []
    for index in range(39):
        frame = Image.new("L", first.size, 255)
        ImageDraw.Draw(frame).ellipse((20 + index, 20, 260, 260 - index), outline=0, width=15)
        others.append(frame)
    return encode(first, "GIF", save_all=True, append_images=others, duration=40, loop=0)


def mime_wrapped_base64(data):
    text = base64.b64encode(data).decode()
    return "data:image/png;base64," + "\r\n".join(text[i:i + 76] for i in range(0, len(text), 76))


def specks(size):
    """Two one-pixel dots far apart: too little ink to survive scaling down to 20 pixels."""
    image = Image.new("L", (size, size), 255)
    image.putpixel((size // 10, size // 10), 0)
    image.putpixel((size * 9 // 10, size * 9 // 10), 0)
    return png(image)


def many_form_fields(count):
    return {"files": {f"field{i}": (None, "x") for i in range(count)}}


def case(name, status, build, reads=None):
    """A row: the request `build(drawn)` must get `status`; a 200 must read the drawn digit, or
    `reads` where given."""
    return pytest.param(name, status, build, reads, id=name)


HOSTILE = [
    # Nothing, or not JSON
    case("empty body", 400, lambda d: raw(b"")),
    case("empty JSON body", 400, lambda d: raw(b"", "application/json")),
    case("text/plain body", 415, lambda d: raw(b"a 7, trust me", "text/plain")),
    case("XML body", 415, lambda d: raw(b"<?xml version='1.0'?><a/>", "application/xml")),
    case("PDF body", 415, lambda d: raw(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf")),
    case("malformed JSON", 400, lambda d: raw(b'{"image": "data:image/png;base64,', "application/json")),
    case("JSON with trailing garbage", 400, lambda d: raw(b'{"image": "x"} }}', "application/json")),
    case("JSON null", 400, lambda d: raw(b"null", "application/json")),
    case("JSON array", 400, lambda d: as_json([data_uri(b"x")])),
    case("JSON bare string", 400, lambda d: as_json(data_uri(d.png))),
    case("JSON nested 100,000 deep", 400, lambda d: raw(b"[" * 100_000, "application/json")),
    case("image nested 100,000 deep", 400, lambda d: raw(b'{"image": ' + b"[" * 100_000, "application/json")),
    # image of the wrong type
    case("image is a number", 400, lambda d: as_json({"image": 7})),
    case("image is a 5000-digit number", 400, lambda d: raw(b'{"image": ' + b"9" * 5000 + b"}", "application/json")),
    case("image is null", 400, lambda d: as_json({"image": None})),
    case("image is a list", 400, lambda d: as_json({"image": [d.uri]})),
    case("image is an object", 400, lambda d: as_json({"image": {"data": d.uri}})),
    case("image is true", 400, lambda d: as_json({"image": True})),
    case("mode is a list", 400, lambda d: as_json({"image": d.uri, "mode": ["digit"]})),
    case("mode is unknown", 400, lambda d: as_json({"image": d.uri, "mode": "digits"})),
    case("mode with a script in the query", 400,
         lambda d: {**raw(d.png, "image/png"), "params": {"mode": "<script>alert(1)</script>"}}),
    # base64 that is not an image
    case("bad base64", 400, lambda d: as_json({"image": "data:image/png;base64,@@not*base64@@"})),
    case("empty data URI", 400, lambda d: as_json({"image": "data:image/png;base64,"})),
    case("base64 of random bytes", 400, lambda d: image_json(bytes(range(256)) * 64)),
    case("an https URL instead of an image", 400, lambda d: as_json({"image": "https://example.com/7.png"})),
    case("a file URL instead of an image", 400, lambda d: as_json({"image": "file:///etc/passwd"})),
    case("form field of garbage", 400, lambda d: {"data": {"image": "¯\\_(ツ)_/¯"}}),
    case("uploaded file of random bytes", 400, lambda d: upload(bytes(range(256)) * 64)),
    # broken or foreign files
    case("truncated PNG", 400, lambda d: raw(d.png[: len(d.png) // 2], "image/png")),
    case("PNG signature only", 400, lambda d: raw(b"\x89PNG\r\n\x1a\n", "image/png")),
    case("JSON sent as image/png", 400, lambda d: raw(json.dumps({"image": d.uri}).encode(), "image/png")),
    case("PostScript sent as image/png", 400, lambda d: raw(EPS, "image/png")),
    case("SVG with a script, SVG body", 415, lambda d: raw(SVG_WITH_SCRIPT, "image/svg+xml")),
    case("SVG with a script, SVG data URI", 415, lambda d: image_json(SVG_WITH_SCRIPT, "image/svg+xml")),
    case("SVG with a script, labelled PNG", 415, lambda d: image_json(SVG_WITH_SCRIPT)),
    case("SVG with a script, bare base64", 415, lambda d: as_json({"image": base64.b64encode(SVG_WITH_SCRIPT).decode()})),
    case("SVG with a script, uploaded as digit.png", 415, lambda d: upload(SVG_WITH_SCRIPT)),
    # decompression bombs: tiny files declaring huge images
    case("PNG declaring 30000x30000", 413, lambda d: raw(tiny_png_declaring(30000, 30000), "image/png")),
    case("PNG declaring 30000x30000, data URI", 413, lambda d: image_json(tiny_png_declaring(30000, 30000))),
    case("PNG declaring 30000x30000, upload", 413, lambda d: upload(tiny_png_declaring(30000, 30000))),
    case("PNG declaring 6000x6000", 413, lambda d: raw(tiny_png_declaring(6000, 6000), "image/png")),
    case("JPEG declaring 65000x65000", 413, lambda d: raw(declaring_huge_size("JPEG"), "image/jpeg")),
    case("GIF declaring 65535x65535", 413, lambda d: raw(declaring_huge_size("GIF"), "image/gif")),
    # huge bodies
    case("50 MB body", 413, lambda d: raw(bytes(50 * MB), "image/png")),
    case("50 MB JSON", 413, lambda d: as_json({"image": "A" * (50 * MB)})),
    case("50 MB upload", 413, lambda d: upload(bytes(50 * MB))),
    case("50 MB chunked body", 413, lambda d: chunked(50 * MB)),
    case("50 MB chunked body starting with a blank PNG", 413, lambda d: chunked(50 * MB, blank("white"))),
    case("5000 form fields", 413, lambda d: many_form_fields(5000)),
    # nothing drawn
    case("blank white canvas", 422, lambda d: image_json(blank("white"))),
    case("blank black canvas", 422, lambda d: image_json(blank("black"))),
    case("blank transparent canvas", 422, lambda d: image_json(blank((0, 0, 0, 0), "RGBA"))),
    case("1x1 image", 422, lambda d: image_json(blank("black", "L", (1, 1)))),
    case("1x4000 strip", 422, lambda d: image_json(blank("white", "L", (1, 4000)))),
    case("1x4000 strip with a vertical line", 200, lambda d: raw(strip_with_a_line(), "image/png"), reads=1),
    case("4000x1 strip", 422, lambda d: image_json(blank("black", "L", (4000, 1)))),
    case("two specks far apart on a 2000x2000 canvas", 422, lambda d: image_json(specks(2000))),
    # unicode garbage
    case("unicode garbage as image", 400, lambda d: as_json({"image": "Z̷̢̛̤͍a̵͚̍l̶g̸o 🤡 \u202e\ufeff 七"})),
    case("lone surrogate as image", 400, lambda d: as_json({"image": "\ud800\udfff\ud800"})),
    case("unicode keys only", 400, lambda d: as_json({"🖼️": d.uri, "imáge": "x"})),
    case("invalid UTF-8 in JSON", 400, lambda d: raw(b'{"image": "\xff\xfe\xc3\x28"}', "application/json")),
    # valid but unusual: must be read correctly
    case("16-bit PNG", 200, lambda d: image_json(as_16_bit_png(d.image))),
    case("palette PNG", 200, lambda d: image_json(as_palette_png(d.image))),
    case("CMYK JPEG", 200, lambda d: image_json(as_cmyk_jpeg(d.image), "image/jpeg")),
    case("WebP", 200, lambda d: image_json(as_webp(d.image), "image/webp")),
    case("2000x2000 PNG", 200, lambda d: raw(big_canvas(d), "image/png")),
    case("3000x3000 palette PNG", 200, lambda d: raw(as_palette_png(huge_canvas(d)), "image/png")),
    case("3000x3000 16-bit PNG", 200, lambda d: raw(as_16_bit_png(huge_canvas(d)), "image/png")),
    case("multi-frame GIF", 200, lambda d: image_json(animated_gif(d.image), "image/gif")),
    case("base64 wrapped at 76 columns", 200, lambda d: as_json({"image": mime_wrapped_base64(d.png)})),
    case("URL-safe base64 without padding", 200,
         lambda d: as_json({"image": base64.urlsafe_b64encode(d.png).decode().rstrip("=")})),
]


@pytest.mark.parametrize("name, status, build, reads", HOSTILE)
def test_hostile_request_gets_its_status_and_a_json_error(server, drawn, name, status, build,
                                                          reads):
    response = post(server, build(drawn))
    text = response.text
    assert response.status_code < 500, \
        f"{name}: the server failed ({response.status_code}): {text[:300]}"
    assert response.status_code == status, \
        f"{name}: expected {status}, got {response.status_code}: {text[:300]}"
    assert response.headers.get("Content-Type") == "application/json", \
        f"{name}: the answer is {response.headers.get('Content-Type')}, not JSON"
    body = response.json()
    for leak in ("Traceback", 'File "', "<script"):
        assert leak not in text, f"{name}: the answer contains {leak!r}: {text[:300]}"
    if status == 200:
        expected = drawn.label if reads is None else reads
        assert body["digit"] == expected, f"{name}: read {body['digit']} instead of {expected}"
    else:
        assert isinstance(body.get("error"), str) and len(body["error"]) > 10, \
            f"{name}: the error answer has no message a person could act on: {body}"


def test_server_still_reads_a_digit_after_the_hostile_table(server, drawn):
    response = post(server, image_json(drawn.png))
    assert response.status_code == 200 and response.json()["digit"] == drawn.label, \
        f"after the hostile requests the server answered {response.status_code}: {response.text[:200]}"


def test_no_worker_crashed_or_logged_an_unhandled_error_during_the_table(server):
    assert server.worker_pids == server.first_workers, \
        "a worker was replaced: one crashed, ran out of memory or timed out:\n" + server.log()[-3000:]
    assert "Unhandled error" not in server.log() and "Traceback" not in server.log(), \
        "the server logged an unhandled error:\n" + server.log()[-3000:]


# --- memory: what is refused must cost nothing -------------------------------------------------

def assert_peak_growth_below(server, limit_mb, what):
    growth = server.peak_growth()
    worst = max(growth.values())
    assert worst < limit_mb, (f"{what} raised a worker's peak memory by {worst:.0f} MB "
                              f"(limit {limit_mb} MB): {growth}")


def test_pixel_bomb_is_refused_without_allocating_its_pixels(server):
    # 30000 x 30000 would take 900 MB as greyscale, 3.6 GB as RGBA.
    server.reset_peak_memory()
    for _ in range(4):  # every worker gets one, whichever the kernel picks
        assert post(server, raw(tiny_png_declaring(30000, 30000), "image/png")).status_code == 413
    assert_peak_growth_below(server, 20, "a 30000x30000 pixel bomb")


@pytest.mark.parametrize("name, request_", [
    ("with Content-Length", lambda: raw(bytes(50 * MB), "image/png")),
    ("chunked", lambda: chunked(50 * MB)),
])
def test_50_mb_body_is_refused_without_buffering_it(server, name, request_):
    server.reset_peak_memory()
    for _ in range(2):
        assert post(server, request_()).status_code in (400, 413)  # the table checks the status
    assert_peak_growth_below(server, 20, f"a 50 MB body {name}")


def read_http_answer(connection):
    """Bytes of one HTTP answer: headers, then Content-Length bytes of body (or up to close)."""
    answer = b""
    while b"\r\n\r\n" not in answer and (chunk := connection.recv(65536)):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while (length is None or len(body) < int(length.group(1))) and (chunk := connection.recv(65536)):
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_oversized_body_is_refused_before_it_is_sent(server):
    # Only the headers go out: an answer now proves the server never waits for 50 MB.
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: localhost\r\n"
                           b"Content-Type: image/png\r\nContent-Length: 52428800\r\n\r\n")
        answer = read_http_answer(connection)
    assert answer.startswith(b"HTTP/1.1 413"), f"the server answered {answer[:100]!r}"
    assert b'"error"' in answer


def test_the_largest_image_allowed_costs_a_worker_under_150_mb(server):
    # A 5000 x 5000 RGBA canvas compresses to ~100 KB but is 100 MB of pixels once decoded; each
    # copy the pipeline makes at full size multiplies that.
    image = Image.new("RGBA", (4999, 4999), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(1500, 800), (3500, 800), (2000, 4200)], fill="black", width=300)
    data = encode(image, "PNG", compress_level=1)
    server.reset_peak_memory()
    response = post(server, raw(data, "image/png"))
    assert response.status_code == 200, response.text[:200]
    assert_peak_growth_below(server, 150, "a 25-megapixel RGBA PNG")
