"""The drawing page in a real browser: Chromium, driven by Playwright, against the real app.

A digit is drawn the way a person draws it: the skeleton of an MNIST test digit, traced into
pen strokes (training/strokes.py), moved along with the mouse or a finger.
"""

import base64
import math
import threading

import numpy as np
import pytest

from support import MODEL_PATH, require, unavailable
from support.browser import (CANVAS, CHROMIUM, CLEAR, CORRECTION, CORRECTION_LABEL,
                             CORRECTION_OPEN, CORRECTION_SAVE, CORRECTION_STATUS, DESKTOP,
                             DIGIT_CARDS, DIGIT_HEIGHT, DIGIT_MODE, LAUNCH_ARGS, MESSAGE,
                             NUMBER_MODE, PHONE, PREDICT, RESULT, TALL_PHONE, TIMEOUT_MS, UPLOAD,
                             WIDE, canvas_to_viewport, draw_with_finger, draw_with_mouse,
                             draw_with_pen, predict, save_correction)
from support.images import encode

# Columns of the canvas between its first and last inked ones with no half-opaque pixel.
BLANK_COLUMNS_JS = """() => {
    const canvas = document.querySelector('[data-testid="canvas"]');
    const { width, height } = canvas;
    const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
    const inked = [];
    for (let x = 0; x < width; x += 1) {
        let any = false;
        for (let y = 0; y < height && !any; y += 1) any = pixels[4 * (y * width + x) + 3] >= 128;
        inked.push(any);
    }
    const first = inked.indexOf(true), last = inked.lastIndexOf(true);
    return inked.slice(first, last + 1).filter((any) => !any).length;
}"""

INKED_PIXELS_JS = """() => {
    const canvas = document.querySelector('[data-testid="canvas"]');
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let inked = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) inked += 1;
    return inked;
}"""

# Records CSP violations the page itself sees; Playwright's init scripts are exempt from CSP.
CSP_RECORDER_JS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
    window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

DROP_FILE_JS = """({ base64, name, type }) => {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, { type }));
    const pad = document.querySelector('[data-testid="pad"]');
    for (const kind of ["dragenter", "dragover", "drop"]) {
        pad.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true,
                                                cancelable: true }));
    }
}"""


# ---------------------------------------------------------------------------
# Fixtures: the app on a free port, Chromium, a page
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def live_server(request):
    """Base URL of the real app with the real model, served from a thread on a free port."""
    if not MODEL_PATH.exists():
        unavailable(f"No trained model at {MODEL_PATH}: run `make train` first.")
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, request.getfixturevalue("app"), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    sync_playwright = require("playwright.sync_api").sync_playwright
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not at {CHROMIUM}: apt-get install chromium "
                    "(`make test` does it when run as root).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def console_errors():
    """Console errors and uncaught exceptions of every page the test opened."""
    return []


@pytest.fixture()
def open_page(browser, live_server, console_errors):
    """open_page(**context_options) -> a Playwright page showing the app, desktop-sized."""
    contexts = []

    def open_page(**options):
        context = browser.new_context(**{"viewport": DESKTOP, **options})
        contexts.append(context)
        context.add_init_script(CSP_RECORDER_JS)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda message: message.type == "error"
                and console_errors.append(message.text))
        page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
        page.goto(live_server)
        page.wait_for_selector(f'{RESULT}[data-state="empty"]')
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture()
def page(open_page):
    return open_page()


@pytest.fixture(scope="session")
def first_of_each_digit(mnist_test):
    """Index of the first MNIST test image of each digit 0-9."""
    labels = mnist_test[1]
    return [int((labels == digit).nonzero()[0][0]) for digit in range(10)]


