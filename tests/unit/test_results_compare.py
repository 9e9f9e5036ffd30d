"""`edgebench compare`: a run against itself, process disagreement on a tail, the JSON of a comparison."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.model import BoardFidelity, Measurement, ProcessEntry, Run
from edgebench.results import store
from edgebench.results.compare import compare_runs
from edgebench.results.schema import add_measurement, new_run
from edgebench.testing.runs import paired_with

RUNS = Path(__file__).parent / "data" / "results_runs"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_of(
    rng: np.random.Generator,
    run_id: str,
    scales: list[float],
    tail: int | None = None,
    *,
    paired: tuple[Run, float] | None = None,
    **fidelity: Any,
) -> Run:
    """A run of one measurement pooled from ``len(scales)`` processes (process ``tail`` with a slow tail).

    ``paired``: (baseline run, ratio): the measurement also re-measured the baseline's artifact, paired.
    ``fidelity``: ``fidelity`` / ``compress_fidelity`` of the measurement.
    """
    samples, entries = [], []
    for k, s in enumerate(scales):
        x = 2e6 * s * rng.lognormal(0.0, 0.03, 300)
        if k == tail:
            x = np.where(x > np.quantile(x, 0.85), x * 2.5, x)
        samples += [int(v) for v in x]
        entries.append(ProcessEntry(float(np.median(x)) / 1e6, 300, None, None, None, None, float(k), k))
    sha = f"{run_id[-1]}" * 64
    m = Measurement(
        "farm-1", "cnn", "fp32", True, sha256=sha, samples_ns=tuple(samples), processes=tuple(entries), **fidelity
    )
    if paired is not None:
        m = paired_with(paired[0].measurements[0], m, paired[1])
    return add_measurement(new_run("run", run_id), m)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "res" / "runs").mkdir(parents=True)
    for p in RUNS.glob("*.json"):
        shutil.copy(p, tmp_path / "res" / "runs")
    return tmp_path / "res"


def test_compare_of_a_run_with_itself_is_no_change_everywhere_exit_0(results: Path) -> None:
    runs = sorted((results / "runs").glob("*.json"))
    for _ in range(2):  # warm the index first: the second call must leave the folder as it found it
        before = snapshot(results)
        res = CliRunner().invoke(main, ["compare", "latest", "latest", "--results", str(results), "--json"])
    assert res.exit_code == 0, res.output
    assert snapshot(results) == before and len(list((results / "runs").glob("*.json"))) == len(runs)
    d = json.loads(res.stdout)
    assert len(d["rows"]) == 3 and d["margin"] == pytest.approx(0.03)
    assert "min_effect" not in d  # the margin's old name is gone from the JSON (and from compare_runs)
    for row in d["rows"]:
        assert row["label"] == "no change"
        assert {row[q]["label"] for q in ("p50", "p90", "p99")} == {"no change"}
        assert row["p50"]["delta_pct"] == 0 and row["warnings"] == []
    table = CliRunner().invoke(main, ["compare", "latest", "latest", "--results", str(results)])
    body = table.stdout.split("\nboard ", 1)[1]  # below the title (which says what "no change" means)
    assert table.exit_code == 0 and body.count("no change") == 3 and "undecided" not in body


def test_one_process_slow_tail_warns_and_the_row_is_decided_by_the_median() -> None:
    rng = np.random.default_rng(7)
    a = run_of(rng, "20260101T000000Z-a", [1.0, 1.0, 1.0, 1.0, 1.0])
    b = run_of(rng, "20260101T000001Z-b", [1.0, 1.0, 1.0, 1.0, 1.0], tail=3, paired=(a, 1.0))
    row = compare_runs(a, b).rows[0]
    assert row.label == "no change" and row.p50.basis == "paired" and row.p50.unit == "pair"
    assert row.p90.label != "slower" and row.p99 is not None and row.p99.label != "slower"
    assert len(row.warnings) == 1 and "the processes of B disagree on p90" in row.warnings[0]
    assert "one process's slow tail" in row.warnings[0]


def test_separate_runs_without_pairing_or_history_are_undecided_one_run_each() -> None:
    # whole runs shift as a block between invocations: one run each cannot tell that from a change
    rng = np.random.default_rng(3)
    a = run_of(rng, "20260101T000000Z-a", [1.0] * 8)
    for scales in ([1.0] * 8, [1.2] * 8, [0.8] * 8):
        row = compare_runs(a, run_of(rng, "20260101T000001Z-b", scales)).rows[0]
        assert row.label == "undecided" and row.p50.basis == "one run each"
        assert row.p90.label == "undecided"
    # a paired measurement against ANOTHER artifact is not a pairing with A
    other = run_of(rng, "20260101T000002Z-c", [1.0] * 8)
    row = compare_runs(a, run_of(rng, "20260101T000003Z-d", [1.0] * 8, paired=(other, 1.0))).rows[0]
    assert row.p50.basis == "one run each"
    # with 3+ earlier runs in the history, their run-to-run spread widens the interval and decides
    hist = {("farm-1", "cnn", "fp32"): [2.0, 2.02, 1.98, 2.01]}
    slow = compare_runs(a, run_of(rng, "20260101T000004Z-e", [1.2] * 8), history=hist).rows[0]
    assert slow.label == "slower" and slow.p50.basis == "history"


def test_compare_cli_shows_the_disagreement_and_the_margin(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    a = run_of(rng, "20260101T000000Z-a", [1.0] * 5)
    store.save_run(tmp_path, a)
    store.save_run(tmp_path, run_of(rng, "20260101T000001Z-b", [1.0] * 5, tail=1, paired=(a, 1.0)))
    store.save_run(tmp_path, run_of(rng, "20260101T000002Z-c", [1.12, 1.1, 1.11, 1.1, 1.09], paired=(a, 1.1)))
    res = CliRunner().invoke(main, ["compare", "latest~2", "latest~1", "--results", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "no change = the interval within ±3%" in res.stdout
    assert "warning: farm-1/cnn/fp32: the processes of B" in res.stdout
    slow = CliRunner().invoke(main, ["compare", "latest~2", "latest", "--results", str(tmp_path), "--json"])
    assert json.loads(slow.stdout)["rows"][0]["label"] == "slower"


def with_batch(run: Run, batch: int, run_id: str) -> Run:
    """The run re-identified, its measurements recorded with another batch."""
    ms = [dataclasses.replace(m, batch_size=batch) for m in run.measurements]
    out = new_run("run", run_id)
    for m in ms:
        out = add_measurement(out, m)
    return out


def test_runs_of_different_configurations_are_refused_without_the_flag(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    store.save_run(tmp_path, run_of(rng, "20260101T000000Z-a", [1.0] * 3))
    store.save_run(tmp_path, with_batch(run_of(rng, "x", [1.0] * 3), 4, "20260101T000001Z-b"))
    before = snapshot(tmp_path)
    res = CliRunner().invoke(main, ["compare", "latest~1", "latest", "--results", str(tmp_path)])
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "farm-1/cnn/fp32 was measured with a different configuration" in res.stderr
    assert "(batch: 1 -> 4)" in res.stderr and "pass --allow-config-change" in res.stderr
    assert snapshot(tmp_path) == before
    ok = CliRunner().invoke(
        main, ["compare", "latest~1", "latest", "--results", str(tmp_path), "--allow-config-change"]
    )
    assert ok.exit_code == 0 and "configuration changed (allowed): farm-1/cnn/fp32: batch: 1 -> 4" in ok.stdout
    # gate against a baseline of another configuration: refused the same way
    b = tmp_path / "b.toml"
    b.write_text('baseline = "latest~1"\n[[budget]]\nmax_regression_pct = 5\n')
    gate = CliRunner().invoke(main, ["gate", str(b), "--results", str(tmp_path)])
    assert gate.exit_code == 1 and "(batch: 1 -> 4)" in gate.stderr and gate.stderr.count("\n") == 1
    allowed = CliRunner().invoke(main, ["gate", str(b), "--results", str(tmp_path), "--allow-config-change"])
    assert allowed.exit_code in (0, 3) and "max_regression_pct" in allowed.stdout


# ---- issue 18: a variant degraded in B (board or manifest fidelity) is shown degraded, faster or not


def test_a_variant_degraded_in_b_is_marked_in_the_row_the_json_and_the_table() -> None:
    from rich.console import Console

    from edgebench.render.compare import ComparisonView

    rng = np.random.default_rng(3)
    a = run_of(rng, "20260101T000000Z-aaaaaa", [1.0] * 4)
    b = run_of(
        rng,
        "20260102T000000Z-bbbbbb",
        [0.7] * 4,
        compress_fidelity={"cosine": 0.2345, "min_cosine": 0.99, "degraded": True},
    )
    d = compare_runs(a, b)
    [row] = d.rows
    assert row.degraded_b and not row.degraded_a and row.cosine_b == 0.2345 and row.cosine_a is None
    assert row.fidelity_note == (
        "degraded in B: host-side cosine 0.2345 < 0.99 against its parent at compress time: "
        "faster or not, its outputs are not usable"
    )
    doc = d.to_json()
    assert doc["degraded"] == [["farm-1", "cnn", "fp32"]] and doc["rows"][0]["degraded_b"] is True
    console = Console(width=80, record=True, color_system=None)
    console.print(ComparisonView(d))
    text = console.export_text()
    [cell] = [ln for ln in text.splitlines() if ln.startswith("farm-1 ")]
    assert cell.rstrip().endswith(f"{row.label},")  # the verdict wraps at its comma, never cut
    assert text.splitlines()[text.splitlines().index(cell) + 1].strip() == "degraded"
    assert "farm-1/cnn/fp32 degraded in B: host-side cosine 0.2345" in " ".join(text.split())
    # and back: degraded in A only is said, B's row is not marked
    back = compare_runs(b, a)
    assert not back.rows[0].degraded_b and back.degraded == ()
    assert back.rows[0].fidelity_note.startswith("degraded in A only (host-side cosine 0.2345 < 0.99")


def test_compare_of_healthy_runs_says_nothing_of_fidelity() -> None:
    rng = np.random.default_rng(4)
    a = run_of(rng, "20260101T000000Z-aaaaaa", [1.0] * 4)
    b = run_of(rng, "20260102T000000Z-bbbbbb", [1.0] * 4, fidelity=BoardFidelity(cosine=0.9999))
    [row] = compare_runs(a, b).rows
    assert not row.degraded_b and row.cosine_b == 0.9999 and row.fidelity_note == ""
