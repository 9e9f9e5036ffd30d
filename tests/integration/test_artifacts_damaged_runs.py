"""Damaged run files: every read path (report, compare, gate, choose, nightly) warns in one line and goes on
(the real CLI, stored fixture runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

RUNS = Path(__file__).parents[1] / "unit" / "data" / "results_runs"
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    for p in RUNS.glob("*.json"):
        shutil.copy(p, tmp_path / "runs")
    return tmp_path


def damaged(results: Path, run_id: str, data: list[object]) -> Path:
    doc = json.loads(sorted(RUNS.glob("*.json"))[-1].read_text())
    doc["edgebench"]["run_id"] = run_id
    doc["benchmarks"][0]["stats"]["data"] = data
    path = results / "runs" / f"{run_id}.json"
    path.write_text(json.dumps(doc))
    return path


def eb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("data", [[], ["x", None], [1.0, float("nan")]], ids=["empty", "text", "nan"])
def test_report_and_compare_skip_bad_samples_with_one_warning(results: Path, data: list[object]) -> None:
    path = damaged(results, "29990101T000000Z-bad", data)
    before = path.read_bytes()
    for args in (["report", "29990101T000000Z-bad"], ["compare", "latest~1", "29990101T000000Z-bad"]):
        out = eb(*args, "--results", str(results))
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
        warned = [ln for ln in out.stderr.splitlines() if "samples empty or not numbers" in ln]
        assert len(warned) == 1 and warned[0].startswith("warning: ") and "fp32" in warned[0]
        assert "int8-static" in out.stdout  # the rest of the run is reported
    assert path.read_bytes() == before  # reading never rewrites a run file


def test_plain_report_skips_an_unreadable_latest_run_and_says_so(results: Path) -> None:
    (results / "runs" / "29990101T000000Z-torn.json").write_text('{"edgebench": {"run_id"')
    newest = sorted(RUNS.glob("*.json"))[-1].stem
    out = eb("report", "--results", str(results))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert f"reporting the newest readable run {newest}" in out.stderr and "torn.json" in out.stderr
    assert out.stdout.startswith(f"run {newest}") or f"run {newest}" in out.stdout


def one_warning(stderr: str, what: str) -> str:
    """The single ``warning:`` line about ``what`` (never Python's ``file.py:N: UserWarning`` form)."""
    assert "Traceback" not in stderr and "UserWarning" not in stderr, stderr
    (line,) = [ln for ln in stderr.splitlines() if what in ln]
    assert line.startswith("warning: "), line
    return line


def test_gate_warns_once_and_never_passes_a_run_with_a_damaged_measurement(results: Path) -> None:
    path = damaged(results, "29990101T000000Z-bad", [])
    before = path.read_bytes()
    budgets = results / "budgets.toml"
    budgets.write_text('[[budget]]\nmodel = "digits_cnn"\nmax_p90_ms = 1000\n')
    out = eb("gate", str(budgets), "--results", str(results), "--json")
    assert out.returncode == 3, out.stderr  # the int8 rows pass, but fp32 is unknown
    assert "fp32" in one_warning(out.stderr, "samples empty or not numbers")
    doc = json.loads(out.stdout)
    (readable,) = [c for c in doc["checks"] if c["check"] == "run readable"]
    assert readable["verdict"] == "undecided" and "fp32" in readable["note"]
    assert {c["variant"] for c in doc["checks"] if c["verdict"] == "pass"} == {"int8-dynamic", "int8-static"}
    assert path.read_bytes() == before


def test_choose_skips_damaged_and_torn_run_files_with_one_warning_each(results: Path) -> None:
    damaged(results, "29990101T000000Z-bad", [])
    (results / "runs" / "29980101T000000Z-torn.json").write_text('{"edgebench": {"run_id"')
    out = eb("choose", "-m", "digits_cnn", "--results", str(results), "--json")
    assert out.returncode == 0, out.stderr
    one_warning(out.stderr, "29980101T000000Z-torn.json: not valid JSON")
    assert "fp32" in one_warning(out.stderr, "samples empty or not numbers")
    chosen = {(o["variant"], o["run_id"]) for o in json.loads(out.stdout)["chosen"]}
    assert ("fp32", "29990101T000000Z-bad") not in chosen and ("int8-static", "29990101T000000Z-bad") in chosen
    assert any(v == "fp32" for v, _ in chosen)  # fp32 comes from the older, intact run


def test_nightly_warns_once_about_a_damaged_baseline_and_goes_on(results: Path, tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    base = damaged(results, "20000101T000000Z-base", [1.0, float("nan")])
    (tmp_path / "nightly.toml").write_text(
        f'[nightly]\nboards = ["local"]\nvariants = "{root}"\nbaseline = "20000101T000000Z-base"\n'
        "[nightly.settings]\nmin_time_s = 0.05\nmin_rounds = 10\nwarmup_min_iters = 2\nwarmup_min_s = 0\nrepeats = 1\n"
    )
    out = eb("nightly", str(tmp_path / "nightly.toml"), "--results", str(results), "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "fp32" in one_warning(out.stderr, "samples empty or not numbers")
    doc = json.loads(out.stdout)
    assert doc["vs_baseline"]["a"] == "20000101T000000Z-base" and Path(doc["run_file"]).is_file()
    assert json.loads(base.read_text())["benchmarks"][0]["stats"]["data"][0] == 1.0  # never rewritten
