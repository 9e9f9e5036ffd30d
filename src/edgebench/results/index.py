"""The SQLite index of the results folder: one row per measurement, for queries over history.

``<results>/index.sqlite`` is created on first use and is only a cache of the run files:
`edgebench.results.store.sync` re-reads files whose size or modification time changed,
forgets files that are gone, and remembers unreadable files (with the reason) so every
report can warn about them without parsing them again. Delete the file (or call
`store.rebuild`) and it comes back. This module knows the database, not the files.

Identity: a run file is known by its path *relative to the results folder*
(``runs/<run_id>.json``) and its run id, never by how the folder was spelled on the
command line (``results``, ``./results``, ``/abs/results`` are one folder): a nightly
writes the same run from a parent and a child process that spell it differently, and
the history must survive that. The schema number is ``PRAGMA user_version``; an index
written by another edgebench version is not trusted but rebuilt from the run files,
with a warning.

Read-only commands (`report`, `compare`, `gate`, `choose`) write nothing, not even this
cache: inside `read_only` the index is a copy in memory, brought up to date there from
the run files (a missing, stale, damaged or other-version index included), and the
file on disk is left exactly as it was. Writing commands rebuild it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgebench.model import ConfigKey, Measurement, Run

INDEX = "index.sqlite"
INDEX_VERSION = 2  # PRAGMA user_version; bump when the tables change
METRICS = ("p50", "p90", "p99", "mean", "cv", "throughput", "rounds", "peak_rss", "top1", "fidelity", "bytes")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, run_id TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, path TEXT, started TEXT, command TEXT, complete INTEGER, info TEXT,
    commit_id TEXT, commit_time TEXT, branch TEXT, dirty INTEGER);
CREATE TABLE IF NOT EXISTS rows (
    run_id TEXT, board TEXT, model TEXT, variant TEXT, ok INTEGER,
    p50 REAL, p90 REAL, p99 REAL, mean REAL, cv REAL, throughput REAL, rounds INTEGER,
    peak_rss INTEGER, top1 REAL, fidelity REAL, bytes INTEGER, error TEXT, config TEXT);
CREATE INDEX IF NOT EXISTS rows_key ON rows (model, board, variant);
CREATE INDEX IF NOT EXISTS rows_run ON rows (run_id);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
"""


def row_of(run_id: str, m: Measurement) -> tuple[Any, ...]:
    """The index row of one measurement."""
    s = m.summary
    return (
        run_id, m.board, m.model, m.variant, int(m.ok),
        *((None,) * 7 if s is None else (s.p50_ms, s.p90_ms, s.p99_ms, s.mean_ms, s.cv, s.throughput, s.rounds)),
        m.peak_rss, m.top1, m.fidelity_value, m.bytes, m.error_message or None,
        json.dumps(m.config_key.to_json(), sort_keys=True),
    )  # fmt: skip


def rel(results: Path, path: Path) -> str:
    """The index's name of a run file: its path relative to the results folder (``runs/<id>.json``).

    Both sides are resolved first, so the spelling of the folder does not matter; a file
    outside the folder (never written by edgebench) keeps its resolved path.
    """
    p, root = path.resolve(), results.resolve()
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


class _Kept(sqlite3.Connection):
    """The in-memory index of a read-only command: callers' ``close()`` keeps it (`read_only` closes it)."""

    def close(self) -> None:
        """Keep the database: it lives as long as the `read_only` block."""


_READ_ONLY: dict[Path, sqlite3.Connection] = {}  # resolved folder -> its in-memory index, inside `read_only`
_READ_AROUND = (
    "this command only reads, so it reads the run files instead and leaves the index as it is "
    "(`edgebench index rebuild --results {results}` rewrites it, as does the next `run` or `nightly` into the folder)"
)


def in_memory(results: Path) -> bool:
    """Whether the index of ``results`` is a read-only command's in-memory copy (see `read_only`)."""
    return results.resolve() in _READ_ONLY


def _other_version(file: Path, version: int, then: str) -> str:
    return (
        f"{file} was written by another edgebench version (index schema {version}, this one reads "
        f"{INDEX_VERSION}); {then}"
    )


