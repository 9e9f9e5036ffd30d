"""Moving history between a folder and a real server (push, pull), and the spool of a run that lost its server."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest
from pg_server import PgServer

from edgebench.results import schema
from edgebench.results import store as folder
from edgebench.results.pg import (
    ServerUnreachable,
    list_runs,
    open_store,
    pull,
    push,
    read_run,
    save_run,
    spool_run,
)

from ._runs import make_run, measurement


def files(results: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.list_runs(results)}


def test_push_then_pull_copy_each_run_once_with_its_id(pg_db: str, tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    runs = [make_run(i, n=3) for i in range(4)] + [make_run(9, n=2, complete=False)]
    for run in runs:
        folder.save_run(here, run)
    (here / "runs" / "20990101T000000Z-broken.json").write_text("{not json")
    rep = push(here, pg_db)
    assert (rep.copied, rep.updated, rep.same, rep.kept, len(rep.unreadable)) == (5, 0, 0, [], 1)
    assert "20990101T000000Z-broken.json: not valid JSON" in rep.unreadable[0]
    again = push(here, pg_db)
    assert (again.copied, again.updated, again.same) == (0, 0, 5)
    with open_store(pg_db, read_only=True) as s:
        assert list_runs(s) == [r.run_id for r in runs]
        assert not read_run(s, runs[-1].run_id).complete  # an incomplete run as it is
    got = pull(pg_db, there)
    assert (got.copied, got.same) == (5, 0)
    assert files(there) == {k: v for k, v in files(here).items() if "broken" not in k}  # byte for byte
    assert (pull(pg_db, there).copied, pull(pg_db, there).same) == (0, 5)
    assert "5 run(s) copied, 0 updated, 0 already there" in rep.line(str(here), pg_db)


def test_a_run_that_went_on_replaces_its_older_copy_and_a_finished_one_is_kept(pg_db: str, tmp_path: Path) -> None:
    base = make_run(1, n=2, complete=False)
    folder.save_run(tmp_path / "a", base)
    push(tmp_path / "a", pg_db)
    done = schema.finish(schema.add_measurement(base, measurement("pi4", "m", "x", seed=5)), complete=True)
    folder.save_run(tmp_path / "a", done)
    rep = push(tmp_path / "a", pg_db)
    assert (rep.copied, rep.updated, rep.same) == (0, 1, 0)
    other = dataclasses.replace(done, command="edited elsewhere")
    folder.save_run(tmp_path / "b", other)
    rep = push(tmp_path / "b", pg_db)  # the server's finished copy is kept, and said
    assert rep.kept == [done.run_id] and rep.updated == 0
    with open_store(pg_db, read_only=True) as s:
        assert read_run(s, done.run_id) == done


def test_a_run_that_loses_its_server_is_spooled_then_pushed(
    pg_server: PgServer, pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_url = pg_server.url(pg_db.rsplit("/", 1)[1], password=True)
    run = schema.new_run("run")
    with open_store(secret_url) as s:
        save_run(s, run)
        run = schema.add_measurement(run, measurement("pi4", "m", "a", seed=1))
        save_run(s, run)
        # the server goes away: every connection of this database is ended and new ones refused
        pg_server.sql(f'ALTER DATABASE "{pg_db.rsplit("/", 1)[1]}" WITH ALLOW_CONNECTIONS false')
        pg_server.sql(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{s.connection().info.dbname}'"
        )
        run = schema.add_measurement(run, measurement("pi4", "m", "b", seed=2))
        with pytest.raises(ServerUnreachable) as exc:
            save_run(s, run)
        assert pg_server.password("eb_writer") not in str(exc.value)
    spool = tmp_path / "spool"
    line = spool_run(
        spool, schema.finish(run, complete=False, interrupted="results server lost"), s, "connection ended"
    )
    assert pg_server.password("eb_writer") not in line
    cmd = f"edgebench results push {spool} {pg_db}"
    assert line == (
        f"lost the results server {pg_db} (connection ended): run {run.run_id} and its 2 finished measurement(s) are "
        f"kept in {spool}; upload them with: {cmd} (with the password in PGPASSWORD or ~/.pgpass)"
    )
    assert shlex.split(cmd)[3:] == [str(spool), pg_db]
    pg_server.sql(f'ALTER DATABASE "{pg_db.rsplit("/", 1)[1]}" WITH ALLOW_CONNECTIONS true')
    rep = push(spool, pg_db)  # the command the line gives, with PGPASSWORD set
    assert rep.updated == 1
    with open_store(pg_db, read_only=True) as r:
        back = read_run(r, run.run_id)
    assert [m.variant for m in back.measurements] == ["a", "b"] and back.interrupted == "results server lost"
