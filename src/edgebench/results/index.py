"""The SQLite index of the results folder: one row per measurement, for queries over history.

``<results>/index.sqlite`` is created on first use and is only a cache of the run files:
`edgebench.results.store.sync` re-reads files whose size or modification time changed,
forgets files that are gone, and remembers unreadable files (with the reason) so every
report can warn about them without parsing them again. Delete the file (or call
`store.rebuild`) and it comes back. This module knows the database, not the files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from edgebench.model import Measurement, Run

INDEX = "index.sqlite"
INDEX_VERSION = 1
METRICS = ("p50", "p90", "p99", "mean", "cv", "throughput", "rounds", "peak_rss", "top1", "fidelity", "bytes")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER, run_id TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, path TEXT, started TEXT, command TEXT, complete INTEGER, info TEXT);
CREATE TABLE IF NOT EXISTS rows (
    run_id TEXT, board TEXT, model TEXT, variant TEXT, ok INTEGER,
    p50 REAL, p90 REAL, p99 REAL, mean REAL, cv REAL, throughput REAL, rounds INTEGER,
    peak_rss INTEGER, top1 REAL, fidelity REAL, bytes INTEGER, error TEXT);
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
    )  # fmt: skip


def connect(results: Path) -> sqlite3.Connection:
    """Open (creating if needed) the index of a results folder."""
    results.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(results / INDEX), timeout=30)
    try:
        db.executescript(_DDL)
        got = db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
    except sqlite3.DatabaseError as exc:
        if "locked" in str(exc):
            raise
        # a damaged index is only a cache: start it again from the run files
        db.close()
        warnings.warn(f"{results / INDEX} was damaged ({exc}); rebuilding it from the run files", stacklevel=2)
        (results / INDEX).unlink()
        return connect(results)
    if got is None:
        db.execute("INSERT INTO meta VALUES ('version', ?)", (str(INDEX_VERSION),))
        db.commit()
    elif got[0] != str(INDEX_VERSION):  # an index from another edgebench: rebuild it
        db.close()
        (results / INDEX).unlink()
        return connect(results)
    return db


def forget(db: sqlite3.Connection, path: str) -> None:
    """Drop a run file and its rows from the index."""
    got = db.execute("SELECT run_id FROM files WHERE path=?", (path,)).fetchone()
    if got and got[0]:
        db.execute("DELETE FROM rows WHERE run_id=?", (got[0],))
        db.execute("DELETE FROM runs WHERE run_id=?", (got[0],))
    db.execute("DELETE FROM files WHERE path=?", (path,))


def insert(db: sqlite3.Connection, path: Path, run: Run) -> None:
    """Index (or re-index) the run read from ``path``."""
    rid = run.run_id
    st = path.stat()
    forget(db, str(path))
    db.execute("DELETE FROM rows WHERE run_id=?", (rid,))
    info = {"nightly": run.nightly, "baseline": run.baseline, "interrupted": run.interrupted,
            "upgraded_from": run.upgraded_from}  # fmt: skip
    db.execute(
        "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?)",
        (
            rid,
            str(path),
            run.started or run.datetime,
            run.command,
            int(run.complete),
            json.dumps({k: v for k, v in info.items() if v is not None}),
        ),
    )
    db.executemany(f"INSERT INTO rows VALUES ({','.join('?' * 17)})", [row_of(rid, m) for m in run.measurements])
    db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,NULL)", (str(path), st.st_mtime_ns, st.st_size, rid))


def mark_unreadable(db: sqlite3.Connection, path: Path, st: os.stat_result, why: str) -> None:
    """Remember that a run file cannot be read, and why (until it changes)."""
    forget(db, str(path))
    db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,NULL,?)", (str(path), st.st_mtime_ns, st.st_size, why))


def known_files(db: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """``{path: (mtime_ns, size)}`` of every run file the index has seen."""
    return {r[0]: (r[1], r[2]) for r in db.execute("SELECT path, mtime_ns, size FROM files")}


def unreadable(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """``(path, why)`` of the run files that could not be read, by path."""
    return [(r[0], r[1]) for r in db.execute("SELECT path, error FROM files WHERE error IS NOT NULL ORDER BY path")]


def add_run(results: Path, path: Path, run: Run) -> None:
    """Index (or re-index) one run that was just written to ``path``."""
    db = connect(results)
    try:
        with db:
            insert(db, path, run)
    finally:
        db.close()


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

    Args:
        command: only runs made by this command (``nightly``, ``demo``...).
        before: only runs that started at or before this ISO time.
    """
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; known: {', '.join(METRICS)}")
    cols = ", ".join(f"r.{m}" for m in metrics)
    sql = (
        f"SELECT u.run_id, u.started, {cols} FROM rows r JOIN runs u ON u.run_id = r.run_id "
        "WHERE r.board=? AND r.model=? AND r.variant=? AND r.ok=1"
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
                {"run_id": g[0], "started": g[1], **dict(zip(metrics, g[2:], strict=True))} for g in reversed(got)
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
    return [(r[0], r[1], r[2]) for r in query(results, sql + " ORDER BY started, run_id", params)]
