"""A real PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` into a temporary folder, on loopback.

Register it with ``pytest_plugins = ["pg_server"]`` (``tests/integration/pg/conftest.py`` does).

``pg_server`` (session scope) is a `PgServer`: PostgreSQL 15 (Debian's ``postgresql``
package; ``EDGEBENCH_PG_BIN`` names another ``bin`` folder) listening on 127.0.0.1 on a free
port, its unix socket in the temporary folder, password authentication (scram-sha-256)
for every connection so that a wrong password is refused as on a real server. Users:
``SUPERUSER`` (the cluster's owner), ``WRITER`` (owns the databases the tests make) and
``READER`` (may only read), each with the password `PgServer.password` gives.
``pg_db`` (function scope) is a fresh empty database owned by ``WRITER``; its ``url`` carries
no password (``PGPASSWORD`` is set for the test), `PgServer.url` makes others.

The server is stopped (``pg_ctl stop -m immediate``) and its folder removed at the end of the
session, at interpreter exit, and on SIGINT/SIGTERM (then the run stops as on Ctrl-C), the
way ``tests/integration/conftest.py`` stops the farm. initdb refuses to run as root: as root
the server runs as the ``postgres`` user (``runuser``). Where PostgreSQL is not installed the
fixture skips loudly; under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from _servers import free_port, missing, stopped_on_signals

SUPERUSER = "eb_admin"
WRITER = "eb_writer"
READER = "eb_reader"
INSTALL = "install it with `apt-get install -y postgresql` (Debian's PostgreSQL 15)"


def find_bin() -> Path | None:
    """The ``bin`` folder holding ``initdb`` and ``pg_ctl``: ``$EDGEBENCH_PG_BIN``, else the newest Debian one."""
    env = os.environ.get("EDGEBENCH_PG_BIN")
    if env:
        return Path(env) if (Path(env) / "initdb").is_file() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    preferred = [p for p in found if Path(p).parts[-3] == "15"]
    pick = preferred or found
    return Path(pick[-1]).parent if pick else None


def require_postgres() -> Path:
    """The server's ``bin`` folder; skip (or, under CI=true, fail) when PostgreSQL is missing."""
    found = find_bin()
    problem = None
    if found is None:
        problem = "PostgreSQL (initdb, pg_ctl) is NOT INSTALLED"
    elif os.geteuid() == 0 and shutil.which("runuser") is None:
        problem = "runuser is missing (initdb refuses root, so the server runs as the postgres user)"
    elif os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            problem = "there is no `postgres` user (initdb refuses root)"
    if found is not None and problem is None:
        return found
    msg = f"{problem}, so the PostgreSQL results store tests cannot run: {INSTALL}"
    missing(msg)


@dataclass
class PgServer:
    """A running test server: where it listens and how to reach it as each test user."""

    bin: Path
    root: Path
    port: int
    host: str = "127.0.0.1"
    passwords: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    @property
    def data(self) -> Path:
        """The cluster's data folder."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """The folder of the server's unix socket."""
        return self.root / "sock"

    @property
    def version(self) -> int:
        """The server's major version."""
        return int((self.data / "PG_VERSION").read_text().strip())

    def password(self, user: str) -> str:
        """The password of a test user."""
        return self.passwords[user]

    def url(self, db: str = "postgres", user: str = WRITER, *, password: bool = False, query: str = "") -> str:
        """A ``postgresql://`` URL of a database here (with the user's password in it if ``password``)."""
        auth = quote(user, safe="") + (f":{quote(self.passwords[user], safe='')}" if password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{db}" + (f"?{query}" if query else "")

    def sql(self, statement: str, db: str = "postgres", user: str = SUPERUSER) -> None:
        """Run one statement outside a transaction (CREATE DATABASE...), as ``user``."""
        import psycopg

        with psycopg.connect(self.url(db, user, password=True), autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, name: str, owner: str = WRITER) -> str:
        """A new empty database owned by ``owner`` that ``READER`` may connect to; returns its name."""
        self.sql(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database (its connections are ended first)."""
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def start(self) -> None:
        """initdb (scram-sha-256 everywhere) and start the server; wait until it accepts connections."""
        self.passwords = {u: secrets.token_urlsafe(12) for u in (SUPERUSER, WRITER, READER)}
        self.socket_dir.mkdir()
        pwfile = self.root / "pw"
        pwfile.write_text(self.passwords[SUPERUSER] + "\n")
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        subprocess.run(
            self._as_owner(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=scram-sha-256",
                           f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"),
            check=True, capture_output=True, env=env, cwd=self.root,
        )  # fmt: skip
        pwfile.unlink()
        opts = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={self.host} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB"
        )
        subprocess.run(
            self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                           "-o", opts, "-w", "-t", "60", "start"),
            check=True, capture_output=True, env=env, cwd=self.root,
        )  # fmt: skip
        for user in (WRITER, READER):
            self.sql(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{self.passwords[user]}'")

    def stop(self) -> None:
        """Stop the server at once and remove its folder (safe to call twice)."""
        if self.stopped:
            return
        self.stopped = True
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"),
                capture_output=True, cwd=self.root, timeout=60,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 30) -> str:
        """The last lines of the server's log (for failure messages)."""
        try:
            return "\n".join((self.root / "log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def server_stopped_on_signals(server: PgServer) -> contextlib.AbstractContextManager[None]:
    """Stop ``server`` when the test run gets SIGINT or SIGTERM, then stop the run as Ctrl-C does."""
    return stopped_on_signals(server.stop, f"PostgreSQL in {server.root}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server on 127.0.0.1 (see the module docstring), stopped and removed at the end."""
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
    bin_dir = require_postgres()
    # not under pytest's temporary folder: its parents are private to root, and the server runs as postgres
    root = Path(tempfile.mkdtemp(prefix="edgebench-pg-"))
    server = PgServer(bin_dir, root, free_port())
    atexit.register(server.stop)
    with server_stopped_on_signals(server):
        try:
            try:
                server.start()
            except subprocess.CalledProcessError as exc:
                err = (exc.stderr or b"").decode(errors="replace").strip()
                pytest.fail(f"the test PostgreSQL server did not start: {err}\n{server.log_tail()}")
            yield server
        finally:
            server.stop()


@pytest.fixture
def pg_db(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh empty database owned by the writer; returns its URL (no password in it: ``PGPASSWORD`` is set)."""
    name = "t_" + secrets.token_hex(6)
    pg_server.create_database(name)
    pg_server.sql(f'GRANT CONNECT ON DATABASE "{name}" TO "{READER}"')
    monkeypatch.setenv("PGPASSWORD", pg_server.password(WRITER))
    for var in ("PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    yield pg_server.url(name)
    if not pg_server.stopped:  # stopped by a signal: nothing left to drop
        pg_server.drop_database(name)
