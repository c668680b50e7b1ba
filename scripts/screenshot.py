"""Take the README's screenshot: the drawing page with a digit drawn with the mouse and read.

Serves the real app with the real model on a free port, draws an MNIST test digit the way the
browser tests do (training/strokes.py), presses Predict and saves the page.

    python -m scripts.screenshot                     # docs/screenshot.png, MNIST test digit 1 (a 2)
    python -m scripts.screenshot --index 0 --out /tmp/seven.png
"""

import argparse
import threading
from pathlib import Path

from tests.support import ROOT

VIEWPORT = {"width": 1120, "height": 760}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--index", type=int, default=1, help="MNIST test digit to draw")
    parser.add_argument("--model", default=str(ROOT / "model" / "model.onnx"))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from app import create_app
    from tests.support.browser import CHROMIUM, DIGIT_HEIGHT, LAUNCH_ARGS, draw_with_mouse, predict
    from training import mnist_digits, strokes

    (_, _), (x_test, y_test) = mnist_digits.load_mnist()
    polylines = strokes.place_strokes(strokes.digit_strokes(x_test[args.index]),
                                      DIGIT_HEIGHT * 280, (140, 140))

    server = make_server("127.0.0.1", 0, create_app({"MODEL_PATH": args.model}), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"http://127.0.0.1:{server.server_port}/")
            draw_with_mouse(page, polylines)
            _, answer = predict(page)
            page.wait_for_timeout(400)  # let the probability bars finish growing
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.shutdown()
    print(f"Drew MNIST test digit {args.index} (a {y_test[args.index]}), the page read "
          f"{answer!r}; saved {args.out}")


if __name__ == "__main__":
    main()
