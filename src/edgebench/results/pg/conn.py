"""Reaching the server: the URL, its redaction, the connection and the one-line errors.

A URL is handed to libpq as it is, so every way libpq users give credentials works
(``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE``/``pg_service.conf``, ``sslmode`` and the other
parameters in the URL); this module never reads a password itself. `redact` is the URL
every message, warning and run shows.
"""

from __future__ import annotations

import os
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from edgebench.errors import MissingDependency, ResultsPathError

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql://", "postgres://")
MIN_SERVER_VERSION = 120000  # PostgreSQL 12: the oldest major version edgebench supports (server_version_num)
CONNECT_TIMEOUT_S = 10  # unless the URL or PGCONNECT_TIMEOUT says otherwise
INSTALL = "pip install 'edgebench[postgres]'"


class ResultsServerError(ResultsPathError):
    """The results server cannot be used; one line naming the URL (without its password) and the fix."""


class ServerUnreachable(ResultsServerError):
    """The server cannot be reached, or was lost mid-run (a run keeps its measurements in a spool)."""


class NoWriteRights(ResultsServerError):
    """The user may read the results on the server but not write them."""


class SchemaTooNew(ResultsServerError):
    """The database was written by a newer edgebench (its schema version is above `SCHEMA_VERSION`)."""


def is_url(text: str | object) -> bool:
    """Whether a ``--results`` value names a PostgreSQL server (``postgresql://`` or ``postgres://``)."""
    return isinstance(text, str) and text.startswith(SCHEMES)


def _split(url: str) -> tuple[str, str, str, str]:
    """``(scheme://, userinfo, host and path, ?query#fragment)``; the userinfo ends at the last '@'."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url, ""
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    head, tail = rest[:cut], rest[cut:]
    userinfo, at, hostpath = head.rpartition("@")  # a password holding '@' stays in the userinfo
    return scheme + sep, userinfo if at else "", hostpath, tail


def _query_password(tail: str) -> str | None:
    m = re.search(r"(?i)[?&]password=([^&#]*)", tail)
    return m.group(1) if m else None


def _passwords(url: str) -> list[str]:
    """The passwords written in a URL (user part, ``password`` parameter), to scrub them from messages."""
    _, userinfo, _, tail = _split(url)
    found = [userinfo.split(":", 1)[1]] if ":" in userinfo else []
    q = _query_password(tail if tail else url)
    return [p for p in (*found, q) if p]


def redact(url: str) -> str:
    """``url`` without any password: dropped from the user part and from the ``password`` parameter.

    Works on any text, even one libpq refuses: ``postgresql://u:secret@h/db?password=x&sslmode=require``
    becomes ``postgresql://u@h/db?sslmode=require``.
    """
    scheme, userinfo, hostpath, tail = _split(url)
    if not scheme:  # not a URL (a keyword/value string, say): drop every password=... token
        return re.sub(r"(?i)\bpassword\s*=\s*('[^']*'|\S*)", "password=***", url)
    user = userinfo.split(":", 1)[0]
    query, hash_, fragment = tail.partition("#")
    kept = [p for p in query.lstrip("?").split("&") if p and p.split("=", 1)[0].lower() != "password"]
    query = ("?" + "&".join(kept)) if kept else ""
    return f"{scheme}{user + '@' if userinfo else ''}{hostpath}{query}{hash_}{fragment}"


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's password (as written and percent-decoded) and the URL itself replaced."""
    out = text.replace(url, redact(url))
    for pw in _passwords(url):
        for secret in sorted({pw, unquote(pw)}, key=len, reverse=True):
            out = out.replace(secret, "***")
    return out


def psycopg_module(url: str) -> Any:
    """``psycopg``, or MissingDependency naming the extra (the URL in the line, redacted)."""
    try:
        import psycopg
    except ImportError:
        raise MissingDependency(f"{redact(url)}: a results store on PostgreSQL needs psycopg 3: {INSTALL}") from None
    return psycopg


def _first_line(exc: BaseException, url: str) -> str:
    """The useful part of a libpq message, one line, password scrubbed."""
    text = scrub(str(exc), url).strip()
    text = re.sub(r"^connection failed: ", "", text)
    text = re.sub(r'^connection to server at "[^"]*"(?:\s*\([^)]*\))?, port \d+ failed: ', "", text)
    text = re.sub(r"^connection to server on socket \"[^\"]*\" failed: ", "", text)
    text = text.replace("FATAL:  ", "")
    return " ".join(text.split("\n")[0].split())