@pytest.fixture(scope="session")
def digit_strokes(mnist_test):
    """digit_strokes(index, canvas, centre) -> MNIST test digit `index` as pen strokes in
    pixels of a canvas of size `canvas`, centred at `centre` (default: the canvas centre)."""
    from training import strokes

    def place(index, canvas=(280, 280), centre=None):
        traced = strokes.digit_strokes(mnist_test[0][index])
        centre = centre or (canvas[0] / 2, canvas[1] / 2)
        return strokes.place_strokes(traced, DIGIT_HEIGHT * canvas[1], centre)

    return place


# ---------------------------------------------------------------------------
# Helpers: draw, predict, read the page
# ---------------------------------------------------------------------------

RECORD_POINTER_TYPES_JS = """() => {
    window.__pointerTypes = [];
    document.querySelector('[data-testid="canvas"]').addEventListener(
        "pointerdown", (event) => window.__pointerTypes.push(event.pointerType));
}"""


def inked_pixels(page):
    return page.evaluate(INKED_PIXELS_JS)


def png_of_mnist_digit(draw_mnist_digit, index, path):
    """A photo-like PNG: MNIST test digit `index` in black ink on white paper, landscape."""
    image, label = draw_mnist_digit(index, canvas=(480, 360), height=260, pen=22,
                                    convention="black_on_white")
    path.write_bytes(encode(image.convert("RGB"), "PNG"))
    return label


# ---------------------------------------------------------------------------
# Drawing and reading digits
# ---------------------------------------------------------------------------

def test_mouse_drawn_digits_are_read(page, digit_strokes, first_of_each_digit,
                                     record_property):
    misread = {}
    for digit, index in enumerate(first_of_each_digit):
        draw_with_mouse(page, digit_strokes(index))
        response, answer = predict(page)
        assert response.ok, f"/predict refused a drawn {digit}: {response.json()}"
        if answer != str(digit):
            misread[digit] = answer
        page.click(CLEAR)
    record_property("mouse_digits_right", 10 - len(misread))
    assert misread == {}, f"mouse-drawn digits misread (drawn: read): {misread}"


def test_finger_drawing_on_a_touch_screen(open_page, digit_strokes, first_of_each_digit):
    page = open_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.evaluate(RECORD_POINTER_TYPES_JS)
    draw_with_finger(page, digit_strokes(first_of_each_digit[3]))
    assert inked_pixels(page) > 0, "touching the canvas drew nothing"
    assert set(page.evaluate("() => window.__pointerTypes")) == {"touch"}
    response, answer = predict(page, lambda: page.tap(PREDICT))
    assert response.ok
    assert answer == "3", f"a 3 drawn with a finger was read as {answer!r}"


def test_drawing_with_a_pen(page, digit_strokes, first_of_each_digit):
    page.evaluate(RECORD_POINTER_TYPES_JS)
    draw_with_pen(page, digit_strokes(first_of_each_digit[4]))
    assert inked_pixels(page) > 0, "a pen on the canvas drew nothing"
    assert set(page.evaluate("() => window.__pointerTypes")) == {"pen"}
    response, answer = predict(page)
    assert response.ok
    assert answer == "4", f"a 4 drawn with a pen was read as {answer!r}"


def test_clear_empties_the_canvas_and_the_answer(page, digit_strokes, first_of_each_digit):
    draw_with_mouse(page, digit_strokes(first_of_each_digit[7]))
    assert inked_pixels(page) > 0, "drawing with the mouse left no ink on the canvas"
    _, answer = predict(page)
    assert answer == "7", f"a drawn 7 was read as {answer!r}"
    assert page.is_visible(".seen-image"), "the 28x28 image the model saw is not shown"
    page.click(CLEAR)
    assert inked_pixels(page) == 0, "Clear left ink on the canvas"
    assert page.get_attribute(RESULT, "data-digit") == ""
    assert not page.is_visible(".probabilities"), "Clear left the old probabilities on show"


def test_enter_predicts_and_escape_clears(page, digit_strokes, first_of_each_digit):
    draw_with_mouse(page, digit_strokes(first_of_each_digit[1]))
    _, answer = predict(page, lambda: page.keyboard.press("Enter"))
    assert answer == "1"
    page.keyboard.press("Escape")
    assert page.get_attribute(RESULT, "data-digit") == ""
    assert inked_pixels(page) == 0, "Escape left ink on the canvas"


