"""A throwaway PostgreSQL server for the tests: a new cluster in a temporary folder, on a free
loopback port, started with Debian's `postgresql` binaries (`make test` installs them).

As root it runs as the `postgres` user (`runuser`), since PostgreSQL refuses to run as root;
otherwise as the user running the tests. It accepts TCP connections from 127.0.0.1 only,
without a password, and is removed, data and all, when the block ends.
"""

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import unavailable
from .live_server import free_port

SERVER_USER = "postgres"  # the Debian package's system user


def binaries():
    """The folder of initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                     key=lambda folder: int(folder.split("/")[-2]))
    if not folders:
        unavailable("PostgreSQL's initdb is not installed: apt-get install postgresql "
                    "(`make test` does it when run as root).")
    return Path(folders[-1])


class Server:
    """One running cluster: `url` to connect to, `restart()` and `stop()`."""

    def __init__(self, folder, port, run_as):
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "server.log"
        self.port = port
        self.run_as = run_as
        self.bin = binaries()
        # postgres://, as Heroku writes it; libpq reads both schemes.
        self.url = f"postgres://{SERVER_USER}@127.0.0.1:{port}/postgres"
        self.databases = 0  # made by new_database

    def _run(self, program, *arguments, timeout=120):
        argv = [str(self.bin / program), *arguments]
        if self.run_as:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(arguments)} failed ({result.returncode}):"
                               f"\n{result.stdout}{result.stderr}{log}")
        return result.stdout

    def new_database(self):
        """The URL of a new, empty database on this server."""
        import psycopg

        self.databases += 1
        name = f"corrections_{self.databases}"
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def create(self):
        self._run("initdb", "--pgdata", str(self.data), "--username", SERVER_USER,
                  "--auth", "trust", "--encoding", "UTF8", "--no-sync")

    def start(self):
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   "-c unix_socket_directories='' -c fsync=off")
        self._run("pg_ctl", "--pgdata", str(self.data), "--log", str(self.log),
                  "--options", options, "--wait", "start")

    def stop(self):
        self._run("pg_ctl", "--pgdata", str(self.data), "--mode", "fast", "--wait", "stop")

    def restart(self):
        """Stop the server and start it again on the same data."""
        self.stop()
        self.start()


@contextlib.contextmanager
def postgres_server():
    """Yield a started Server; stop it and delete its folder afterwards."""
    run_as = None
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            unavailable(f"There is no `{SERVER_USER}` user to run PostgreSQL as: apt-get "
                        "install postgresql (`make test` does it when run as root).")
        if not shutil.which("runuser"):
            unavailable("runuser (util-linux) is needed to start PostgreSQL as its own user.")
        run_as = SERVER_USER
    folder = Path(tempfile.mkdtemp(prefix="corrections-postgres-"))
    if run_as:
        os.chown(folder, user.pw_uid, user.pw_gid)
    server = Server(folder, free_port(), run_as)
    try:
        server.create()
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
