"""POST /corrections with the real model, on SQLite and on a real PostgreSQL server: a
correction is stored once, every bad request gets its 4xx JSON error and stores nothing, the
per-client limit answers 429, and X-Forwarded-For counts only when a proxy is trusted."""

import base64

import pytest

from corrections import store
from support import MODEL_PATH
from support.bad_requests import (BLANK, DECLARES_TOO_MANY, NOT_A_STRING, NOT_BASE64, SVG,
                                  SVG_WITH_SCRIPT, TOO_LONG, UNREADABLE, Answer, as_json, big,
                                  form, raw, send_with_client)
from support.images import (blank, data_uri, in_faint_ink, numbered_seven, png,
                            seven_on_a_canvas, specks, tiny_png_declaring)

SEVEN = png(seven_on_a_canvas())
MB = 1024 * 1024


def make_app(database_url, **config):
    from app import create_app

    return create_app({"TESTING": True, "MODEL_PATH": str(MODEL_PATH),
                       "DATABASE_URL": database_url, "CORRECTIONS_PER_MINUTE": 0, **config})


def stored(app):
    with app.app_context():
        return store.count(store.connection())


def correction(image=SEVEN, label="1", answer="7", mode="digit"):
    return {"image": data_uri(image), "label": label, "answer": answer, "mode": mode}


@pytest.fixture()
def app(database_url):
    return make_app(database_url)


@pytest.fixture()
def client(app):
    return app.test_client()


# --- stored once -------------------------------------------------------------------------

def test_a_correction_is_stored_and_sent_again_is_stored_once(app, client):
    first = client.post("/corrections", json=correction())
    assert first.status_code == 201, first.get_json()
    again = client.post("/corrections", json=correction())
    assert again.status_code == 200, f"a duplicate was not recognised: {again.get_json()}"
    assert again.get_json() == first.get_json(), "the duplicate got another id"
    other_label = client.post("/corrections", json=correction(label="2"))
    assert other_label.status_code == 201, "the same drawing with another label was refused"
    assert other_label.get_json()["id"] != first.get_json()["id"]
    assert stored(app) == 2


def test_a_correction_keeps_the_bytes_the_label_the_answer_the_mode_and_the_model(app, client):
    sent = numbered_seven(5)
    client.post("/corrections", json={"image": base64.b64encode(sent).decode(),
                                      "label": "2024", "answer": "7", "mode": "number"})
    with app.app_context():
        [(_, image, label, answer, mode, created)] = store.rows(store.connection())
        model = store.connection().execute(
            "SELECT model_sha256 FROM corrections").fetchone()[0]
    assert image == sent, "the stored image is not the bytes that were sent"
    assert (label, answer, mode) == ("2024", "7", "number")
    assert model == app.extensions["recognizer"].sha256
    assert created.endswith("+00:00"), f"the time is not in UTC: {created}"


def test_mode_defaults_to_number_as_for_predict(client):
    response = client.post("/corrections", json={"image": data_uri(SEVEN), "label": "71",
                                                 "answer": "7"})
    assert response.status_code == 201, response.get_json()


# --- bad requests -----------------------------------------------------------------------

BAD_JSON = "must be a JSON object like"
NOT_JSON = "send the correction as application/json"
BAD_LABEL_DIGIT = "label must be the digit you wrote"
BAD_LABEL_NUMBER = "label must be the number you wrote"
BAD_ANSWER = "answer must be what the app read"


def bad(payload):
    return as_json(payload)