def test_predict_on_an_empty_canvas_asks_for_a_drawing_and_sends_nothing(page):
    requests = []
    page.on("request", lambda request: "/predict" in request.url and requests.append(request))
    page.click(PREDICT)
    page.keyboard.press("Enter")
    assert "empty" in page.inner_text(MESSAGE), "no message says the canvas is empty"
    page.wait_for_timeout(300)  # a request, had one been sent, would have gone by now
    assert requests == [], "Predict on an empty canvas sent a request"
    assert page.get_attribute(RESULT, "data-digit") == ""


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("status, content_type, body, shown", [
    (422, "application/json", '{"error": "Nothing is drawn: the image is blank."}',
     "Nothing is drawn: the image is blank."),
    (502, "text/html", "<h1>Bad Gateway</h1>", "502"),
])
def test_a_server_error_is_shown(page, digit_strokes, first_of_each_digit, status,
                                 content_type, body, shown):
    page.route("**/predict", lambda route: route.fulfill(status=status, body=body,
                                                         content_type=content_type))
    draw_with_mouse(page, digit_strokes(first_of_each_digit[4]))
    predict(page)
    assert shown in page.inner_text(MESSAGE)
    assert page.get_attribute(RESULT, "data-state") == "error"
    assert page.get_attribute(RESULT, "data-digit") == ""


def test_a_lone_dot_is_refused_with_the_servers_message(page):
    # On the wide canvas a pen dot is smaller than the server's smallest digit.
    page.check(NUMBER_MODE)
    to_viewport = canvas_to_viewport(page)
    page.mouse.click(*to_viewport(280, 140))
    response, answer = predict(page)
    assert response.status == 422, f"the server answered {response.status} to a lone dot"
    assert page.inner_text(MESSAGE) == response.json()["error"]
    assert answer == ""


def test_an_unreadable_photo_shows_the_servers_message(page, tmp_path):
    fake = tmp_path / "digit.png"
    fake.write_bytes(b"this is not a PNG, only named like one")
    with page.expect_file_chooser() as chooser:
        page.click(UPLOAD)
    response, answer = predict(page, lambda: chooser.value.set_files(fake))
    assert response.status == 400
    assert page.inner_text(MESSAGE) == response.json()["error"]
    assert answer == ""


# ---------------------------------------------------------------------------
# Photos
# ---------------------------------------------------------------------------

def test_a_png_uploaded_through_the_picker_is_read(page, draw_mnist_digit, first_of_each_digit,
                                                   tmp_path):
    photo = tmp_path / "digit.png"
    label = png_of_mnist_digit(draw_mnist_digit, first_of_each_digit[2], photo)
    with page.expect_file_chooser() as chooser:
        page.click(UPLOAD)
    response, answer = predict(page, lambda: chooser.value.set_files(photo))
    assert response.request.headers["content-type"].startswith("multipart/form-data")
    assert answer == str(label), f"an uploaded {label} was read as {answer!r}"
    assert inked_pixels(page) > 0, "the uploaded photo is not shown on the canvas"


def test_a_photo_dropped_on_the_canvas_is_read(page, draw_mnist_digit, first_of_each_digit,
                                               tmp_path):
    photo = tmp_path / "digit.png"
    label = png_of_mnist_digit(draw_mnist_digit, first_of_each_digit[6], photo)
    payload = {"base64": base64.b64encode(photo.read_bytes()).decode(), "name": photo.name,
               "type": "image/png"}
    _, answer = predict(page, lambda: page.evaluate(DROP_FILE_JS, payload))
    assert answer == str(label), f"a dropped {label} was read as {answer!r}"


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

