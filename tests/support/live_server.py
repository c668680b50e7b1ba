"""The production command (gunicorn, gunicorn.conf.py, `app:create_app()`) as a subprocess.

For the tests that need a real server: bodies too large for the test client to fake, memory read
from /proc, the headers gunicorn itself adds, many connections at once.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from . import ROOT

COMMAND = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "app:create_app()"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_of(pid):
    """Resident memory of one process in MB: rss and its peak hwm (/proc status), pss (shared
    pages split between the processes that share them)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    pss = None
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    return {"rss": fields["VmRSS"], "hwm": fields["VmHWM"], "pss": pss}


def child_pids(pid):
    """The PIDs of a process's children: gunicorn's workers, for its master."""
    return sorted(int(child) for child in
                  Path(f"/proc/{pid}/task/{pid}/children").read_text().split())


def stop(process):
    """SIGTERM, as a platform stops a dyno or container; SIGKILL if it is not gone in 15 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class LiveServer:
    def __init__(self, process, url, log_path):
        self.process = process
        self.url = url
        self.log_path = log_path

    @property
    def worker_pids(self):
        return child_pids(self.process.pid)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def reset_peak_memory(self):
        """Make each worker's VmHWM start again from its current RSS (Linux >= 4.0)."""
        for pid in self.worker_pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_growth(self):
        """MB each worker's peak rose above its current RSS since reset_peak_memory()."""
        return {pid: memory_of(pid)["hwm"] - memory_of(pid)["rss"] for pid in self.worker_pids}


@contextlib.contextmanager
def gunicorn(model_path, log_path, workers=2, environment=None, timeout=60):
    """Start the production command on a free port, yield a LiveServer once every worker is up.

    The corrections go to an SQLite file beside the log unless `environment` names a
    DATABASE_URL."""
    port = free_port()
    database = Path(log_path).with_name("corrections.sqlite3")
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": str(workers),
           "MODEL_PATH": str(model_path), "DATABASE_URL": f"sqlite:///{database}",
           **(environment or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(COMMAND, cwd=ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = LiveServer(process, f"http://127.0.0.1:{port}", Path(log_path))
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {process.returncode}:\n"
                                   + server.log()[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n"
                                   + server.log()[-3000:])
            with contextlib.suppress(requests.ConnectionError, OSError):
                if (len(server.worker_pids) == workers
                        and requests.get(server.url + "/healthz", timeout=5).ok):
                    break
            time.sleep(0.05)
        yield server
    finally:
        stop(process)
