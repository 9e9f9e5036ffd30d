"""Moving history between a folder and a server (`push`, `pull`), the spool, and the nightly's lock.

`push` and `pull` copy runs with their ids, idempotently: a run the other side holds
byte for byte is not copied again. A run both sides hold differently is replaced only
when the destination's copy is incomplete and the source's is complete or has more
measurements (a run that went on after it was first copied); otherwise the destination's
copy is kept and counted. Incomplete runs are copied as they are.

The spool is an ordinary results folder (``runs/<run_id>.json``) where a run that lost its
server mid-run keeps its finished measurements; `push` uploads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgebench.errors import NightlyBusy
from edgebench.model import Run
from edgebench.results import store as folder
from edgebench.results.pg.conn import PgStore, open_connection, psycopg_module
from edgebench.results.pg.runs import digests, open_store, parse_run, read_text, run_text, save_run, where
from edgebench.results.schema import SchemaError

if TYPE_CHECKING:
    import psycopg

SPOOL_ENV = "EDGEBENCH_SPOOL"


@dataclass
class CopyReport:
    """What `push` or `pull` did, in runs: copied (new there), updated, already the same, kept, unreadable."""

    copied: int = 0
    updated: int = 0
    same: int = 0
    kept: list[str] = field(default_factory=list)  # both sides differ and the destination's copy was kept
    unreadable: list[str] = field(default_factory=list)  # source runs that could not be read (why)

    def line(self, source: str, dest: str) -> str:
        """One line for the user: what went where."""
        parts = [f"{self.copied} run(s) copied", f"{self.updated} updated", f"{self.same} already there"]
        if self.kept:
            parts.append(f"{len(self.kept)} kept as they were there (differ: {', '.join(self.kept[:5])})")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable, skipped")
        return f"{source} -> {dest}: " + ", ".join(parts)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _newer(src: Run, dest_complete: bool, dest_measurements: int) -> bool:
    """Whether the source's copy of a run should replace the destination's (which differs)."""
    return not dest_complete and (src.complete or len(src.measurements) > dest_measurements)


def _as_store(target: PgStore | str, *, read_only: bool) -> tuple[PgStore, bool]:
    if isinstance(target, PgStore):
        return target, False
    return open_store(target, read_only=read_only), True


def push(results: Path, target: PgStore | str) -> CopyReport:
    """Copy the runs of a results folder (a spool too) to the server, oldest first, keeping their ids.

    Each run is its own transaction: an interrupted push leaves whole runs, and the next one
    copies the rest. A second push copies nothing.

    Raises:
        ResultsServerError: the server cannot be used (one line).
    """
    rep = CopyReport()
    pg, mine = _as_store(target, read_only=False)
    try:
        there = digests(pg)
        for path in folder.list_runs(results):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    run = folder.read_run(path)
            except SchemaError as exc:
                rep.unreadable.append(str(exc))
                continue
            have, text = there.get(run.run_id), run_text(run)
            if have is None:
                save_run(pg, run, text=text)
                rep.copied += 1
            elif have[0] == _sha(text):
                rep.same += 1
            elif _newer(run, have[1], have[2]):
                save_run(pg, run, text=text)
                rep.updated += 1
            else:
                rep.kept.append(run.run_id)
    finally:
        if mine:
            pg.close()
    return rep


def pull(source: PgStore | str, results: Path) -> CopyReport:
    """Copy the server's runs into a results folder (written and indexed as a run writes them), keeping ids.

    The server is read in a read-only session. A second pull copies nothing.

    Raises:
        ResultsServerError: the server cannot be used (one line).
        ResultsPathError: the folder cannot be written.
    """
    rep = CopyReport()
    pg, mine = _as_store(source, read_only=True)
    try:
        folder.prepare(results)
        for run_id in sorted(digests(pg)):  # run ids sort by time: the folder's own order
            text = read_text(pg, run_id)
            if text is None:  # deleted meanwhile
                continue
            try:
                run = parse_run(text, where(pg, run_id))
            except SchemaError as exc:
                rep.unreadable.append(str(exc))
                continue
            path = folder.run_path(results, run_id)
            mine_text = run_text(run)
            local: Run | None = None
            if path.exists():
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        local = folder.read_run(path)
                except SchemaError:
                    local = None  # a damaged local copy is replaced
            if local is None:
                rep.copied += 0 if path.exists() else 1
                rep.updated += 1 if path.exists() else 0
                folder.save_run(results, run)
            elif run_text(local) == mine_text:
                rep.same += 1
            elif _newer(run, local.complete, len(local.measurements)):
                folder.save_run(results, run)
                rep.updated += 1
            else:
                rep.kept.append(run_id)
    finally:
        if mine:
            pg.close()
    return rep


def default_spool() -> Path:
    """Where runs that lost their server are kept: ``$EDGEBENCH_SPOOL``, else ``~/.local/state/edgebench/spool``."""
    env = os.environ.get(SPOOL_ENV)
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "edgebench" / "spool"


def push_command(spool: Path, target: PgStore | str) -> str:
    """The exact command that uploads a spool (the URL without its password)."""
    pg = target if isinstance(target, PgStore) else PgStore(target)
    cmd = f"edgebench results push {shlex.quote(str(spool))} {shlex.quote(pg.redacted)}"
    return cmd + (" (with the password in PGPASSWORD or ~/.pgpass)" if pg.had_password else "")


def spool_run(spool: Path, run: Run, target: PgStore | str, why: str = "") -> str:
    """Keep a run whose server was lost in the spool folder; returns the one line telling the user.

    The run is written as it stands (``complete`` false, ``interrupted`` as given by the caller)
    into ``spool`` as into any results folder, so `push` uploads it later.

    Raises:
        ResultsPathError: the spool cannot be written either (naming it and the fix).
    """
    folder.save_run(spool, run)
    pg = target if isinstance(target, PgStore) else PgStore(target)
    n = len(run.measurements)
    lost = f" ({why})" if why else ""
    return (
        f"lost the results server {pg.redacted}{lost}: run {run.run_id} and its {n} finished measurement(s) are kept "
        f"in {spool}; upload them with: {push_command(spool, pg)}"
    )


def _lock_key(name: str) -> int:
    """The advisory lock key of a nightly name (64 bits of its sha256, signed)."""
    return int.from_bytes(hashlib.sha256(f"edgebench nightly {name}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def nightly_lock(pg: PgStore, name: str, *, timeout: float = 0.0) -> Iterator[None]:
    """Hold the nightly ``name``'s advisory lock on the server (session level, on a connection of its own).

    The server releases it when the holder's connection ends, so a killed nightly never
    leaves a stale lock. The holder's connection is named ``edgebench nightly NAME (pid P on HOST)``
    so that a refused caller can say who holds it.

    Args:
        timeout: seconds to wait for the holder (0: try once).

    Raises:
        NightlyBusy: another nightly of that name holds the lock (naming it and the holder).
        ResultsServerError: the server cannot be used.
    """
    pg_mod = psycopg_module(pg.url)
    key = _lock_key(name)
    me = f"edgebench nightly {name} (pid {os.getpid()} on {socket.gethostname()})"[:63]
    conn = open_connection(pg.url, application_name=me)
    try:
        if timeout <= 0:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            got = bool(row and row[0])
        else:
            conn.execute(f"SET lock_timeout = {int(timeout * 1000)}")
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                got = True
            except pg_mod.errors.LockNotAvailable:
                got = False
        if not got:
            holder = _holder(conn, key)
            raise NightlyBusy(
                f"another nightly {name!r} is running on {pg} ({holder or 'holder unknown'}): wait for it to finish; "
                "two nightlies never overlap"
            )
        yield
    finally:
        conn.close()  # ends the session: the lock goes with it


def _holder(conn: psycopg.Connection[Any], key: int) -> str:
    """Who holds an advisory lock (its connection's name), or '' when the server does not say."""
    classid, objid = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    try:
        row = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s "
            "AND l.objsubid = 1 LIMIT 1",
            (classid, objid),
        ).fetchone()
    except Exception:  # the holder's name is a courtesy: never a reason to fail
        return ""
    return str(row[0]) if row and row[0] else ""
