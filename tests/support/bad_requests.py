"""The bad requests to /predict, in one table: test_api.py sends it through the Flask test client,
test_abuse.py to the production server (gunicorn). Each row is a named request with the status
and a fragment of the JSON error message it must get.

Requests are data (body, content type, path, whether chunked), so both senders send the same
bytes; a body is made when sent, as some are 50 MB.
"""

import base64
import io
import json
import urllib.parse
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import pytest
import requests
from urllib3 import encode_multipart_formdata

from .images import (blank, data_uri, declaring_huge_size, in_faint_ink, png, seven_on_a_canvas,
                     specks, tiny_png_declaring)

MB = 1024 * 1024
CHUNK = 64 * 1024
BOUNDARY = "digit-recognizer-test"  # fixed, so a form can be made when sent
DIGIT = png(seven_on_a_canvas())
SVG_WITH_SCRIPT = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                   b'width="280" height="280"><script>alert(document.cookie)</script>'
                   b'<path d="M60 40 H220 L120 250" stroke="black" stroke-width="18"/></svg>')
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nnewpath 0 0 moveto 28 28 lineto stroke\n"


@dataclass(frozen=True)
class Request:
    """A POST: `make_body()` gives the bytes; `chunked` sends them without Content-Length."""
    make_body: Callable[[], bytes]
    content_type: Optional[str] = None
    path: str = "/predict"
    chunked: bool = False

    def headers(self):
        return {"Content-Type": self.content_type} if self.content_type else {}


class Answer(NamedTuple):
    status: int
    content_type: Optional[str]
    text: str

    def json(self):
        return json.loads(self.text)


# --- requests ---------------------------------------------------------------------------

def raw(body, content_type=None, **options):
    """`body`: bytes, or a function that makes them."""
    return Request(body if callable(body) else lambda: body, content_type, **options)


def as_json(value):
    return raw(json.dumps(value).encode(), "application/json")


def image_json(data, media_type="image/png"):
    return as_json({"image": data_uri(data, media_type)})