def _open(results: Path) -> tuple[sqlite3.Connection, bool]:
    """The index of a results folder and whether it was just created (empty: every run file is to be read)."""
    kept = _READ_ONLY.get(results.resolve())
    if kept is not None:
        return kept, False
    results.mkdir(parents=True, exist_ok=True)
    file = results / INDEX
    db = sqlite3.connect(str(file), timeout=30)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        fresh = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
        if fresh:
            db.executescript(_DDL + f"PRAGMA user_version = {INDEX_VERSION};")
        elif version != INDEX_VERSION:
            db.close()
            warnings.warn(_other_version(file, version, "rebuilding it from the run files"), stacklevel=3)
            file.unlink()
            return _open(results)
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise
        db.close()
        warnings.warn(f"{file} was damaged ({exc}); rebuilding it from the run files", stacklevel=3)
        file.unlink()
        return _open(results)
    return db, fresh


def connect(results: Path) -> sqlite3.Connection:
    """Open (creating if needed) the index of a results folder.

    A damaged index, or one written by another edgebench version (its ``user_version``
    is not `INDEX_VERSION`), is deleted and started again with a warning: it is only a
    cache of the run files, and `edgebench.results.store.sync` refills it. Inside
    `read_only`, the folder's in-memory copy instead.
    """
    return _open(results)[0]


@contextmanager
def read_only(results: Path) -> Iterator[None]:
    """Inside, the index of ``results`` is an in-memory copy: nothing in the folder is written.

    The file is copied in when it can be trusted (this version, readable, opened
    read-only); otherwise (missing, damaged, another version: said in one warning) the
    copy starts empty. Either way `edgebench.results.store.sync` brings the copy up to
    date from the run files, and it is dropped at the end of the block.
    """
    key = results.resolve()
    if key in _READ_ONLY:  # nested: the outer block owns the copy
        yield
        return
    mem = sqlite3.connect(":memory:", factory=_Kept)
    file = key / INDEX
    if file.is_file():
        try:
            disk = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True, timeout=30)
            try:
                version = disk.execute("PRAGMA user_version").fetchone()[0]
                if version == INDEX_VERSION:
                    disk.backup(mem)
                else:
                    warnings.warn(_other_version(file, version, _READ_AROUND.format(results=results)), stacklevel=3)
            finally:
                disk.close()
        except sqlite3.DatabaseError as exc:
            if "locked" in str(exc):
                raise
            warnings.warn(f"{file} is damaged ({exc}); {_READ_AROUND.format(results=results)}", stacklevel=3)
    if mem.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        mem.executescript(_DDL + f"PRAGMA user_version = {INDEX_VERSION};")
    _READ_ONLY[key] = mem
    try:
        yield
    finally:
        del _READ_ONLY[key]
        sqlite3.Connection.close(mem)


def forget(db: sqlite3.Connection, name: str) -> None:
    """Drop a run file (by its index name, see `rel`) and its rows from the index."""
    got = db.execute("SELECT run_id FROM files WHERE path=?", (name,)).fetchone()
    if got and got[0]:
        db.execute("DELETE FROM rows WHERE run_id=?", (got[0],))
        db.execute("DELETE FROM runs WHERE run_id=?", (got[0],))
    db.execute("DELETE FROM files WHERE path=?", (name,))


def insert(db: sqlite3.Connection, results: Path, path: Path, run: Run) -> None:
    """Index (or re-index) the run read from ``path`` (a file of the ``results`` folder)."""
    rid, name = run.run_id, rel(results, path)
    st = path.stat()
    forget(db, name)
    # the run's identity is its id: drop whatever file entry held it before
    db.execute("DELETE FROM files WHERE run_id=?", (rid,))
    db.execute("DELETE FROM rows WHERE run_id=?", (rid,))
    info = {"nightly": run.nightly, "baseline": run.baseline, "interrupted": run.interrupted,
            "upgraded_from": run.upgraded_from}  # fmt: skip
    c = run.commit_info
    dirty = c.get("dirty")
    db.execute(
        "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            rid,
            name,
            run.started or run.datetime,
            run.command,
            int(run.complete),
            json.dumps({k: v for k, v in info.items() if v is not None}),
            _commit_id(c.get("id")),
            c.get("time"),
            c.get("branch"),
            None if not isinstance(dirty, bool) else int(dirty),
        ),
    )
    db.executemany(f"INSERT INTO rows VALUES ({','.join('?' * 18)})", [row_of(rid, m) for m in run.measurements])
    db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,NULL)", (name, st.st_mtime_ns, st.st_size, rid))


