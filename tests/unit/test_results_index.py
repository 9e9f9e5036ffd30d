"""The SQLite index: keyed by run identity (not the folder's spelling), rebuilt when written by another version."""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.model import Run
from edgebench.results import index, store
from edgebench.results.analysis import analyze_run
from edgebench.results.trend import with_trends

RUNS = Path(__file__).parent / "data" / "results_runs"


def _folder(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    for p in RUNS.glob("*.json"):
        shutil.copy(p, results / "runs")
    return results


def _counts(results: Path) -> tuple[int, int, int]:
    db = sqlite3.connect(results / index.INDEX)
    try:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("runs", "rows", "files"))  # type: ignore[return-value]
    finally:
        db.close()


def test_the_folder_spelling_does_not_matter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    store.sync(Path("results"))
    first = _counts(results)
    assert first == (2, 6, 2)
    # the same run saved again through an absolute, then a dotted spelling (parent and child of a nightly)
    run = store.read_run(next((results / "runs").glob("*.json")))
    store.save_run(results.resolve(), run)
    store.save_run(Path("./results/../results"), run)
    rep = store.sync(Path("results"))
    assert rep.removed == 0 and _counts(results) == first  # nothing forgotten, nothing doubled
    assert [r[0] for r in index.runs_by(Path("results"))] == sorted(p.stem for p in RUNS.glob("*.json"))
    hist = index.history(results, [("local", "digits_cnn", "fp32")])[("local", "digits_cnn", "fp32")]
    assert len(hist) == 2


def test_the_index_names_files_relative_to_the_folder(tmp_path: Path) -> None:
    results = _folder(tmp_path)
    store.sync(results)
    moved = tmp_path / "elsewhere"
    results.rename(moved)
    rep = store.sync(moved)  # a moved folder keeps its index: names are relative
    assert rep.indexed == 0 and rep.removed == 0 and _counts(moved) == (2, 6, 2)
    assert all(Path(p).is_file() for _, _, p in index.runs_by(moved))


