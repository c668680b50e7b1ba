"""Phone photos of a digit written on paper: uneven light, grey paper, texture, specks, blur,
a slight tilt, JPEG compression and EXIF rotation. The photos are synthesised here."""

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import encode

PHOTO_SIZE = (600, 800)  # width, height: a downscaled portrait phone photo


def photo_of(coverage, seed, tilt=0.0, shadow=0.45):
    """An RGB 'photo' of ink `coverage` ('L', PHOTO_SIZE) on paper lit from one corner."""
    rng = np.random.default_rng(seed)
    if tilt:  # the page sits askew under the camera
        coverage = coverage.rotate(tilt, resample=Image.Resampling.BICUBIC)
    width, height = coverage.size
    rows, columns = np.mgrid[:height, :width]
    light = 1.0 - shadow * (0.7 * columns / width + 0.3 * rows / height) ** 1.5
    paper = np.stack([light * 238, light * 232, light * 214], axis=-1)
    ink_colour = np.array([35, 40, 90], np.float64)  # a blue-black ballpoint
    alpha = np.asarray(coverage, np.float64)[..., np.newaxis] / 255 * 0.92
    pixels = paper * (1 - alpha) + ink_colour * light[..., np.newaxis] * alpha
    pixels += rng.normal(0, 7, pixels.shape)  # paper grain and sensor noise
    for _ in range(25):  # specks of dust and pencil
        y, x, radius = rng.integers(0, height), rng.integers(0, width), rng.integers(1, 3)
        pixels[max(0, y - radius):y + radius, max(0, x - radius):x + radius] *= 0.55
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return photo.filter(ImageFilter.GaussianBlur(1.2))


@pytest.fixture(scope="module")
def written_digits(draw_mnist_digit, mnist_test):
    """The first test digit of each class, written with a pen on a photo-sized page."""
    labels = mnist_test[1]
    cases = []
    for digit in range(10):
        index = int(np.flatnonzero(labels == digit)[0])
        image, label = draw_mnist_digit(index, canvas=PHOTO_SIZE, height=330, pen=11,
                                        convention="white_on_black", slant=6)
        cases.append((image.convert("L"), label))
    return cases


def post_upload(client, data, name="photo.jpg"):
    return client.post("/predict", data={"image": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_photos_with_uneven_light_texture_and_specks_are_read(client, written_digits):
    answers = []
    for seed, (coverage, label) in enumerate(written_digits):
        photo = photo_of(coverage, seed, tilt=(-4, 3, 5)[seed % 3])
        response = post_upload(client, encode(photo, "JPEG", quality=75))
        assert response.status_code == 200, response.get_json()
        answers.append(response.get_json()["number"])
    expected = [str(label) for _, label in written_digits]
    assert answers == expected, f"read {answers} for {expected}"


def test_a_deep_shadow_across_the_page_is_read(client, written_digits):
    coverage, label = written_digits[3]
    photo = photo_of(coverage, seed=42, shadow=0.7)
    assert post_upload(client, encode(photo, "JPEG", quality=80)).get_json()["digit"] == label


@pytest.mark.parametrize("orientation, stored_rotation", [(6, 90), (8, -90), (3, 180)])
def test_exif_rotation_of_a_jpeg_is_undone(client, written_digits, orientation, stored_rotation):
    coverage, label = written_digits[7]
    photo = photo_of(coverage, seed=3).rotate(stored_rotation, expand=True)
    exif = Image.Exif()
    exif[0x0112] = orientation  # the camera's note of how to turn the picture upright
    response = post_upload(client, encode(photo, "JPEG", quality=85, exif=exif))
    assert response.get_json()["digit"] == label


def test_a_blank_sheet_of_paper_is_nothing_drawn(client):
    blank = photo_of(Image.new("L", PHOTO_SIZE, 0), seed=5)
    response = post_upload(client, encode(blank, "JPEG", quality=75))
    assert response.status_code == 422, response.get_json()
