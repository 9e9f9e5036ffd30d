"""Read-only commands on a mistyped path, the JSON schema key, the nightly verdict, CI log lines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.cli.common import JSON_SCHEMA
from edgebench.model import Check, CheckVerdict, Gate
from edgebench.workflows.nightly import NightlyResult
from edgebench.workflows.run import progress_line, regression_lines

RUNS = Path(__file__).parent / "data" / "results_runs"


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["report", "--results", "{nope}"], "results folder"),
        (["report", "--results", "{nope}", "--json"], "results folder"),
        (["compare", "a", "b", "--results", "{nope}"], "results folder"),
        (["gate", "{budgets}", "--results", "{nope}"], "results folder"),
        (["choose", "--model", "digits", "--results", "{nope}"], "results folder"),
        (["variants", "--variants", "{nope}"], "variants folder"),
    ],
)
def test_read_only_commands_create_nothing(tmp_path: Path, args: list[str], what: str) -> None:
    (tmp_path / "budgets.toml").write_text("[[budget]]\nmax_p90_ms = 10\n")
    nope = tmp_path / "typo" / "resluts"
    before = snapshot(tmp_path)
    argv = [a.format(nope=nope, budgets=tmp_path / "budgets.toml") for a in args]
    r = CliRunner().invoke(main, argv)
    assert r.exit_code == 1, r.output
    assert r.output.splitlines() == [r.output.strip()]  # one line
    assert r.output.startswith(f"error: {what} {nope} does not exist: ")
    assert snapshot(tmp_path) == before  # nothing created


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    for p in RUNS.glob("*.json"):
        shutil.copy(p, tmp_path / "runs")
    (tmp_path / "budgets.toml").write_text("[[budget]]\nmax_p90_ms = 1000\n")
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--json"],
        ["compare", "latest~1", "latest", "--json"],
        ["gate", "{budgets}", "--json"],
        ["choose", "--model", "digits_cnn", "--json"],
        ["boards", "list", "--boards-file", "{boards}", "--json"],
        ["compress", "--list-passes", "--json"],
        ["variants", "--variants", "{results}", "--json"],
    ],
)
def test_every_json_output_has_the_schema(results: Path, args: list[str]) -> None:
    (results / "boards.toml").write_text('[[boards]]\nname = "pi"\nhost = "a"\nworkdir = "/w"\n')
    argv = [a.format(budgets=results / "budgets.toml", boards=results / "boards.toml", results=results) for a in args]
    argv += ["--results", str(results)] if args[0] in ("report", "compare", "gate", "choose") else []
    r = CliRunner().invoke(main, argv)
    assert r.exit_code in (0, 1, 3), r.output
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict) and next(iter(doc)) == "schema" and doc["schema"] == JSON_SCHEMA == 1


def _gate(*verdicts: CheckVerdict) -> Gate:
    checks = tuple(Check(1, "m", "b", f"v{i}", "max_p90_ms", 1.0, 2.0, 1.0, v) for i, v in enumerate(verdicts))
    return Gate("r", checks)


def test_nightly_verdict() -> None:
    ok = NightlyResult(gate=_gate(CheckVerdict.PASS))
    assert ok.verdict == ("PASS", "0 measurement(s), none failed; gate passed (1 checks)")
    undecided = NightlyResult(gate=_gate(CheckVerdict.PASS, CheckVerdict.UNDECIDED), problems=["gate failed: ..."])
    assert undecided.verdict[0] == "UNDECIDED" and "1 check(s)" in undecided.verdict[1]
    assert undecided.exit_code == 3  # undecided still fails the job
    failed = NightlyResult(gate=_gate(CheckVerdict.FAIL), problems=["gate failed: 1 failed", "b/m/v failed: boom"])
    assert failed.verdict == ("FAIL", "gate failed: 1 failed (+1 more)")
    board = NightlyResult(gate=_gate(CheckVerdict.UNDECIDED), problems=["gate failed", "b/m/v failed: boom"])
    assert board.verdict[0] == "FAIL"  # a failed measurement is never "undecided"


def test_plain_progress_line() -> None:
    event = {"done": 6, "total": 24, "case": "pi4/digits/int8", "ok": True, "p50_ms": 1.23456}
    assert progress_line(event) == "measured pi4/digits/int8: ok, p50 1.235 ms (processes 6/24)"
    assert progress_line({"done": 1, "total": 2, "process": "pi4/digits/int8 #1/3", "ok": True}) is None
    failed = progress_line({"done": 2, "total": 2, "case": "pi4/digits/fp32", "ok": False})
    assert failed == "measured pi4/digits/fp32: FAILED (processes 2/2)"


def test_regression_lines_leave_the_traceback_out() -> None:
    log = (
        "test_variant[local-tiny-fp32] PASSED\n"
        "  ERROR: Performance has regressed:\n"
        "\ttest_variant[local-tiny-fp32] (0001_2026112) - Field 'median' has failed PercentageRegressionCheck: "
        "1159.2 > 5.0\n"
        "INTERNALERROR> Traceback (most recent call last):\n"
        "INTERNALERROR>   File ...\n"
    )
    [line] = regression_lines(log)
    assert line == "test_variant[local-tiny-fp32] (0001_2026112) - Field 'median' has failed " + (
        "PercentageRegressionCheck: 1159.2 > 5.0"
    )
    assert regression_lines("all good\n") == []