def test_number_mode_widens_the_canvas_and_digit_mode_restores_it(page, digit_strokes,
                                                                  first_of_each_digit):
    page.check(NUMBER_MODE)
    assert page.eval_on_selector(CANVAS, "c => [c.width, c.height]") == [560, 280]
    draw_with_mouse(page, digit_strokes(first_of_each_digit[8], canvas=WIDE, centre=(150, 140)))
    page.check(DIGIT_MODE)
    assert page.eval_on_selector(CANVAS, "c => [c.width, c.height]") == [280, 280]
    assert inked_pixels(page) == 0, "switching modes left the old drawing behind"


def test_a_drawn_two_digit_number_is_read(page, digit_strokes, first_of_each_digit):
    page.check(NUMBER_MODE)
    draw_with_mouse(page, digit_strokes(first_of_each_digit[2], canvas=WIDE, centre=(150, 140)))
    draw_with_mouse(page, digit_strokes(first_of_each_digit[7], canvas=WIDE, centre=(410, 140)))
    response, answer = predict(page)
    assert response.ok
    assert answer == "27", f"the number 27 was read as {answer!r}"
    assert page.locator(DIGIT_CARDS).count() == 2, "each digit's answer is not shown"


def preview_uri():
    from PIL import Image

    return "data:image/png;base64," + base64.b64encode(
        encode(Image.new("L", (28, 28), 0), "PNG")).decode()


SINGLE = {"digit": 7, "confidence": 0.98, "probabilities": [0.002] * 7 + [0.98, 0.002, 0.002],
          "preview": preview_uri()}
NUMBER_REPLIES = {
    "without number fields": (SINGLE, "7", 0, True),
    "one digit with number fields": (
        {**SINGLE, "number": "7",
         "digits": [{"digit": 7, "confidence": 0.98, "box": [80, 40, 200, 240],
                     "preview": SINGLE["preview"]}]},
        "7", 0, True),
    "four digits": (
        {"digit": None, "confidence": 0.9, "probabilities": None, "preview": None,
         "number": "2024",
         "digits": [{"digit": int(d), "confidence": 0.97, "box": [20 + 130 * i, 40, 130 + 130 * i, 240],
                     "preview": SINGLE["preview"]} for i, d in enumerate("2024")]},
        "2024", 4, False),
}


@pytest.mark.parametrize("reply, shown, cards, details", NUMBER_REPLIES.values(),
                         ids=NUMBER_REPLIES.keys())
def test_replies_with_and_without_number_fields_are_shown(page, reply, shown, cards, details):
    page.route("**/predict", lambda route: route.fulfill(json=reply))
    page.check(NUMBER_MODE)
    draw_with_mouse(page, [[(100, 100), (300, 200)]])
    _, answer = predict(page)
    assert answer == shown
    assert page.inner_text(".answer-value") == shown
    assert page.locator(DIGIT_CARDS).count() == cards
    assert page.is_visible(".probabilities") == details
    assert page.locator(".boxes .box").count() == len(reply.get("digits", []))


# ---------------------------------------------------------------------------
# Layout, accessibility hooks, console
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", [DIGIT_MODE, NUMBER_MODE])
def test_a_phone_shows_the_canvas_and_buttons_without_sideways_scrolling(open_page, mode):
    page = open_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.check(mode)
    scroll_width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert scroll_width <= PHONE["width"], f"the page is {scroll_width} px wide on a 360 px phone"
    for selector in (CANVAS, PREDICT, CLEAR, UPLOAD):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0, f"{selector} sticks out to the left: {box}"
        assert box["x"] + box["width"] <= PHONE["width"], (
            f"{selector} sticks out to the right: {box}")
        assert box["y"] + box["height"] <= PHONE["height"], (
            f"{selector} is below the first screen on a phone: {box}")


def test_the_page_has_labels_and_a_live_answer(page):
    assert page.get_attribute(RESULT, "aria-live") == "polite"
    assert page.get_attribute(CANVAS, "aria-label")
    for selector in (PREDICT, CLEAR, UPLOAD):
        assert page.eval_on_selector(selector, "e => e.tagName") == "BUTTON"
    assert page.get_attribute("html", "lang") == "en"


