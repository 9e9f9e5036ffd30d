"""Budgets files: the shared validator's one-line errors for values that make no sense, and the gate's checks."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.errors import ConfigError
from edgebench.model import Accuracy, BoardFidelity, Budget, Budgets, CheckVerdict, Gate, Measurement, ProcessEntry
from edgebench.model.decisions import FIDELITY_CHECK
from edgebench.render.gate import junit_xml, summary
from edgebench.results.gate import comparable_history, evaluate, gate_of, load_budgets, run_gate
from edgebench.results.index import history as index_history
from edgebench.results.schema import add_measurement, finish, new_run
from edgebench.results.store import read_run, run_path, save_run

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


def measured(rng: np.random.Generator, ms: float, batch: int = 1) -> Measurement:
    """Five agent processes of about ``ms`` per inference at ``batch`` (1% process-to-process spread)."""
    samples, entries = [], []
    for k, scale in enumerate(rng.lognormal(0.0, 0.01, 5)):
        x = ms * 1e6 * scale * rng.lognormal(0.0, 0.05, 300)
        samples += [int(v) for v in x]
        entries.append(ProcessEntry(float(np.median(x)) / 1e6, x.size, None, None, None, None, 0.0, k))
    return Measurement("b", "m", "fp32", True, samples_ns=tuple(samples), processes=tuple(entries), batch_size=batch)


def test_the_regression_history_leaves_out_runs_of_another_configuration(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    results = tmp_path / "res"
    # oldest first: three steady batch-1 runs, one batch-4 run (4x the time), the baseline; then 8% slower
    plan = [(10.0, 1), (10.05, 1), (9.95, 1), (40.0, 4), (10.0, 1), (10.8, 1)]
    ids = []
    for i, (ms, batch) in enumerate(plan):
        run = add_measurement(new_run("run", f"20260101T00000{i}Z-00000{i}"), measured(rng, ms, batch))
        save_run(results, dataclasses.replace(finish(run), started=f"2026-01-01T00:00:0{i}+00:00"))
        ids.append(run.run_id)
    budgets = tmp_path / "b.toml"
    budgets.write_text("[[budget]]\nmax_regression_pct = 5\n")
    (check,) = run_gate(results, budgets, ids[-1], ids[-2]).checks
    # the batch-4 run's median would make the history swing by 4x and the check undecided
    assert check.verdict is CheckVerdict.FAIL and check.note.endswith("widened by 4 earlier runs"), check.note
    rows = index_history(results, [("b", "m", "fp32")], metrics=("p50",))
    assert len(comparable_history(read_run(run_path(results, ids[-1])), rows)[("b", "m", "fp32")]) == 4
    assert len(rows[("b", "m", "fp32")]) == 6


# ---- issue 18: a degraded variant (board or manifest fidelity) fails a fidelity check in every budget on it


def _measured(variant: str, **kw: object) -> Measurement:
    samples = tuple(int(v) for v in np.full(200, 1e6))
    return Measurement("local", "det", variant, True, samples_ns=samples, bytes=1000, **kw)  # type: ignore[arg-type]


def _gate(*ms: Measurement, budget: Budget | None = None) -> Gate:
    run = new_run("run", "r1")
    for m in ms:
        run = add_measurement(run, m)
    run = finish(run)
    return gate_of(run, evaluate(run, Budgets((budget or Budget(model="det", max_size_mb=1.0),))))


def test_a_variant_its_manifest_marks_degraded_fails_the_fidelity_check() -> None:
    g = _gate(
        _measured("fp32"),
        _measured("fp16", compress_fidelity={"cosine": 0.25, "min_cosine": 0.99, "degraded": True}),
        _measured("int8", compress_fidelity={"cosine": 0.999, "min_cosine": 0.99, "degraded": False}),
    )
    fid = [c for c in g.checks if c.check == FIDELITY_CHECK]
    assert [(c.variant, c.verdict) for c in fid] == [("fp16", CheckVerdict.FAIL)]  # int8 holds: no check
    assert fid[0].measured == 0.25 and fid[0].limit == 0.99 and fid[0].margin == pytest.approx(-0.74)
    assert fid[0].note.startswith("degraded: host-side cosine 0.2500 < 0.99 against its parent at compress time")
    assert not g.passed and g.degraded == ("local/det/fp16",) and g.to_json()["degraded"] == ["local/det/fp16"]
    assert summary(g) == "3 passed, 1 failed, 0 undecided; degraded: local/det/fp16"
    assert "fidelity[local/det/fp16]" in junit_xml(g)


def test_the_boards_cosine_decides_over_the_manifests() -> None:
    """Eval data measured a cosine on the board: it decides (the manifest's flag is not consulted)."""
    ok_on_board = _measured(
        "fp16",
        fidelity=BoardFidelity(cosine=0.9995, min_cosine=0.99),
        compress_fidelity={"cosine": 0.5, "min_cosine": 0.99, "degraded": True},
    )
    bad_on_board = _measured("int8", fidelity=BoardFidelity(cosine=0.9, min_cosine=0.99))
    g = _gate(ok_on_board, bad_on_board)
    assert g.degraded == ("local/det/int8",)
    [c] = [c for c in g.checks if c.check == FIDELITY_CHECK]
    assert c.note.startswith("degraded: cosine 0.9000 < 0.99 against fp32")


def test_a_manifest_flag_without_a_cosine_fails_with_no_figure() -> None:
    g = _gate(_measured("fp16", compress_fidelity={"degraded": True}))
    [c] = [c for c in g.checks if c.check == FIDELITY_CHECK]
    assert c.verdict is CheckVerdict.FAIL and c.measured is None and c.limit is None and c.margin is None
    assert "marked degraded by its manifest at compress time" in c.note


def test_a_healthy_run_has_no_fidelity_check_and_a_plain_summary() -> None:
    g = _gate(_measured("fp32"), _measured("int8", fidelity=BoardFidelity(cosine=0.995)))
    assert g.passed and g.degraded == () and all(c.check != FIDELITY_CHECK for c in g.checks)
    assert summary(g) == "2 passed, 0 failed, 0 undecided"


def test_with_a_measured_top1_the_accuracy_budgets_decide_and_the_check_still_names_it() -> None:
    """Eval data measured top-1: a cosine below the threshold is shown (a passing fidelity check, named in the
    verdict line) but the gate does not overrule the measured accuracy; the accuracy budget decides."""
    m = _measured("int8", fidelity=BoardFidelity(cosine=0.9877, min_cosine=0.99), accuracy=Accuracy(top1=0.93, n=100))
    g = _gate(_measured("fp32"), m, budget=Budget(model="det", max_size_mb=1.0, min_accuracy=0.9))
    [c] = [c for c in g.checks if c.check == FIDELITY_CHECK]
    assert c.verdict is CheckVerdict.PASS and c.measured == 0.9877 and c.margin == pytest.approx(-0.0023)
    assert "top-1 93.00% was measured with eval data, so the accuracy budgets" in c.note
    assert g.passed is False  # fp32 has no top-1: its min_accuracy check fails, not the int8 fidelity
    assert [x.check for x in g.checks if x.verdict is CheckVerdict.FAIL] == ["min_accuracy"]
    assert g.degraded == ("local/det/int8",) and summary(g).endswith("; degraded: local/det/int8")


def test_each_budget_limit_is_declared_once_and_the_rest_is_derived_from_it() -> None:
    from edgebench.model import LIMITS
    from edgebench.model.decisions import BUDGET_LIMITS, PATTERNS
    from edgebench.results.gate import DIRECT, QUANTILE, SUSTAINED, BudgetSpec

    names = [lim.name for lim in BUDGET_LIMITS]
    assert [f.name for f in dataclasses.fields(Budget)] == [*PATTERNS, *names] == list(PATTERNS) + list(LIMITS)
    # the budgets file's class has the same keys, in the same order (docs/formats.md lists them so)
    assert [f.name for f in dataclasses.fields(BudgetSpec)] == [*PATTERNS, *names]
    assert QUANTILE == {"max_p90_ms": 0.9, "max_p99_ms": 0.99}
    assert SUSTAINED == ("max_sustained_p50_ms", "max_sustained_p99_ms", "max_energy_mj")
    assert set(names) - set(DIRECT) == {"max_accuracy_drop_pt", "max_regression_pct"}
    assert all(lim.is_min == lim.name.startswith("min_") for lim in BUDGET_LIMITS)
    spec = BudgetSpec(model="m", min_accuracy="97 %", max_size_mb=1.0)  # type: ignore[call-arg]
    assert spec.budget() == Budget(model="m", min_accuracy=pytest.approx(0.97), max_size_mb=1.0)  # type: ignore[arg-type]
    assert Budget.from_json(spec.budget().to_json()) == spec.budget()
