"""The 28x28 images the pipeline makes stay what the model is trained on.

The model learns from renderings passed through this very pipeline (decode, ink map, split,
MNIST recipe), so a faster pipeline must make the same images. The reference file
tests/data/pipeline_reference.npz holds the 28x28 outputs (uint8) of a fixed set of drawings
made by the unmodified pipeline of commit a968495; it was written once (commit 4528869) and
is not to be written again from today's pipeline, which would only compare the pipeline with
itself. It also holds a digest of each drawing's bytes, so a change in the drawing code
(training/strokes.py, Pillow's PNG or JPEG encoder) is told apart from a change in the pipeline.
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support import MODEL_PATH
from support.images import PHOTO_SIZE, canvas_png, encode, photo_of
from training import strokes

REFERENCE = Path(__file__).resolve().parent / "data" / "pipeline_reference.npz"
GREY_TOLERANCE = 4           # 0-255 grey levels a pixel may move ...
FEW_PIXELS = 0.01            # ... except on this share of pixels, which may move more
WORST_TOLERANCE = 40         # ... but never this far


def drawings(draw_mnist_digit, mnist_test):
    """[(name, encoded image bytes, one_digit)]: the fixed set, always drawn the same way.

    Every class in the three colour conventions the page and clients send, with pens from
    a fine liner to a fat marker, small and large on square and wide canvases; numbers of
    two digits; phone-photo-like JPEG and PNG; the benchmark's canvas.
    """
    labels = mnist_test[1]
    first_of_class = [int(np.flatnonzero(labels == digit)[0]) for digit in range(10)]
    pens, heights = (6, 12, 18, 30), (70, 130, 200, 250)
    cases = []
    for digit, index in enumerate(first_of_class):
        for number, convention in enumerate(strokes.CONVENTIONS):
            variant = digit + number
            canvas = (560, 280) if variant % 4 == 3 else (280, 280)
            image, _ = draw_mnist_digit(index, canvas=canvas, height=heights[variant % 4],
                                        pen=pens[(digit + 2 * number) % 4],
                                        convention=convention, slant=(variant % 3 - 1) * 8.0)
            cases.append((f"{digit} {convention} {canvas[0]}x{canvas[1]}",
                          encode(image, "PNG"), False))
    for number, convention in enumerate(strokes.CONVENTIONS):
        left, _ = draw_mnist_digit(first_of_class[3 + number], canvas=(560, 280), height=180,
                                   centre=(150, 140), pen=16, convention=convention)
        right, _ = draw_mnist_digit(first_of_class[6 + number], canvas=(560, 280), height=180,
                                    centre=(410, 140), pen=16, convention=convention)
        both = Image.alpha_composite(left, right) if convention == "ink_on_transparent" \
            else Image.fromarray(np.minimum(np.asarray(left), np.asarray(right))
                                 if convention == "black_on_white"
                                 else np.maximum(np.asarray(left), np.asarray(right)))
        cases.append((f"number {convention}", encode(both, "PNG"), False))
        cases.append((f"number as one digit {convention}", encode(both, "PNG"), True))
    for seed, digit in enumerate((2, 5, 8)):
        coverage, _ = draw_mnist_digit(first_of_class[digit], canvas=PHOTO_SIZE, height=330,
                                       pen=11, convention="white_on_black", slant=6)
        photo = photo_of(coverage.convert("L"), seed, tilt=(-4, 3, 5)[seed])
        cases.append((f"photo of {digit} JPEG", encode(photo, "JPEG", quality=75), False))
        if seed == 0:
            cases.append((f"photo of {digit} PNG", encode(photo, "PNG"), False))
    cases.append(("benchmark canvas", canvas_png(), False))
    return cases


def pipeline_images(data, one_digit):
    """What the service feeds the network for these bytes, split at blank gaps (the search
    for touching digits aside): uint8 [N, 28, 28]."""
    from drawing import image_ink
    from reading import segment

    digits = segment.mnist_digits(image_ink.read_ink(data), one_digit)
    return np.stack([np.rint(digit * 255).astype(np.uint8) for _, digit in digits])


def digest(data):
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.fixture(scope="module")
def reference():
    assert REFERENCE.exists(), f"{REFERENCE} is missing; it is part of the repository."
    with np.load(REFERENCE) as stored:
        return {key: stored[key] for key in stored.files}


@pytest.fixture(scope="module")
def cases(draw_mnist_digit, mnist_test):
    return drawings(draw_mnist_digit, mnist_test)


@pytest.fixture(scope="module")
def recognizer():
    from reading.recognizer import Recognizer

    return Recognizer(MODEL_PATH)


def test_the_drawings_are_the_ones_the_reference_was_made_from(cases, reference):
    names = [name for name, _, _ in cases]
    assert names == list(reference["names"]), "the set of drawings changed; regenerate the " \
                                             "reference with commit a968495's pipeline"
    changed = [name for (name, data, _), stored in zip(cases, reference["digests"])
               if digest(data) != stored]
    assert not changed, (f"these drawings no longer come out byte for byte as they did "
                         f"(the drawing code or an encoder changed, not the pipeline): {changed}")


def test_the_pipeline_makes_the_same_28x28_images_as_before(cases, reference, recognizer):
    offsets = reference["offsets"]
    for number, (name, data, one_digit) in enumerate(cases):
        expected = reference["images"][offsets[number]:offsets[number + 1]]
        made = pipeline_images(data, one_digit)
        assert made.shape == expected.shape, \
            f"{name}: the pipeline made {len(made)} digit images, before it made {len(expected)}"
        difference = np.abs(made.astype(np.int16) - expected.astype(np.int16))
        moved = np.count_nonzero(difference > GREY_TOLERANCE) / difference.size
        assert moved <= FEW_PIXELS, (
            f"{name}: {moved:.1%} of the pixels moved by more than {GREY_TOLERANCE} grey levels; "
            "the network would see different digits")
        assert difference.max() <= WORST_TOLERANCE, (
            f"{name}: a pixel moved by {difference.max()} grey levels; the network would see "
            "different digits")
        before = recognizer.probabilities(expected.astype(np.float32) / 255).argmax(axis=1)
        now = recognizer.probabilities(made.astype(np.float32) / 255).argmax(axis=1)
        assert list(now) == list(before), f"{name}: the model reads {now}, before it read {before}"

