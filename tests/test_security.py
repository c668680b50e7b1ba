"""Security headers on every kind of response, CORS only where configured, debug mode never on."""

import re
import runpy

import pytest
import requests

import support
from support import ROOT, bad_requests, live_server
from support.images import encode

EVIL_ORIGIN = "https://evil.example"


@pytest.fixture(scope="module")
def digit_png(draw_mnist_digit):
    return encode(draw_mnist_digit(0)[0], "PNG")


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    """The production command with debug asked for in the environment: it must not take effect."""
    with live_server.gunicorn(support.MODEL_PATH,
                              tmp_path_factory.mktemp("security") / "gunicorn.log",
                              environment={"FLASK_DEBUG": "1", "FLASK_ENV": "development"}) as server:
        yield server


class Sender:
    """One interface over the Flask test client and a live server: send(...) -> (status,
    headers, body bytes)."""

    def __init__(self, client=None, url=None):
        self.client, self.url = client, url

    def __call__(self, method, path, body=None, content_type=None, headers=None):
        headers = dict(headers or {})
        if content_type:
            headers["Content-Type"] = content_type
        if self.client is not None:
            response = self.client.open(path, method=method, data=body, headers=headers)
            return response.status_code, response.headers, response.get_data()
        response = requests.request(method, self.url + path, data=body, headers=headers,
                                    timeout=30)
        return response.status_code, response.headers, response.content


def api_error(name):
    """A kind of response: the answer to a request of the bad-request table."""
    case = bad_requests.named(name)
    return (f"API error: {name}", "POST", case.request.path, case.request.make_body(),
            case.request.content_type, case.status)


# name, method, path, body (bytes, or "DIGIT" for a drawn digit's PNG), content type, status
RESPONSE_KINDS = [
    ("page", "GET", "/", None, None, 200),
    ("page, HEAD", "HEAD", "/", None, None, 200),
    ("static stylesheet", "GET", "/static/style.css", None, None, 200),
    ("static script", "GET", "/static/app.js", None, None, 200),
    ("static file missing", "GET", "/static/nothing.js", None, None, 404),
    ("API success", "POST", "/predict", "DIGIT", "image/png", 200),
    ("health check", "GET", "/healthz", None, None, 200),
    ("model information", "GET", "/api/model", None, None, 200),
    *(api_error(name) for name in ("PostScript sent as image/png", "blank white canvas",
                                    "body just over 2 MB")),
    ("404", "GET", "/no/such/page", None, None, 404),
    ("405", "GET", "/predict", None, None, 405),
    ("preflight", "OPTIONS", "/predict", None, None, 200),
]
KIND_IDS = [kind[0] for kind in RESPONSE_KINDS]
JSON_KINDS = [kind for kind in RESPONSE_KINDS
              if kind[2] in ("/predict", "/healthz", "/api/model", "/no/such/page")
              and kind[1] not in ("HEAD", "OPTIONS")]


def send_kind(send, kind, digit_png, headers=None):
    name, method, path, body, content_type, status = kind
    answer = send(method, path, digit_png if body == "DIGIT" else body, content_type, headers)
    assert answer[0] == status, f"{name}: expected {status}, got {answer[0]}: {answer[2][:200]!r}"
    return answer


def csp_directives(policy):
    directives = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        directives[name.lower()] = sources
    return directives


def assert_secure_headers(headers, name):
    policy = headers.get("Content-Security-Policy")
    assert policy, f"{name}: no Content-Security-Policy header"
    directives = csp_directives(policy)
    assert directives.get("default-src") == ["'self'"], \
        f"{name}: default-src is {directives.get('default-src')}, not just 'self': {policy}"
    assert directives.get("frame-ancestors") == ["'none'"], \
        f"{name}: the page may be framed by other sites: {policy}"
    for unsafe in ("'unsafe-inline'", "'unsafe-eval'", "*"):
        assert not any(unsafe in sources for sources in directives.values()), \
            f"{name}: the policy allows {unsafe}: {policy}"
    for directive in ("script-src", "style-src", "object-src"):
        sources = directives.get(directive, [])
        assert not {"data:", "blob:", "http:", "https:"} & set(sources), \
            f"{name}: {directive} allows loading from {sources}: {policy}"
    assert headers.get("X-Content-Type-Options") == "nosniff", \
        f"{name}: browsers may sniff content types (X-Content-Type-Options missing)"
    assert headers.get("Referrer-Policy") == "no-referrer", \
        f"{name}: Referrer-Policy is {headers.get('Referrer-Policy')!r}, not no-referrer as promised"
    assert "Access-Control-Allow-Origin" not in headers, \
        f"{name}: CORS is open although no CORS_ORIGINS is configured"


