"""Benchmark the request path in-process and the production server, and print Markdown tables.

First the request path in this process, stage by stage (500 calls each), for one drawn 7 in
each PNG kind of tests/support/images.py (a real Chromium canvas, Pillow-written canvases and
opaque PNGs). Then, for each worker count: start the production command (gunicorn,
gunicorn.conf.py, the app factory) and time it to the first good answer, load it with wrk
(POSTs of the Chromium canvas PNG as a JSON data URI, as the page sends it), count errors, read
the memory of every server process from /proc, split the server's own time per request from its
Server-Timing header for each PNG kind, and load it again with 64, then 500 slow clients open
(headers sent, body trickling).

    make bench
    .venv/bin/python -m scripts.bench --workers 2 3 --duration 30
    .venv/bin/python -m scripts.bench --load-kind "anti-aliased, on white" --slow 64
"""

import argparse
import base64
import contextlib
import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

from tests.support import ROOT
from tests.support.images import PNG_KINDS
from tests.support.live_server import COMMAND, child_pids, free_port, memory_of, stop

# ---------------------------------------------------------------------------
# Targets (from the issue)
# ---------------------------------------------------------------------------

TARGET_RPS = 1000
TARGET_P99_MS = 25
TARGET_SLOW_P99_MS = 1000  # with slow clients open, good requests are still answered
TARGET_SERVER_MS = 1.0
TARGET_LAUNCH_S = 1.0
TARGET_MEMORY_MB = 150

# ---------------------------------------------------------------------------
# The request: a canvas like the page's, posted as the page posts it
# ---------------------------------------------------------------------------


LOAD_KIND = "Chromium canvas"  # what the load sends, unless --load-kind says otherwise


def request_body(png=None):
    uri = ("data:image/png;base64,"
           + base64.b64encode(png or PNG_KINDS[LOAD_KIND]()).decode("ascii"))
    return json.dumps({"image": uri})


WRK_SCRIPT = ROOT / "scripts" / "post.lua"  # POSTs the file $WRK_BODY, counts statuses

# ---------------------------------------------------------------------------
# The request path in this process, stage by stage
# ---------------------------------------------------------------------------


def median_ms(work, calls):
    work()  # warm
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def stage_timings(calls):
    """{PNG kind: {stage: median ms over `calls` calls}} with the current model.

    "decode + ink" is image_ink.read_ink (bytes to ink map); "Pillow decode" is what decoding the
    same bytes with Pillow alone costs, and "Pillow + ink" the ink map from Pillow's image
    (image_ink.ink_map of decoding.open_image), what read_ink must not cost more than;
    "request path"
    is Recognizer.read without the preview and the reply (decode + preprocess + inference, as
    Server-Timing).
    """
    import utils
    from app import preview_data_uri
    from drawing import decoding, image_ink
    from reading import segment
    from reading.recognizer import Recognizer

    recognizer = Recognizer()
    results = {}
    for kind, make_png in PNG_KINDS.items():
        data = make_png()
        ink = image_ink.read_ink(data)
        parts = segment.split_digits(ink)
        digits = np.stack([utils.to_mnist(part) for _, part in parts])
        reading, _ = recognizer.read(data)
        assert reading.number == "7", f"the benchmark's {kind} 7 is read as {reading.number}"

        def request_path():
            found = segment.split_digits(image_ink.read_ink(data))
            recognizer.probabilities(np.stack([utils.to_mnist(part) for _, part in found]))

        results[kind] = {
            "Pillow decode": median_ms(lambda: decoding.open_image(data), calls),
            "Pillow + ink": median_ms(
                lambda: image_ink.ink_map(decoding.open_image(data)), calls),
            "decode + ink": median_ms(lambda: image_ink.read_ink(data), calls),
            "split": median_ms(lambda: segment.split_digits(ink), calls),
            "to_mnist": median_ms(lambda: [utils.to_mnist(part) for _, part in parts], calls),
            "inference": median_ms(lambda: recognizer.probabilities(digits), calls),
            "preview": median_ms(lambda: preview_data_uri(digits[0]), calls),
            "request path": median_ms(request_path, calls),
        }
    return results


def stage_table(results, calls):
    stages = list(next(iter(results.values())))
    lines = [f"In-process, one drawn 7 on a 280x280 PNG, median of {calls} calls (ms); "
             "request path = decode + ink + split + to_mnist + inference:", "",
             "| PNG | " + " | ".join(stages) + " |", "|---" + "|---:" * len(stages) + "|"]
    for kind, timings in results.items():
        lines.append(f"| {kind} | " + " | ".join(
            f"{ms:.3f}{mark(ms <= TARGET_SERVER_MS) if stage == 'request path' else ''}"
            for stage, ms in timings.items()) + " |")
    return "\n".join(lines)

# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