def test_no_console_errors_or_csp_violations(page, console_errors, digit_strokes,
                                             first_of_each_digit, draw_mnist_digit, tmp_path):
    assert page.evaluate("() => document.querySelectorAll('[style]').length") == 0, \
        "inline style attributes would break under the CSP"
    draw_with_mouse(page, digit_strokes(first_of_each_digit[6]))
    predict(page)
    page.click(CLEAR)
    photo = tmp_path / "digit.png"
    png_of_mnist_digit(draw_mnist_digit, first_of_each_digit[0], photo)
    predict(page, lambda: page.set_input_files('[data-testid="file"]', photo))
    page.check(NUMBER_MODE)
    draw_with_mouse(page, digit_strokes(first_of_each_digit[9], canvas=WIDE, centre=(150, 140)))
    predict(page)
    assert page.evaluate("() => window.__cspViolations") == [], "the CSP blocked something"
    assert console_errors == [], f"the browser console shows errors: {console_errors}"


# ---------------------------------------------------------------------------
# Touching digits and the live answer
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def touching_number(mnist_test):
    """touching_number(digits, canvas) -> (strokes in canvas px, the number): MNIST test
    images of the digits (the k-th digit of the number is the k-th test image of its class,
    so repeats are not copies), written left to right with the ink of neighbours overlapping,
    on a canvas of `canvas` (width, height) px."""
    from training import strokes

    x, y = mnist_test

    def write(digits, canvas=WIDE):
        traced = [strokes.digit_strokes(x[np.flatnonzero(y == int(d))[k]])
                  for k, d in enumerate(digits)]
        height = 0.6 * canvas[1]
        placed = strokes.side_by_side(traced, [height] * len(traced), gaps=-PEN_OVERLAP,
                                      pen=PEN_WIDTH)
        placed = strokes.move_onto_canvas(placed, PEN_WIDTH, canvas)
        return [stroke for digit in placed for stroke in digit], digits

    return write


PEN_WIDTH = 18  # static/app.js draws with this pen
PEN_OVERLAP = 6  # px by which each digit's ink reaches over its neighbour's


def wait_for_answer(page, previous=""):
    """Wait, without pressing anything, for the page to show an answer other than `previous`."""
    # Selectors, not wait_for_function: the page's CSP forbids the eval that one needs.
    page.wait_for_selector(f'{RESULT}[data-state="done"]:not([data-digit="{previous}"])')
    return page.get_attribute(RESULT, "data-digit")


TOUCHING_NUMBERS = ("2771", "305", "1100", "64", "4896", "11", "5023", "790")
# Chosen before any was read; the shipped models read 7 of the 8 with the mouse and with a
# finger (5023 as 8023), so one may be misread.
MOST_TOUCHING_MISREAD = 1


def test_numbers_whose_digits_touch_are_read_when_drawn_with_the_mouse(page, touching_number,
                                                                       record_property):
    page.check(NUMBER_MODE)
    misread = {}
    for number in TOUCHING_NUMBERS:
        polylines, _ = touching_number(number)
        draw_with_mouse(page, polylines)
        assert page.evaluate(BLANK_COLUMNS_JS) == 0, f"the digits of {number} do not touch"
        response, answer = predict(page)
        assert response.ok, f"/predict refused {number}: {response.json()}"
        if answer != number:
            misread[number] = answer
        else:
            assert page.locator(DIGIT_CARDS).count() == len(number), \
                f"each digit's answer is not shown for {number}"
            assert page.locator(".boxes .box").count() == len(number), \
                f"the cuts of {number} are not outlined"
        page.click(CLEAR)
    record_property("touching_numbers_right", len(TOUCHING_NUMBERS) - len(misread))
    assert len(misread) <= MOST_TOUCHING_MISREAD, \
        f"touching numbers misread (drawn: read): {misread}"


