"""Hostile and odd requests to /predict, sent to the production server (gunicorn) for real.

A real server, not the test client: a 50 MB body really travels, and a worker's memory can be read
from /proc before and after. The bad requests are bad_requests.py's table, which test_api.py
sends through the test client too; the unusual but valid ones are here.
"""

import base64
import re
import socket
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw

import support
from support import bad_requests, live_server
from support.bad_requests import as_json, image_json, raw, send_to_server
from support.images import (as_16_bit_png, as_cmyk_jpeg, as_palette_png, as_webp, encode,
                            flatten_on_white, png)

DIGIT = 1  # MNIST test digit 1, a 2: any digit would do, this one differs from test_api's 7


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server.gunicorn(support.MODEL_PATH,
                              tmp_path_factory.mktemp("abuse") / "gunicorn.log") as server:
        server.first_workers = server.worker_pids
        yield server


@pytest.fixture(scope="module")
def drawn(draw_mnist_digit):
    """A digit drawn the way the page's canvas sends it: image, label, png, and draw to draw
    others."""
    image, label = draw_mnist_digit(DIGIT)
    return SimpleNamespace(image=image, label=label, png=png(image), draw=draw_mnist_digit)


@pytest.mark.parametrize("case", bad_requests.PARAMS)
def test_bad_request_to_gunicorn_gets_its_status_and_a_json_error(server, case):
    bad_requests.assert_refused(case, send_to_server(server.url, case.request))


# --- unusual but valid: each must be read --------------------------------------------------

def strip_with_a_line():
    image = Image.new("L", (1, 4000), 255)
    image.paste(0, (0, 1500, 1, 2500))
    return png(image)


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


def valid(name, build, reads=None):
    """A row: the request `build(drawn)` must read the drawn digit, or `reads` where given."""
    return pytest.param(name, build, reads, id=name)


UNUSUAL_BUT_VALID = [
    valid("16-bit PNG", lambda d: image_json(as_16_bit_png(d.image))),
    valid("palette PNG", lambda d: image_json(as_palette_png(d.image))),
    valid("CMYK JPEG", lambda d: image_json(as_cmyk_jpeg(d.image), "image/jpeg")),
    valid("WebP", lambda d: image_json(as_webp(d.image), "image/webp")),
    valid("2000x2000 PNG", lambda d: raw(png(huge_canvas(d, 2000)), "image/png")),
    valid("3000x3000 palette PNG", lambda d: raw(as_palette_png(huge_canvas(d)), "image/png")),
    valid("3000x3000 16-bit PNG", lambda d: raw(as_16_bit_png(huge_canvas(d)), "image/png")),
    valid("multi-frame GIF", lambda d: image_json(animated_gif(d.image), "image/gif")),
    valid("base64 wrapped at 76 columns", lambda d: as_json({"image": mime_wrapped_base64(d.png)})),
    valid("URL-safe base64 without padding",
          lambda d: as_json({"image": base64.urlsafe_b64encode(d.png).decode().rstrip("=")})),
    valid("1x4000 strip with a vertical line", lambda d: raw(strip_with_a_line(), "image/png"),
          reads=1),
]


@pytest.mark.parametrize("name, build, reads", UNUSUAL_BUT_VALID)
def test_unusual_but_valid_request_is_read(server, drawn, name, build, reads):
    answer = send_to_server(server.url, build(drawn))
    assert answer.status == 200, f"{name}: answered {answer.status}: {answer.text[:300]}"
    assert answer.content_type == "application/json", \
        f"{name}: the answer is {answer.content_type}, not JSON"
    expected = drawn.label if reads is None else reads
    digit = answer.json()["digit"]
    assert digit == expected, f"{name}: read {digit} instead of {expected}"


def test_server_still_reads_a_digit_after_the_hostile_table(server, drawn):
    answer = send_to_server(server.url, image_json(drawn.png))
    assert answer.status == 200, \
        f"after the hostile requests the server answered {answer.status}: {answer.text[:200]}"
    assert answer.json()["digit"] == drawn.label, \
        f"after the hostile requests the server read {answer.json()['digit']}"


def test_no_worker_crashed_or_logged_an_unhandled_error_during_the_table(server):
    assert server.worker_pids == server.first_workers, \
        "a worker was replaced: one crashed, ran out of memory or timed out:\n" + server.log()[-3000:]
    for sign in ("Unhandled error", "Traceback"):
        assert sign not in server.log(), \
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
    bomb = bad_requests.named("PNG declaring 30000x30000").request
    for _ in range(4):  # every worker gets one, whichever the kernel picks
        assert send_to_server(server.url, bomb).status == 413
    assert_peak_growth_below(server, 20, "a 30000x30000 pixel bomb")


@pytest.mark.parametrize("name", ["50 MB body", "50 MB chunked body"])
def test_50_mb_body_is_refused_without_buffering_it(server, name):
    request = bad_requests.named(name).request
    server.reset_peak_memory()
    for _ in range(2):
        assert send_to_server(server.url, request).status in (400, 413)  # the table checks it
    assert_peak_growth_below(server, 20, name)


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
    answer = send_to_server(server.url, raw(data, "image/png"))
    assert answer.status == 200, answer.text[:200]
    assert_peak_growth_below(server, 150, "a 25-megapixel RGBA PNG")
