"""The corrections store under the production server, on SQLite and on a real PostgreSQL
server: 200 corrections sent at once to several gunicorn workers, the app (and PostgreSQL)
restarted, more sent, then `flask --app app corrections export` writes each exactly once with
its bytes and pixels intact."""

import collections
import csv
import io
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
from PIL import Image

from support import MODEL_PATH, ROOT, live_server
from support.images import data_uri, numbered_seven

WORKERS = 4
CONNECTIONS = 16
FIRST_DRAWINGS = range(0, 150)    # sent once each, and every third of them a second time: 200
SECOND_DRAWINGS = range(150, 200)  # sent after the restart, with 20 of the first again
# Log each request with the pid of the worker that answered it.
ACCESS_LOG = "--access-logformat '%(p)s %(m)s %(U)s %(s)s'"


def label_of(number):
    return str(number % 10)


def send(url, number):
    """POST drawing `number` as a correction; (drawing, status, id)."""
    response = requests.post(f"{url}/corrections", timeout=60, json={
        "image": data_uri(numbered_seven(number)), "label": label_of(number), "answer": "7",
        "mode": "digit"})
    return number, response.status_code, response.json().get("id")


def send_all_at_once(url, numbers):
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        return list(pool.map(lambda number: send(url, number), numbers))


def serve(database_url, log_path):
    return live_server.gunicorn(MODEL_PATH, log_path, workers=WORKERS, environment={
        "DATABASE_URL": database_url, "CORRECTIONS_PER_MINUTE": "0",
        "GUNICORN_CMD_ARGS": ACCESS_LOG})


def workers_that_stored(log):
    return {line.split()[0] for line in log.splitlines()
            if line.endswith(" POST /corrections 201")}


def test_concurrent_writes_survive_a_restart_and_export_once(database_url, request, tmp_path):
    first = list(FIRST_DRAWINGS) + list(FIRST_DRAWINGS)[::3]
    random.Random(23).shuffle(first)
    assert len(first) == 200
    with serve(database_url, tmp_path / "first.log") as server:
        answers = send_all_at_once(server.url, first)
        log = server.log()
    statuses = collections.Counter(status for _, status, _ in answers)
    assert statuses == {201: len(FIRST_DRAWINGS), 200: len(first) - len(FIRST_DRAWINGS)}, \
        f"200 concurrent corrections were not each stored once: {dict(statuses)}"
    assert len(workers_that_stored(log)) >= 2, "the corrections did not reach several workers"
    ids = {}
    for number, _, correction_id in answers:
        assert ids.setdefault(number, correction_id) == correction_id, \
            f"drawing {number} got two ids"
    assert len(set(ids.values())) == len(FIRST_DRAWINGS)

    if database_url.startswith("postgres"):
        request.getfixturevalue("postgres").restart()
    second = list(SECOND_DRAWINGS) + list(FIRST_DRAWINGS)[:20]
    with serve(database_url, tmp_path / "second.log") as server:
        answers = send_all_at_once(server.url, second)
    for number, status, correction_id in answers:
        if number in ids:
            assert (status, correction_id) == (200, ids[number]), \
                f"after the restart drawing {number} was not found again: {status}"
        else:
            assert status == 201, f"after the restart drawing {number} got {status}"
            ids[number] = correction_id

    folder = tmp_path / "export"
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "corrections",
                             "export", str(folder)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DATABASE_URL": database_url})
    assert result.returncode == 0, f"the export failed:\n{result.stdout}{result.stderr}"
    assert "Wrote 200 corrections" in result.stdout, result.stdout
    with open(folder / "labels.csv", newline="") as table:
        rows = list(csv.DictReader(table))
    assert list(rows[0]) == ["file", "label", "answer", "mode", "created"]
    assert len(rows) == len(ids) == 200, f"{len(rows)} rows exported for 200 corrections"
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [row["file"] for row in rows] + ["labels.csv"]), "the files are not one per correction"
    drawings = {numbered_seven(number): number for number in ids}
    exported = collections.Counter()
    for row in rows:
        data = (folder / row["file"]).read_bytes()
        assert data in drawings, f"{row['file']} holds bytes that were never sent"
        number = drawings[data]
        exported[number] += 1
        assert (row["label"], row["answer"], row["mode"]) == (label_of(number), "7", "digit")
        sent = Image.open(io.BytesIO(numbered_seven(number)))
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), np.asarray(sent)), \
            f"the pixels of drawing {number} changed"
    assert set(exported.values()) == {1} and len(exported) == 200, \
        "some corrections were exported twice or not at all"


def test_export_of_an_empty_store_writes_only_the_header(database_url, tmp_path):
    folder = tmp_path / "export"
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "corrections",
                             "export", str(folder)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert (folder / "labels.csv").read_text().splitlines() == ["file,label,answer,mode,created"]


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    url = f"postgresql://nobody@127.0.0.1:{live_server.free_port()}/none"
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "corrections",
                             "export", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "DATABASE_URL": url})
    assert result.returncode != 0
    assert "cannot be reached" in result.stderr, result.stderr[-2000:]
