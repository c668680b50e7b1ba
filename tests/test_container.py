"""The Docker image, built from the real Dockerfile and run with its own start command.

Uses Docker where an engine answers (`docker info`). Otherwise buildah (chroot isolation, host
network) with, unless the real base image is already in buildah's store, a stand-in for the
Dockerfile's `FROM`: Debian with the same Python minor version, made by debootstrap on the first
run and kept in buildah's store (outside the repo) for the next. In CI a missing tool fails the
run; elsewhere it skips with the reason.

Nothing the server fixture starts may outlive it. Under buildah the server runs in a session of
its own (`buildah run` leads it; chroot isolation shares the host's PID space); the teardown
sends SIGTERM to its process group, SIGKILL to what is left after a few seconds, and then looks
in /proc for any process of that session or of the container's mount namespace (each `buildah
run` makes its own, and a process that leaves the session stays in it). Under Docker the
container must be gone after `docker stop`. Whatever is left is killed, and the teardown fails
(an error at the last test) naming each one: pid, uid and command line.

    nice .venv/bin/python -m pytest tests/test_container.py -v -s
"""

import base64
import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
from PIL import Image, ImageOps

from support import MODEL_PATH, READER_PATH, ROOT, unavailable
from support.served_files import served_modules

IMAGE = "localhost/digit-recognizer:test"
MAX_ADDED_MB = 200
MB = 1_000_000  # as `docker images` counts
# The Debian suite whose python3 is a given Python minor version, for the stand-in base.
DEBIAN_SUITE_FOR_PYTHON = {"3.11": "bookworm", "3.13": "trixie"}
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Digits of the MNIST test set any working model reads (a 7, a 2, a 1 and a 0).
DIGIT_INDICES = [0, 1, 2, 3]
# Seconds the server has between SIGTERM and SIGKILL at the end: idle, it needs milliseconds.
STOP_GRACE_SECONDS = 3

# Run inside the image: "uid command line" of each gunicorn process in sight, except itself.
LIST_GUNICORN_PROCESSES = """
import os
for pid in os.listdir("/proc"):
    if not pid.isdigit() or int(pid) == os.getpid():
        continue
    try:
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
        status = open(f"/proc/{pid}/status").read()
    except OSError:
        continue
    if "gunicorn" in command:
        print(status.split("Uid:")[1].split()[0], command.strip())
"""
# Run inside the image: the six largest entries of site-packages, in MB.
LARGEST_IN_SITE_PACKAGES = """
import os, sys
site = next(path for path in sys.path if path.endswith("site-packages"))
sizes = {}
for top, _, files in os.walk(site):
    name = os.path.relpath(top, site).split(os.sep)[0]
    sizes[name] = sizes.get(name, 0) + sum(os.lstat(os.path.join(top, f)).st_size for f in files)
for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:6]:
    print(f"{name} {size / 1e6:.0f} MB")
"""