def _commit_id(v: Any) -> str | None:
    # pytest-benchmark writes 'unversioned' / 'unknown' when there is no checkout
    return str(v) if v and str(v) not in ("unversioned", "unknown") else None


def mark_unreadable(db: sqlite3.Connection, results: Path, path: Path, st: os.stat_result, why: str) -> None:
    """Remember that a run file cannot be read, and why (until it changes)."""
    name = rel(results, path)
    forget(db, name)
    db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,NULL,?)", (name, st.st_mtime_ns, st.st_size, why))


def known_files(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """``{name: (mtime_ns, size)}`` of every run file the index has seen (names as `rel` gives them)."""
    return {r[0]: (r[1], r[2]) for r in db.execute("SELECT path, mtime_ns, size FROM files")}


def unreadable(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """``(name, why)`` of the run files that could not be read, by name (relative to the folder)."""
    return [(r[0], r[1]) for r in db.execute("SELECT path, error FROM files WHERE error IS NOT NULL ORDER BY path")]


def add_run(results: Path, path: Path, run: Run) -> bool:
    """Index (or re-index) one run that was just written to ``path``.

    Returns:
        Whether the index was just created or rebuilt, so that the other run files are
        still to be read into it (`edgebench.results.store.sync`).
    """
    db, fresh = _open(results)
    try:
        with db:
            insert(db, results, path, run)
    finally:
        db.close()
    return fresh


def query(results: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only query on the index (after `sync`)."""
    db = connect(results)
    try:
        return list(db.execute(sql, params))
    finally:
        db.close()


def history(
    results: Path,
    keys: Iterable[tuple[str, str, str]],
    *,
    metrics: Sequence[str] = ("p50", "p90", "top1", "peak_rss"),
    last: int = 30,
    command: str | None = None,
    before: str | None = None,
) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """The last ``last`` successful measurements of each (board, model, variant), oldest first.

    Each entry has ``run_id``, ``started``, the ``metrics``, the run's ``commit``,
    ``branch`` and ``dirty`` (None when not recorded) and the measurement's ``config``
    (a `ConfigKey`).

    Args:
        command: only runs made by this command (``nightly``, ``demo``...).
        before: only runs that started at or before this ISO time.
    """
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; known: {', '.join(METRICS)}")
    cols = ", ".join(f"r.{m}" for m in metrics)
    sql = (
        f"SELECT u.run_id, u.started, u.commit_id, u.branch, u.dirty, r.config, {cols} "
        "FROM rows r JOIN runs u ON u.run_id = r.run_id WHERE r.board=? AND r.model=? AND r.variant=? AND r.ok=1"
    )
    extra: list[Any] = []
    if command:
        sql += " AND u.command=?"
        extra.append(command)
    if before:
        sql += " AND u.started<=?"
        extra.append(before)
    sql += " ORDER BY u.started DESC, u.run_id DESC LIMIT ?"
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    db = connect(results)
    try:
        for key in keys:
            got = db.execute(sql, (*key, *extra, last)).fetchall()
            out[key] = [
                {
                    "run_id": g[0],
                    "started": g[1],
                    "commit": g[2],
                    "branch": g[3],
                    "dirty": None if g[4] is None else bool(g[4]),
                    "config": ConfigKey.from_json(json.loads(g[5])) if g[5] else ConfigKey(),
                    **dict(zip(metrics, g[6:], strict=True)),
                }
                for g in reversed(got)
            ]
    finally:
        db.close()
    return out


def runs_by(results: Path, command: str | None = None) -> list[tuple[str, str, str]]:
    """``(run_id, started, path)`` of the indexed runs, oldest first, optionally of one command."""
    sql = "SELECT run_id, started, path FROM runs"
    params: tuple[Any, ...] = ()
    if command:
        sql += " WHERE command=?"
        params = (command,)
    rows = query(results, sql + " ORDER BY started, run_id", params)
    return [(r[0], r[1], str(results / r[2])) for r in rows]