BAD_CORRECTIONS = {
    # malformed: 400, or 415 for what is not JSON
    "empty body": (raw(b""), 415, NOT_JSON),
    "a form": (form({"image": data_uri(SEVEN), "label": "1"}), 415, NOT_JSON),
    "a PNG body": (raw(SEVEN, "image/png"), 415, NOT_JSON),
    "malformed JSON": (raw(b'{"image": "data:image/png;base64,', "application/json"), 400,
                       BAD_JSON),
    "JSON nested 100,000 deep": (raw(b"[" * 100_000, "application/json"), 400, BAD_JSON),
    "JSON array": (bad([correction()]), 400, BAD_JSON),
    "no label": (bad({"image": data_uri(SEVEN), "answer": "7"}), 400, BAD_JSON),
    "no answer": (bad({"image": data_uri(SEVEN), "label": "1"}), 400, BAD_JSON),
    "no image": (bad({"label": "1", "answer": "7"}), 400, BAD_JSON),
    "mode unknown": (bad(correction(mode="digits")), 400, 'mode must be "digit"'),
    "answer not digits": (bad({**correction(), "answer": "seven"}), 400, BAD_ANSWER),
    "answer a number": (bad({**correction(), "answer": 7}), 400, BAD_ANSWER),
    "answer of 13 digits": (bad({**correction(), "answer": "1" * 13}), 400, BAD_ANSWER),
    "answer neither digits nor not a digit": (bad({**correction(), "answer": "not a 7"}), 400,
                                              BAD_ANSWER),
    "image a number": (bad({**correction(), "image": 7}), 400, NOT_A_STRING),
    "bad base64": (bad({**correction(), "image": "data:image/png;base64,@@"}), 400, NOT_BASE64),
    "random bytes": (bad(correction(bytes(range(256)) * 16)), 400, UNREADABLE),
    "truncated PNG": (bad(correction(SEVEN[:len(SEVEN) // 2])), 400, "truncated"),
    # unsupported: 415
    "SVG with a script": (bad(correction(SVG_WITH_SCRIPT)), 415, SVG),
    "PDF data URI": (bad({**correction(), "image": "data:application/pdf;base64,JVBERi0x"}),
                     415, "is not an image"),
    # too large: 413
    "PNG declaring 30000x30000": (bad(correction(tiny_png_declaring(30000, 30000))), 413,
                                  DECLARES_TOO_MANY),
    "3 MB JSON": (raw(lambda: b'{"image": "' + b"A" * (3 * MB) + b'"}', "application/json"),
                  413, TOO_LONG),
    "50 MB chunked body": (big(50 * MB, first=b'{"image": "', content_type="application/json",
                               chunked=True), 413, TOO_LONG),
    # nothing drawn: 422
    "blank canvas": (bad(correction(blank((0, 0, 0, 0), "RGBA"))), 422, BLANK),
    "blank white image": (bad(correction(blank("white"))), 422, BLANK),
    "two specks far apart": (bad(correction(specks(2000), mode="number")), 422,
                             "too small to be a digit"),
    "ink too faint": (bad(correction(png(in_faint_ink(seven_on_a_canvas(), 20)))), 422, BLANK),
    # a bad label: 422
    "two digits in digit mode": (bad(correction(label="12")), 422, BAD_LABEL_DIGIT),
    "empty label": (bad(correction(label="")), 422, BAD_LABEL_DIGIT),
    "label a letter": (bad(correction(label="a")), 422, BAD_LABEL_DIGIT),
    "label a JSON number": (bad(correction(label=7)), 422, BAD_LABEL_DIGIT),
    "label null": (bad(correction(label=None)), 422, BAD_LABEL_DIGIT),
    "label with a space": (bad(correction(label=" 7")), 422, BAD_LABEL_DIGIT),
    "label with a newline": (bad(correction(label="7\n")), 422, BAD_LABEL_DIGIT),
    "label an Arabic-Indic three": (bad(correction(label="\u0663")), 422, BAD_LABEL_DIGIT),
    "label a full-width seven": (bad(correction(label="\uff17")), 422, BAD_LABEL_DIGIT),
    "13 digits in number mode": (bad(correction(label="1" * 13, mode="number")), 422,
                                 BAD_LABEL_NUMBER),
    "empty number": (bad(correction(label="", mode="number")), 422, BAD_LABEL_NUMBER),
    "negative number": (bad(correction(label="-12", mode="number")), 422, BAD_LABEL_NUMBER),
    "decimal number": (bad(correction(label="1.5", mode="number")), 422, BAD_LABEL_NUMBER),
}


def with_path(request):
    return type(request)(request.make_body, request.content_type, "/corrections",
                         request.chunked)


@pytest.mark.parametrize("name", BAD_CORRECTIONS)
def test_a_bad_correction_gets_its_json_error_and_stores_nothing(app, client, name):
    request, status, message = BAD_CORRECTIONS[name]
    answer: Answer = send_with_client(client, with_path(request))
    assert answer.status < 500, f"{name}: the server failed ({answer.status}): {answer.text}"
    assert answer.status == status, f"{name}: expected {status}, got {answer.status}: " \
                                    f"{answer.text[:300]}"
    assert answer.content_type == "application/json", f"{name}: the answer is not JSON"
    assert "Traceback" not in answer.text
    assert message in answer.json()["error"], \
        f"{name}: the message {answer.json()['error']!r} does not say {message!r}"
    assert stored(app) == 0, f"{name}: a bad correction was stored"


def test_a_database_down_at_start_stops_only_the_corrections(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # the database's folder cannot be made while this file is there
    app = make_app(f"sqlite:///{blocker / 'c.sqlite3'}")
    client = app.test_client()
    assert client.post("/predict", json={"image": data_uri(SEVEN)}).get_json()["digit"] == 7
    down = client.post("/corrections", json=correction())
    assert down.status_code == 503 and "cannot be reached" in down.get_json()["error"]
    blocker.unlink()  # the database answers now: its table is made on the first correction
    assert client.post("/corrections", json=correction()).status_code == 201
    assert stored(app) == 1


def test_get_corrections_is_405_in_json(client):
    response = client.get("/corrections")
    assert response.status_code == 405
    assert "error" in response.get_json()


# --- the cap and the limit ------------------------------------------------------------------

def test_the_cap_refuses_new_corrections_but_still_answers_duplicates(database_url):
    client = make_app(database_url, CORRECTIONS_MAX=3).test_client()
    for number in range(3):
        assert client.post("/corrections", json=correction(numbered_seven(number))).status_code \
            == 201
    full = client.post("/corrections", json=correction(numbered_seven(3)))
    assert full.status_code == 507, f"the cap did not hold: {full.status_code} {full.get_json()}"
    assert "full" in full.get_json()["error"]
    again = client.post("/corrections", json=correction(numbered_seven(0)))
    assert again.status_code == 200, "a correction stored before the cap was refused"


def test_the_31st_correction_in_a_minute_from_one_client_is_429(tmp_path):
    client = make_app(f"sqlite:///{tmp_path / 'c.sqlite3'}",
                      CORRECTIONS_PER_MINUTE=30).test_client()
    statuses = [client.post("/corrections", json=correction(numbered_seven(number))).status_code
                for number in range(30)]
    assert statuses == [201] * 30, f"the first 30 corrections were not all stored: {statuses}"
    refused = client.post("/corrections", json=correction(numbered_seven(30)))
    assert refused.status_code == 429, f"the 31st was not refused: {refused.status_code}"
    assert "30 corrections a minute" in refused.get_json()["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    other = client.post("/corrections", json=correction(numbered_seven(31)),
                        environ_overrides={"REMOTE_ADDR": "192.0.2.9"})
    assert other.status_code == 201, "another client was refused for the first one's corrections"
    # The limit is for corrections: reading drawings goes on.
    assert client.post("/predict", json={"image": data_uri(SEVEN)}).status_code == 200


def test_x_forwarded_for_is_ignored_unless_a_proxy_is_trusted(tmp_path):
    client = make_app(f"sqlite:///{tmp_path / 'c.sqlite3'}",
                      CORRECTIONS_PER_MINUTE=2).test_client()
    statuses = [client.post("/corrections", json=correction(numbered_seven(number)),
                            headers={"X-Forwarded-For": f"198.51.100.{number}"}).status_code
                for number in range(3)]
    assert statuses == [201, 201, 429], f"a forged X-Forwarded-For escaped the limit: {statuses}"


def test_behind_one_trusted_proxy_the_client_is_the_address_it_appended(tmp_path):
    client = make_app(f"sqlite:///{tmp_path / 'c.sqlite3'}", CORRECTIONS_PER_MINUTE=2,
                      TRUSTED_PROXIES=1).test_client()

    def post(number, forwarded_for):
        return client.post("/corrections", json=correction(numbered_seven(number)),
                           headers={"X-Forwarded-For": forwarded_for}).status_code

    # A client may put anything first; the router appends the address it saw.
    assert [post(number, f"10.0.0.{number}, 203.0.113.7") for number in range(3)] == \
        [201, 201, 429], "the address the client wrote, not the router's, was counted"
    assert post(3, "203.0.113.8") == 201, "another client behind the router was refused"


# --- refused as /predict refuses ------------------------------------------------------------

def thirteen_strokes():
    from PIL import Image, ImageDraw

    image = Image.new("L", (700, 100), "white")
    draw = ImageDraw.Draw(image)
    for k in range(13):
        draw.line([(20 + 52 * k, 20), (20 + 52 * k, 80)], fill="black", width=6)
    return png(image)


REFUSED_DRAWINGS = {  # name -> (drawing, the modes /predict refuses it in)
    "blank canvas": (blank((0, 0, 0, 0), "RGBA"), ("digit", "number")),
    "two specks far apart": (specks(2000), ("digit", "number")),
    "ink too faint": (png(in_faint_ink(seven_on_a_canvas(), 20)), ("digit", "number")),
    "thirteen marks": (thirteen_strokes(), ("number",)),  # one digit in digit mode
}


@pytest.mark.parametrize("name, mode", [(name, mode) for name, (_, modes)
                                        in REFUSED_DRAWINGS.items() for mode in modes])
def test_a_drawing_predict_refuses_is_refused_with_the_same_words(app, client, name, mode):
    image, _ = REFUSED_DRAWINGS[name]
    predicted = client.post(f"/predict?mode={mode}", json={"image": data_uri(image)})
    corrected = client.post("/corrections", json=correction(image, label="1", mode=mode))
    assert predicted.status_code == 422, f"{name}: /predict answered {predicted.status_code}"
    assert (corrected.status_code, corrected.get_json()) == (422, predicted.get_json()), (
        f"{name} in {mode} mode: /corrections answered {corrected.status_code} "
        f"{corrected.get_json()}, /predict 422 {predicted.get_json()}")
    assert stored(app) == 0
