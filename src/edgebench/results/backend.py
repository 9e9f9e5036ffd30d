"""Where runs are stored: a results folder or a PostgreSQL server, behind one set of functions.

A ``Results`` is a folder (`Path`: run files plus the SQLite index, `edgebench.results.store`
and `edgebench.results.index`) or an open server store (`edgebench.results.pg.PgStore`).
Every reader and writer above ``results/`` takes a ``Results`` and calls the functions
here, which call the folder's function or the server's of the same name; a folder's
behaviour is exactly the folder modules'.

A stored run is found as a *handle*: a run file's `Path` in a folder, the run id on a
server (`find_run`, `list_runs`); `read_run` reads a handle back. `describe` is how a
message names the store (a server's URL without its password).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from edgebench.model import Run
from edgebench.results import index, pg, store

Results = Path | pg.PgStore
Handle = Path | str  # a run file (folder) or a run id (server)


def is_server(results: object) -> bool:
    """Whether ``results`` is a server store."""
    return isinstance(results, pg.PgStore)


def describe(results: Results) -> str:
    """How messages name the store: the folder, or the server's URL without its password."""
    return str(results)


def prepare(results: Results) -> None:
    """Create and check a folder (`store.prepare`); a server store was checked when it was opened."""
    if not isinstance(results, pg.PgStore):
        store.prepare(results)


def save_run(results: Results, run: Run) -> Handle:
    """Store a run (folder: its file, atomically, and the index; server: one transaction).

    Returns the run's file (folder) or id (server).
    """
    if isinstance(results, pg.PgStore):
        return pg.save_run(results, run)
    return store.save_run(results, run)


def where(results: Results, handle: Handle) -> str:
    """How a stored run is named to the user: its file, or the server's URL and the run id."""
    if isinstance(results, pg.PgStore) and not isinstance(handle, Path):
        return f"{results} run {handle}"
    return str(handle)


def read_run(results: Results, handle: Handle) -> Run:
    """Read a run by its handle (`find_run`, `list_runs`).

    Raises:
        SchemaError: it cannot be read.
        RunNotFound: (server) no run has that id.
    """
    if isinstance(results, pg.PgStore):
        return pg.read_run(results, str(handle))
    return store.read_run(Path(handle))


def load_run(results: Results, handle: Handle) -> Run | None:
    """A run by its handle, or None with a warning when it cannot be read."""
    if isinstance(results, pg.PgStore):
        return pg.load_run(results, str(handle))
    return store.load_run(Path(handle))


def load_run_id(results: Results, run_id: str) -> Run | None:
    """A run by its id, or None (no warning) when it is not stored or cannot be read."""
    if isinstance(results, pg.PgStore):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pg.load_run(results, run_id)
    path = store.run_path(results, run_id)
    return store.load_run(path) if path.is_file() else None


def list_runs(results: Results) -> list[Handle]:
    """The stored runs' handles, oldest first."""
    if isinstance(results, pg.PgStore):
        return list(pg.list_runs(results))
    return list(store.list_runs(results))


def find_run(results: Results, ref: str) -> Handle:
    """The handle of the run named by ``ref`` (id, unique prefix, ``latest``, ``latest~N``; a file for a folder).

    Raises:
        RunNotFound: naming the reference and what to give instead.
    """
    if isinstance(results, pg.PgStore):
        return pg.find_run(results, ref)
    return store.find_run(results, ref)


def open_run(results: Results, ref: str, fix: str | None = None) -> Run:
    """The run named by ``ref``, upgraded: THE way to load one (`store.open_run` / `pg.open_run`).

    Raises:
        RunNotFound: there is no such run.
        UserError: it cannot be read (naming it, the problem and ``fix``).
    """
    if isinstance(results, pg.PgStore):
        return pg.open_run(results, ref) if fix is None else pg.open_run(results, ref, fix)
    return store.open_run(results, ref) if fix is None else store.open_run(results, ref, fix)


def sync(results: Results, *, warn: bool = True) -> None:
    """Bring a folder's index up to date with its run files (`store.sync`); a server is always up to date."""
    if not isinstance(results, pg.PgStore):
        store.sync(results, warn=warn)


def history(
    results: Results,
    keys: Iterable[tuple[str, str, str]],
    *,
    metrics: Sequence[str] = ("p50", "p90", "top1", "peak_rss"),
    last: int = 30,
    command: str | None = None,
    before: str | None = None,
) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """`edgebench.results.index.history` of a folder or a server: the same rows for the same runs."""
    if isinstance(results, pg.PgStore):
        return pg.history(results, keys, metrics=metrics, last=last, command=command, before=before)
    return index.history(results, keys, metrics=metrics, last=last, command=command, before=before)


def runs_by(results: Results, command: str | None = None) -> list[tuple[str, str, Handle]]:
    """``(run_id, started, handle)`` of the stored runs, oldest first, optionally of one command."""
    if isinstance(results, pg.PgStore):
        return list(pg.runs_by(results, command))
    return [(r, s, Path(p)) for r, s, p in index.runs_by(results, command)]


def query(results: Results, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """A read query over the index's tables ``runs`` and ``rows`` (``?`` placeholders)."""
    if isinstance(results, pg.PgStore):
        return pg.query(results, sql, params)
    return index.query(results, sql, params)


def local_folder(results: Results, base: Path) -> Path:
    """The local folder a run keeps its logs, artifacts and pytest-benchmark's copy in.

    A results folder is its own; a server's is ``base/<host-port-database>`` (the URL
    without user, password or parameters, made a file name), e.g.
    ``~/.cache/edgebench/server/db.example.com-5432-bench``.
    """
    if not isinstance(results, pg.PgStore):
        return results
    rest = results.redacted.split("://", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    rest = rest.rpartition("@")[2]
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", rest).strip("-.") or "default"
    return base / slug


__all__ = [
    "Handle",
    "Results",
    "describe",
    "find_run",
    "history",
    "is_server",
    "list_runs",
    "load_run",
    "load_run_id",
    "local_folder",
    "open_run",
    "prepare",
    "query",
    "read_run",
    "runs_by",
    "save_run",
    "sync",
    "where",
]