def start_server(workers, log):
    """Start gunicorn; return (process, url, seconds from launch to the first good answer)."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
    url = f"http://127.0.0.1:{port}"
    body = request_body()
    launched = time.perf_counter()
    process = subprocess.Popen(COMMAND, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    while True:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with status {process.returncode}; see {log.name}")
        if time.perf_counter() - launched > 60:
            stop(process)
            sys.exit(f"gunicorn gave no good answer within 60 s; see {log.name}")
        try:
            response = requests.post(url + "/predict", data=body, timeout=5,
                                     headers={"Content-Type": "application/json"})
            if response.status_code == 200:
                return process, url, time.perf_counter() - launched
        except requests.ConnectionError:
            pass
        time.sleep(0.005)


def memory_mb(master):
    """(sum of RSS, sum of PSS) in MB over the master and its workers. PSS splits each shared
    page between the processes sharing it: the workers share what the master loaded before
    forking."""
    usage = [memory_of(pid) for pid in [master, *child_pids(master)]]
    return sum(u["rss"] for u in usage), sum(u["pss"] for u in usage)


def cpu_seconds(master):
    """User + system CPU seconds used so far by the master and its workers (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in [master, *child_pids(master)]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks

# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------


def run_wrk(url, body_file, threads, connections, duration):
    """wrk's numbers: requests/s, p50 and p99 in ms, requests, errors (socket errors and any
    answer that is not 200)."""
    result = subprocess.run(["wrk", "--threads", str(threads), "--connections", str(connections),
                             "--duration", f"{duration}s", "--timeout", "5s", "--latency",
                             "--script", str(WRK_SCRIPT), url + "/predict"],
                            capture_output=True, text=True, check=True,
                            env={**os.environ, "WRK_BODY": str(body_file)})
    report = result.stdout

    def latency_ms(percentile):
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", report,
                                re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    statuses = {}
    for status, count in re.findall(r"^status (\d+) (\d+)$", report, re.M):
        statuses[int(status)] = statuses.get(int(status), 0) + int(count)
    socket_errors = sum(int(n) for n in re.findall(
        r"(?:connect|read|write|timeout) (\d+)", re.search(r"Socket errors:.*", report).group()
    )) if "Socket errors" in report else 0
    not_ok = sum(count for status, count in statuses.items() if status != 200)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1)),
        "p50": latency_ms(50), "p99": latency_ms(99),
        "requests": sum(statuses.values()),
        "errors": socket_errors + not_ok,
        "report": report,
    }


def server_timing(url, count, body):
    """Median and mean over `count` sequential requests of each Server-Timing part, in ms."""
    parts = {}
    with requests.Session() as session:
        for _ in range(count):
            response = session.post(url + "/predict", data=body,
                                    headers={"Content-Type": "application/json"}, timeout=10)
            response.raise_for_status()
            for item in response.headers["Server-Timing"].split(","):
                name, duration = item.strip().split(";dur=")
                parts.setdefault(name, []).append(float(duration))
    parts["total"] = [sum(values) for values in zip(*parts.values())]
    return {name: (statistics.median(values), statistics.fmean(values))
            for name, values in parts.items()}


