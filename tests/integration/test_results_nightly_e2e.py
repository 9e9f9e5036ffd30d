"""edgebench nightly end to end on the local board plus an unreachable board: partial results, trends, gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.results import store

pytestmark = pytest.mark.slow

RECIPE = """out = "variants"
[data]
source = "digits"
calib_samples = 64
[models.digits]
source = "edgebench.zoo:digits_cnn"
train_epochs = 1
[models.digits.variants.int8-static]
passes = [{ pass = "int8-static" }]
"""


def test_nightly_twice_with_a_dead_board(tmp_path: Path) -> None:
    (tmp_path / "recipe.toml").write_text(RECIPE)
    (tmp_path / "boards.toml").write_text('[[boards]]\nname = "dead"\nhost = "127.0.0.1"\nport = 1\nuser = "nobody"\n')
    (tmp_path / "budgets.toml").write_text('[[budget]]\nboard = "local"\nmax_p99_ms = 1000\nmin_accuracy = 0.3\n')
    (tmp_path / "nightly.toml").write_text(
        '[nightly]\nboards = ["local", "dead"]\ninventory = "boards.toml"\nrecipe = "recipe.toml"\neval = "digits"\n'
        'budgets = "budgets.toml"\n[nightly.settings]\nmin_time_s = 0.2\nmax_rounds = 2000\nrepeats = 3\n'
    )
    results = tmp_path / "results"
    args = ["nightly", str(tmp_path / "nightly.toml"), "--results", str(results), "--json", "--branch", "main"]
    first = CliRunner().invoke(main, [*args, "--commit", "1111111aaaa"])  # trends have one point per commit
    assert first.exit_code == 3, first.output  # the dead board fails the nightly ...
    d1 = json.loads(first.stdout)
    assert d1["compress"]["built"] == ["digits/fp32", "digits/int8-static"]
    assert any(p.startswith("dead/digits/fp32 failed: dead: unreachable") for p in d1["problems"])
    run1 = store.read_run(Path(d1["run_file"])).to_json()
    assert run1["edgebench"]["command"] == "nightly"
    assert {b["extra_info"]["board"] for b in run1["benchmarks"]} == {"local"}  # ... but local's results are kept
    assert d1["gate"]["outcome"] == "pass" and d1["vs_last"] is None

    second = CliRunner().invoke(main, [*args, "--commit", "2222222bbbb"])
    d2 = json.loads(second.stdout)
    assert d2["compress"]["built"] == [] and len(d2["compress"]["skipped"]) == 2  # cached
    assert d2["vs_last"]["a"] == d1["run_id"] and len(d2["vs_last"]["rows"]) == 2
    html = Path(d2["html"]).read_text()
    assert "over 2 runs" in html and Path(d2["markdown"]).read_text().startswith("# ❌ FAIL: edgebench nightly")
    assert d2["verdict"] == "FAIL" and "<title>FAIL: edgebench nightly" in html  # never "complete" when it failed
    summary = json.loads(Path(d2["html"]).with_suffix(".json").read_text())  # the file next to the page
    assert next(iter(summary)) == "schema" and summary["schema"] == 1 and summary["run_id"] == d2["run_id"]
    commits = (d2["vs_last"]["commit_a"], d2["vs_last"]["commit_b"], d2["gate"]["commit"], d2["gate"]["baseline"])
    # the gate's baseline is the last ACCEPTED state: night 1 failed (its dead board), so there is none yet
    assert commits == ("1111111", "2222222", "2222222", None)
    assert d2["baseline"].startswith("no accepted baseline yet")
    assert "(commit 1111111 on main) → B" in Path(d2["markdown"]).read_text()
    table = CliRunner().invoke(main, ["report", "--results", str(results), "--json"])
    rep = json.loads(table.stdout)
    trends = rep["trends"]
    assert {len(t["values"]) for t in trends} == {2}
    assert rep["commit"] == "2222222" and rep["branch"] == "main"  # the measured commit, as --commit said
    assert {tuple(t["commits"]) for t in trends} == {("1111111", "2222222")}  # one point per commit
    narrow = CliRunner().invoke(main, ["report", "--results", str(results)], env={"COLUMNS": "80"}).output
    assert "commit 2222222 on main" in " ".join(narrow.split()) and "1111111..2222222" in narrow  # the terminal too
    assert max(len(ln) for ln in narrow.splitlines()) <= 80, narrow
