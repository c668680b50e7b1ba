"""The web service: the drawing page and a JSON API around the ONNX digit recognizer, and the
corrections people save when it reads them wrong (the corrections package)."""

import base64
import logging
import os
import re
from pathlib import Path

import numpy as np
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import (BadRequest, HTTPException, RequestEntityTooLarge, RequestTimeout,
                                 TooManyRequests, UnprocessableEntity, UnsupportedMediaType)
from werkzeug.middleware.proxy_fix import ProxyFix

from corrections import store
from corrections.rate_limit import RateLimiter
from drawing import decoding, errors, plain_png
from reading import contract, segment
from reading.recognizer import Recognizer
from server.body_deadline import TIMED_OUT

ROOT = Path(__file__).resolve().parent
MEGABYTE = 1024 * 1024
MODES = ("number", "digit")  # read every digit (the default), or one digit, never split
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
LABEL_PATTERN = {"digit": re.compile(r"[0-9]"),  # what a person may say they wrote, per mode
                 "number": re.compile(rf"[0-9]{{1,{segment.MAX_DIGITS}}}")}
ANSWER_PATTERN = re.compile(  # what it can read
    rf"[0-9]{{1,{segment.MAX_DIGITS}}}|{re.escape(contract.NOT_A_DIGIT_NAME)}")

ERROR_STATUS = {
    errors.InvalidImage: 400,
    errors.ImageTooLarge: 413,
    errors.UnsupportedImage: 415,
    errors.NothingDrawn: 422,
}
STORE_ERROR_STATUS = {
    store.StoreFull: 507,
    store.StoreUnavailable: 503,
}

SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data: blob:; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
CORS_HEADERS = {  # sent, with Access-Control-Allow-Origin, to an origin in CORS_ORIGINS
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}

log = logging.getLogger(__name__)
routes = Blueprint("routes", __name__)


def create_app(config=None):
    """The Flask app; `config` overrides the defaults, some of which come from the environment."""
    app = Flask(__name__)
    app.config.from_mapping(
        DEBUG=False,  # never from FLASK_DEBUG: this factory is what production serves
        MODEL_PATH=os.environ.get("MODEL_PATH", str(ROOT / "model" / "model.onnx")),
        READER_PATH=os.environ.get("READER_PATH", ""),  # empty: number.onnx beside MODEL_PATH
        MAX_CONTENT_LENGTH=2 * MEGABYTE,
        MAX_FORM_MEMORY_SIZE=2 * MEGABYTE,
        MAX_IMAGE_PIXELS=decoding.MAX_IMAGE_PIXELS,
        CORS_ORIGINS=os.environ.get("CORS_ORIGINS", ""),
        # The corrections' store: SQLite in the instance folder unless this is set
        DATABASE_URL=os.environ.get("DATABASE_URL", ""),
        CORRECTIONS_PER_MINUTE=int(os.environ.get("CORRECTIONS_PER_MINUTE", "30")),  # 0: none
        CORRECTIONS_MAX=int(os.environ.get("CORRECTIONS_MAX", "100000")),
        # Proxies in front whose X-Forwarded-For is believed: 1 behind Heroku's router
        TRUSTED_PROXIES=int(os.environ.get("TRUSTED_PROXIES", "0")),
    )
    app.config.update(config or {})
    app.config["CORS_ORIGINS"] = allowed_origins(app.config["CORS_ORIGINS"])
    app.json.sort_keys = False
    app.extensions["recognizer"] = Recognizer(app.config["MODEL_PATH"],
                                              app.config["READER_PATH"] or None)
    store.init_app(app)
    app.extensions["corrections_limit"] = RateLimiter(app.config["CORRECTIONS_PER_MINUTE"])
    if app.config["TRUSTED_PROXIES"]:
        # The client is the address the nearest trusted proxy saw, not the proxy itself.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])
    app.register_blueprint(routes)
    app.before_request(refuse_late_bodies)
    app.before_request(refuse_long_chunked_bodies)
    app.after_request(add_headers)
    register_error_handlers(app)
    return app


def allowed_origins(origins):
    """The origins CORS answers, from a list or a comma-separated string, as a frozenset."""
    if isinstance(origins, str):
        origins = origins.split(",")
    return frozenset(origin.strip() for origin in origins if origin.strip())


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

@routes.get("/")
def index():
    return render_template("index.html", not_a_digit=contract.NOT_A_DIGIT_NAME,
                           max_digits=segment.MAX_DIGITS)


@routes.get("/healthz")
def healthz():
    return jsonify(status="ok")


@routes.get("/api/model")
def model_info():
    recognizer = current_app.extensions["recognizer"]
    return jsonify(metadata=recognizer.metadata, sha256=recognizer.sha256,
                   **contract.MODEL_SIGNATURE,
                   reader={"metadata": recognizer.reader_metadata,
                           "sha256": recognizer.reader_sha256,
                           **contract.READER_SIGNATURE})


