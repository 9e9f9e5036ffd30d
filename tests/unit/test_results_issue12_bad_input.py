"""Issue 12's bad-input list through the CLI: one line (or the verdict), the exit code, and the results folder
left exactly as it was (every file's bytes and modification time; no index created).

Also checked elsewhere: every invalid budget value (test_results_gate.py), an index of another edgebench
version (test_results_index.py), a mistyped folder (test_results_nightly_readonly.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.model import CheckVerdict
from edgebench.results import index
from edgebench.results.choose import choose
from edgebench.results.gate import check_limit
from edgebench.results.store import open_run

RUNS = Path(__file__).parent / "data" / "results_runs"


def state(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file and folder under ``root``: bytes (b"" for a folder) and modification time."""
    return {
        str(p.relative_to(root)): (b"" if p.is_dir() else p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """The two fixture runs, the newer one re-labelled as measured at batch 4 (another configuration)."""
    res = tmp_path / "results"
    (res / "runs").mkdir(parents=True)
    for p in RUNS.glob("*.json"):
        shutil.copy(p, res / "runs")
    newest = max((res / "runs").glob("*.json"))
    doc = json.loads(newest.read_text())
    for b in doc["benchmarks"]:
        b["extra_info"]["batch_size"] = 4
    newest.write_text(json.dumps(doc))
    (tmp_path / "budgets.toml").write_text('baseline = "latest~1"\n[[budget]]\nmax_regression_pct = 5\n')
    (tmp_path / "bad.toml").write_text("[[budget]]\nmin_accuracy = 97\n")
    return res


CASES = [
    # two runs of different configurations compared without the flag
    (["compare", "latest~1", "latest"], 1, "local/digits_cnn/fp32 (and 2 more) was measured with a different config"),
    (["gate", "{budgets}"], 1, "local/digits_cnn/fp32 (and 2 more) was measured with a different configuration"),
    # a budgets file with an invalid value (each value: test_results_gate.py)
    (["gate", "{bad}"], 1, "{bad}: [[budget]] #1 field 'min_accuracy' is 97"),
    # choose with nothing that fits
    (["choose", "-m", "digits_cnn", "--max-p90", "1us"], 1, None),
    # compare of a run with itself: no change, exit 0
    (["compare", "latest", "latest"], 0, None),
]


@pytest.mark.parametrize(("args", "code", "line"), CASES, ids=lambda x: x[0] if isinstance(x, list) else None)
def test_bad_input_is_one_line_the_right_exit_and_changes_nothing(
    results: Path, args: list[str], code: int, line: str | None
) -> None:
    names = {"budgets": results.parent / "budgets.toml", "bad": results.parent / "bad.toml"}
    argv = [a.format(**names) for a in args] + ["--results", str(results)]
    before = state(results.parent)
    got = CliRunner().invoke(main, argv)
    assert got.exit_code == code, got.output
    if line is not None:
        assert got.stderr.splitlines() == [got.stderr.strip()], got.stderr  # one line
        assert got.stderr.startswith("error: ") and line.format(**names) in got.stderr and got.stdout == ""
        if "configuration" in line:
            assert "(batch: 1 -> 4)" in got.stderr and "--allow-config-change" in got.stderr
    assert "Traceback" not in got.output
    assert state(results.parent) == before and not (results / index.INDEX).exists()


def test_compare_of_a_run_with_itself_says_no_change(results: Path) -> None:
    got = CliRunner().invoke(main, ["compare", "latest", "latest", "--results", str(results), "--json"])
    assert got.exit_code == 0 and {r["label"] for r in json.loads(got.stdout)["rows"]} == {"no change"}


def test_choose_nothing_fits_exits_1_naming_why(results: Path) -> None:
    got = CliRunner().invoke(main, ["choose", "-m", "digits_cnn", "--max-p90", "1us", "--results", str(results)])
    assert got.exit_code == 1 and "nothing meets the constraints" in got.stdout


def test_choose_and_gate_decide_a_limit_alike(results: Path, tmp_path: Path) -> None:
    """At a limit right on the measured p90, gate says undecided: choose rejects it for the same reason."""
    run = open_run(results, "latest")
    m = next(m for m in run.measurements if m.variant == "fp32")
    assert m.summary is not None and m.summary.p90_ms is not None
    limit = m.summary.p90_ms
    assert check_limit(m, "max_p90_ms", limit).verdict is CheckVerdict.UNDECIDED
    budgets = tmp_path / "at.toml"
    budgets.write_text(f'[[budget]]\nvariant = "fp32"\nmax_p90_ms = {limit!r}\n')
    gate = CliRunner().invoke(main, ["gate", str(budgets), "--results", str(results), "--json"])
    assert gate.exit_code == 3 and [c["verdict"] for c in json.loads(gate.stdout)["checks"]] == ["undecided"]
    d = choose(results, "digits_cnn", {}, max_p90_ms=limit)
    why = {(o.board, o.variant): o.reasons for o in d.rejected}
    assert "undecided against" in why[("local", "fp32")][0]
