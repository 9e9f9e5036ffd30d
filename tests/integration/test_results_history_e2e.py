"""History survives: two nightlies with a relative --results, then report and choose read an intact index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.results import index, store

pytestmark = pytest.mark.slow

RECIPE = """out = "variants"
[data]
source = "digits"
calib_samples = 64
[models.digits]
source = "edgebench.zoo:digits_cnn"
train_epochs = 1
[models.digits.variants.int8-dynamic]
passes = [{ pass = "int8-dynamic" }]
"""
NIGHTLY = """[nightly]
boards = ["local"]
recipe = "recipe.toml"
eval = "digits"
[nightly.settings]
min_time_s = 0.2
max_rounds = 2000
repeats = 2
"""


def test_two_nightlies_on_a_relative_folder_keep_their_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("recipe.toml").write_text(RECIPE)
    Path("cfg.toml").write_text(NIGHTLY)
    runs = []
    for commit in ("a" * 40, "b" * 40):
        got = CliRunner().invoke(main, ["nightly", "cfg.toml", "--results", "idx", "--json", "--commit", commit,
                                        "--branch", "main"])  # fmt: skip
        assert got.exit_code == 0, got.output
        runs.append(json.loads(got.stdout))
    first, second = runs
    # the next nightly found its baseline (the first, which passed) and re-measured it paired
    assert second["vs_baseline"]["a"] == first["run_id"] and second["vs_last"] is None
    assert second["baseline"] == f"{first['run_id']}, the last nightly that passed"
    assert {r["p50"]["basis"] for r in second["vs_baseline"]["rows"]} == {"paired"}
    # the index holds both runs, however the folder is spelled
    for spelling in (Path("idx"), tmp_path / "idx", Path("./idx/../idx")):
        store.sync(spelling)
        assert [r[0] for r in index.runs_by(spelling, "nightly")] == [first["run_id"], second["run_id"]]
    doc = store.read_run(Path(second["run_file"]))
    assert (doc.commit_info["id"], doc.commit_info["branch"], doc.commit_info["source"]) == ("b" * 40, "main", "option")
    m = doc.benchmarks[0].measurement
    assert m.config_key.runtime == "onnxruntime" and m.config_key.batch == 1 and m.config_key.board

    report = CliRunner().invoke(main, ["report", "--results", "idx", "--json"])
    assert report.exit_code == 0, report.output
    trends = json.loads(report.stdout)["trends"]
    assert trends and {tuple(t["commits"]) for t in trends} == {("aaaaaaa", "bbbbbbb")}
    assert all(len(t["values"]) == 2 and t["left_out"] == 0 for t in trends)

    choose = CliRunner().invoke(main, ["choose", "--model", "digits", "--results", "idx", "--json"])
    assert choose.exit_code == 0, choose.output
    assert json.loads(choose.stdout)["chosen"]
