"""The schema's migrations on a real server: an upgrade from version 1 in place, a failed step changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from edgebench.results import index
from edgebench.results import store as folder
from edgebench.results.index import row_of
from edgebench.results.pg import (
    SCHEMA_VERSION,
    ResultsServerError,
    history,
    migrate,
    open_store,
    read_run,
    run_text,
    runs_by,
    schema_version,
)
from edgebench.results.pg import migrations as pg_migrations

from ._runs import make_run


def write_as_version_1(conn: psycopg.Connection[Any], run: Any) -> None:
    """What an edgebench of schema version 1 wrote for a run (no commit columns)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO edgebench.runs (run_id, doc, started, command, complete, measurements) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (run.run_id, run_text(run), run.started, run.command, int(run.complete), len(run.measurements)),
        )
        for pos, m in enumerate(run.measurements):
            r = row_of(run.run_id, m)
            conn.execute(f"INSERT INTO edgebench.rows VALUES ({', '.join(['%s'] * 19)})", (r[0], pos, *r[1:]))


def test_a_version_1_database_is_upgraded_in_place(pg_db: str, tmp_path: Path) -> None:
    runs = [make_run(i, n=6, command="nightly" if i % 2 else "run") for i in range(6)]
    with psycopg.connect(pg_db, autocommit=True) as conn:
        assert migrate(conn, "db", target=1) == 0 and schema_version(conn) == 1
        cols = {
            r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name='runs'")
        }
        assert "commit_id" not in cols  # really the first version
        for run in runs:
            write_as_version_1(conn, run)
    # a read-only command cannot upgrade it: one line saying what will
    with pytest.raises(
        ResultsServerError, match=f"schema version 1, older than this edgebench's {SCHEMA_VERSION}: run one writing"
    ):
        open_store(pg_db, read_only=True)
    with open_store(pg_db) as s:  # a writer upgrades it
        assert s.version == SCHEMA_VERSION == 3
        versions = s.connection().execute("SELECT version FROM edgebench.edgebench_schema ORDER BY 1").fetchall()
        assert [v[0] for v in versions] == list(range(1, SCHEMA_VERSION + 1))
    for run in runs:
        folder.save_run(tmp_path, run)
    folder.sync(tmp_path)
    keys = sorted({m.key for r in runs for m in r.measurements})
    with open_store(pg_db, read_only=True) as s:
        for run in runs:
            assert run_text(read_run(s, run.run_id)) == folder.run_path(tmp_path, run.run_id).read_text()
        got = history(s, keys, metrics=("p50", "top1"))
        assert got == index.history(tmp_path, keys, metrics=("p50", "top1"))
        assert {e["commit"] for rows in got.values() for e in rows} >= {f"{i:040x}" for i in range(6) if i % 5 != 4}
        assert [r[:2] for r in runs_by(s, "nightly")] == [r[:2] for r in index.runs_by(tmp_path, "nightly")]


def test_a_failed_migration_leaves_the_database_as_it_was(pg_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(pg_db):
        pass

    def broken(conn: psycopg.Connection[Any]) -> None:
        raise RuntimeError("step 2 of the next version failed")

    nxt = ("CREATE TABLE edgebench.half_done (x int)", broken)
    monkeypatch.setattr(pg_migrations, "MIGRATIONS", (*pg_migrations.MIGRATIONS, nxt))
    with psycopg.connect(pg_db, autocommit=True) as conn:
        with pytest.raises(RuntimeError, match="step 2 of the next version"):
            migrate(conn, "db", target=SCHEMA_VERSION + 1)
        assert schema_version(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT to_regclass('edgebench.half_done')").fetchone() == (None,)