def test_an_index_of_another_version_is_rebuilt_with_a_warning(tmp_path: Path) -> None:
    results = _folder(tmp_path)
    store.sync(results)
    db = sqlite3.connect(results / index.INDEX)
    db.execute("DELETE FROM rows")  # what an older edgebench could have left: not to be trusted
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with pytest.warns(UserWarning, match=r"another edgebench version \(index schema 1, this one reads 2\)"):
        rep = store.sync(results)
    assert rep.indexed == 2 and _counts(results) == (2, 6, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # now current: no warning
        store.sync(results)


def test_a_fresh_index_carries_its_version(tmp_path: Path) -> None:
    results = _folder(tmp_path)
    store.sync(results)
    db = sqlite3.connect(results / index.INDEX)
    assert db.execute("PRAGMA user_version").fetchone()[0] == index.INDEX_VERSION
    db.close()


def test_history_has_commit_and_configuration(tmp_path: Path) -> None:
    results = _folder(tmp_path)
    path = sorted((results / "runs").glob("*.json"))[-1]
    doc = json.loads(path.read_text())
    doc["commit_info"] = {"id": "0123456789abcdef", "branch": "main", "dirty": True, "time": "2026-11-25T06:00:00"}
    path.write_text(json.dumps(doc))
    store.sync(results)
    old, new = index.history(results, [("local", "digits_cnn", "fp32")])[("local", "digits_cnn", "fp32")]
    assert (old["commit"], old["branch"], old["dirty"]) == (None, None, None)
    assert (new["commit"], new["branch"], new["dirty"]) == ("0123456789abcdef", "main", True)
    key = Run.from_json(doc).benchmarks[0].measurement.config_key
    assert new["config"] == key and key.runtime == "onnxruntime" and key.batch == 1


def _run_bytes(results: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (results / "runs").glob("*.json")}


def _state(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file and folder under ``root``: its bytes (b"" for a folder) and modification time."""
    return {
        str(p.relative_to(root)): (b"" if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _old_index(results: Path) -> None:
    store.sync(results)
    db = sqlite3.connect(results / index.INDEX)
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()


READ_ONLY = [
    ["report", "--json"],
    ["compare", "latest~1", "latest", "--json"],
    ["gate", "{budgets}", "--json"],
    ["choose", "--model", "digits_cnn", "--json"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: a[0])
def test_read_only_commands_on_an_index_of_another_version_change_nothing(tmp_path: Path, args: list[str]) -> None:
    results = _folder(tmp_path)
    _old_index(results)
    budgets = tmp_path / "budgets.toml"
    budgets.write_text("[[budget]]\nmax_p90_ms = 1000\n")
    before = _state(tmp_path)
    argv = [a.format(budgets=budgets) for a in args] + ["--results", str(results)]
    got = CliRunner().invoke(main, argv)
    assert got.exit_code in (0, 3) if args[0] == "gate" else got.exit_code == 0, got.output
    lines = [line for line in got.stderr.splitlines() if "another edgebench version" in line]
    if args[0] != "compare":  # compare reads two run files, never the index
        assert len(lines) == 1 and "index schema 7" in lines[0], got.stderr
        assert f"leaves the index as it is (`edgebench index rebuild --results {results}` rewrites it" in lines[0]
    assert _state(tmp_path) == before  # not a byte, not a modification time
    if args[0] == "report":
        assert len(json.loads(got.stdout)["trends"][0]["values"]) == 2  # the history, read from the run files


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: a[0])
def test_read_only_commands_create_no_index_and_leave_a_stale_one(tmp_path: Path, args: list[str]) -> None:
    results = _folder(tmp_path)
    newest = max((results / "runs").glob("*.json"))
    budgets = tmp_path / "budgets.toml"
    budgets.write_text("[[budget]]\nmax_p90_ms = 1000\n")
    argv = [a.format(budgets=budgets) for a in args] + ["--results", str(results)]
    before = _state(tmp_path)
    got = CliRunner().invoke(main, argv)
    assert got.exit_code in (0, 3), got.output
    assert _state(tmp_path) == before and not (results / index.INDEX).exists()  # no index made
    # a stale index (the newest run came in after it was written) is caught up in memory only
    moved = newest.rename(tmp_path / newest.name)
    store.sync(results)
    moved.rename(newest)
    before = _state(tmp_path)
    got = CliRunner().invoke(main, argv)
    assert got.exit_code in (0, 3), got.output
    assert _state(tmp_path) == before
    if args[0] == "report":
        assert len(json.loads(got.stdout)["trends"][0]["values"]) == 2


def test_index_rebuild_writes_the_index_a_read_only_command_left(tmp_path: Path) -> None:
    results = _folder(tmp_path)
    _old_index(results)
    got = CliRunner().invoke(main, ["index", "rebuild", "--results", str(results)])
    assert got.exit_code == 0 and got.stdout == f"indexed 2 run file(s) into {results / index.INDEX}\n", got.output
    assert _counts(results) == (2, 6, 2)
    db = sqlite3.connect(results / index.INDEX)
    assert db.execute("PRAGMA user_version").fetchone()[0] == index.INDEX_VERSION
    db.close()
    nope = CliRunner().invoke(main, ["index", "rebuild", "--results", str(tmp_path / "typo")])
    assert nope.exit_code == 1 and nope.stderr.startswith("error: results folder ") and not (tmp_path / "typo").exists()


def test_a_read_only_command_far_behind_its_index_says_how_to_keep_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = _folder(tmp_path)
    monkeypatch.setattr(store, "STALE_HINT", 2)
    before = _state(tmp_path)
    got = CliRunner().invoke(main, ["report", "--results", str(results)])
    assert got.exit_code == 0, got.output
    [hint] = [ln for ln in got.stderr.splitlines() if "behind" in ln]
    assert hint == (
        f"warning: the index of {results} is 2 run files behind; read now, in memory only (this command only reads): "
        f"`edgebench index rebuild --results {results}` keeps that work for the next command"
    )
    assert _state(tmp_path) == before


def test_a_writing_command_rebuilds_an_index_of_another_version(tmp_path: Path) -> None:
    results = _folder(tmp_path)
    _old_index(results)
    run = store.read_run(max((results / "runs").glob("*.json")))
    with pytest.warns(UserWarning, match="rebuilding it from the run files"):
        store.save_run(results, run)
    assert _counts(results) == (2, 6, 2)  # every run, not only the one written


def test_a_trend_leaves_out_another_configuration_and_says_which_field(tmp_path: Path) -> None:
    results = _folder(tmp_path)
    path = sorted((results / "runs").glob("*.json"))[-1]
    doc = json.loads(path.read_text())
    for b in doc["benchmarks"]:
        b["extra_info"]["batch_size"] = 4
    path.write_text(json.dumps(doc))
    store.sync(results)
    report = with_trends(analyze_run(store.read_run(path)), results)
    assert {len(t.values) for t in report.trends or ()} == {1} and {t.left_out for t in report.trends or ()} == {1}
    notes = [w for w in report.warnings if w.startswith("trend of local/digits_cnn/fp32")]
    assert notes == ["trend of local/digits_cnn/fp32 leaves out 1 earlier run(s) measured in another configuration "
                     "(batch: 1 -> 4)"]  # fmt: skip
