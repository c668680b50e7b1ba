"""Save the PNG a real browser sends: MNIST test digit 0 (a 7) drawn with the mouse on the page in
Chromium, as canvas.toDataURL() gives it (RGBA, black ink on a transparent canvas, Up filters).

`make bench` times this file as its "Chromium canvas" kind (tests/support/images.py).

    python -m scripts.canvas_png          # writes tests/data/chromium_canvas.png
"""

import argparse
import base64
import threading
from pathlib import Path

from tests.support import ROOT
from tests.support.images import CHROMIUM_CANVAS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(CHROMIUM_CANVAS))
    parser.add_argument("--index", type=int, default=0, help="MNIST test digit to draw")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from app import create_app
    from tests.support.browser import CHROMIUM, DIGIT_HEIGHT, LAUNCH_ARGS, draw_with_mouse
    from training import mnist_digits, strokes

    (_, _), (x_test, _) = mnist_digits.load_mnist()
    polylines = strokes.place_strokes(strokes.digit_strokes(x_test[args.index]),
                                      DIGIT_HEIGHT * 280, (140, 140))
    server = make_server("127.0.0.1", 0, create_app({"MODEL_PATH": str(ROOT / "model" /
                                                                       "model.onnx")}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            draw_with_mouse(page, polylines)
            uri = page.locator("#canvas").evaluate("canvas => canvas.toDataURL('image/png')")
            browser.close()
    finally:
        server.shutdown()
    Path(args.out).write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    print(f"Saved {args.out}")


if __name__ == "__main__":
    main()
