"""Budgets files: the shared validator's one-line errors for values that make no sense, and the gate's checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.errors import ConfigError
from edgebench.results.gate import load_budgets

RUNS = Path(__file__).parent / "data" / "results_runs"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "res" / "runs").mkdir(parents=True)
    for p in RUNS.glob("*.json"):
        shutil.copy(p, tmp_path / "res" / "runs")
    return tmp_path / "res"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        ("max_p90_ms = nan", "field 'max_p90_ms' is nan: input should be a finite number"),
        ("max_p99_ms = inf", "field 'max_p99_ms' is inf: input should be a finite number"),
        ("max_peak_mb = -5", "field 'max_peak_mb' is -5; it must be >= 0"),
        ("max_regression_pct = -inf", "field 'max_regression_pct' is -inf"),
        ("min_accuracy = 97", "field 'min_accuracy' is 97: accuracy limits are fractions in [0, 1]; write 0.97"),
        ("min_accuracy = 1.5", "field 'min_accuracy' is 1.5: accuracy limits are fractions in [0, 1]"),
        ("min_accuracy = nan", "field 'min_accuracy' is nan: accuracy limits are fractions in [0, 1]"),
        ("min_accuracy = -0.1", "field 'min_accuracy' is -0.1: accuracy limits are fractions in [0, 1]"),
        ('min_accuracy = "150 %"', "field 'min_accuracy' is '150 %': accuracy limits are fractions in [0, 1]"),
        ('min_accuracy = "high"', "field 'min_accuracy' is 'high'"),
    ],
)
def test_a_budget_that_makes_no_sense_is_one_line_exit_1_and_nothing_written(
    results: Path, tmp_path: Path, line: str, msg: str
) -> None:
    b = tmp_path / "budgets.toml"
    b.write_text(f'[[budget]]\nmodel = "digits_cnn"\nmax_size_mb = 1\n{line}\n')
    before = snapshot(results)
    junit, md = tmp_path / "g.xml", tmp_path / "g.md"
    args = ["gate", str(b), "--results", str(results), "--junit", str(junit), "--markdown", str(md)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    assert res.stderr.count("\n") == 1 and f"{b}: [[budget]] #1 {msg}" in res.stderr
    assert "Traceback" not in res.output and not junit.exists() and not md.exists()
    assert snapshot(results) == before


def test_accuracy_as_a_fraction_or_a_percent_string(tmp_path: Path) -> None:
    b = tmp_path / "b.toml"
    b.write_text('[[budget]]\nmin_accuracy = "97 %"\n[[budget]]\nmin_accuracy = 0.97\n[[budget]]\nmin_accuracy = 1\n')
    got = [x.min_accuracy for x in load_budgets(b).budgets]
    assert got == [pytest.approx(0.97), 0.97, 1.0]
    b.write_text("[[budget]]\nmin_accuracy = 0.9\nbogus = 1\n")
    with pytest.raises(ConfigError, match=r"field 'bogus' is unknown; valid fields: board, .*min_accuracy, model"):
        load_budgets(b)
    b.write_text('nightly = "x"\n[[budget]]\nmax_p90_ms = 1\n')
    with pytest.raises(ConfigError, match=r"field 'nightly' is unknown; valid fields: baseline, budget"):
        load_budgets(b)


def test_gate_help_says_which_statistic_each_budget_uses() -> None:
    out = CliRunner().invoke(main, ["gate", "--help"]).output
    assert "max_regression_pct      the MEDIAN against the baseline run" in out
    assert "p90/p99 of each process" in out and "--allow-config-change" in out


def test_gate_of_a_run_against_itself_passes_a_zero_regression_budget(results: Path, tmp_path: Path) -> None:
    b = tmp_path / "b.toml"
    b.write_text('baseline = "latest"\n[[budget]]\nmax_regression_pct = 0\n')
    res = CliRunner().invoke(main, ["gate", str(b), "--results", str(results)])
    assert res.exit_code == 0, res.output
    assert "gate PASS: 3 passed, 0 failed, 0 undecided" in res.stdout
