"""The deploy files agree: every way of starting the server (Procfile, the Docker image,
`make run`) runs the same app with the same gunicorn config, and Heroku's buildpack gets the
Python version the Docker image has."""

import json
import re
import runpy
import shlex
from pathlib import Path

import pytest
from gunicorn.config import Config

from support import MODEL_PATH, ROOT, unavailable
from support.served_files import served_modules

APP = "app:create_app()"
CONFIG = "gunicorn.conf.py"


def procfile_web():
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines()
             if line.startswith("web:")]
    assert len(lines) == 1, "The Procfile needs exactly one `web:` line."
    return shlex.split(lines[0].removeprefix("web:"))


def dockerfile_cmd():
    commands = re.findall(r"^CMD (.+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert commands, "The Dockerfile has no CMD."
    # Exec form, so gunicorn is PID 1 and gets `docker stop`'s SIGTERM itself.
    return json.loads(commands[-1])


def makefile_run():
    recipe = re.search(r"^run:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "The Makefile has no `run:` target with a recipe."
    words = shlex.split(recipe.group(1))
    while "=" in words[0]:  # leading VAR=value assignments
        words.pop(0)
    return words


START_COMMANDS = {"Procfile web": procfile_web, "Dockerfile CMD": dockerfile_cmd,
                  "make run": makefile_run}


def gunicorn_invocation(argv):
    """(config file, app target) of a gunicorn command line."""
    config, positional, words = None, [], iter(argv[1:])
    for word in words:
        if word in ("-c", "--config"):
            config = next(words)
        elif word.startswith("--config="):
            config = word.split("=", 1)[1]
        elif word.startswith("-"):
            pytest.fail(f"Start commands should leave settings to {CONFIG}; found {word!r} in "
                        f"`{shlex.join(argv)}`.", pytrace=False)
        else:
            positional.append(word)
    return config, positional


def read_simple_yaml(path):
    """Nested mappings of `key:` / `key: value` lines, which is all heroku.yml needs."""
    document, stack = {}, [(-1, None)]
    stack[0] = (-1, document)
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key] = value.strip()
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return document


def load_gunicorn_config(monkeypatch, environment):
    for name in ("PORT", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = runpy.run_path(str(ROOT / CONFIG))
    return {name: value for name, value in settings.items()
            if not name.startswith("_") and not isinstance(value, type(re))}


@pytest.mark.parametrize("where", START_COMMANDS)
def test_every_start_command_serves_the_app_factory_with_the_shared_config(where):
    argv = START_COMMANDS[where]()
    assert Path(argv[0]).name == "gunicorn", f"{where} does not start gunicorn: {argv}"
    config, app = gunicorn_invocation(argv)
    assert config == CONFIG, f"{where} does not use {CONFIG} (it uses {config})."
    assert app == [APP], f"{where} serves {app}, not {APP}."


def test_app_target_builds_the_flask_app(monkeypatch):
    from flask import Flask
    from gunicorn.util import import_app

    if not MODEL_PATH.exists():
        unavailable(f"{MODEL_PATH} is missing: run `make train` first.")
    monkeypatch.setenv("MODEL_PATH", str(MODEL_PATH))
    assert isinstance(import_app(APP), Flask), f"`{APP}` does not give a Flask app."


def test_heroku_container_stack_builds_the_dockerfile_and_runs_its_cmd():
    manifest = read_simple_yaml(ROOT / "heroku.yml")
    assert manifest.get("build", {}).get("docker", {}).get("web") == "Dockerfile", (
        "heroku.yml must build the web process from the Dockerfile "
        "(build: docker: web: Dockerfile).")
    assert "run" not in manifest, (
        "heroku.yml overrides the image's CMD with `run:`; the CMD is what the container test "
        "checks, so leave it to the Dockerfile.")


def test_runtime_txt_names_the_python_of_the_docker_base():
    runtime = (ROOT / "runtime.txt").read_text().strip()
    heroku_form = re.fullmatch(r"python-(\d+\.\d+)(\.\d+)?", runtime)
    assert heroku_form, f"runtime.txt says {runtime!r}; Heroku wants `python-3.11` or " \
                        "`python-3.11.9`."
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)", (ROOT / "Dockerfile").read_text(),
                     re.M)
    assert base, "The Dockerfile's base is not `ARG PYTHON_IMAGE=python:<version>...`."
    assert heroku_form.group(1) == base.group(1), (
        f"The buildpack would run Python {heroku_form.group(1)} (runtime.txt) but the Docker "
        f"image runs {base.group(1)}: the two Heroku paths would differ.")


