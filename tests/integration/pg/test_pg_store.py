"""The PostgreSQL results store against a real server: round trip, writing as it goes, the folder's answers."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest

from edgebench.errors import RunNotFound
from edgebench.results import index, schema
from edgebench.results import store as folder
from edgebench.results.pg import (
    NoWriteRights,
    PgStore,
    find_run,
    history,
    list_runs,
    load_run,
    open_run,
    open_store,
    query,
    read_run,
    run_text,
    runs_by,
    save_run,
)

from ._runs import make_run, measurement, store_both


@pytest.fixture
def pg(pg_db: str) -> PgStore:
    with open_store(pg_db) as s:
        yield s


def test_a_run_comes_back_byte_identical_to_its_file(pg: PgStore, tmp_path: Path) -> None:
    run = make_run(3, n=6)
    run = dataclasses.replace(run, extra={**run.extra, "settings": {"repeats": 3, "b": None, "a": 1}})
    path = folder.save_run(tmp_path, run)
    save_run(pg, run)
    back = read_run(pg, run.run_id)
    assert run_text(back) == path.read_text()  # what the folder's file holds, byte for byte
    assert back == folder.read_run(path)
    assert [m.samples_ns for m in back.measurements] == [m.samples_ns for m in run.measurements]
    # and the document on the server is that text too (not re-ordered as JSONB would)
    (doc,) = pg.connection().execute("SELECT doc FROM edgebench.runs").fetchone()
    assert doc == path.read_text()


def test_a_run_is_stored_as_it_goes(pg: PgStore, pg_db: str) -> None:
    run = schema.new_run("run", "20260101T000000Z-aaaaaa")
    save_run(pg, run)
    with open_store(pg_db, read_only=True) as reader:
        for k in range(5):
            run = schema.add_measurement(run, measurement("pi4", "mnist", f"v{k}", seed=k, ok=k != 2))
            save_run(pg, run)
            seen = read_run(reader, run.run_id)
            assert not seen.complete and len(seen.measurements) == k + 1
            n = reader.connection().execute("SELECT count(*) FROM edgebench.rows").fetchone()[0]
            assert n == k + 1
        run = schema.finish(run, interrupted="interrupted by SIGTERM", complete=False)
        save_run(pg, run)
        save_run(pg, run)  # the same state again: idempotent
        got = read_run(reader, run.run_id)
    assert got.interrupted == "interrupted by SIGTERM" and not got.complete
    c = pg.connection()
    assert c.execute("SELECT count(*) FROM edgebench.runs").fetchone()[0] == 1
    assert c.execute("SELECT count(*), count(DISTINCT pos) FROM edgebench.rows").fetchone() == (5, 5)
    assert c.execute("SELECT complete, measurements FROM edgebench.runs").fetchone() == (0, 5)


def test_finding_runs_as_the_folder_does(pg: PgStore, tmp_path: Path) -> None:
    runs = [make_run(i, n=2) for i in range(5)]
    store_both(tmp_path, pg, runs)
    ids = [r.run_id for r in runs]
    assert list_runs(pg) == [p.stem for p in folder.list_runs(tmp_path)] == ids
    for ref in ("latest", "latest~1", "latest~4", ids[2], ids[2][:-2]):
        assert find_run(pg, ref) == folder.find_run(tmp_path, ref).stem
    assert open_run(pg, "latest~2") == folder.open_run(tmp_path, "latest~2")
    with pytest.raises(RunNotFound, match=r"'latest~5': postgresql://\S+ holds 5 run\(s\)"):
        find_run(pg, "latest~5")
    with pytest.raises(RunNotFound, match="ambiguous"):
        find_run(pg, "2026")
    with pytest.raises(RunNotFound, match="is not in"):
        find_run(pg, "nope")
    with pytest.raises(RunNotFound):
        find_run(pg, "latest~x")
    with pytest.warns(UserWarning, match="skipping run 'gone'"):
        assert load_run(pg, "gone") is None


def test_latest_is_by_start_then_by_first_store(pg: PgStore) -> None:
    """Two runs that started in the same second: the one stored first is the older one, whatever the ids say."""
    same = "2026-02-01T10:00:00+00:00"
    b = dataclasses.replace(make_run(1, n=1, started=same), run_id="20260201T100000Z-bbbbbb")
    a = dataclasses.replace(make_run(2, n=1, started=same), run_id="20260201T100000Z-aaaaaa")
    early = make_run(3, n=1, started="2026-02-01T09:00:00+00:00")
    for r in (b, a, early):
        save_run(pg, r)
    save_run(pg, dataclasses.replace(b, complete=False))  # a later write does not move it
    assert list_runs(pg) == [early.run_id, b.run_id, a.run_id]
    assert find_run(pg, "latest") == a.run_id and find_run(pg, "latest~1") == b.run_id
    assert [r[0] for r in runs_by(pg)] == list_runs(pg)


def test_history_runs_by_and_query_match_the_folder_index(pg: PgStore, tmp_path: Path) -> None:
    runs = [make_run(i, n=8, command="nightly" if i % 2 else "run") for i in range(12)]
    store_both(tmp_path, pg, runs)
    folder.sync(tmp_path)
    keys = [*sorted({m.key for r in runs for m in r.measurements}), ("nope", "x", "y")]
    for kw in (
        {},
        {"last": 3},
        {"command": "nightly"},
        {"before": runs[6].started, "metrics": ("p50", "p99", "cv", "rounds", "bytes", "fidelity", "throughput")},
    ):
        assert history(pg, keys, **kw) == index.history(tmp_path, keys, **kw), kw  # type: ignore[arg-type]
    assert history(pg, keys)[keys[0]], "the comparison above compared something"
    for command in (None, "nightly"):
        assert [r[:2] for r in runs_by(pg, command)] == [r[:2] for r in index.runs_by(tmp_path, command)]
        assert [r[2] for r in runs_by(pg, command)] == [Path(r[2]).stem for r in index.runs_by(tmp_path, command)]
    choose_sql = (  # edgebench.results.choose.latest_rows' query, unchanged
        "SELECT r.board, r.variant, r.run_id, r.p90, r.top1, r.peak_rss, u.started FROM rows r "
        "JOIN runs u ON u.run_id = r.run_id WHERE r.model=? AND r.ok=1 ORDER BY u.started, u.run_id"
    )
    got = query(pg, choose_sql, ("cnn",))
    want = index.query(tmp_path, choose_sql, ("cnn",))
    assert got and sorted(got) == sorted(want)  # rows of one run are tied in that ORDER BY: any order, both sides
    assert [g[2] for g in got] == [w[2] for w in want]
    with pytest.raises(ValueError, match="unknown metric"):
        history(pg, keys, metrics=("p50; DROP TABLE runs",))


def test_a_nan_figure_reads_as_the_index_gives_it(pg: PgStore, tmp_path: Path) -> None:
    run = make_run(0, n=1)
    m = run.benchmarks[0].measurement
    bad = dataclasses.replace(m, summary=dataclasses.replace(m.summary, cv=float("nan")))  # type: ignore[type-var]
    run = dataclasses.replace(run, benchmarks=(dataclasses.replace(run.benchmarks[0], measurement=bad),))
    store_both(tmp_path, pg, [run])
    keys = [m.key]
    assert history(pg, keys, metrics=("cv",)) == index.history(tmp_path, keys, metrics=("cv",))
    assert json.loads(run_text(read_run(pg, run.run_id)))  # NaN is kept in the document (JSONB would refuse it)
    assert run_text(read_run(pg, run.run_id)) == folder.run_path(tmp_path, run.run_id).read_text()


def test_an_empty_database_reads_as_no_runs(pg_db: str) -> None:
    with open_store(pg_db, read_only=True) as s:
        assert s.version == 0
        assert list_runs(s) == [] and runs_by(s) == [] and history(s, [("a", "b", "c")]) == {("a", "b", "c"): []}
        with pytest.raises(RunNotFound, match="holds 0 run"):
            find_run(s, "latest")
        # and reading created nothing
        assert s.connection().execute("SELECT to_regnamespace('edgebench')").fetchone()[0] is None


def test_a_read_only_store_opens_read_only_transactions(pg: PgStore, pg_db: str) -> None:
    save_run(pg, make_run(1, n=1))
    with open_store(pg_db, read_only=True) as s:
        c = s.connection()
        assert c.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        assert [r[0] for r in runs_by(s)] == list_runs(pg)
        with pytest.raises(NoWriteRights, match="read-only"):
            save_run(s, make_run(2, n=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about on a clean read
        assert read_run(pg, list_runs(pg)[0]).complete