def connect_error(exc: BaseException, url: str) -> ResultsServerError:
    """The one-line error for a failed connection: what libpq said and the fix."""
    r = redact(url)
    why = _first_line(exc, url)
    low = why.lower()
    user = re.search(r'for user "([^"]*)"', why)
    who = f"user {user.group(1)!r}" if user else "the user"
    if "password authentication failed" in low:
        return ResultsServerError(
            f"{r}: the server refused the password of {who}: give the right one through PGPASSWORD or ~/.pgpass "
            "(or the service file), never on the command line"
        )
    if "no password supplied" in low:
        return ResultsServerError(
            f"{r}: the server asks for a password and none was given: set PGPASSWORD or add the server to ~/.pgpass"
        )
    m = re.search(r'database "([^"]*)" does not exist', why)
    if m:
        return ResultsServerError(
            f"{r}: database {m.group(1)!r} does not exist: create it (createdb {m.group(1)}, as a user who may) "
            "or name an existing database in the URL"
        )
    m = re.search(r'role "([^"]*)" does not exist', why)
    if m:
        return ResultsServerError(
            f"{r}: user {m.group(1)!r} does not exist on the server: create it (CREATE ROLE ... LOGIN) or name "
            "another user in the URL"
        )
    if "ssl" in low:
        return ResultsServerError(f"{r}: {why}: change sslmode in the URL to what the server offers")
    if any(
        s in low
        for s in ("refused", "resolve host", "translate host", "timeout", "timed out", "no route", "unreachable",
                  "no such file or directory", "could not connect", "server closed the connection", "terminating",
                  "not currently accepting connections", "the database system is")
    ):  # fmt: skip
        return ServerUnreachable(
            f"{r}: cannot reach the results server ({why}): check that PostgreSQL runs there and that the host "
            "and port are right"
        )
    return ResultsServerError(f"{r}: cannot connect ({why}): check the URL, the server and your credentials")


def _check_url(url: str) -> dict[str, Any]:
    """The URL's parameters as libpq parses them; ResultsServerError (malformed) otherwise."""
    pg_mod = psycopg_module(url)
    fix = "write it as postgresql://[user@]host[:port]/database[?sslmode=...] (the password in PGPASSWORD or ~/.pgpass)"
    if not is_url(url):
        raise ResultsServerError(f"{redact(url)}: not a PostgreSQL URL: {fix}")
    try:
        params: dict[str, Any] = pg_mod.conninfo.conninfo_to_dict(url)
    except pg_mod.ProgrammingError as exc:
        raise ResultsServerError(f"{redact(url)}: malformed URL ({_first_line(exc, url)}): {fix}") from None
    port = str(params.get("port") or "")
    if port and not all(p.strip().isdigit() for p in port.split(",")):
        raise ResultsServerError(f"{redact(url)}: malformed URL (port {port!r} is not a number): {fix}")
    return params


def open_connection(url: str, *, read_only: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
    """An autocommit connection (explicit transactions only) to a supported server.

    Args:
        read_only: every transaction of the session is READ ONLY (set on the server).
        kwargs: more libpq parameters (``application_name``...).

    Raises:
        MissingDependency: psycopg is not installed.
        ResultsServerError: a malformed URL, refused credentials, no such database, an old server...
        ServerUnreachable: the server cannot be reached.
    """
    pg_mod = psycopg_module(url)
    params = _check_url(url)
    if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    try:
        conn: psycopg.Connection[Any] = pg_mod.connect(url, autocommit=True, **kwargs)
    except pg_mod.Error as exc:
        raise connect_error(exc, url) from None
    version = conn.info.server_version
    if version < MIN_SERVER_VERSION:
        conn.close()
        raise ResultsServerError(
            f"{redact(url)}: the server runs PostgreSQL {server_major(version)} and edgebench needs "
            f"{server_major(MIN_SERVER_VERSION)} or newer: upgrade the server, or use a results folder"
        )
    if read_only:
        conn.read_only = True  # psycopg's transactions: BEGIN READ ONLY
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    return conn


def server_major(version: int) -> str:
    """``150004`` -> ``15``; ``90624`` -> ``9.6``."""
    return str(version // 10000) if version >= 100000 else f"{version // 10000}.{version // 100 % 100}"


class PgStore:
    """A results store on a PostgreSQL server: what `open_store` returns and every function here takes.

    ``str(store)`` is the URL without its password (`redact`); the URL itself is only ever
    handed to libpq. A store holds one connection, made again once if it breaks.
    """

    __slots__ = ("_conn", "_url", "read_only", "redacted", "version")

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self._url = url
        self.redacted = redact(url)
        self.read_only = read_only
        self._conn: psycopg.Connection[Any] | None = None
        self.version = 0  # the database's schema version, set by `open_store` (0: no edgebench tables)

    @property
    def url(self) -> str:
        """The URL as given (it may hold a password: pass it to libpq only, print `redacted`)."""
        return self._url

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"PgStore({self.redacted!r}, read_only={self.read_only})"

    @property
    def had_password(self) -> bool:
        """Whether the URL itself carries a password (a command printed for the user cannot repeat it)."""
        return bool(_passwords(self._url))

    def connection(self) -> psycopg.Connection[Any]:
        """The open connection, made (again) when there is none or it broke."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = open_connection(self._url, read_only=self.read_only)
        return self._conn

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
