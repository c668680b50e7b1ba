"""The store of corrections: drawings the app read wrong, with the digits their authors wrote.

SQLite by default (a file in Flask's instance folder: nothing to set up), PostgreSQL when
DATABASE_URL is set, as Heroku Postgres sets it (`postgres://` or `postgresql://`). The
schema is created or upgraded when the app starts. Each request opens its own connection,
kept on `g` and closed at teardown, so every gunicorn worker connects after the fork. Writes
are serialised (SQLite's write lock, a PostgreSQL advisory lock), which keeps the cap exact
and stores a drawing sent twice with the same label once.

    flask --app app corrections export DIR    # each drawing as sent, and DIR/labels.csv
"""

import contextlib
import csv
import datetime
import hashlib
import io
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import click
from flask import current_app, g
from flask.cli import AppGroup
from PIL import Image, UnidentifiedImageError

SQLITE_FILE = "corrections.sqlite3"  # in the instance folder, when DATABASE_URL is not set
BUSY_SECONDS = 10                    # how long a write waits for another worker's
CONNECT_SECONDS = 10
WRITE_LOCK = 23_000_001              # PostgreSQL advisory lock key for writes and upgrades
EXPORT_BATCH = 200                   # rows read at a time when exporting
EXPORT_COLUMNS = ("file", "label", "answer", "mode", "created")
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
              "TIFF": ".tif"}

# The table, with each database's own types for the id, the bytes and the time.
CREATE_TABLE = """CREATE TABLE corrections (
                id {id},
                image {bytes} NOT NULL,
                image_sha256 TEXT NOT NULL,
                label TEXT NOT NULL,
                answer TEXT NOT NULL,
                mode TEXT NOT NULL CHECK (mode IN ('digit', 'number')),
                model_sha256 TEXT NOT NULL,
                created {time} NOT NULL,
                UNIQUE (image_sha256, label))"""
COLUMN_TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "bytes": "BLOB", "time": "TEXT"},
    "postgresql": {"id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "bytes": "BYTEA",
                   "time": "TIMESTAMPTZ"},
}
# Each schema version's statements, in order; a store at version n gets those after n.
MIGRATIONS = {kind: [[CREATE_TABLE.format(**types)]] for kind, types in COLUMN_TYPES.items()}


UNREACHABLE = "The corrections database cannot be reached; please try again later."


class StoreError(Exception):
    """The store cannot take a correction now; the message says why."""


class StoreFull(StoreError):
    """CORRECTIONS_MAX corrections are stored already."""


class StoreUnavailable(StoreError):
    """The database did not answer."""


@dataclass(frozen=True)
class Correction:
    """One correction as the API receives it: `image` the bytes as sent, `label` the digits
    written, `answer` what the app read, `mode` "digit" or "number", `model_sha256` the
    sha256 of the model that read it."""
    image: bytes
    label: str
    answer: str
    mode: str
    model_sha256: str


