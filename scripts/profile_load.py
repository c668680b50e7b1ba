"""Where a request's CPU goes under load: the production server, loaded by wrk, sampled by py-spy.

Starts the production command (gunicorn, gunicorn.conf.py, the app factory) with 2 workers,
loads it with wrk (16 connections, POSTs of one PNG kind as a JSON data URI, as the page sends
it), samples every worker with py-spy meanwhile, and reads the workers' CPU time from /proc.
Each sample is put in the innermost stage of the request it is in (the table below, first
match from the innermost frame out); the CPU per request is split by those shares.

    python -m scripts.profile_load                       # the Chromium canvas
    python -m scripts.profile_load --kind "anti-aliased, on white" --duration 20

Needs wrk (Debian: apt-get install wrk) and py-spy (requirements-test.txt), and permission to
read other processes' memory (root, or ptrace_scope 0).
"""

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench import cpu_seconds, request_body, run_wrk
from tests.support import MODEL_PATH
from tests.support.images import PNG_KINDS
from tests.support.live_server import gunicorn

# py-spy is installed beside this Python (requirements-test.txt), which may not be on PATH
PY_SPY = shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                     os.environ.get("PATH", "")]))

# (stage, pattern of a py-spy frame "function (file:line)"); the first stage whose pattern
# matches a frame, searching from the innermost frame out, takes the sample.
STAGES = [
    ("model (onnxruntime)", r"^Session\.run "),
    ("preview PNGs", r"^preview_data_uri "),
    ("decode the image to ink (read_ink)", r"^read_ink "),
    ("base64 of the data URI", r"^decode_base64_image "),
    ("segmentation and MNIST's recipe", r"\(segment\.py:"),
    ("reply to JSON (jsonify)", r"^jsonify "),
    ("request JSON parsing", r"^Request\.get_json "),
    ("reply assembly (recognizer)", r"^Recognizer\.read "),
    ("Flask and Werkzeug (routing, request and response objects)", r"^Flask\.wsgi_app "),
    ("body deadline (server/body_deadline.py)", r"^BodyDeadline\."),
    ("gunicorn: access log", r"^Logger\.access "),
    ("gunicorn: sending the response", r"^Response\.(write|send_headers|close) \(gunicorn"),
    ("gunicorn: reading and parsing the request", r"\(gunicorn/http/"),
    ("gunicorn and gevent: the rest (accept, keep-alive, post_request)", r"."),
]


def stage_of(frames):
    for frame in reversed(frames):
        for stage, pattern in STAGES[:-1]:
            if re.search(pattern, frame):
                return stage
    return STAGES[-1][0]


def profile(kind, duration, rate, work_dir):
    body_file = work_dir / "body.json"
    body_file.write_text(request_body(PNG_KINDS[kind]()))
    with gunicorn(MODEL_PATH, work_dir / "gunicorn.log") as server:
        run_wrk(server.url, body_file, 2, 16, 2)  # warm up every worker
        master = server.process.pid
        samplers = [subprocess.Popen(
            [PY_SPY, "record", "--pid", str(pid), "--rate", str(rate), "--duration",
             str(duration), "--format", "raw", "--nonblocking", "--output",
             str(work_dir / f"{pid}.txt")], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL) for pid in server.worker_pids]
        before = cpu_seconds(master)
        load = run_wrk(server.url, body_file, 2, 16, duration)
        cpu = cpu_seconds(master) - before
        for sampler in samplers:
            sampler.wait()
    samples = collections.Counter()
    for raw in work_dir.glob("[0-9]*.txt"):
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            samples[stage_of(stack.split(";"))] += int(count)
    return load, cpu, samples


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default="Chromium canvas", choices=list(PNG_KINDS))
    parser.add_argument("--duration", type=int, default=15, help="seconds of load")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples a second")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None or PY_SPY is None:
        sys.exit("wrk and py-spy are needed; `make bench` installs both")
    load, cpu, samples = profile(args.kind, args.duration, args.rate,
                                 Path(tempfile.mkdtemp(prefix="profile-")))
    total = sum(samples.values())
    cpu_ms = 1000 * cpu / max(load["requests"], 1)
    print(f"{args.kind}: {load['rps']:,.0f} requests/s, {load['errors']} errors, "
          f"{cpu_ms:.2f} ms of server CPU a request ({os.cpu_count()} CPUs, wrk on the same "
          f"machine); {total:,} samples\n")
    print("| stage | share of samples | ms of CPU a request |\n|---|---:|---:|")
    for stage, _ in STAGES:
        share = samples[stage] / max(total, 1)
        print(f"| {stage} | {100 * share:.1f} % | {share * cpu_ms:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"kind": args.kind, "rps": load["rps"], "cpu_ms": cpu_ms, "samples": samples},
            indent=2))


if __name__ == "__main__":
    main()
