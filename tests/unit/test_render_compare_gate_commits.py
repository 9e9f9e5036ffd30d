"""compare and gate name each run's commit (terminal, Markdown, HTML, --json); the nightly summary carries a schema."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_render_widths import NUMBER, RUNS, run, text  # one console-capture helper for the render tests

from edgebench.cli import main
from edgebench.model import JSON_SCHEMA, Gate, Run
from edgebench.render.compare import ComparisonView
from edgebench.render.gate import GateView
from edgebench.render.html import comparison_html, gate_html
from edgebench.render.markdown import comparison_markdown, gate_markdown
from edgebench.results.compare import compare_runs
from edgebench.results.gate import evaluate, gate_of, load_budgets
from edgebench.workflows.nightly import NightlyResult

A, B = (json.loads(p.read_text())["edgebench"]["run_id"] for p in RUNS)
COMMITS = ({"id": "1111111aaaaaaa", "dirty": False, "branch": "main"}, {"id": "2222222bbbbbbb", "dirty": True})
SAID = f"A {A} (commit 1111111 on main) → B {B} (commit 2222222*)"


def with_commits(*infos: dict[str, object]) -> list[Run]:
    return [replace(run(i), commit_info=info) for i, info in enumerate(infos)]


def flat(s: str) -> str:
    return " ".join(s.split())


def gate(tmp_path: Path, baseline: bool = True) -> Gate:
    (tmp_path / "budgets.toml").write_text("[[budget]]\nmax_p90_ms = 100\nmax_regression_pct = 50\n")
    a, b = with_commits(*COMMITS)
    base = a if baseline else None
    return gate_of(b, evaluate(b, load_budgets(tmp_path / "budgets.toml"), base), base)


@pytest.mark.parametrize("width", [250, 80])
def test_compare_header_names_both_commits(width: int) -> None:
    d = compare_runs(*with_commits(*COMMITS))
    out = text(ComparisonView(d), width)
    assert SAID in flat(out)
    assert max(len(ln) for ln in out.splitlines()) <= width
    wide = set(NUMBER.findall(text(ComparisonView(d), 250)))
    assert [n for n in NUMBER.findall(out) if n not in wide] == []  # no figure cut
    assert (d.to_json()["commit_a"], d.to_json()["commit_b"]) == ("1111111", "2222222*")
    assert (d.to_json()["branch_a"], d.to_json()["branch_b"]) == ("main", None)
    assert SAID in comparison_markdown(d)
    assert "(commit 2222222*)</p>" in comparison_html("vs last", d)


def test_compare_without_commits_says_so() -> None:
    d = compare_runs(run(0), run(1))
    assert f"A {A} (no commit recorded) → B {B} (no commit recorded)" in flat(text(ComparisonView(d), 80))
    assert d.to_json()["commit_a"] is None and d.to_json()["commit_b"] is None


@pytest.mark.parametrize("width", [250, 80])
def test_gate_header_names_the_run_and_baseline_commits(width: int, tmp_path: Path) -> None:
    g = gate(tmp_path)
    out = text(GateView(g), width)
    said = f"gate on run {B} (commit 2222222*) against baseline {A} (commit 1111111 on main)"
    assert said in flat(out)
    assert max(len(ln) for ln in out.splitlines()) <= width
    wide = set(NUMBER.findall(text(GateView(g), 250)))
    assert [n for n in NUMBER.findall(out) if n not in wide] == []
    doc = g.to_json()
    assert (doc["commit"], doc["branch"], doc["baseline"], doc["baseline_commit"], doc["baseline_branch"]) == (
        "2222222*",
        None,
        A,
        "1111111",
        "main",
    )
    md = gate_markdown(g)
    assert f"run {B} (commit 2222222*) against baseline {A} (commit 1111111 on main): " in md
    assert f"run {B} (commit 2222222*) against baseline" in gate_html(g)


def test_gate_without_baseline_or_commit(tmp_path: Path) -> None:
    (tmp_path / "budgets.toml").write_text("[[budget]]\nmax_p90_ms = 100\n")
    g = gate_of(run(1), evaluate(run(1), load_budgets(tmp_path / "budgets.toml"), None))
    out = flat(text(GateView(g), 80))
    assert f"gate on run {B} (no commit recorded) " in out and "baseline" not in out
    assert g.to_json()["baseline"] is None and g.to_json()["commit"] is None


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    for p, info in zip(RUNS, COMMITS, strict=True):
        doc = json.loads(p.read_text())
        doc["commit_info"] = info
        (tmp_path / "runs" / p.name).write_text(json.dumps(doc))
    (tmp_path / "budgets.toml").write_text('baseline = "latest~1"\n[[budget]]\nmax_p90_ms = 1000\n')
    return tmp_path


def test_cli_compare_and_gate_name_the_commits(results: Path) -> None:
    env = {"COLUMNS": "80"}
    r = CliRunner().invoke(main, ["compare", "latest~1", "latest", "--results", str(results)], env=env)
    assert r.exit_code == 0, r.output
    assert SAID in flat(r.output) and max(len(ln) for ln in r.output.splitlines()) <= 80
    r = CliRunner().invoke(main, ["compare", "latest~1", "latest", "--results", str(results), "--json"])
    doc = json.loads(r.stdout)
    assert next(iter(doc)) == "schema" and (doc["commit_a"], doc["commit_b"]) == ("1111111", "2222222*")
    r = CliRunner().invoke(main, ["gate", str(results / "budgets.toml"), "--results", str(results)], env=env)
    assert r.exit_code == 0, r.output
    assert f"gate on run {B} (commit 2222222*) against baseline {A} (commit 1111111 on main)" in flat(r.output)
    r = CliRunner().invoke(main, ["gate", str(results / "budgets.toml"), "--results", str(results), "--json"])
    doc = json.loads(r.stdout)
    assert (doc["commit"], doc["baseline"], doc["baseline_commit"]) == ("2222222*", A, "1111111")


def test_nightly_summary_has_the_schema_first() -> None:
    doc = NightlyResult().to_dict()
    assert next(iter(doc)) == "schema" and doc["schema"] == JSON_SCHEMA == 1
    assert json.loads(json.dumps(doc))["run_id"] is None
