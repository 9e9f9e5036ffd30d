"""The database schema, versioned: an ordered list of migrations, applied in place.

Everything lives in the PostgreSQL schema (namespace) ``edgebench``: ``edgebench_schema``
(one row per applied version), ``runs`` (one row per run: the run file's text and the
columns queries need) and ``rows`` (one row per measurement, the columns of the folder's
SQLite index, `edgebench.results.index.row_of`). The table and column names are the
index's, so a query written for the index runs here too (`edgebench.results.pg.query`).

`MIGRATIONS[i]` takes a database from version ``i`` to ``i + 1``; each step is SQL or a
function of the connection (a backfill). `migrate` applies what is missing inside one
transaction holding an advisory lock, so two first writers never race and a failed
upgrade leaves the database as it was. A database at a version above `SCHEMA_VERSION`
was written by a newer edgebench and is refused in one line.

Versions:

1. ``runs`` (run_id, doc, started, committed, updated, command, complete, measurements) and ``rows``.
2. ``runs`` gains the run's ``info`` and its commit (``commit_id``, ``commit_time``, ``branch``,
   ``dirty``), backfilled from each stored document, and an index by command.
3. ``accepted``: ``edgebench accept`` on a server (run id, by, why, at), in the order recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgebench import __version__
from edgebench.model import Run
from edgebench.results.pg.conn import NoWriteRights, SchemaTooNew
from edgebench.results.schema import upgrade_run

if TYPE_CHECKING:
    import psycopg

NS = "edgebench"  # the PostgreSQL schema holding the tables
LOCK_KEY = 0x6564_6765_6265_6E63  # pg_advisory_xact_lock key of the migrations ('edgebenc')

Step = str | Callable[["psycopg.Connection[Any]"], None]

_V1 = (
    f"CREATE SCHEMA IF NOT EXISTS {NS}",
    f"""CREATE TABLE {NS}.runs (
        run_id text PRIMARY KEY,
        doc text NOT NULL,
        started text NOT NULL,
        committed timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated timestamptz NOT NULL DEFAULT clock_timestamp(),
        command text NOT NULL,
        complete integer NOT NULL,
        measurements integer NOT NULL)""",
    f"""CREATE TABLE {NS}.rows (
        run_id text NOT NULL REFERENCES {NS}.runs ON DELETE CASCADE,
        pos integer NOT NULL,
        board text, model text, variant text, ok integer,
        p50 double precision, p90 double precision, p99 double precision, mean double precision,
        cv double precision, throughput double precision, rounds bigint,
        peak_rss bigint, top1 double precision, fidelity double precision, bytes bigint, error text, config text,
        PRIMARY KEY (run_id, pos))""",
    f"CREATE INDEX rows_key ON {NS}.rows (model, board, variant)",
    f"CREATE INDEX runs_order ON {NS}.runs (started, committed, run_id)",
)


def commit_columns(run: Run) -> tuple[str, str | None, str | None, str | None, int | None]:
    """``(info, commit_id, commit_time, branch, dirty)`` of a run, as the folder's index computes them."""
    info = {"nightly": run.nightly, "baseline": run.baseline, "interrupted": run.interrupted,
            "upgraded_from": run.upgraded_from}  # fmt: skip
    c = run.commit_info
    cid, dirty = c.get("id"), c.get("dirty")
    return (
        json.dumps({k: v for k, v in info.items() if v is not None}),
        str(cid) if cid and str(cid) not in ("unversioned", "unknown") else None,
        c.get("time"),
        c.get("branch"),
        None if not isinstance(dirty, bool) else int(dirty),
    )


def _backfill_commits(conn: psycopg.Connection[Any]) -> None:
    """Version 2: fill the new columns from each stored document (one that cannot be read keeps nulls)."""
    rows = conn.execute(f"SELECT run_id, doc FROM {NS}.runs").fetchall()
    for run_id, doc in rows:
        try:
            run = Run.from_json(upgrade_run(json.loads(doc)))
        except Exception:  # a damaged document: the reader says so when it is read
            continue
        conn.execute(
            f"UPDATE {NS}.runs SET info=%s, commit_id=%s, commit_time=%s, branch=%s, dirty=%s WHERE run_id=%s",
            (*commit_columns(run), run_id),
        )


_V2: tuple[Step, ...] = (
    f"ALTER TABLE {NS}.runs ADD COLUMN info text, ADD COLUMN commit_id text, ADD COLUMN commit_time text, "
    "ADD COLUMN branch text, ADD COLUMN dirty integer",
    _backfill_commits,
    f"CREATE INDEX runs_command ON {NS}.runs (command, started, committed, run_id)",
)

_V3: tuple[Step, ...] = (
    f"""CREATE TABLE {NS}.accepted (
        seq bigserial PRIMARY KEY,
        run_id text NOT NULL,
        by_whom text NOT NULL,
        why text NOT NULL,
        at text NOT NULL)""",
)

MIGRATIONS: tuple[tuple[Step, ...], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The database's schema version (0: no edgebench tables yet)."""
    got = conn.execute(f"SELECT to_regclass('{NS}.edgebench_schema')").fetchone()
    if got is None or got[0] is None:
        return 0
    row = conn.execute(f"SELECT max(version) FROM {NS}.edgebench_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def too_new(where: str, version: int) -> SchemaTooNew:
    """The error for a database written by a newer edgebench."""
    return SchemaTooNew(
        f"{where}: the results database has schema version {version}, written by a newer edgebench (this one "
        f"knows up to {SCHEMA_VERSION}): upgrade edgebench (pip install -U edgebench) to use it"
    )


def migrate(conn: psycopg.Connection[Any], where: str, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to schema ``target`` in place; returns the version it was at.

    One transaction under an advisory lock: concurrent first writers wait for each other and
    the second finds the work done; a failure leaves the database as it was.

    Args:
        where: the redacted URL, for messages.
        target: the version to reach (tests make older databases with it).

    Raises:
        SchemaTooNew: the database is newer than this edgebench.
        NoWriteRights: the user may not create or change the tables.
    """
    import psycopg

    was = schema_version(conn)
    if was > SCHEMA_VERSION:
        raise too_new(where, was)
    if was >= target:
        return was
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {NS}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {NS}.edgebench_schema (version integer PRIMARY KEY, "
                "applied timestamptz NOT NULL DEFAULT now(), edgebench text)"
            )
            was = schema_version(conn)  # again, under the lock: another writer may have done it
            if was > SCHEMA_VERSION:
                raise too_new(where, was)
            for version in range(was, target):
                for step in MIGRATIONS[version]:
                    if isinstance(step, str):
                        conn.execute(step.encode())
                    else:
                        step(conn)
                conn.execute(
                    f"INSERT INTO {NS}.edgebench_schema (version, edgebench) VALUES (%s, %s)",
                    (version + 1, __version__),
                )
    except psycopg.errors.InsufficientPrivilege as exc:
        raise NoWriteRights(
            f"{where}: user {conn.info.user!r} may not create edgebench's tables ({str(exc).splitlines()[0]}): run "
            "one writing command as the database's owner first, or GRANT CREATE ON DATABASE to this user"
        ) from None
    return was
