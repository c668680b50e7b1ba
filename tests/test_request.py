"""app.read_request on its own: a /predict request to (image bytes, mode), no model needed."""

import io

import pytest
from flask import Flask, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from app import read_request
from drawing import errors
from support.images import data_uri

IMAGE = b"\x89PNG\r\n\x1a\n any bytes: read_request does not decode the image"


@pytest.fixture(scope="module")
def bare_app():
    return Flask(__name__)


def read(bare_app, query_string=None, **body):
    with bare_app.test_request_context("/predict", method="POST", query_string=query_string,
                                       **body):
        return read_request(request)


@pytest.mark.parametrize("body, query, mode", [
    (dict(json={"image": data_uri(IMAGE)}), None, "number"),
    (dict(json={"image": data_uri(IMAGE), "mode": "digit"}), None, "digit"),
    (dict(json={"image": data_uri(IMAGE), "mode": "number"}), {"mode": "digit"}, "number"),
    (dict(json={"image": data_uri(IMAGE), "mode": ""}), {"mode": "digit"}, "digit"),
    (dict(data={"image": data_uri(IMAGE), "mode": "digit"}), None, "digit"),
    (dict(data={"data": data_uri(IMAGE)}), None, "number"),
    (dict(data={"image": (io.BytesIO(IMAGE), "digit.png")},
          content_type="multipart/form-data"), None, "number"),
    (dict(data={"file": (io.BytesIO(IMAGE), "digit.png"), "mode": "digit"},
          content_type="multipart/form-data"), None, "digit"),
    (dict(data=IMAGE, content_type="image/png"), None, "number"),
    (dict(data=IMAGE, content_type="image/png"), {"mode": "digit"}, "digit"),
], ids=["JSON", "JSON with mode", "JSON mode over the query's", "empty JSON mode: the query's",
        "form field", "form field 'data'", "upload", "upload 'file' with mode", "image body",
        "image body, mode in the query"])
def test_every_form_gives_the_image_bytes_and_the_mode(bare_app, body, query, mode):
    assert read(bare_app, query, **body) == (IMAGE, mode)


@pytest.mark.parametrize("body, query, error, message", [
    (dict(data=b'{"image": ', content_type="application/json"), None, BadRequest, "JSON object"),
    (dict(json=[data_uri(IMAGE)]), None, BadRequest, "JSON object"),
    (dict(json={"picture": data_uri(IMAGE)}), None, BadRequest, "JSON object"),
    (dict(data={"name": "x"}), None, BadRequest, "form field 'image'"),
    (dict(json={"image": data_uri(IMAGE), "mode": "digits"}), None, BadRequest, "mode must be"),
    (dict(data=IMAGE, content_type="image/png"), {"mode": "5"}, BadRequest, "mode must be"),
    (dict(), None, BadRequest, "no image"),
    (dict(data=b"hello", content_type="text/plain"), None, UnsupportedMediaType, "text/plain"),
    (dict(json={"image": "@@ not base64 @@"}), None, errors.InvalidImage, "base64"),
    (dict(json={"image": 7}), None, errors.InvalidImage, "must be a string"),
    (dict(data=b"<svg/>", content_type="image/svg+xml"), None, errors.UnsupportedImage,
     "SVG"),
], ids=["malformed JSON", "JSON array", "JSON without image", "form without image",
        "unknown mode", "unknown mode in the query", "empty body", "text/plain body",
        "bad base64", "image not a string", "SVG body"])
def test_malformed_requests_are_request_errors_and_bad_images_image_errors(
        bare_app, body, query, error, message):
    with pytest.raises(error, match=message):
        read(bare_app, query, **body)