@contextlib.contextmanager
def slow_clients(url, count):
    """Keep `count` connections open that send headers and a first bit of body, then trickle
    a byte a second; one the server closes (its body deadline) is replaced at once."""
    host, port = url.removeprefix("http://").split(":")
    head = (b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{\"image\": \"")
    stop = threading.Event()
    opened = [0]

    def connect():
        client = socket.create_connection((host, int(port)), timeout=10)
        client.sendall(head)
        opened[0] += 1
        return client

    clients = [connect() for _ in range(count)]

    def keep_open():
        while not stop.wait(1.0):
            readable, _, _ = select.select(clients, [], [], 0)
            for client in readable:  # answered (408) or closed: replace it
                clients[clients.index(client)] = connect()
                client.close()
            for client in clients:
                with contextlib.suppress(OSError):
                    client.send(b"A")

    keeper = threading.Thread(target=keep_open, daemon=True)
    keeper.start()
    try:
        yield opened
    finally:
        stop.set()
        keeper.join()
        for client in clients:
            client.close()


def measure(workers, args, body_file, log_dir):
    with open(log_dir / f"gunicorn-{workers}.log", "wb") as log:
        process, url, launch = start_server(workers, log)
    try:
        run_wrk(url, body_file, args.threads, args.connections, 2)  # warm up every worker
        # CPU per request holds on a busy machine, where requests/s shrink with the share of
        # the cores the server gets (a killed worker's CPU is lost; none is killed here).
        before = cpu_seconds(process.pid)
        load = run_wrk(url, body_file, args.threads, args.connections, args.duration)
        load["cpu_ms"] = 1000 * (cpu_seconds(process.pid) - before) / max(load["requests"], 1)
        rss, pss = memory_mb(process.pid)
        timing = {kind: server_timing(url, args.sequential, request_body(make_png()))
                  for kind, make_png in PNG_KINDS.items()}
        slow = []
        for count in args.slow:
            with slow_clients(url, count) as opened:
                before = cpu_seconds(process.pid)
                run = run_wrk(url, body_file, args.threads, args.connections, args.duration)
                run["cpu_ms"] = 1000 * (cpu_seconds(process.pid) - before) / max(run["requests"], 1)
                run["rss"], run["pss"] = memory_mb(process.pid)
            slow.append((count, {**run, "opened": opened[0]}))
    finally:
        stop(process)
    return {"workers": workers, "launch": launch, "rss": rss, "pss": pss, "timing": timing,
            "slow": slow, **load}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def mark(ok):
    return "" if ok else " ✗"


def table(results, args):
    lines = [
        f"wrk: {args.connections} connections, {args.threads} threads, {args.duration} s, "
        f"POST /predict ({args.load_kind} PNG as a JSON data URI); {os.cpu_count()} CPUs, load "
        f"average {args.load_before:.1f} before, {os.getloadavg()[0]:.1f} after.",
        "",
        "| workers | slow clients | requests/s | p50 ms | p99 ms | errors "
        "| server CPU ms per request | launch → first answer s | RSS MB (sum) | PSS MB (sum) |",
        "|---:" * 10 + "|",
    ]
    for r in results:
        for slow, run in [(0, r)] + r["slow"]:
            p99_target = TARGET_SLOW_P99_MS if slow else TARGET_P99_MS
            cells = [
                str(r["workers"]),
                f"{slow} ({run['opened']} opened)" if slow else "0",
                f"{run['rps']:,.0f}{mark(run['rps'] >= TARGET_RPS)}",
                f"{run['p50']:.1f}",
                f"{run['p99']:.1f}{mark(run['p99'] <= p99_target)}",
                f"{run['errors']} of {run['requests']:,}{mark(run['errors'] == 0)}",
                f"{run['cpu_ms']:.2f}",
                f"{r['launch']:.2f}{mark(r['launch'] <= TARGET_LAUNCH_S)}" if not slow else "",
                f"{run['rss']:.0f}",
                f"{run['pss']:.0f}{mark(run['pss'] <= TARGET_MEMORY_MB)}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"| target | | ≥ {TARGET_RPS:,} | | ≤ {TARGET_P99_MS} (≤ {TARGET_SLOW_P99_MS:,} with "
                 f"slow clients) | 0 | | ≤ {TARGET_LAUNCH_S:g} "
                 f"| | ≤ {TARGET_MEMORY_MB} |")
    lines += ["", f"Server time from Server-Timing, median (mean) of {args.sequential} sequential "
              "requests, ms:", ""]
    parts = [name for name in next(iter(results[0]["timing"].values())) if name != "total"]
    lines += ["| workers | PNG | " + " | ".join(parts) + " | server total |",
              "|---:|---" + "|---:" * (len(parts) + 1) + "|"]
    for r in results:
        for kind, timing in r["timing"].items():
            total_median, total_mean = timing["total"]
            lines.append(f"| {r['workers']} | {kind} | " + " | ".join(
                f"{timing[part][0]:.2f} ({timing[part][1]:.2f})" for part in parts)
                + f" | {total_median:.2f} ({total_mean:.2f}){mark(total_median <= TARGET_SERVER_MS)} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2],
                        help="WEB_CONCURRENCY values to try (default: 2, the shipped default)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--sequential", type=int, default=500,
                        help="sequential requests for the Server-Timing split, and calls per "
                             "stage in-process (default 500)")
    parser.add_argument("--slow", type=int, nargs="+", default=[64, 500],
                        help="slow clients held open during a load each (default 64, then 500)")
    parser.add_argument("--load-kind", choices=list(PNG_KINDS), default=LOAD_KIND,
                        help=f"the PNG the load sends (default: {LOAD_KIND})")
    parser.add_argument("--show-wrk", action="store_true", help="print wrk's own reports too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")

    args.load_before = os.getloadavg()[0]  # other work on the machine skews every number
    print("in-process stages ...", file=sys.stderr, flush=True)
    print(stage_table(stage_timings(args.sequential), args.sequential) + "\n", flush=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    body_file = log_dir / "body.json"
    body_file.write_text(request_body(PNG_KINDS[args.load_kind]()))
    results = []
    for workers in args.workers:
        print(f"WEB_CONCURRENCY={workers} ...", file=sys.stderr, flush=True)
        results.append(measure(workers, args, body_file, log_dir))
        if args.show_wrk:
            print(results[-1]["report"], file=sys.stderr)
    print(table(results, args))
    print(f"\n(server logs in {log_dir}; ✗ marks a missed target)")


if __name__ == "__main__":
    main()
