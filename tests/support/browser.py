"""Drawing on the page in Chromium as a person draws: with a mouse, a finger or a pen, along
polylines in canvas pixels; the page's hooks (data-testid selectors) and Predict."""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 640}
TALL_PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000

CANVAS = '[data-testid="canvas"]'
PREDICT = '[data-testid="predict"]'
CLEAR = '[data-testid="clear"]'
UPLOAD = '[data-testid="upload"]'
RESULT = '[data-testid="result"]'
MESSAGE = '[data-testid="message"]'
DIGIT_CARDS = '[data-testid="digits"] > li'
NUMBER_MODE = '[data-testid="mode-number"]'
DIGIT_MODE = '[data-testid="mode-digit"]'
CORRECTION = '[data-testid="correction"]'
CORRECTION_OPEN = '[data-testid="correction-open"]'
CORRECTION_LABEL = '[data-testid="correction-label"]'
CORRECTION_SAVE = '[data-testid="correction-save"]'
CORRECTION_STATUS = '[data-testid="correction-status"]'

DIGIT_HEIGHT = 200 / 280  # of the canvas height: a person fills most of the box
WIDE = (560, 280)  # the canvas in number mode
POINT_SPACING = 10  # canvas px between pointer samples, as a mouse moved briskly sends them


def canvas_to_viewport(page):
    """A function mapping canvas backing-store pixels to viewport CSS pixels."""
    box = page.locator(CANVAS).bounding_box()
    width, height = page.eval_on_selector(CANVAS, "canvas => [canvas.width, canvas.height]")
    return lambda x, y: (box["x"] + x * box["width"] / width,
                         box["y"] + y * box["height"] / height)


def thin_out(polyline, spacing=POINT_SPACING):
    """Drop points closer than `spacing` px to the last one kept; always keep both ends."""
    kept = [polyline[0]]
    for x, y in polyline[1:-1]:
        if (x - kept[-1][0]) ** 2 + (y - kept[-1][1]) ** 2 >= spacing ** 2:
            kept.append((x, y))
    return kept + polyline[-1:] if len(polyline) > 1 else kept


def draw_with_mouse(page, polylines):
    to_viewport = canvas_to_viewport(page)
    for polyline in polylines:
        points = [to_viewport(*point) for point in thin_out(polyline)]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point)
        page.mouse.up()


def draw_with_finger(page, polylines):
    """Touch events as a touch screen sends them; Chromium turns them into touch pointers."""
    to_viewport = canvas_to_viewport(page)
    cdp = page.context.new_cdp_session(page)
    for polyline in polylines:
        points = [to_viewport(*point) for point in thin_out(polyline)]
        x, y = points[0]
        cdp.send("Input.dispatchTouchEvent",
                 {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for x, y in points[1:]:
            cdp.send("Input.dispatchTouchEvent",
                     {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def draw_with_pen(page, polylines):
    """Mouse events with the pointer type a stylus gives (pressure under the nib)."""
    to_viewport = canvas_to_viewport(page)
    cdp = page.context.new_cdp_session(page)
    for polyline in polylines:
        points = [to_viewport(*point) for point in thin_out(polyline)]
        events = ([("mousePressed", points[0])] + [("mouseMoved", point) for point in points[1:]]
                  + [("mouseReleased", points[-1])])
        for kind, (x, y) in events:
            cdp.send("Input.dispatchMouseEvent", {
                "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1,
                "buttons": 0 if kind == "mouseReleased" else 1, "pointerType": "pen",
                "force": 0.5})
    cdp.detach()


def predict(page, action=None):
    """Do `action` (default: click Predict), wait for the answer; return (response, data-digit)."""
    with page.expect_response(lambda response: response.url.endswith("/predict")) as answer:
        (action or (lambda: page.click(PREDICT)))()
    page.wait_for_selector(f'{RESULT}:not([data-state="pending"])')
    return answer.value, page.get_attribute(RESULT, "data-digit")


def save_correction(page, action):
    """Do `action` (which saves a correction); return the /corrections response once the page
    says how it went."""
    with page.expect_response(lambda response: response.url.endswith("/corrections")) as answer:
        action()
    page.wait_for_selector(f'{CORRECTION_STATUS}[data-kind="done"], '
                           f'{CORRECTION_STATUS}[data-kind="error"]')
    return answer.value