def sh(*argv, timeout=120):
    """Run a command and return its stdout; a failure says which command and what it printed."""
    argv = [str(arg) for arg in argv]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{shlex.join(argv)}` did not finish in {timeout} s.", pytrace=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        pytest.fail(f"`{shlex.join(argv)}` failed with exit status {result.returncode}:\n{output}",
                    pytrace=False)
    return result.stdout.strip()


def say(request, text):
    """Print past pytest's output capture, so `make test` shows the measurements too."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(text)
        return
    with capture.global_and_fixture_disabled():  # fd-level capture would swallow it otherwise
        reporter.write_line(text)


def dockerfile_base():
    """The default of the Dockerfile's `ARG PYTHON_IMAGE`, e.g. `python:3.11-slim`."""
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "The Dockerfile has no `ARG PYTHON_IMAGE=<image>` line naming its base image."
    return match.group(1)


def python_version_of(image_reference):
    """`python:3.11-slim` -> `3.11`."""
    match = re.search(r"python:(\d+\.\d+)", image_reference)
    assert match, f"Cannot tell the Python version of the base image {image_reference!r}."
    return match.group(1)


def fully_qualified(reference):
    """Name an image the way an image store does: `python:3.11-slim` is on Docker Hub."""
    first, _, rest = reference.partition("/")
    if not rest:
        return f"docker.io/library/{reference}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{reference}"
    return reference


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class HostProcess(NamedTuple):
    pid: int
    session: int
    uid: str
    mount_namespace: str  # as /proc/PID/ns/mnt links it: "mnt:[4026532175]"
    command: str


def host_processes():
    """Every live process on the host, read from /proc; zombies, already dead, are left out."""
    processes = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, _, _, session = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:4]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            uid = re.search(r"^Uid:\s+(\d+)", (entry / "status").read_text(), re.M).group(1)
            namespace = os.readlink(entry / "ns" / "mnt")
        except OSError:
            continue  # gone since listed
        if state not in ("Z", "X"):
            processes.append(HostProcess(int(entry.name), int(session), uid, namespace,
                                         command.strip()))
    return processes


def drawn_digit(mnist_test, index):
    """MNIST test digit `index` as a 280x280 black-on-white PNG data URI, and its label."""
    images, labels = mnist_test
    picture = ImageOps.invert(Image.fromarray(images[index]).resize((280, 280), Image.BICUBIC))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return uri, int(labels[index])


class Docker:
    """A Docker engine: `docker build`, then `docker run -p PORT:PORT -e PORT`."""

    name = "docker"

    def __init__(self):
        self.container = f"digit-recognizer-test-{os.getpid()}"
        self.process = None

    def build(self, request, log):
        with open(log, "w") as output:
            result = subprocess.run(["docker", "build", "-t", IMAGE, str(ROOT)],
                                    stdout=output, stderr=subprocess.STDOUT, timeout=1800)
        assert result.returncode == 0, f"`docker build` failed:\n{Path(log).read_text()[-3000:]}"
        return dockerfile_base(), "official"

    def config(self, reference):
        return json.loads(sh("docker", "image", "inspect", reference))[0]["Config"]

    def size(self, reference):
        return int(sh("docker", "image", "inspect", "--format", "{{.Size}}", reference))

    def start(self, port, log):
        self.process = subprocess.Popen(
            ["docker", "run", "--rm", "--name", self.container, "--env", f"PORT={port}",
             "--publish", f"{port}:{port}", IMAGE], stdout=log, stderr=subprocess.STDOUT)
        return self.process

    def exec(self, argv):
        return subprocess.run(["docker", "exec", self.container, *argv],
                              capture_output=True, text=True, timeout=60)

    def server_processes(self):
        """(uid, command line) of each gunicorn process; the container has its own PID space."""
        result = self.exec(["python", "-c", LIST_GUNICORN_PROCESSES])
        return [tuple(line.split(" ", 1)) for line in result.stdout.splitlines()]

    def stop(self):
        """`docker stop`; returns what outlived it (the container, our `docker run`), killed now."""
        subprocess.run(["docker", "stop", "--time", "10", self.container], capture_output=True)
        left = []
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                left.append(f"pid {self.process.pid}: {shlex.join(self.process.args)}")
                self.process.kill()
                self.process.wait()
        listed = subprocess.run(["docker", "ps", "--all", "--quiet", "--filter",
                                 f"name=^/{self.container}$"], capture_output=True, text=True)
        if listed.stdout.strip():
            left.append(f"container {self.container} (`docker ps --all`)")
            subprocess.run(["docker", "rm", "--force", self.container], capture_output=True)
        return left


class Buildah:
    """buildah with chroot isolation: the container shares the host's network and PID space."""

    name = "buildah"

    def __init__(self):
        self.container = None
        self.process = None
        self.env = []
        # The container's mount namespaces, each held open so that the kernel cannot give its
        # number to another `buildah run` (another test run's) while we look for ours.
        self.namespaces = {}

    def exists(self, reference):
        return subprocess.run(["buildah", "inspect", "--type", "image", reference],
                              capture_output=True).returncode == 0

    def base_image(self, request):
        """The Dockerfile's base if buildah has it, else the Debian stand-in (built if absent)."""
        official = fully_qualified(dockerfile_base())
        if self.exists(official):
            return official, "official"
        version = python_version_of(official)
        standin = f"localhost/python-standin:{version}"
        if not self.exists(standin):
            started = time.monotonic()
            self.build_standin(standin, version)
            say(request, f"\nBuilt the stand-in base {standin} in "
                         f"{time.monotonic() - started:.0f} s.")
        return standin, f"stand-in for {official}: Debian {DEBIAN_SUITE_FOR_PYTHON[version]}"

    def build_standin(self, tag, version):
        """Debian's minimal base with python3 (= `version`), venv and pip, committed as `tag`."""
        suite = DEBIAN_SUITE_FOR_PYTHON.get(version)
        if suite is None:
            pytest.fail(f"No Debian suite with Python {version} is known for the stand-in base "
                        "image; add one to DEBIAN_SUITE_FOR_PYTHON, or pull the real base into "
                        "buildah's store.", pytrace=False)
        container = sh("buildah", "from", "scratch")
        try:
            root = Path(sh("buildah", "mount", container))
            sh("debootstrap", "--variant=minbase",
               "--include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates",
               suite, root, DEBIAN_MIRROR, timeout=1200)
            if not (root / f"usr/bin/python{version}").exists():
                pytest.fail(f"Debian {suite} did not bring Python {version}; fix "
                            "DEBIAN_SUITE_FOR_PYTHON.", pytrace=False)
            # As in the official image, whose Python is not Debian's: pip may install anywhere.
            for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
                marker.unlink()
            for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for entry in (root / cache).glob("*"):
                    if entry.is_file():
                        entry.unlink()
            sh("buildah", "umount", container)
            sh("buildah", "config", "--env", "LANG=C.UTF-8", "--env",
               "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "--cmd", "python3", container)
            sh("buildah", "commit", "--quiet", container, tag, timeout=600)
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True)

    def build(self, request, log):
        base, kind = self.base_image(request)
        command = ["buildah", "bud", "--isolation", "chroot", "--format", "docker", "--layers",
                   "--pull=never", "--build-arg", f"PYTHON_IMAGE={base}", "--tag", IMAGE]
        if HOST_CA_BUNDLE.exists():
            # Where HTTPS goes through an inspecting proxy, its CA is only in the host's bundle;
            # pip gets both the bundle and a setting that makes it use it.
            pip_conf = Path(log).with_name("pip.conf")
            pip_conf.write_text(f"[global]\ncert = {HOST_CA_BUNDLE}\n")
            command += ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
                        "--volume", f"{pip_conf}:/etc/pip.conf:ro"]
        with open(log, "w") as output:
            result = subprocess.run([*command, str(ROOT)], stdout=output,
                                    stderr=subprocess.STDOUT, timeout=1800)
        assert result.returncode == 0, f"`buildah bud` failed:\n{Path(log).read_text()[-3000:]}"
        return base, kind

    def inspect(self, reference):
        return json.loads(sh("buildah", "inspect", "--type", "image", reference))

    def config(self, reference):
        return self.inspect(reference)["Docker"]["config"]

    def size(self, reference):
        """Bytes of the image's layers, unpacked: what `docker images` reports."""
        manifest = json.loads(self.inspect(reference)["Manifest"])
        return sum(layer["size"] for layer in manifest["layers"])

    def start(self, port, log):
        config = self.config(IMAGE)
        command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
        self.container = sh("buildah", "from", "--pull-never", IMAGE)
        self.env = ["--env", f"PORT={port}"]
        # Its own session and process group: buildah, its chroot runtime, gunicorn's master and
        # workers all stay in it, so a signal to the group reaches each of them.
        self.process = subprocess.Popen(
            ["buildah", "run", "--isolation", "chroot", *self.env, self.container, "--", *command],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self.process

    def exec(self, argv):
        return subprocess.run(["buildah", "run", "--isolation", "chroot", *self.env,
                               self.container, "--", *argv],
                              capture_output=True, text=True, timeout=60)

    def started_processes(self):
        """The live processes of our `buildah run`: those of the session it leads, and those of
        its container's mount namespace, which a process that leaves the session stays in."""
        processes = host_processes()
        own_namespace = os.readlink("/proc/self/ns/mnt")
        for process in processes:
            if (process.session == self.process.pid and process.mount_namespace != own_namespace
                    and process.mount_namespace not in self.namespaces):
                with contextlib.suppress(OSError):  # gone since listed
                    self.namespaces[process.mount_namespace] = os.open(
                        f"/proc/{process.pid}/ns/mnt", os.O_RDONLY)
        return [process for process in processes if process.session == self.process.pid
                or process.mount_namespace in self.namespaces]

    def server_processes(self):
        """(uid, command line) of each gunicorn process started by our `buildah run`."""
        return [(process.uid, process.command) for process in self.started_processes()
                if "gunicorn" in process.command and not process.command.startswith("buildah")]

    def signal_group(self, signum, seconds):
        """Send `signum` to our `buildah run`'s process group; wait until its session is empty."""
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(self.process.pid, signum)
        deadline = time.monotonic() + seconds
        while any(process.session == self.process.pid for process in self.started_processes()):
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def stop(self):
        """SIGTERM to the group, then SIGKILL; returns what outlived that (killed now), each as
        "pid PID, uid UID: COMMAND"."""
        left = []
        if self.process is not None:
            self.started_processes()  # notes the container's namespaces while they have members
            # On SIGTERM buildah's chroot runtime kills gunicorn's master at once, so the master
            # never SIGKILLs its workers after its graceful timeout, and a worker told to exit
            # hangs in onnxruntime until killed: without the group's SIGKILL they would stay.
            self.signal_group(signal.SIGTERM, STOP_GRACE_SECONDS)
            self.signal_group(signal.SIGKILL, 10)
            self.process.wait(timeout=10)
            survivors = self.started_processes()
            left = [f"pid {process.pid}, uid {process.uid}: {process.command}"
                    for process in survivors]
            for process in survivors:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
            for descriptor in self.namespaces.values():
                os.close(descriptor)
            self.namespaces = {}
        if self.container is not None:
            subprocess.run(["buildah", "rm", self.container], capture_output=True)
        return left


def pick_engine():
    if shutil.which("docker"):
        answer = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
        if answer.returncode == 0:
            return Docker()
        docker_says = "`docker info` finds no running Docker engine"
    else:
        docker_says = "there is no `docker` command"
    missing = [tool for tool in ("buildah", "debootstrap") if not shutil.which(tool)]
    if missing:
        unavailable(f"{docker_says}, and {' and '.join(missing)} (the fallback) "
                    f"{'is' if len(missing) == 1 else 'are'} not installed "
                    "(on Debian: `make system-packages` as root).")
    if os.geteuid() != 0:
        unavailable(f"{docker_says}, and buildah's fallback here (chroot isolation, "
                    "debootstrap) needs root.")
    return Buildah()


@pytest.fixture(scope="module")
def engine():
    return pick_engine()


@pytest.fixture(scope="module")
def image(request, engine, tmp_path_factory):
    """Build IMAGE from the working tree; returns (base image, what the base is)."""
    if not MODEL_PATH.exists():
        unavailable(f"{MODEL_PATH.relative_to(ROOT)} is missing, and the image ships it: "
                    "run `make train` first.")
    log = tmp_path_factory.mktemp("build") / "build.log"
    started = time.monotonic()
    base, kind = engine.build(request, log)
    say(request, f"\nBuilt {IMAGE} with {engine.name} in {time.monotonic() - started:.0f} s "
                 f"on {base} ({kind}).")
    return base, kind


@pytest.fixture(scope="module")
def server(engine, image, mnist_test, tmp_path_factory):
    """The image's own start command running with PORT set.

    Yields (base URL, launch): `launch` holds the first answer to a drawn digit posted to
    /predict as soon as the server listens, and the seconds from the start command to it.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    uri, label = drawn_digit(mnist_test, DIGIT_INDICES[0])
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "w") as log:
        started = time.monotonic()
        process = engine.start(port, log)
        try:
            deadline = started + 60
            while True:
                try:
                    answer = requests.post(f"{url}/predict", json={"image": uri}, timeout=5)
                    break
                except requests.ConnectionError:
                    pass  # not listening yet
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("The image's start command did not answer /predict within 60 s "
                                f"(exit status {process.poll()}). Its output:\n"
                                f"{log_path.read_text()[-3000:]}", pytrace=False)
                time.sleep(0.02)
            launch = {"seconds": time.monotonic() - started, "answer": answer, "label": label}
            yield url, launch
        finally:
            left = engine.stop()
            if left:
                pytest.fail(f"The server outlived its stop ({engine.name}); killed now:\n"
                            + "\n".join(left), pytrace=False)


def test_first_predict_after_launch_is_correct(request, engine, server):
    _, launch = server
    answer, label = launch["answer"], launch["label"]
    assert answer.status_code == 200, (
        f"The first /predict after launch answered {answer.status_code}: {answer.text[:300]}")
    assert answer.json()["digit"] == label, (
        f"The first /predict after launch read a drawn {label} as {answer.json()['digit']}.")
    say(request, f"\nLaunch to first correct /predict: {launch['seconds']:.2f} s "
                 f"({engine.name} start included).")


def test_healthz_answers_ok(server):
    url, _ = server
    answer = requests.get(f"{url}/healthz", timeout=5)
    assert answer.status_code == 200, f"/healthz answered {answer.status_code}: {answer.text}"
    assert answer.json() == {"status": "ok"}


@pytest.mark.parametrize("index", DIGIT_INDICES)
def test_predict_reads_a_drawn_digit(server, mnist_test, index):
    url, _ = server
    uri, label = drawn_digit(mnist_test, index)
    answer = requests.post(f"{url}/predict", json={"image": uri}, timeout=5)
    assert answer.status_code == 200, f"/predict answered {answer.status_code}: {answer.text}"
    assert answer.json()["digit"] == label, (
        f"The container read a drawn {label} as {answer.json()['digit']}.")


def test_tensorflow_cannot_be_imported_in_the_image(engine, server):
    result = engine.exec(["python", "-c", "import onnxruntime; import tensorflow"])
    assert "No module named 'tensorflow'" in result.stderr, (
        "TensorFlow is in the serving image (or its Python is broken): "
        f"exit status {result.returncode}, {result.stderr.strip()[-500:]}")


def test_server_does_not_run_as_root(engine, image, server):
    user = engine.config(IMAGE).get("User", "")
    assert user.split(":")[0] not in ("", "root", "0"), "The image does not set a non-root USER."
    processes = engine.server_processes()
    assert processes, "Found no gunicorn process to check the user of."
    as_root = [command for uid, command in processes if uid == "0"]
    assert not as_root, f"gunicorn runs as root in the container: {as_root}"


def test_healthcheck_of_the_image_passes(engine, server):
    healthcheck = (engine.config(IMAGE).get("Healthcheck") or {}).get("Test") or []
    assert healthcheck[:1] in (["CMD"], ["CMD-SHELL"]), "The image has no HEALTHCHECK."
    if healthcheck[0] == "CMD-SHELL":
        argv = ["/bin/sh", "-c", healthcheck[1]]
    else:
        argv = healthcheck[1:]
    result = engine.exec(argv)
    assert result.returncode == 0, (
        f"The HEALTHCHECK fails against a healthy server: {result.stderr.strip()[-500:]}")
    assert "healthz" in " ".join(healthcheck), "The HEALTHCHECK does not ask /healthz."


def test_image_ships_only_what_serving_reads(engine, server):
    listing = engine.exec(["python", "-c", "import os\nfor top, _, files in os.walk('.'):\n"
                                           "    for name in files: print(os.path.join(top, name))"])
    # instance/ is where the server writes its corrections (SQLite), not something shipped.
    shipped = {os.path.normpath(line) for line in listing.stdout.split()
               if not os.path.normpath(line).startswith("instance" + os.sep)}
    wanted = served_modules()
    wanted |= {str(MODEL_PATH.relative_to(ROOT)), str(READER_PATH.relative_to(ROOT))}
    for folder in ("templates", "static"):
        wanted |= {str(path.relative_to(ROOT)) for path in (ROOT / folder).rglob("*")
                   if path.is_file() and "__pycache__" not in path.parts}
    assert not shipped - wanted, f"The image carries files serving does not need: " \
                                 f"{sorted(shipped - wanted)}"
    assert not wanted - shipped, f"The image lacks files the app needs: {sorted(wanted - shipped)}"


def test_a_correction_is_kept_in_the_images_instance_folder(engine, server, mnist_test):
    url, _ = server
    uri, label = drawn_digit(mnist_test, DIGIT_INDICES[1])
    answer = requests.post(f"{url}/corrections", timeout=10, json={
        "image": uri, "label": str(label), "answer": str((label + 1) % 10), "mode": "digit"})
    assert answer.status_code == 201, f"/corrections answered {answer.status_code}: {answer.text}"
    stored = engine.exec(["python", "-c", "import sqlite3; print(sqlite3.connect("
                                          "'instance/corrections.sqlite3').execute("
                                          "'SELECT label FROM corrections').fetchall())"])
    assert stored.stdout.strip() == f"[('{label}',)]", (
        f"The correction is not in the image's SQLite file: {stored.stdout}{stored.stderr}")


def test_image_adds_at_most_200_mb_to_its_base(request, engine, image, server):
    base, kind = image
    image_bytes, base_bytes = engine.size(IMAGE), engine.size(base)
    largest = engine.exec(["python", "-c", LARGEST_IN_SITE_PACKAGES]).stdout
    added = image_bytes - base_bytes
    say(request, f"\nImage {image_bytes / MB:.0f} MB; base {base_bytes / MB:.0f} MB ({kind}); "
                 f"added by the Dockerfile {added / MB:.0f} MB. Largest in site-packages: "
                 + ", ".join(largest.splitlines()) + ".")
    assert added <= MAX_ADDED_MB * MB, (
        f"The Dockerfile adds {added / MB:.0f} MB to its base, over the {MAX_ADDED_MB} MB budget."
        f" Largest in site-packages: {', '.join(largest.splitlines())}.")