@routes.post("/predict")
def predict():
    data, mode = read_request(request)
    reading, timings = current_app.extensions["recognizer"].read(
        data, current_app.config["MAX_IMAGE_PIXELS"], one_digit=mode == "digit")
    response = jsonify(reply(reading))
    response.headers["Server-Timing"] = ", ".join(
        f"{name};dur={1000 * seconds:.3f}" for name, seconds in timings.items())
    return response


@routes.post("/corrections")
def save_correction():
    refuse_too_many_corrections()
    correction = read_correction(request)
    # The drawing must be one /predict reads, refused as /predict refuses it, before it is
    # kept: it is read as /predict reads it, the number reader's strips included.
    current_app.extensions["recognizer"].read(correction.image,
                                              current_app.config["MAX_IMAGE_PIXELS"],
                                              one_digit=correction.mode == "digit")
    correction_id, is_new = store.save(correction)
    return jsonify(id=correction_id), 201 if is_new else 200


# ---------------------------------------------------------------------------
# Reading a /predict request
# ---------------------------------------------------------------------------

def read_request(request):
    """(image bytes, mode) of a /predict request, whichever of the four forms it came in.

    `mode` is "number" (read every digit, the default) or "digit" (one digit, never split),
    from the JSON body or a form field, else from the query string. A malformed request raises
    a werkzeug HTTPException (BadRequest, UnsupportedMediaType); image data the service cannot
    use raises an errors.ImageError.
    """
    data, mode = _read_body(request)
    mode = mode or request.args.get("mode")
    if mode not in (None, *MODES):
        raise BadRequest('mode must be "digit" (one digit) or "number".')
    return data, mode or MODES[0]


def _read_body(request):
    """(image bytes, mode or None) from a JSON body, a form or an image/* body."""
    mimetype = request.mimetype
    if mimetype == "application/json":
        return _read_json(request)
    if mimetype in FORM_TYPES:
        return _read_form(request)
    if mimetype.startswith("image/"):
        if mimetype == "image/svg+xml":
            raise errors.UnsupportedImage("SVG is not supported; send a raster image such "
                                          "as PNG.")
        return request.get_data(), None
    if not mimetype and not request.content_length:
        raise BadRequest('The request has no image. Send JSON {"image": "<data URI>"}, a form, '
                         "or an image body.")
    raise UnsupportedMediaType(f"Content type '{mimetype or 'none'}' is not accepted: send "
                               "application/json, a form, or an image/* body.")


def _read_json(request):
    try:
        payload = request.get_json(silent=True)
    except RecursionError:  # nested deeper than Python's json parser goes
        payload = None
    if not isinstance(payload, dict) or "image" not in payload:
        raise BadRequest('The body must be a JSON object like '
                         '{"image": "data:image/png;base64,..."}.')
    return decoding.decode_base64_image(payload["image"]), payload.get("mode")


def _read_form(request):
    mode = request.form.get("mode")
    upload = request.files.get("image") or request.files.get("file")
    if upload is not None:
        return upload.read(), mode
    text = request.form.get("image") or request.form.get("data")
    if text is None:
        raise BadRequest("Send the image as a file in the form field 'image', or as a data URI "
                         "in the field 'image' or 'data'.")
    return decoding.decode_base64_image(text), mode


# ---------------------------------------------------------------------------
# The /predict reply
# ---------------------------------------------------------------------------

def reply(reading, previews=True):
    """The JSON object /predict answers for a segment.Reading (without `previews`, each
    preview null: the command line prints no images, so it makes none).

    `number` and `digits` (one entry per mark read, left to right: `digit`, `confidence`,
    `box`, `preview`); for a single mark also `digit`, `probabilities` (of the ten digits) and
    `preview` of it, and for several those are null. Where some mark is not a digit,
    `not_a_digit` is true, `number` and `digit` are null, and that mark's entry has `digit`
    null. `confidence` is the probability the networks give the whole reading.
    """
    digits = reading.digits
    single = digits[0] if len(digits) == 1 else None
    previews = [preview_data_uri(digit.image) if previews else None for digit in digits]
    return {
        "digit": digit_or_null(single) if single else None,
        "not_a_digit": reading.not_a_digit,
        "confidence": round(reading.probability, 6),
        "probabilities": ([round(float(p), 6)
                           for p in single.probabilities[:contract.DIGIT_CLASSES]]
                          if single else None),
        "preview": previews[0] if single else None,
        "number": reading.number,
        "digits": [{"digit": digit_or_null(digit), "confidence": round(digit.confidence, 6),
                    "box": list(digit.box), "preview": preview}
                   for digit, preview in zip(digits, previews)],
    }


def digit_or_null(digit):
    """A segment.Digit's answer as the API gives it: the digit, or None (null) where the mark
    is not a digit."""
    return digit.answer if digit.is_digit else None


