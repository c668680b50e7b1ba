"""predict.py: the shipped model from the shell, without Flask."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from drawing import decoding
from support import ROOT
from support.images import encode, number_on_a_canvas


@pytest.fixture(scope="module")
def folder(tmp_path_factory, draw_mnist_digit):
    folder = tmp_path_factory.mktemp("images")
    seven, _ = draw_mnist_digit(0)                        # a 7
    two, _ = draw_mnist_digit(1, convention="black_on_white")  # a 2
    (folder / "seven.png").write_bytes(encode(seven, "PNG"))
    (folder / "two.jpg").write_bytes(encode(two.convert("RGB"), "JPEG"))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    return folder


def run_cli(*arguments):
    return subprocess.run([sys.executable, str(ROOT / "predict.py"), *map(str, arguments)],
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_one_line_per_file_and_reports_unreadable_ones(folder):
    result = run_cli(folder, folder / "missing.png")
    lines = dict(line.split("  ", 1) for line in result.stdout.splitlines())
    assert lines[str(folder / "seven.png")].split()[0] == "7"
    assert lines[str(folder / "two.jpg")].split()[0] == "2"
    assert 0.5 < float(lines[str(folder / "seven.png")].split()[1]) <= 1
    assert "broken.png" in result.stderr
    assert "missing.png" in result.stderr
    assert "notes.txt" not in result.stdout + result.stderr
    assert result.returncode == 1, "unreadable files must give a non-zero exit status"


def test_cli_json_output_is_one_object_per_file(folder):
    result = run_cli("--json", folder / "seven.png", folder / "two.jpg")
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert [reply["number"] for reply in replies] == ["7", "2"]
    assert all(len(reply["digits"][0]["box"]) == 4 for reply in replies)


def test_cli_reads_a_whole_number(tmp_path, draw_mnist_digit):
    canvas = number_on_a_canvas(draw_mnist_digit, [1, 3, 1, 4])  # 2, 0, 2, 4
    (tmp_path / "year.png").write_bytes(encode(canvas, "PNG"))
    result = run_cli(tmp_path / "year.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "2024", result.stdout


def test_cli_picks_from_folders_the_files_of_every_format_the_service_reads():
    import predict

    formats = {Image.registered_extensions()[suffix] for suffix in predict.IMAGE_SUFFIXES}
    assert formats == set(decoding.ACCEPTED_FORMATS), \
        f"the CLI picks up {sorted(formats)}; the service reads {decoding.ACCEPTED_FORMATS}"


def test_cli_says_when_a_drawing_is_not_a_digit(tmp_path):
    from support import non_digits

    image, _, _ = next(non_digits.shape_cases(1, seed=3))  # a cat's face
    (tmp_path / "cat.png").write_bytes(encode(image, "PNG"))
    result = run_cli(tmp_path / "cat.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("  ")[1] == "not a digit", result.stdout
    reply = json.loads(run_cli("--json", tmp_path / "cat.png").stdout)
    assert reply["not_a_digit"] is True and reply["number"] is None, reply
