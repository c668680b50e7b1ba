"""training/learn_corrections.py, on an export made through the real app and store: which
drawings are held out, the digits a correction teaches, and the figures before and after (no
TensorFlow)."""

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from corrections import store
from reading.recognizer import Recognizer
from support import MODEL_PATH
from support.images import data_uri, encode, number_on_a_canvas, numbered_seven
from training import learn_corrections


@pytest.fixture(scope="module")
def export(tmp_path_factory, draw_mnist_digit):
    """An export of 40 digit-mode corrections (7s labelled 1), a number read from two apart
    digits labelled 27, and the same number labelled 123 (three digits in two marks)."""
    from app import create_app

    folder = tmp_path_factory.mktemp("export")
    database = folder.parent / "store.sqlite3"
    app = create_app({"MODEL_PATH": str(MODEL_PATH), "DATABASE_URL": f"sqlite:///{database}",
                      "CORRECTIONS_PER_MINUTE": 0})
    client = app.test_client()
    for number in range(40):
        assert client.post("/corrections", json={"image": data_uri(numbered_seven(number)),
                                                 "label": "1", "answer": "7",
                                                 "mode": "digit"}).status_code == 201
    two_digits = encode(number_on_a_canvas(draw_mnist_digit, [1, 0]), "PNG")  # a 2 and a 7
    for label in ("27", "123"):
        assert client.post("/corrections", json={"image": data_uri(two_digits), "label": label,
                                                 "answer": "21",
                                                 "mode": "number"}).status_code == 201
    with app.app_context():
        store.export(store.connection(), folder)
    return folder


def test_an_export_is_read_back_with_each_drawing_and_its_label(export):
    drawings = learn_corrections.load_export(export)
    assert len(drawings) == 42
    assert drawings[0].image == numbered_seven(0)
    assert (drawings[0].label, drawings[0].answer, drawings[0].mode) == ("1", "7", "digit")
    assert [drawing.label for drawing in drawings[-2:]] == ["27", "123"]


def test_a_folder_without_labels_csv_is_refused_with_a_hint(tmp_path):
    with pytest.raises(SystemExit, match="flask --app app corrections export"):
        learn_corrections.load_export(tmp_path)


def test_the_held_out_share_is_decided_by_the_drawing_alone(export):
    drawings = learn_corrections.load_export(export)
    held_out = [learn_corrections.is_held_out(drawing) for drawing in drawings]
    assert held_out[-1] == held_out[-2], "one drawing with two labels fell on both sides"
    assert 0 < sum(held_out[:40]) < 40, "the 40 different 7s were not split"
    many = [learn_corrections.Drawing("", b"", "1", "7", "digit", f"{n:064x}"[::-1])
            for n in range(2000)]
    share = np.mean([learn_corrections.is_held_out(drawing) for drawing in many])
    assert 0.15 < share < 0.25, f"{share:.1%} held out, not about one in five"


def test_a_digit_correction_teaches_the_image_the_server_reads(export):
    # With a speck far from the digit: the server drops it (split_digits), so must training.
    drawing = learn_corrections.load_export(export)[0]
    canvas = Image.open(io.BytesIO(drawing.image))
    ImageDraw.Draw(canvas).ellipse([6, 6, 9, 9], fill=(0, 0, 0, 255))  # the 7's own ink
    speckled = dataclasses.replace(drawing, image=encode(canvas, "PNG"))
    images, labels = learn_corrections.training_digits(speckled)
    reading, _ = Recognizer(MODEL_PATH).read(speckled.image, one_digit=True)
    [read] = reading.digits
    assert np.array_equal(images, np.rint(read.image * 255).astype(np.uint8)[np.newaxis]), \
        "training was taught another image than the one the server reads"
    assert labels.tolist() == [1]


def test_a_number_correction_counts_only_where_it_splits_into_its_digits(export):
    two, three = learn_corrections.load_export(export)[-2:]
    images, labels = learn_corrections.training_digits(two)
    assert labels.tolist() == [2, 7] and images.shape == (2, 28, 28)
    images, labels = learn_corrections.training_digits(three)
    assert len(labels) == 0 and len(images) == 0, "two marks were taught as three digits"


def test_only_the_training_share_is_added_and_the_held_out_share_is_measured(export, capsys):
    x = np.zeros((5, 28, 28, 1), np.float32)
    y = np.eye(11, dtype=np.float32)[[0, 1, 2, 3, 4]]
    rendering = np.ones(5, bool)
    held_out, x_all, y_all, is_rendering = learn_corrections.add_to_training(
        export, x, y, rendering, MODEL_PATH)
    drawings = learn_corrections.load_export(export)
    training = [drawing for drawing in drawings if not learn_corrections.is_held_out(drawing)]
    digits = sum(len(learn_corrections.training_digits(drawing)[1]) for drawing in training)
    added = digits * learn_corrections.REPEATS
    assert x_all.shape == (5 + added, 28, 28, 1) and y_all.shape == (5 + added, 11)
    assert np.array_equal(x_all[:5], x) and is_rendering[:5].all() and not is_rendering[5:].any()
    assert set(held_out.drawings).isdisjoint(training)
    assert held_out.drawings == [d for d in drawings if learn_corrections.is_held_out(d)]
    # The shipped model reads each 7 as 7: labelled 1, every held-out 7 is read wrong.
    assert held_out.before == 0.0
    report = learn_corrections.report_after(held_out, MODEL_PATH)
    assert report["held_out_accuracy_after"] == report["held_out_accuracy_before"] == 0.0
    assert report["held_out_drawings"] == len(held_out.drawings)
    assert "before 0.0 %" in capsys.readouterr().out