def form(fields):
    return raw(urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded")


def multipart(make_fields):
    """A multipart form of the fields `make_fields()` gives, made when sent."""
    return raw(lambda: encode_multipart_formdata(make_fields(), boundary=BOUNDARY)[0],
               f"multipart/form-data; boundary={BOUNDARY}")


def upload(data):
    return multipart(lambda: {"image": ("digit.png", data, "image/png")})


def big(size, first=b"", content_type="image/png", chunked=False):
    """`size` bytes of zeros after `first`, made only when sent."""
    return raw(lambda: first + bytes(size), content_type, chunked=chunked)


# --- senders: the same request through the test client or over HTTP ----------------------

def send_with_client(client, request):
    body = request.make_body()
    if request.chunked:  # what gunicorn hands on for a body without Content-Length
        response = client.post(request.path, input_stream=io.BytesIO(body),
                               headers={**request.headers(), "Transfer-Encoding": "chunked"},
                               environ_overrides={"wsgi.input_terminated": True})
    else:
        response = client.post(request.path, data=body, headers=request.headers())
    return Answer(response.status_code, response.headers.get("Content-Type"),
                  response.get_data(as_text=True))


def send_to_server(url, request):
    body = request.make_body()
    if request.chunked:  # requests sends a generator chunked, without Content-Length
        data = (body[start:start + CHUNK] for start in range(0, len(body), CHUNK))
    else:
        data = body
    response = requests.post(url + request.path, data=data, headers=request.headers(),
                             timeout=60)
    return Answer(response.status_code, response.headers.get("Content-Type"), response.text)


# --- the table --------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    request: Request
    status: int
    message: str  # a fragment of the error message


NO_IMAGE = "request has no image"
NOT_AN_OBJECT = "must be a JSON object"
NO_FORM_FIELD = "form field 'image'"
NOT_A_STRING = "must be a string"
BAD_MODE = 'mode must be "digit"'
BAD_TYPE = "is not accepted"
NOT_BASE64 = "not valid base64"
UNREADABLE = "not an image Pillow can read"
SVG = "SVG is not supported"
DECLARES_TOO_MANY = "declares more pixels than the 25,000,000 allowed"
TOO_LONG = "over the 2 MB limit"
BLANK = "Nothing is drawn"

CASES = [Case(*row) for row in [
    # Nothing, or not JSON
    ("empty body", raw(b""), 400, NO_IMAGE),
    ("empty JSON body", raw(b"", "application/json"), 400, NOT_AN_OBJECT),
    ("text/plain body", raw(b"a 7, trust me", "text/plain"), 415, BAD_TYPE),
    ("XML body", raw(b"<?xml version='1.0'?><a/>", "application/xml"), 415, BAD_TYPE),
    ("PDF body", raw(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "application/pdf"), 415, BAD_TYPE),
    ("malformed JSON", raw(b'{"image": "data:image/png;base64,', "application/json"), 400,
     NOT_AN_OBJECT),
    ("JSON with trailing garbage", raw(b'{"image": "x"} }}', "application/json"), 400,
     NOT_AN_OBJECT),
    ("JSON null", raw(b"null", "application/json"), 400, NOT_AN_OBJECT),
    ("JSON array", as_json([data_uri(b"x")]), 400, NOT_AN_OBJECT),
    ("JSON bare string", as_json(data_uri(DIGIT)), 400, NOT_AN_OBJECT),
    ("JSON without image", as_json({"picture": data_uri(DIGIT)}), 400, NOT_AN_OBJECT),
    ("JSON nested 100,000 deep", raw(b"[" * 100_000, "application/json"), 400, NOT_AN_OBJECT),
    ("image nested 100,000 deep", raw(b'{"image": ' + b"[" * 100_000, "application/json"), 400,
     NOT_AN_OBJECT),
    ("unicode keys only", as_json({"🖼️": data_uri(DIGIT), "imáge": "x"}), 400, NOT_AN_OBJECT),
    ("invalid UTF-8 in JSON", raw(b'{"image": "\xff\xfe\xc3\x28"}', "application/json"), 400,
     NOT_AN_OBJECT),
    ("form without image", form({"name": "x"}), 400, NO_FORM_FIELD),
    # image of the wrong type
    ("image is a number", as_json({"image": 7}), 400, NOT_A_STRING),
    ("image is a 5000-digit number", raw(b'{"image": ' + b"9" * 5000 + b"}",
                                         "application/json"), 400, NOT_AN_OBJECT),
    ("image is null", as_json({"image": None}), 400, NOT_A_STRING),
    ("image is a list", as_json({"image": [data_uri(DIGIT)]}), 400, NOT_A_STRING),
    ("image is an object", as_json({"image": {"data": data_uri(DIGIT)}}), 400, NOT_A_STRING),
    ("image is true", as_json({"image": True}), 400, NOT_A_STRING),
    # an unknown mode
    ("mode is unknown", as_json({"image": data_uri(DIGIT), "mode": "digits"}), 400, BAD_MODE),
    ("mode in capitals", as_json({"image": data_uri(DIGIT), "mode": "DIGIT"}), 400, BAD_MODE),
    ("mode is a number", as_json({"image": data_uri(DIGIT), "mode": 5}), 400, BAD_MODE),
    ("mode is a list", as_json({"image": data_uri(DIGIT), "mode": ["digit"]}), 400, BAD_MODE),
    ("mode with a script in the query",
     raw(DIGIT, "image/png", path="/predict?" + urllib.parse.urlencode(
         {"mode": "<script>alert(1)</script>"})), 400, BAD_MODE),
    # base64 that is not an image
    ("bad base64", as_json({"image": "data:image/png;base64,@@not*base64@@"}), 400, NOT_BASE64),
    ("empty data URI", as_json({"image": "data:image/png;base64,"}), 400, "image is empty"),
    ("base64 of random bytes", image_json(bytes(range(256)) * 64), 400, UNREADABLE),
    ("an https URL instead of an image", as_json({"image": "https://example.com/7.png"}), 400,
     NOT_BASE64),
    ("a file URL instead of an image", as_json({"image": "file:///etc/passwd"}), 400,
     NOT_BASE64),
    ("form field of garbage", form({"image": "¯\\_(ツ)_/¯"}), 400, NOT_BASE64),
    ("uploaded file of random bytes", upload(bytes(range(256)) * 64), 400, UNREADABLE),
    ("unicode garbage as image", as_json({"image": "Z̷̢̛̤͍a̵͚̍l̶g̸o 🤡 \u202e\ufeff 七"}), 400,
     NOT_BASE64),
    ("lone surrogate as image", as_json({"image": "\ud800\udfff\ud800"}), 400, NOT_BASE64),
    # broken or foreign files
    ("truncated PNG", raw(DIGIT[: len(DIGIT) // 2], "image/png"), 400, "truncated"),
    ("PNG signature only", raw(b"\x89PNG\r\n\x1a\n", "image/png"), 400, UNREADABLE),
    ("JSON sent as image/png", raw(json.dumps({"image": data_uri(DIGIT)}).encode(), "image/png"),
     400, UNREADABLE),
    ("PostScript sent as image/png", raw(EPS, "image/png"), 400, UNREADABLE),
    ("PDF data URI", image_json(b"%PDF-1.4", "application/pdf"), 415, "is not an image; send"),
    ("SVG with a script, SVG body", raw(SVG_WITH_SCRIPT, "image/svg+xml"), 415, SVG),
    ("SVG with a script, SVG data URI", image_json(SVG_WITH_SCRIPT, "image/svg+xml"), 415, SVG),
    ("SVG with a script, labelled PNG", image_json(SVG_WITH_SCRIPT), 415, SVG),
    ("SVG with a script, sent as image/png", raw(SVG_WITH_SCRIPT, "image/png"), 415, SVG),
    ("SVG with a script, bare base64",
     as_json({"image": base64.b64encode(SVG_WITH_SCRIPT).decode()}), 415, SVG),
    ("SVG with a script, uploaded as digit.png", upload(SVG_WITH_SCRIPT), 415, SVG),
    # decompression bombs: tiny files declaring huge images
    ("PNG declaring 30000x30000", raw(tiny_png_declaring(30000, 30000), "image/png"), 413,
     DECLARES_TOO_MANY),
    ("PNG declaring 30000x30000, data URI", image_json(tiny_png_declaring(30000, 30000)), 413,
     DECLARES_TOO_MANY),
    ("PNG declaring 30000x30000, upload", upload(tiny_png_declaring(30000, 30000)), 413,
     DECLARES_TOO_MANY),
    ("PNG declaring 6000x6000", raw(tiny_png_declaring(6000, 6000), "image/png"), 413,
     "the limit is 25,000,000 pixels"),
    ("JPEG declaring 65000x65000", raw(declaring_huge_size("JPEG"), "image/jpeg"), 413,
     DECLARES_TOO_MANY),
    ("GIF declaring 65535x65535", raw(declaring_huge_size("GIF"), "image/gif"), 413,
     DECLARES_TOO_MANY),
    # bodies too long
    ("body just over 2 MB", big(3 * MB, first=b"\x89PNG"), 413, TOO_LONG),
    ("50 MB body", big(50 * MB), 413, TOO_LONG),
    ("50 MB JSON", raw(lambda: json.dumps({"image": "A" * (50 * MB)}).encode(),
                       "application/json"), 413, TOO_LONG),
    ("50 MB upload", multipart(lambda: {"image": ("digit.png", bytes(50 * MB), "image/png")}),
     413, TOO_LONG),
    ("50 MB chunked body", big(50 * MB, chunked=True), 413, TOO_LONG),
    ("50 MB chunked body starting with a blank PNG",
     big(50 * MB, first=blank("white"), chunked=True), 413, TOO_LONG),
    # Werkzeug refuses more than 1000 form parts with the same error as a long body.
    ("5000 form fields", multipart(lambda: {f"field{i}": "x" for i in range(5000)}), 413,
     TOO_LONG),
    # nothing drawn
    ("blank white canvas", image_json(blank("white")), 422, BLANK),
    ("blank black canvas", image_json(blank("black")), 422, BLANK),
    ("blank transparent canvas", image_json(blank((0, 0, 0, 0), "RGBA")), 422, BLANK),
    ("1x1 image", image_json(blank("black", "L", (1, 1))), 422, BLANK),
    ("1x4000 strip", image_json(blank("white", "L", (1, 4000))), 422, BLANK),
    ("4000x1 strip", image_json(blank("black", "L", (4000, 1))), 422, BLANK),
    ("two specks far apart on a 2000x2000 canvas", image_json(specks(2000)), 422,
     "too small to be a digit"),
    ("a 7 in ink too faint to tell from the paper",
     image_json(png(in_faint_ink(seven_on_a_canvas(), contrast=20))), 422, BLANK),
]]
PARAMS = [pytest.param(case, id=case.name) for case in CASES]


def named(name):
    [case] = [case for case in CASES if case.name == name]
    return case


def assert_refused(case, answer):
    """The answer to a bad request: its status, JSON {"error": ...} saying what was wrong,
    and nothing of the server's insides."""
    name, text = case.name, answer.text[:300]
    assert answer.status < 500, f"{name}: the server failed ({answer.status}): {text}"
    assert answer.status == case.status, f"{name}: expected {case.status}, got {answer.status}: " \
                                         f"{text}"
    assert answer.content_type == "application/json", \
        f"{name}: the answer is {answer.content_type}, not JSON"
    for leak in ("Traceback", 'File "', "<script"):
        assert leak not in answer.text, f"{name}: the answer contains {leak!r}: {text}"
    body = answer.json()
    assert isinstance(body, dict), f"{name}: the answer is not a JSON object: {text}"
    assert isinstance(body.get("error"), str), f"{name}: the answer has no error message: {text}"
    assert case.message in body["error"], \
        f"{name}: the message {body['error']!r} does not say {case.message!r}"
