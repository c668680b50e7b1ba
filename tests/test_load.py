"""A few seconds of concurrent load on the production server: no errors, no 5xx, no mix-ups.

A correctness check under concurrency, not a speed test: `make bench` measures speed.
"""

import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

import support
from support import live_server, unavailable
from support.images import data_uri, encode

WRK_SCRIPT = support.ROOT / "scripts" / "post.lua"  # POSTs $WRK_BODY, counts statuses


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server.gunicorn(support.MODEL_PATH,
                              tmp_path_factory.mktemp("load") / "gunicorn.log") as server:
        yield server


@pytest.fixture(scope="module")
def digits(draw_mnist_digit):
    """Ten different drawn digits as (PNG bytes, label)."""
    drawn = [draw_mnist_digit(index) for index in range(10)]
    return [(encode(image, "PNG"), label) for image, label in drawn]


def wrk_path():
    path = shutil.which("wrk")
    if path is None:
        unavailable("wrk is not installed: the load test needs it (Debian: apt-get install wrk; "
                    "`make test` installs it when run as root)")
    return path


def test_8_connections_for_3_seconds_get_no_errors_and_no_5xx(server, digits, tmp_path):
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"image": data_uri(digits[0][0])}))
    result = subprocess.run([wrk_path(), "--threads", "2", "--connections", "8",
                             "--duration", "3s", "--timeout", "5s", "--script", str(WRK_SCRIPT),
                             server.url + "/predict"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "WRK_BODY": str(body)})
    report = result.stdout + result.stderr
    assert result.returncode == 0, f"wrk failed:\n{report}"
    statuses = {}
    for status, count in re.findall(r"^status (\d+) (\d+)$", report, re.M):
        statuses[int(status)] = statuses.get(int(status), 0) + int(count)
    assert sum(statuses.values()) > 0, f"no request was answered:\n{report}"
    assert set(statuses) == {200}, f"answers other than 200 under load: {statuses}\n{report}"
    assert "Socket errors" not in report, f"connections failed under load:\n{report}"
    assert "Non-2xx" not in report, report
    assert "Unhandled error" not in server.log()


def post_png(server, body):
    response = requests.post(server.url + "/predict", data=body,
                             headers={"Content-Type": "image/png"}, timeout=30)
    return response.status_code, response.json().get("digit")


def test_concurrent_requests_each_get_their_own_answer(server, digits):
    # Ten different digits and some bad requests interleaved on 8 threads: each must get the
    # answer it gets when sent alone, and no worker may be replaced meanwhile.
    workers = server.worker_pids
    bodies = [png for png, _ in digits]
    bodies += [b"not an image", encode(Image.new("L", (280, 280), 255), "PNG")]
    alone = {body: post_png(server, body) for body in bodies}
    assert [status for status, _ in alone.values()] == [200] * 10 + [400, 422]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda body: (body, post_png(server, body)), bodies * 8))
    for body, answer in together:
        assert answer == alone[body], \
            f"under concurrency a request got {answer}, alone it gets {alone[body]}"
    assert server.worker_pids == workers, "a worker was replaced during the load"