@dataclass(frozen=True)
class Database:
    """Where the corrections are: `kind` "sqlite" (`target` a file path) or "postgresql"
    (`target` a libpq connection URI)."""
    kind: str
    target: str

    @classmethod
    def from_url(cls, url, instance_path):
        """DATABASE_URL (empty: SQLite in `instance_path`) -> a Database."""
        if not url:
            return cls("sqlite", str(Path(instance_path) / SQLITE_FILE))
        if url.startswith("sqlite:///"):
            return cls("sqlite", url[len("sqlite:///"):])
        if url.startswith(("postgres://", "postgresql://")):
            return cls("postgresql", url)  # libpq reads both schemes
        raise ValueError("DATABASE_URL must start with postgres://, postgresql:// or sqlite:///"
                         f", not {url.split(':', 1)[0]!r}.")

    def connect(self):
        """A new connection; StoreUnavailable if the database does not answer."""
        if self.kind == "sqlite":
            try:
                Path(self.target).parent.mkdir(parents=True, exist_ok=True)
                # Autocommit: transactions are begun explicitly (BEGIN IMMEDIATE for writes).
                connection = sqlite3.connect(self.target, timeout=BUSY_SECONDS,
                                             isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
                return connection
            except (sqlite3.Error, OSError) as error:
                raise StoreUnavailable(UNREACHABLE) from error
        import psycopg  # only where PostgreSQL is used: it needs libpq (a missing one says so)

        try:
            return psycopg.connect(self.target, connect_timeout=CONNECT_SECONDS)
        except psycopg.Error as error:  # no route, no such database, a bad password
            raise StoreUnavailable(UNREACHABLE) from error


@dataclass(frozen=True)
class Store:
    """The store's settings: where it is, and how many corrections it holds at most."""
    database: Database
    max_stored: int


# ---------------------------------------------------------------------------
# SQL on either database
# ---------------------------------------------------------------------------

def _sql(connection, statement):
    """`statement` with :name parameters in the style of the connection's driver."""
    if isinstance(connection, sqlite3.Connection):
        return statement
    return re.sub(r":(\w+)", r"%(\1)s", statement)


def _run(connection, statement, parameters=()):
    return connection.execute(_sql(connection, statement), parameters)


@contextlib.contextmanager
def _writing(connection):
    """One write transaction at a time, across processes and machines."""
    try:
        if isinstance(connection, sqlite3.Connection):
            connection.execute("BEGIN IMMEDIATE")  # takes the write lock, waits BUSY_SECONDS
        else:
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        yield connection
    except BaseException:
        connection.rollback()
        raise
    else:
        connection.commit()


def _database_errors():
    errors = (sqlite3.Error,)
    with contextlib.suppress(ImportError):
        import psycopg

        errors += (psycopg.Error,)
    return errors


@contextlib.contextmanager
def _unavailable_on_error():
    try:
        yield
    except _database_errors() as error:
        raise StoreUnavailable("The corrections database did not answer; please try again "
                               "later.") from error


def upgrade_schema(database):
    """Create the tables, or apply the migrations the database has not had yet; returns the
    schema version."""
    connection = database.connect()
    try:
        with _unavailable_on_error(), _writing(connection):
            _run(connection, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = _run(connection, "SELECT max(version) FROM schema_version").fetchone()
            version = row[0] or 0
            migrations = MIGRATIONS[database.kind]
            for statements in migrations[version:]:
                for statement in statements:
                    _run(connection, statement)
            if version < len(migrations):
                _run(connection, "DELETE FROM schema_version")
                _run(connection, "INSERT INTO schema_version (version) VALUES (:version)",
                     {"version": len(migrations)})
            return len(migrations)
    finally:
        connection.close()


def add(connection, correction, max_stored):
    """Store `correction` unless the same drawing has this label already; returns (id, whether
    it is new). Raises StoreFull when `max_stored` corrections are stored."""
    image_sha256 = hashlib.sha256(correction.image).hexdigest()
    key = {"image_sha256": image_sha256, "label": correction.label}
    with _unavailable_on_error(), _writing(connection):
        row = _run(connection, "SELECT id FROM corrections WHERE image_sha256 = :image_sha256 "
                               "AND label = :label", key).fetchone()
        if row is not None:
            return row[0], False
        if count(connection) >= max_stored:
            raise StoreFull(f"The store of corrections is full ({max_stored:,}); thank you, "
                            "but no more are being kept for now.")
        created = datetime.datetime.now(datetime.timezone.utc)
        # Under the write lock nobody else inserts between the check above and this.
        row = _run(connection, """
            INSERT INTO corrections
                (image, image_sha256, label, answer, mode, model_sha256, created)
            VALUES (:image, :image_sha256, :label, :answer, :mode, :model_sha256, :created)
            RETURNING id""", {
            **key, "image": correction.image, "answer": correction.answer,
            "mode": correction.mode, "model_sha256": correction.model_sha256,
            "created": created.isoformat() if isinstance(connection, sqlite3.Connection)
            else created}).fetchone()
        return row[0], True


def count(connection):
    """How many corrections are stored."""
    return _run(connection, "SELECT count(*) FROM corrections").fetchone()[0]


def rows(connection):
    """Every correction as (id, image bytes, label, answer, mode, created as an ISO 8601 UTC
    string), in the order they were stored, read a batch at a time."""
    after = 0
    while True:
        batch = _run(connection, "SELECT id, image, label, answer, mode, created FROM "
                                 "corrections WHERE id > :after ORDER BY id LIMIT :limit",
                     {"after": after, "limit": EXPORT_BATCH}).fetchall()
        if not batch:
            return
        for correction_id, image, label, answer, mode, created in batch:
            if isinstance(created, datetime.datetime):
                created = created.astimezone(datetime.timezone.utc).isoformat()
            yield correction_id, bytes(image), label, answer, mode, created
        after = batch[-1][0]


def file_extension(image):
    """The file extension for image bytes of a format the app reads (".png", ".jpg", ...)."""
    with contextlib.suppress(UnidentifiedImageError, OSError):
        return EXTENSIONS.get(Image.open(io.BytesIO(image)).format, ".bin")
    return ".bin"


def export(connection, directory):
    """Write each correction's drawing, as it was sent, to `directory` (one file each, named
    by its id) and `directory`/labels.csv (EXPORT_COLUMNS); returns how many."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    with _unavailable_on_error(), open(directory / "labels.csv", "w", newline="") as table:
        writer = csv.writer(table)
        writer.writerow(EXPORT_COLUMNS)
        for correction_id, image, label, answer, mode, created in rows(connection):
            name = f"{correction_id:06d}{file_extension(image)}"
            (directory / name).write_bytes(image)
            writer.writerow([name, label, answer, mode, created])
            written += 1
    return written


# ---------------------------------------------------------------------------
# Flask: the store in the app, a connection per request, the command line
# ---------------------------------------------------------------------------

def init_app(app):
    """Set up the store from app.config (DATABASE_URL, CORRECTIONS_MAX) and bring its schema
    up to date. The connection used for that is closed again: nothing open is forked. A
    database that does not answer now does not stop the app (reading digits needs none): the
    schema is brought up to date on the first correction instead."""
    database = Database.from_url(app.config["DATABASE_URL"], app.instance_path)
    app.extensions["corrections"] = Store(database, app.config["CORRECTIONS_MAX"])
    try:
        upgrade_schema(database)
        app.extensions["corrections_schema_ready"] = True
    except StoreUnavailable:
        app.logger.warning("The corrections database cannot be reached; the app starts "
                           "without it and tries again on the first correction.")
        app.extensions["corrections_schema_ready"] = False
    app.teardown_appcontext(close_connection)
    app.cli.add_command(command_line)


def store():
    return current_app.extensions["corrections"]


def connection():
    """This request's connection, opened on first use."""
    if "corrections_connection" not in g:
        if not current_app.extensions["corrections_schema_ready"]:
            upgrade_schema(store().database)  # StoreUnavailable if it still does not answer
            current_app.extensions["corrections_schema_ready"] = True
        g.corrections_connection = store().database.connect()
    return g.corrections_connection


def close_connection(error=None):
    found = g.pop("corrections_connection", None)
    if found is not None:
        with contextlib.suppress(*_database_errors()):
            found.close()


def save(correction):
    """Store a correction in the app's store: (id, whether it is new)."""
    return add(connection(), correction, store().max_stored)


command_line = AppGroup("corrections", help="The corrections people saved on the page.")


@command_line.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_command(directory):
    """Write each drawing as it was sent, and DIRECTORY/labels.csv, from DATABASE_URL's
    database (the instance folder's SQLite file when it is not set)."""
    written = export(connection(), directory)
    where = store().database
    click.echo(f"Wrote {written} corrections and labels.csv to {directory} "
               f"(from {'SQLite' if where.kind == 'sqlite' else 'PostgreSQL'}).")