def test_numbers_whose_digits_touch_are_read_when_drawn_with_a_finger(open_page,
                                                                      touching_number):
    page = open_page(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page.evaluate(RECORD_POINTER_TYPES_JS)
    page.check(NUMBER_MODE)
    canvas_size = page.eval_on_selector(CANVAS, "c => [c.width, c.height]")
    misread = {}
    for number in TOUCHING_NUMBERS:
        polylines, _ = touching_number(number, canvas_size)
        draw_with_finger(page, polylines)
        assert page.evaluate(BLANK_COLUMNS_JS) == 0, f"the digits of {number} do not touch"
        response, answer = predict(page, lambda: page.tap(PREDICT))
        assert response.ok, f"/predict refused {number}: {response.json()}"
        if answer != number:
            misread[number] = answer
        page.tap(CLEAR)
    assert set(page.evaluate("() => window.__pointerTypes")) == {"touch"}
    assert len(misread) <= MOST_TOUCHING_MISREAD, \
        f"touching numbers drawn with a finger misread: {misread}"


def test_the_answer_follows_the_drawing_without_pressing_predict(page, digit_strokes,
                                                                 first_of_each_digit):
    page.check(NUMBER_MODE)
    draw_with_mouse(page, digit_strokes(first_of_each_digit[4], canvas=WIDE, centre=(150, 140)))
    assert wait_for_answer(page) == "4"
    assert page.inner_text(".answer-value") == "4"
    assert "sure" in page.inner_text(".answer-note"), "the live answer does not say how sure"
    draw_with_mouse(page, digit_strokes(first_of_each_digit[7], canvas=WIDE, centre=(410, 140)))
    assert wait_for_answer(page, previous="4") == "47", "the answer did not follow the drawing"


def test_a_new_stroke_cancels_the_request_in_flight(page, digit_strokes, first_of_each_digit):
    held = []

    def hold_the_first(route):
        # The first request never gets an answer while the test holds it: it is in flight
        # when the next stroke starts. Later ones go to the real server.
        if held:
            route.continue_()
        else:
            held.append(route)

    failed = []
    page.on("requestfailed", lambda request: "/predict" in request.url
            and failed.append(request.failure))
    page.route("**/predict", hold_the_first)
    first, *rest = digit_strokes(first_of_each_digit[4])
    draw_with_mouse(page, [first])
    page.wait_for_selector(f'{RESULT}[data-state="pending"]')
    assert len(held) == 1, "lifting the pen did not ask the server"
    draw_with_mouse(page, rest)
    assert wait_for_answer(page) == "4"
    assert len(failed) == 1, f"not one request failed, but {len(failed)}: {failed}"
    assert "ABORTED" in failed[0].upper(), (
        f"the request in flight was not cancelled by the new stroke: {failed}")


@pytest.mark.parametrize("mode", [DIGIT_MODE, NUMBER_MODE])
def test_on_a_phone_the_answer_is_on_screen_with_the_canvas(open_page, digit_strokes,
                                                            first_of_each_digit, mode):
    page = open_page(viewport=TALL_PHONE, device_scale_factor=3, is_mobile=True,
                     has_touch=True)
    page.check(mode)
    canvas_size = page.eval_on_selector(CANVAS, "c => [c.width, c.height]")
    draw_with_finger(page, digit_strokes(first_of_each_digit[5], canvas=canvas_size))
    assert wait_for_answer(page) == "5"
    canvas = page.locator(CANVAS).bounding_box()
    assert canvas["y"] >= 0, f"the canvas starts above the screen: {canvas}"
    assert canvas["y"] + canvas["height"] <= TALL_PHONE["height"], (
        f"the canvas ends below the first screen: {canvas}")
    for selector in (".answer-value", ".answer-note"):
        box = page.locator(selector).bounding_box()
        assert box["y"] >= 0, f"{selector} is above the screen on a 390x844 phone: {box}"
        assert box["y"] + box["height"] <= TALL_PHONE["height"], (
            f"{selector} is below the screen on a 390x844 phone: {box}")
        assert box["x"] >= 0, f"{selector} sticks out to the left: {box}"
        assert box["x"] + box["width"] <= TALL_PHONE["width"], (
            f"{selector} sticks out to the right: {box}")
        assert canvas["y"] + canvas["height"] <= box["y"] or box["y"] + box["height"] <= \
            canvas["y"], f"{selector} covers the canvas"
        covering = page.evaluate("""([x, y]) => document.elementFromPoint(x, y)
            ?.closest('[data-testid="result"]') !== null""",
                                 [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
        assert covering, f"something covers {selector}"
    assert "sure" in page.inner_text(".answer-note")


# ---------------------------------------------------------------------------
# Correcting a wrong answer
# ---------------------------------------------------------------------------

def stored_correction(app, correction_id):
    """(image bytes, label, answer, mode) of a stored correction, read from the app's store."""
    from corrections import store

    with app.app_context():
        found = [row for row in store.rows(store.connection())
                 if row[0] == correction_id]
    assert found, f"correction {correction_id} is not in the store"
    _, image, label, answer, mode, _ = found[0]
    return image, label, answer, mode


def sent_image(request):
    """The image bytes of a JSON request the page sent (its data URI decoded)."""
    return base64.b64decode(request.post_data_json["image"].split(",", 1)[1])


def test_a_wrong_answer_is_corrected_with_the_mouse(page, app, digit_strokes, first_of_each_digit,
                                                    console_errors):
    assert page.is_hidden(CORRECTION), "a correction is offered before there is an answer"
    draw_with_mouse(page, digit_strokes(first_of_each_digit[7]))
    response, answer = predict(page)
    assert answer == "7"
    assert page.is_visible(CORRECTION_OPEN), "no way to say the answer is wrong"
    page.click(CORRECTION_OPEN)
    note = page.inner_text(".correction-note")
    assert "no IP address, no cookie" in note and "drawing" in note, \
        f"the page does not say what saving keeps: {note!r}"
    assert page.get_attribute(CORRECTION_LABEL, "inputmode") == "numeric"
    page.fill(CORRECTION_LABEL, "1")
    saved = save_correction(page, lambda: page.click(CORRECTION_SAVE))
    assert saved.status == 201, saved.text()
    assert "Saved" in page.inner_text(CORRECTION_STATUS)
    assert saved.request.post_data_json["answer"] == "7"
    assert sent_image(saved.request) == sent_image(response.request), \
        "the correction did not send the drawing that was read"
    image, label, stored_answer, mode = stored_correction(app, saved.json()["id"])
    assert (label, stored_answer, mode) == ("1", "7", "digit")
    assert image == sent_image(response.request), "the store did not keep the drawing as sent"
    again = save_correction(page, lambda: page.click(CORRECTION_SAVE))
    assert again.status == 200 and again.json() == saved.json(), "saving twice stored twice"
    assert "Already saved" in page.inner_text(CORRECTION_STATUS)
    page.click(CLEAR)
    assert page.is_hidden(CORRECTION), "Clear left the correction of the old drawing on show"
    assert page.evaluate("() => window.__cspViolations") == [], "the CSP blocked something"
    assert console_errors == [], f"the browser console shows errors: {console_errors}"


def test_a_drawing_that_is_no_digit_is_said_in_words_and_can_be_corrected(page, app):
    star = [[(140 + 110 * math.sin(4 * math.pi * k / 5), 150 - 110 * math.cos(4 * math.pi * k / 5))
             for k in range(6)]]  # a five-pointed star in one stroke
    draw_with_mouse(page, star)
    response, answer = predict(page)
    assert response.json()["not_a_digit"] is True, response.json()
    assert answer == "not a digit"
    assert page.inner_text(".answer-value") == "not a digit"
    assert "does not look like a digit" in page.inner_text(".answer-note")
    page.click(CORRECTION_OPEN)
    page.fill(CORRECTION_LABEL, "4")
    saved = save_correction(page, lambda: page.click(CORRECTION_SAVE))
    assert saved.status == 201, saved.text()
    _, label, stored_answer, mode = stored_correction(app, saved.json()["id"])
    assert (label, stored_answer, mode) == ("4", "not a digit", "digit")


def focus_by_tabbing(page, selector, presses=30):
    """Press Tab until `selector` has the focus, as a keyboard user would."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def test_a_number_is_corrected_with_the_keyboard_alone(page, app, digit_strokes,
                                                       first_of_each_digit):
    page.check(NUMBER_MODE)
    draw_with_mouse(page, digit_strokes(first_of_each_digit[2], canvas=WIDE, centre=(150, 140)))
    draw_with_mouse(page, digit_strokes(first_of_each_digit[7], canvas=WIDE, centre=(410, 140)))
    _, answer = predict(page, lambda: page.keyboard.press("Enter"))
    assert answer == "27"
    focus_by_tabbing(page, CORRECTION_OPEN)
    page.keyboard.press("Enter")
    assert page.get_attribute(CORRECTION, "open") is not None, "Enter did not open the form"
    focus_by_tabbing(page, CORRECTION_LABEL)
    assert page.inner_text(".correction-question") == "I wrote the number:"
    sent = []
    page.on("request", lambda request: "/corrections" in request.url and sent.append(request))
    page.keyboard.type("27")
    page.keyboard.press("Enter")  # what is typed is what it read: nothing to send
    page.wait_for_selector(f'{CORRECTION_STATUS}[data-kind="error"]')
    assert "nothing to correct" in page.inner_text(CORRECTION_STATUS)
    for _ in range(2):
        page.keyboard.press("Backspace")
    page.keyboard.type("abc")
    page.keyboard.press("Enter")
    assert "up to 12 digits" in page.inner_text(CORRECTION_STATUS)
    assert page.get_attribute(CORRECTION_LABEL, "aria-invalid") == "true"
    assert sent == [], "a label the page refused was sent"
    page.keyboard.press("Escape")
    assert page.get_attribute(RESULT, "data-digit") == "27", "Escape in the form wiped the answer"
    page.fill(CORRECTION_LABEL, "")
    page.focus(CORRECTION_LABEL)
    page.keyboard.type("28")
    saved = save_correction(page, lambda: page.keyboard.press("Enter"))
    assert saved.status == 201, saved.text()
    _, label, stored_answer, mode = stored_correction(app, saved.json()["id"])
    assert (label, stored_answer, mode) == ("28", "27", "number")
    assert page.get_attribute(CORRECTION_STATUS, "role") == "status", \
        "a screen reader is not told the outcome"


def test_on_a_phone_a_correction_is_saved_with_a_finger(open_page, app, digit_strokes,
                                                        first_of_each_digit):
    page = open_page(viewport=TALL_PHONE, device_scale_factor=3, is_mobile=True, has_touch=True)
    draw_with_finger(page, digit_strokes(first_of_each_digit[3], canvas=(280, 280)))
    assert wait_for_answer(page) == "3"
    page.tap(CORRECTION_OPEN)
    page.tap(CORRECTION_LABEL)
    page.keyboard.type("8")
    for selector in (CORRECTION_LABEL, CORRECTION_SAVE):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= TALL_PHONE["width"], \
            f"{selector} sticks out sideways on a phone: {box}"
        assert box["height"] >= 44, f"{selector} is too small for a finger: {box}"
    saved = save_correction(page, lambda: page.tap(CORRECTION_SAVE))
    assert saved.status == 201, saved.text()
    _, label, stored_answer, _ = stored_correction(app, saved.json()["id"])
    assert (label, stored_answer) == ("8", "3")