def test_python_version_file_and_runtime_txt_name_the_same_python():
    # Heroku's buildpack reads .python-version (major version only) and treats runtime.txt as
    # deprecated; both stay, so they must agree.
    version_file = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+", version_file), (
        f".python-version says {version_file!r}; the buildpack wants a major version like 3.11.")
    runtime = re.fullmatch(r"python-(\d+\.\d+)(\.\d+)?", (ROOT / "runtime.txt").read_text().strip())
    assert runtime, f"runtime.txt is not python-X.Y[.Z]: {(ROOT / 'runtime.txt').read_text()!r}"
    assert runtime.group(1) == version_file, (
        f".python-version names Python {version_file} but runtime.txt says "
        f"{(ROOT / 'runtime.txt').read_text().strip()!r}: the buildpack and the image would differ.")


def test_gunicorn_uses_gevent_workers_that_outlast_herokus_router(monkeypatch):
    settings = load_gunicorn_config(monkeypatch, {})
    assert settings["worker_class"] == "gevent", "slow clients starve sync workers"
    assert settings["keepalive"] > 55, (
        f"keepalive {settings['keepalive']} s: Heroku's router reuses idle connections for "
        "55 s, so gunicorn must not close them sooner.")
    assert settings["graceful_timeout"] < 30, "Heroku kills the dyno 30 s after SIGTERM"


@pytest.mark.parametrize("environment, bind, workers", [
    ({}, "0.0.0.0:5000", 2),
    ({"PORT": "8123"}, "0.0.0.0:8123", 2),
    ({"PORT": "8123", "WEB_CONCURRENCY": "3"}, "0.0.0.0:8123", 3),
])
def test_gunicorn_config_follows_port_and_web_concurrency(monkeypatch, environment, bind,
                                                           workers):
    settings = load_gunicorn_config(monkeypatch, environment)
    assert settings["bind"] == bind, f"With {environment} gunicorn binds {settings['bind']}."
    assert settings["workers"] == workers, (
        f"With {environment} gunicorn starts {settings['workers']} workers, not {workers}.")


def test_gunicorn_config_sets_only_real_gunicorn_settings(monkeypatch):
    settings = load_gunicorn_config(monkeypatch, {})
    known = Config()
    unknown = sorted(set(settings) - set(known.settings))
    assert not unknown, f"gunicorn silently ignores these names in {CONFIG}: {unknown}"
    for name, value in settings.items():
        known.set(name, value)  # raises on a value of the wrong kind


def test_docker_image_defaults_to_the_port_gunicorn_defaults_to(monkeypatch):
    dockerfile = (ROOT / "Dockerfile").read_text()
    default_port = load_gunicorn_config(monkeypatch, {})["bind"].rsplit(":", 1)[1]
    assert re.search(rf"\bPORT={default_port}\b", dockerfile), (
        f"The Dockerfile's ENV PORT is not gunicorn's default {default_port}.")
    assert re.search(rf"^EXPOSE {default_port}$", dockerfile, re.M), (
        f"The Dockerfile does not EXPOSE {default_port}.")


def dockerfile_copied_sources():
    """The sources of the Dockerfile's COPY lines from the build context (not --from a stage)."""
    sources = []
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")  # join continued lines
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M):
        sources += line.split()[:-1]
    return sources


SERVING_PACKAGES = ("drawing", "reading", "corrections", "server")


def test_the_image_copies_the_serving_packages_whole_and_the_modules_serving_imports():
    sources = dockerfile_copied_sources()
    everything = [source for source in sources if "*" in source or source in (".", "./")]
    assert not everything, (f"The Dockerfile copies {everything}: name each module and package, "
                            "so a new one ships only when someone decides it should.")
    copied_modules = {source for source in sources if source.endswith(".py")}
    copied_packages = {source.rstrip("/") for source in sources
                       if (ROOT / source / "__init__.py").is_file()}
    needed = served_modules()
    needed_modules = {name for name in needed if "/" not in name}
    needed_packages = {name.split("/")[0] for name in needed if "/" in name}
    assert copied_modules == needed_modules, (
        f"The image's top-level modules {sorted(copied_modules)} are not the ones serving "
        f"imports, {sorted(needed_modules)}")
    assert copied_packages == needed_packages == set(SERVING_PACKAGES), (
        f"The image copies the packages {sorted(copied_packages)}; serving imports "
        f"{sorted(needed_packages)}")
    for package in SERVING_PACKAGES:
        unused = {path.relative_to(ROOT).as_posix() for path in (ROOT / package).glob("*.py")}
        assert not unused - needed, f"Serving never imports {sorted(unused - needed)}"


def test_the_image_never_copies_training_code():
    sources = dockerfile_copied_sources()
    assert not [source for source in sources
                if source.startswith(("training", "train_mnist", "tests", "scripts"))], sources
    assert "training" in (ROOT / ".dockerignore").read_text().split()


@pytest.mark.parametrize("kept_out", [".git", ".venv", "tests", "**/__pycache__",
                                      ".pytest_cache", "model/*"])
def test_dockerignore_keeps_development_files_out_of_the_build(kept_out):
    patterns = (ROOT / ".dockerignore").read_text().split()
    assert kept_out in patterns, f".dockerignore lets {kept_out} into the build context."
