"""The SQLite index of the results folder: one row per measurement, for queries over history.

``<results>/index.sqlite`` is created on first use and is only a cache of the run files:
`sync` re-reads files whose size or modification time changed, forgets files that are
gone, and remembers unreadable files (with the reason) so every report can warn about
them without parsing them again. Delete the file (or call `rebuild`) and it comes back.
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.results.schema import SchemaError, measurements

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


def fidelity_of(m: dict[str, Any]) -> float | None:
    """One fidelity figure of a measurement (agreement of the variant with its parent, 0..1)."""
    f = m.get("fidelity")
    if isinstance(f, (int, float)) and not isinstance(f, bool):
        return float(f)
    if isinstance(f, dict):
        for k in ("top1_agreement", "agreement", "cosine", "value"):
            v = f.get(k)
            if isinstance(v, (int, float)):
                return float(v)
    return None


def accuracy_of(m: dict[str, Any]) -> float | None:
    """Top-1 accuracy measured on the board, or None."""
    acc = m.get("accuracy")
    v = acc.get("top1") if isinstance(acc, dict) else None
    return float(v) if isinstance(v, (int, float)) else None


def peak_of(m: dict[str, Any]) -> int | None:
    """Peak resident memory of the agent process in bytes, or None."""
    mem = m.get("memory")
    v = mem.get("peak_rss") if isinstance(mem, dict) else None
    return int(v) if isinstance(v, (int, float)) else None


def row_of(run_id: str, m: dict[str, Any]) -> tuple[Any, ...]:
    """The index row of one measurement (`measurements` entry)."""
    s = m.get("summary") or {}
    err = m.get("error")
    return (
        run_id,
        m.get("board"),
        m.get("model"),
        m.get("variant"),
        int(bool(m.get("ok"))),
        s.get("p50_ms"),
        s.get("p90_ms"),
        s.get("p99_ms"),
        s.get("mean_ms"),
        s.get("cv"),
        s.get("throughput"),
        s.get("rounds"),
        peak_of(m),
        accuracy_of(m),
        fidelity_of(m),
        m.get("bytes"),
        None if not err else (err.get("message") if isinstance(err, dict) else str(err)),
    )


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


def _forget(db: sqlite3.Connection, path: str) -> None:
    got = db.execute("SELECT run_id FROM files WHERE path=?", (path,)).fetchone()
    if got and got[0]:
        db.execute("DELETE FROM rows WHERE run_id=?", (got[0],))
        db.execute("DELETE FROM runs WHERE run_id=?", (got[0],))
    db.execute("DELETE FROM files WHERE path=?", (path,))


def _insert(db: sqlite3.Connection, path: Path, run: dict[str, Any]) -> None:
    eb = run["edgebench"]
    rid = eb["run_id"]
    st = path.stat()
    _forget(db, str(path))
    db.execute("DELETE FROM rows WHERE run_id=?", (rid,))
    info = {k: eb.get(k) for k in ("nightly", "baseline", "interrupted", "upgraded_from") if eb.get(k) is not None}
    db.execute(
        "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?)",
        (
            rid,
            str(path),
            eb.get("started") or run.get("datetime") or "",
            eb.get("command", ""),
            int(bool(eb.get("complete"))),
            json.dumps(info),
        ),
    )
    db.executemany(f"INSERT INTO rows VALUES ({','.join('?' * 17)})", [row_of(rid, m) for m in measurements(run)])
    db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,NULL)", (str(path), st.st_mtime_ns, st.st_size, rid))


def add_run(results: Path, path: Path, run: dict[str, Any]) -> None:
    """Index (or re-index) one run that was just written to ``path``."""
    db = connect(results)
    try:
        with db:
            _insert(db, path, run)
    finally:
        db.close()


@dataclass
class SyncReport:
    """What `sync` did: files (re)indexed, forgotten, and unreadable ones with the reason."""

    indexed: int = 0
    removed: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def sync(results: Path, *, warn: bool = True, on_file: Callable[[int, int], None] | None = None) -> SyncReport:
    """Bring the index up to date with the run files.

    Args:
        warn: emit one warning per unreadable run file (they are skipped, never fatal).
        on_file: progress callback ``(done, total)`` over the files that need reading.
    """
    from edgebench.results.store import list_runs, read_run

    rep = SyncReport()
    db = connect(results)
    try:
        known = {r[0]: (r[1], r[2]) for r in db.execute("SELECT path, mtime_ns, size FROM files")}
        todo = []
        present = set()
        for p in list_runs(results):
            key = str(p)
            present.add(key)
            try:
                st = p.stat()
            except OSError:
                continue
            if known.get(key) != (st.st_mtime_ns, st.st_size):
                todo.append((p, st))
        with db:
            for key in set(known) - present:
                _forget(db, key)
                rep.removed += 1
            for i, (p, st) in enumerate(todo):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        run = read_run(p)
                    _insert(db, p, run)
                    rep.indexed += 1
                except SchemaError as exc:
                    _forget(db, str(p))
                    db.execute(
                        "INSERT OR REPLACE INTO files VALUES (?,?,?,NULL,?)",
                        (str(p), st.st_mtime_ns, st.st_size, str(exc)),
                    )
                if on_file:
                    on_file(i + 1, len(todo))
        rep.unreadable = [
            (r[0], r[1]) for r in db.execute("SELECT path, error FROM files WHERE error IS NOT NULL ORDER BY path")
        ]
    finally:
        db.close()
    if warn:
        for _, why in rep.unreadable:
            warnings.warn(f"skipping {why}", stacklevel=2)
    return rep


def rebuild(results: Path) -> SyncReport:
    """Throw the index away and build it again from the run files."""
    (results / INDEX).unlink(missing_ok=True)
    return sync(results)


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
