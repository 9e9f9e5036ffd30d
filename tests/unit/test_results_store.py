"""Run files: upgrades from older schemas, corrupt files, interrupted runs, the SQLite index."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

from edgebench.errors import RunNotFound
from edgebench.model import RUN_SCHEMA, Benchmark
from edgebench.results import index, store
from edgebench.results.schema import SchemaError, new_run, upgrade_run
from edgebench.testing.runs import RunWriter

RUNS = Path(__file__).parent / "data" / "results_runs"


def real_runs() -> list[dict[str, Any]]:
    """Two runs measured for real (digits CNN fp32 / int8-dynamic / int8-static on the local board)."""
    return [json.loads(p.read_text()) for p in sorted(RUNS.glob("*.json"))]


@pytest.mark.parametrize(
    ("doc", "msg"),
    [
        ([1, 2], "not a JSON object"),
        ({"benchmarks": []}, "no edgebench block"),
        ({"edgebench": {"schema": "one"}}, "not an integer"),
        ({"edgebench": {"schema": RUN_SCHEMA + 1, "run_id": "x"}, "benchmarks": []}, "upgrade edgebench"),
        ({"edgebench": {"schema": 0, "run_id": "x"}, "benchmarks": []}, "run schema 0 is unknown"),
    ],
)
def test_unreadable_documents_say_why(doc: Any, msg: str) -> None:
    with pytest.raises(SchemaError, match=msg):
        upgrade_run(doc)


def test_malformed_benchmark_is_dropped_not_fatal(tmp_path: Path) -> None:
    run = real_runs()[0]
    run["benchmarks"][1]["extra_info"].pop("summary")
    p = tmp_path / "r.json"
    p.write_text(json.dumps(run))
    with pytest.warns(UserWarning, match=r"skipped benchmark #1: malformed"):
        got = store.read_run(p)
    assert len(got.benchmarks) == 2 and got.dropped == ("benchmark #1: malformed",)


def test_load_run_skips_corrupt_and_newer_files_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    for p in RUNS.glob("*.json"):
        shutil.copy(p, tmp_path / "runs")
    (tmp_path / "runs" / "20200101T000000Z-bad.json").write_text('{"edgebench": {"schema": 1, "run_')
    newer = real_runs()[0]
    newer["edgebench"].update(schema=RUN_SCHEMA + 1, run_id="20200101T000001Z-new")
    (tmp_path / "runs" / "20200101T000001Z-new.json").write_text(json.dumps(newer))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = [r for p in store.list_runs(tmp_path) if (r := store.load_run(p)) is not None]
    msgs = [str(w.message) for w in caught]
    assert len(got) == 2  # the two readable ones
    assert any("bad.json: not valid JSON" in m for m in msgs)
    assert any("new.json: run schema 2 is newer" in m and "upgrade edgebench" in m for m in msgs)


def test_run_writer_keeps_finished_measurements_when_interrupted(tmp_path: Path) -> None:
    ms = [Benchmark.from_json(b).measurement for b in real_runs()[0]["benchmarks"]]
    with pytest.raises(KeyboardInterrupt), RunWriter(tmp_path, new_run("test")) as w:
        w.add(ms[0])
        w.add(ms[1])
        raise KeyboardInterrupt
    files = store.list_runs(tmp_path)
    assert len(files) == 1 and not list((tmp_path / "runs").glob(".*"))  # no temp files left
    back = store.read_run(files[0])
    assert back.complete is False and back.interrupted is not None and "KeyboardInterrupt" in back.interrupted
    assert [m.variant for m in back.measurements] == ["fp32", "int8-dynamic"]
    # the samples and their summaries are the ones measured
    assert [m.samples_ns for m in back.measurements] == [m.samples_ns for m in ms[:2]]
    assert [b.measurement.summary for b in back.benchmarks] == [m.summary for m in ms[:2]]
    # the index saw every write
    rows = index.query(tmp_path, "SELECT variant FROM rows ORDER BY variant")
    assert rows == [("fp32",), ("int8-dynamic",)]


def test_index_syncs_with_files_and_rebuilds(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    for p in RUNS.glob("*.json"):
        shutil.copy(p, tmp_path / "runs")
    rep = store.sync(tmp_path)
    assert rep.indexed == 2 and rep.unreadable == []
    assert store.sync(tmp_path).indexed == 0  # nothing changed
    first = sorted(RUNS.glob("*.json"))[0].name
    (tmp_path / "runs" / first).unlink()
    assert store.sync(tmp_path).removed == 1
    hist = index.history(tmp_path, [("local", "digits_cnn", "fp32")], metrics=("p90", "top1"))
    assert len(hist[("local", "digits_cnn", "fp32")]) == 1
    (tmp_path / index.INDEX).write_bytes(b"garbage, not sqlite" * 100)
    with pytest.warns(UserWarning, match="was damaged .* rebuilding it from the run files"):
        assert store.sync(tmp_path).indexed == 1
    assert store.rebuild(tmp_path).indexed == 1


def test_find_run_by_id_prefix_and_latest(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    names = sorted(p.name for p in RUNS.glob("*.json"))
    for n in names:
        shutil.copy(RUNS / n, tmp_path / "runs")
    assert store.find_run(tmp_path, "latest").name == names[-1]
    assert store.find_run(tmp_path, "latest~1").name == names[0]
    assert store.find_run(tmp_path, names[0][:20]).name == names[0]
    with pytest.raises(RunNotFound, match="'nope' is not in"):
        store.find_run(tmp_path, "nope")
    with pytest.raises(RunNotFound, match="holds 2 run"):
        store.find_run(tmp_path, "latest~5")