def preview_data_uri(digit):
    """float32 [28, 28] in [0, 1] -> a PNG data URI of what the model saw (white on black)."""
    png = plain_png.grey_png(np.rint(np.clip(digit, 0, 1) * 255).astype(np.uint8))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ---------------------------------------------------------------------------
# Reading a /corrections request
# ---------------------------------------------------------------------------

def read_correction(request):
    """The store.Correction a /corrections request sends: JSON {"image", "label",
    "answer", "mode"}, the image as for /predict, "mode" "number" unless given.

    Malformed requests raise BadRequest or UnsupportedMediaType; a label that is not the
    digits of one digit (digit mode) or of a number of up to segment.MAX_DIGITS digits
    raises UnprocessableEntity; image data the service cannot use raises an
    errors.ImageError.
    """
    if request.mimetype != "application/json":
        raise UnsupportedMediaType(f"Content type '{request.mimetype or 'none'}' is not accepted:"
                                   " send the correction as application/json.")
    try:
        payload = request.get_json(silent=True)
    except RecursionError:
        payload = None
    if not isinstance(payload, dict) or not {"image", "label", "answer"} <= payload.keys():
        raise BadRequest('The body must be a JSON object like {"image": "data:image/png;base64,'
                         '...", "label": "7", "answer": "1", "mode": "digit"}.')
    mode = payload.get("mode", MODES[0])
    if mode not in MODES:
        raise BadRequest('mode must be "digit" (one digit) or "number".')
    answer = payload["answer"]
    if not isinstance(answer, str) or not ANSWER_PATTERN.fullmatch(answer):
        raise BadRequest(f"answer must be what the app read: a string of 1 to "
                         f"{segment.MAX_DIGITS} digits, or \"not a digit\".")
    image = decoding.decode_base64_image(payload["image"])
    label = payload["label"]
    if not isinstance(label, str) or not LABEL_PATTERN[mode].fullmatch(label):
        raise UnprocessableEntity(
            "label must be the digit you wrote, one of 0-9, as a string like \"7\"."
            if mode == "digit" else
            f"label must be the number you wrote: 1 to {segment.MAX_DIGITS} digits 0-9, as a "
            "string like \"2024\".")
    return store.Correction(image=image, label=label, answer=answer, mode=mode,
                            model_sha256=current_app.extensions["recognizer"].sha256)


def refuse_too_many_corrections():
    wait = current_app.extensions["corrections_limit"].wait(request.remote_addr)
    if wait:
        limit, seconds = current_app.config["CORRECTIONS_PER_MINUTE"], max(1, round(wait))
        raise TooManyRequests(f"At most {limit} corrections a minute can be saved; please wait "
                              f"{seconds} s.", retry_after=seconds)


# ---------------------------------------------------------------------------
# Every request: late and oversized bodies, headers, errors as JSON
# ---------------------------------------------------------------------------

def refuse_late_bodies():
    seconds = request.environ.get(TIMED_OUT)  # set by gunicorn.conf.py's BodyDeadline
    if seconds is not None:
        raise RequestTimeout(f"The request body did not arrive within {seconds:g} s; "
                             "the connection is closed. Send the request again.")


def refuse_long_chunked_bodies():
    # Without Content-Length, Werkzeug stops reading at MAX_CONTENT_LENGTH and hands on
    # what it read: a 50 MB chunked upload would be cut short instead of refused.
    if request.content_length is None and request.method == "POST":
        if len(request.get_data()) >= current_app.config["MAX_CONTENT_LENGTH"]:
            raise RequestEntityTooLarge()


def add_headers(response):
    """The security headers on every response; the CORS headers for a listed Origin."""
    response.headers.update(SECURITY_HEADERS)
    origin = request.headers.get("Origin")
    if origin and origin in current_app.config["CORS_ORIGINS"]:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.update(CORS_HEADERS)
        response.vary.add("Origin")
    return response


def register_error_handlers(app):
    """Answer every error as JSON {"error": message}: never an HTML page or a traceback."""
    app.register_error_handler(errors.ImageError, image_error)
    app.register_error_handler(store.StoreError, store_error)
    app.register_error_handler(RequestEntityTooLarge, body_too_large)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def image_error(error):
    return jsonify(error=str(error)), ERROR_STATUS.get(type(error), 400)


def store_error(error):
    return jsonify(error=str(error)), STORE_ERROR_STATUS.get(type(error), 503)


def body_too_large(error):
    limit = current_app.config["MAX_CONTENT_LENGTH"] / MEGABYTE
    return jsonify(error=f"The request body is over the {limit:g} MB limit. Send a "
                         "smaller image."), 413


def http_error(error):
    response = jsonify(error=error.description)
    if getattr(error, "retry_after", None) is not None:  # 429: when to try again
        response.headers["Retry-After"] = str(error.retry_after)
    return response, error.code


def unexpected_error(error):
    log.exception("Unhandled error")
    return jsonify(error="Something went wrong on our side; please try again."), 500


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), debug=False)