@pytest.mark.parametrize("kind", RESPONSE_KINDS, ids=KIND_IDS)
def test_every_kind_of_response_has_the_security_headers(app, digit_png, kind):
    _, headers, _ = send_kind(Sender(client=app.test_client()), kind, digit_png,
                              headers={"Origin": EVIL_ORIGIN})
    assert_secure_headers(headers, kind[0])


@pytest.mark.parametrize("kind", RESPONSE_KINDS, ids=KIND_IDS)
def test_every_kind_of_response_from_gunicorn_has_the_security_headers(production_server,
                                                                       digit_png, kind):
    _, headers, _ = send_kind(Sender(url=production_server.url), kind, digit_png,
                              headers={"Origin": EVIL_ORIGIN})
    assert_secure_headers(headers, kind[0])


@pytest.mark.parametrize("kind", JSON_KINDS, ids=[kind[0] for kind in JSON_KINDS])
def test_api_answers_and_errors_are_json(app, digit_png, kind):
    _, headers, body = send_kind(Sender(client=app.test_client()), kind, digit_png)
    assert headers.get("Content-Type") == "application/json", \
        f"{kind[0]}: answered {headers.get('Content-Type')}"
    assert b"Traceback" not in body


def test_the_page_has_no_inline_script_style_or_handler_so_the_policy_holds(client):
    html = client.get("/").get_data(as_text=True)
    inline_scripts = [tag for tag in re.findall(r"<script\b[^>]*>", html, re.I) if "src=" not in tag]
    assert not inline_scripts, f"inline <script> blocked by the CSP: {inline_scripts}"
    assert not re.search(r"<style\b", html, re.I), "an inline <style> is blocked by the CSP"
    assert not re.search(r"\sstyle\s*=", html, re.I), "a style= attribute is blocked by the CSP"
    handlers = re.findall(r"\s(on[a-z]+)\s*=", html, re.I)
    assert not handlers, f"inline event handlers are blocked by the CSP: {handlers}"
    assert "javascript:" not in html.lower()


# --- CORS -----------------------------------------------------------------------------------

def make_app(monkeypatch, environment=None, config=None):
    from app import create_app

    monkeypatch.delenv("CORS_ORIGINS", raising=False)
    for name, value in (environment or {}).items():
        monkeypatch.setenv(name, value)
    return create_app({"MODEL_PATH": str(support.MODEL_PATH), **(config or {})})


