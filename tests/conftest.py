"""Fixtures: MNIST, a digit drawn as a person draws it, the app and its test client.
Everything else tests share is in the support package."""

import pytest

from support import MODEL_PATH


@pytest.fixture(scope="session")
def mnist():
    """MNIST as ((x_train, y_train), (x_test, y_test)), uint8, by the training script's loader
    (numpy only: no TensorFlow needed)."""
    from training import mnist_digits

    return mnist_digits.load_mnist()


@pytest.fixture(scope="session")
def mnist_test(mnist):
    return mnist[1]


@pytest.fixture(scope="session")
def draw_mnist_digit(mnist_test):
    """Draw MNIST test digit `index` as a person would on a canvas; returns (RGBA image, label)."""
    from training import strokes

    def draw(index, canvas=(280, 280), height=200, centre=None, pen=18,
             convention="ink_on_transparent", slant=0.0):
        centre = centre or (canvas[0] / 2, canvas[1] / 2)
        placed = strokes.place_strokes(strokes.digit_strokes(mnist_test[0][index]), height,
                                       centre, slant)
        return strokes.draw_strokes(placed, canvas, pen, convention), int(mnist_test[1][index])

    return draw


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    """The app with the real model, its corrections in a throwaway SQLite file."""
    from app import create_app

    database = tmp_path_factory.mktemp("store") / "corrections.sqlite3"
    return create_app({"TESTING": True, "MODEL_PATH": str(MODEL_PATH),
                       "DATABASE_URL": f"sqlite:///{database}"})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server (support.postgres) for the session, with psycopg to
    reach it; unavailable where either is missing."""
    from support import require
    from support.postgres import postgres_server

    require("psycopg")
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """DATABASE_URL of an empty corrections database: an SQLite file, then a new database on
    the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'corrections.sqlite3'}"
    server = request.getfixturevalue("postgres")
    return server.new_database()
