"""Benchmark the production server and print a Markdown table.

For each worker count: start the production command (gunicorn, gunicorn.conf.py, the app
factory) and time it to the first good answer, load it with wrk (POSTs of a 280x280 canvas PNG,
as the page sends them), count errors, read the memory of every server process from /proc, and
split the server's own time per request from its Server-Timing header.

    make bench
    .venv/bin/python scripts/bench.py --workers 2 --duration 30
"""

import argparse
import base64
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from live_server import COMMAND, child_pids, free_port, memory_of, stop  # noqa: E402

# ---------------------------------------------------------------------------
# Targets (from the issue)
# ---------------------------------------------------------------------------

TARGET_RPS = 1400
TARGET_P99_MS = 25
TARGET_SERVER_MS = 1.0
TARGET_LAUNCH_S = 1.0
TARGET_MEMORY_MB = 150

# ---------------------------------------------------------------------------
# The request: a canvas like the page's, posted as the page posts it
# ---------------------------------------------------------------------------


def canvas_png():
    """A 280x280 transparent canvas with a 7 in an 18 px black pen, as canvas.toDataURL() gives."""
    canvas = Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    pen = ImageDraw.Draw(canvas)
    pen.line([(80, 60), (200, 60), (120, 230)], fill=(0, 0, 0, 255), width=18, joint="curve")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def request_body():
    uri = "data:image/png;base64," + base64.b64encode(canvas_png()).decode("ascii")
    return json.dumps({"image": uri})


WRK_SCRIPT = ROOT / "scripts" / "post.lua"  # POSTs the file $WRK_BODY, counts statuses

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


def server_timing(url, count):
    """Median and mean over `count` sequential requests of each Server-Timing part, in ms."""
    body = request_body()
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


def measure(workers, args, body_file, log_dir):
    with open(log_dir / f"gunicorn-{workers}.log", "wb") as log:
        process, url, launch = start_server(workers, log)
    try:
        run_wrk(url, body_file, args.threads, args.connections, 2)  # warm up every worker
        load = run_wrk(url, body_file, args.threads, args.connections, args.duration)
        rss, pss = memory_mb(process.pid)
        timing = server_timing(url, args.sequential)
    finally:
        stop(process)
    return {"workers": workers, "launch": launch, "rss": rss, "pss": pss, "timing": timing,
            **load}

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def mark(ok):
    return "" if ok else " ✗"


def table(results, args):
    parts = [name for name in results[0]["timing"] if name != "total"]
    lines = [
        f"wrk: {args.connections} connections, {args.threads} threads, {args.duration} s, "
        f"POST /predict (280x280 canvas PNG as a JSON data URI); {os.cpu_count()} CPUs, load "
        f"average {args.load_before:.1f} before, {os.getloadavg()[0]:.1f} after; server time: "
        f"median (mean) of {args.sequential} sequential requests.",
        "",
        "| workers | requests/s | p50 ms | p99 ms | errors | launch → first answer s "
        "| RSS MB (sum) | PSS MB (sum) | " + " | ".join(f"{part} ms" for part in parts)
        + " | server total ms |",
        "|---:" * (9 + len(parts)) + "|",
    ]
    for r in results:
        total_median, total_mean = r["timing"]["total"]
        cells = [
            str(r["workers"]),
            f"{r['rps']:,.0f}{mark(r['rps'] >= TARGET_RPS)}",
            f"{r['p50']:.1f}",
            f"{r['p99']:.1f}{mark(r['p99'] <= TARGET_P99_MS)}",
            f"{r['errors']} of {r['requests']:,}{mark(r['errors'] == 0)}",
            f"{r['launch']:.2f}{mark(r['launch'] <= TARGET_LAUNCH_S)}",
            f"{r['rss']:.0f}{mark(r['rss'] <= TARGET_MEMORY_MB)}",
            f"{r['pss']:.0f}{mark(r['pss'] <= TARGET_MEMORY_MB)}",
            *(f"{r['timing'][part][0]:.2f} ({r['timing'][part][1]:.2f})" for part in parts),
            f"{total_median:.2f} ({total_mean:.2f}){mark(total_median <= TARGET_SERVER_MS)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"| target | ≥ {TARGET_RPS:,} | | ≤ {TARGET_P99_MS} | 0 | ≤ {TARGET_LAUNCH_S:g} "
                 f"| ≤ {TARGET_MEMORY_MB} | ≤ {TARGET_MEMORY_MB} |" + " |" * len(parts)
                 + f" ≤ {TARGET_SERVER_MS:g} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 3, 4],
                        help="WEB_CONCURRENCY values to try (default: 2 3 4)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (default 10)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--sequential", type=int, default=500,
                        help="sequential requests for the Server-Timing split (default 500)")
    parser.add_argument("--show-wrk", action="store_true", help="print wrk's own reports too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")

    args.load_before = os.getloadavg()[0]  # other work on the machine skews every number
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    body_file = log_dir / "body.json"
    body_file.write_text(request_body())
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