def preflight(client, origin):
    return client.options("/predict", headers={"Origin": origin,
                                               "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "content-type"})


def test_no_cors_without_cors_origins(monkeypatch, digit_png):
    client = make_app(monkeypatch).test_client()
    for response in (preflight(client, EVIL_ORIGIN),
                     client.post("/predict", data=digit_png, content_type="image/png",
                                 headers={"Origin": EVIL_ORIGIN}),
                     client.get("/healthz", headers={"Origin": "null"})):
        assert "Access-Control-Allow-Origin" not in response.headers, \
            "a cross-origin site may read the API although CORS_ORIGINS is not set"


ALLOWED = ["https://draw.example", "http://localhost:8000"]


@pytest.mark.parametrize("origins", [
    " https://draw.example , http://localhost:8000 ,", ALLOWED, tuple(ALLOWED) + (" ",),
], ids=["comma-separated", "list", "tuple with a blank"])
def test_cors_origins_are_read_from_a_list_or_a_comma_separated_string(origins):
    from app import allowed_origins

    assert allowed_origins(origins) == frozenset(ALLOWED)


@pytest.mark.parametrize("how", [
    {"environment": {"CORS_ORIGINS": " https://draw.example , http://localhost:8000 ,"}},
    {"config": {"CORS_ORIGINS": ALLOWED}},
    {"config": {"CORS_ORIGINS": "https://draw.example,http://localhost:8000"}},
], ids=["environment variable", "config list", "config string"])
def test_cors_answers_exactly_the_listed_origins(monkeypatch, digit_png, how):
    client = make_app(monkeypatch, **how).test_client()
    for origin in ALLOWED:
        response = preflight(client, origin)
        assert response.status_code in (200, 204)
        assert response.headers.get("Access-Control-Allow-Origin") == origin, \
            f"the preflight from listed origin {origin} was not allowed"
        assert "POST" in response.headers.get("Access-Control-Allow-Methods", "")
        assert "content-type" in response.headers.get("Access-Control-Allow-Headers", "").lower()
        response = client.post("/predict", data=digit_png, content_type="image/png",
                               headers={"Origin": origin})
        assert response.headers.get("Access-Control-Allow-Origin") == origin
        assert "Origin" in response.headers.get("Vary", ""), \
            "without Vary: Origin a cache may serve one origin's CORS answer to another"
        assert "Access-Control-Allow-Credentials" not in response.headers
    for origin in [EVIL_ORIGIN, "https://draw.example.evil.example", "https://draw",
                   "http://localhost", "null", "*"]:
        for response in (preflight(client, origin),
                         client.post("/predict", data=digit_png, content_type="image/png",
                                     headers={"Origin": origin})):
            assert "Access-Control-Allow-Origin" not in response.headers, \
                f"unlisted origin {origin!r} was allowed"


# --- debug mode -----------------------------------------------------------------------------

def test_flask_debug_in_the_environment_does_not_turn_debug_on(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    monkeypatch.setenv("MODEL_PATH", str(support.MODEL_PATH))
    from app import create_app

    assert create_app().debug is False, \
        "FLASK_DEBUG=1 in the environment turns debug mode on in the production factory"


def test_gunicorn_config_never_reloads_or_debugs():
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert not settings.get("reload"), "gunicorn.conf.py turns on code reloading"
    for name in ("Procfile", "Dockerfile"):
        text = (ROOT / name).read_text()
        assert "app:create_app()" in text, f"{name} does not serve the app factory"
        for flag in ("--reload", "--debug", "FLASK_DEBUG", "debug=True"):
            assert flag not in text, f"{name} contains {flag}"


DEBUGGER_PROBES = ["/console", "/?__debugger__=yes&cmd=resource&f=debugger.js",
                   "/no/such/page?__debugger__=yes&cmd=resource&f=style.css",
                   "/predict?__debugger__=yes&cmd=printpin&s=x"]


def debugger_signs(get):
    """The probes on which the Werkzeug debugger showed itself; `get(path)` -> (Content-Type,
    body text)."""
    signs = []
    for path in DEBUGGER_PROBES:
        content_type, text = get(path)
        if "javascript" in content_type or any(
                sign in text for sign in ("Werkzeug", "__debugger__", "console.png", "PIN")):
            signs.append(path)
    return signs


def test_the_debugger_probe_finds_the_debugger_where_it_is_on(app):
    # What `flask run --debug` would serve: the same app inside Werkzeug's debugger.
    from werkzeug.debug import DebuggedApplication
    from werkzeug.test import Client

    debugged = Client(DebuggedApplication(app, evalex=True))

    def get(path):
        response = debugged.get(path)
        return response.headers.get("Content-Type", ""), response.get_data(as_text=True)

    assert debugger_signs(get), "the probes do not recognise the debugger when it is on"


def test_werkzeug_debugger_never_answers_in_production(production_server):
    def get(path):
        response = requests.get(production_server.url + path, timeout=10)
        return response.headers.get("Content-Type", ""), response.text

    assert debugger_signs(get) == [], "the production server answers as the debugger"


def test_production_server_ignores_flask_debug_in_the_environment(production_server):
    # Flask pretty-prints JSON in debug mode: the production server with FLASK_DEBUG=1 must not.
    body = requests.get(production_server.url + "/healthz", timeout=10).text
    assert "\n  " not in body, f"the server runs in debug mode despite the production command: {body!r}"


@pytest.mark.parametrize("environment", [{}, {"FLASK_DEBUG": "1"}], ids=["default", "FLASK_DEBUG=1"])
def test_unexpected_exception_gives_json_500_without_traceback(monkeypatch, environment,
                                                               digit_png):
    app = make_app(monkeypatch, environment)

    def broken():  # a fault in code the app runs: every route shares the app's error handler
        raise RuntimeError("secret detail from /work/main/utils.py")

    app.add_url_rule("/broken", view_func=broken, methods=["POST"])
    response = app.test_client().post("/broken", data=digit_png, content_type="image/png")
    assert response.status_code == 500
    assert response.headers.get("Content-Type") == "application/json"
    body = response.get_data(as_text=True)
    assert isinstance(response.get_json().get("error"), str)
    for leak in ("Traceback", "secret detail", "utils.py", "RuntimeError"):
        assert leak not in body, f"the 500 answer reveals {leak!r}: {body}"
    assert_secure_headers(response.headers, "500")
