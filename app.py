"""The web service: the drawing page and a JSON API around the ONNX digit recognizer."""

import logging
import os
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import (HTTPException, RequestEntityTooLarge, RequestTimeout,
                                 UnsupportedMediaType)

import utils
from body_deadline import TIMED_OUT
from recognizer import Recognizer

ROOT = Path(__file__).resolve().parent
MEGABYTE = 1024 * 1024

ERROR_STATUS = {
    utils.InvalidImage: 400,
    utils.ImageTooLarge: 413,
    utils.UnsupportedImage: 415,
    utils.NothingDrawn: 422,
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

log = logging.getLogger(__name__)


def create_app(config=None):
    app = Flask(__name__)
    app.config.from_mapping(
        DEBUG=False,  # never from FLASK_DEBUG: this factory is what production serves
        MODEL_PATH=os.environ.get("MODEL_PATH", str(ROOT / "model" / "model.onnx")),
        MAX_CONTENT_LENGTH=2 * MEGABYTE,
        MAX_FORM_MEMORY_SIZE=2 * MEGABYTE,
        MAX_IMAGE_PIXELS=utils.MAX_IMAGE_PIXELS,
        CORS_ORIGINS=[origin.strip() for origin in os.environ.get("CORS_ORIGINS", "").split(",")
                      if origin.strip()],
    )
    app.config.update(config or {})
    origins = app.config["CORS_ORIGINS"]
    if isinstance(origins, str):  # a comma-separated string, as in the environment variable
        origins = origins.split(",")
    app.config["CORS_ORIGINS"] = frozenset(origin.strip() for origin in origins if origin.strip())
    app.json.sort_keys = False
    recognizer = Recognizer(app.config["MODEL_PATH"])

    def read_request():
        """(image bytes, mode) of a /predict request, whichever of the four forms it came in.

        `mode` is "number" (read every digit, the default) or "digit" (one digit, never
        split), from the JSON body or a form field; None when the body does not say.
        """
        mimetype = request.mimetype
        if mimetype == "application/json":
            try:
                payload = request.get_json(silent=True)
            except RecursionError:  # nested deeper than Python's json parser goes
                payload = None
            if not isinstance(payload, dict) or "image" not in payload:
                raise utils.InvalidImage('The body must be a JSON object like '
                                         '{"image": "data:image/png;base64,..."}.')
            return utils.decode_base64_image(payload["image"]), payload.get("mode")
        if mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            mode = request.form.get("mode")
            upload = request.files.get("image") or request.files.get("file")
            if upload is not None:
                return upload.read(), mode
            text = request.form.get("image") or request.form.get("data")
            if text is None:
                raise utils.InvalidImage("Send the image as a file in the form field 'image', "
                                         "or as a data URI in the field 'image' or 'data'.")
            return utils.decode_base64_image(text), mode
        if mimetype.startswith("image/"):
            if mimetype == "image/svg+xml":
                raise utils.UnsupportedImage("SVG is not supported; send a raster image such "
                                             "as PNG.")
            return request.get_data(), None
        if not mimetype and not request.content_length:
            raise utils.InvalidImage("The request has no image. Send JSON "
                                     '{"image": "<data URI>"}, a form, or an image body.')
        raise UnsupportedMediaType(f"Content type '{mimetype or 'none'}' is not accepted: send "
                                   "application/json, a form, or an image/* body.")

    @app.before_request
    def refuse_late_bodies():
        seconds = request.environ.get(TIMED_OUT)  # set by gunicorn.conf.py's BodyDeadline
        if seconds is not None:
            raise RequestTimeout(f"The request body did not arrive within {seconds:g} s; "
                                 "the connection is closed. Send the request again.")

    @app.before_request
    def refuse_long_chunked_bodies():
        # Without Content-Length, Werkzeug stops reading at MAX_CONTENT_LENGTH and hands on
        # what it read: a 50 MB chunked upload would be cut short instead of refused.
        if request.content_length is None and request.method == "POST":
            if len(request.get_data()) >= app.config["MAX_CONTENT_LENGTH"]:
                raise RequestEntityTooLarge()

    @app.get("/")
    def index():
        return render_template("index.html")

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/api/model")
    def model_info():
        return jsonify(metadata=recognizer.metadata, sha256=recognizer.sha256,
                       **utils.MODEL_SIGNATURE)

    @app.post("/predict")
    def predict():
        data, mode = read_request()
        mode = mode or request.args.get("mode")
        if mode not in (None, "number", "digit"):
            raise utils.InvalidImage('mode must be "digit" (one digit) or "number".')
        reply, timings = recognizer.read(data, app.config["MAX_IMAGE_PIXELS"],
                                         one_digit=mode == "digit")
        response = jsonify(reply)
        response.headers["Server-Timing"] = ", ".join(
            f"{name};dur={1000 * seconds:.3f}" for name, seconds in timings.items())
        return response

    @app.errorhandler(utils.ImageError)
    def image_error(error):
        return jsonify(error=str(error)), ERROR_STATUS.get(type(error), 400)

    @app.errorhandler(RequestEntityTooLarge)
    def body_too_large(error):
        limit = app.config["MAX_CONTENT_LENGTH"] / MEGABYTE
        return jsonify(error=f"The request body is over the {limit:g} MB limit. Send a "
                             "smaller image."), 413

    @app.errorhandler(HTTPException)
    def http_error(error):
        return jsonify(error=error.description), error.code

    @app.errorhandler(Exception)
    def unexpected_error(error):
        log.exception("Unhandled error")
        return jsonify(error="Something went wrong on our side; please try again."), 500

    @app.after_request
    def add_headers(response):
        response.headers.update(SECURITY_HEADERS)
        origin = request.headers.get("Origin")
        if origin and origin in app.config["CORS_ORIGINS"]:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
            response.vary.add("Origin")
        return response

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "5000")), debug=False)
