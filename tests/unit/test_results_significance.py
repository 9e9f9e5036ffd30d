"""Decisions with the agent processes as units: TOST "no change", slowdowns, tails, limits, history."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgebench.bench.settings import RunSettings
from edgebench.model import Change, CheckVerdict, Measurement, ProcessEntry
from edgebench.results.significance import (
    compare_measurements,
    history_se,
    limit_check,
    paired_change,
    process_rounds,
    regression_check,
    spread_warning,
    units,
)
from edgebench.testing.runs import paired_with


def measured(rng: np.random.Generator, scales: list[float], n: int = 400, *, tail: int | None = None) -> Measurement:
    """A pooled measurement of ``len(scales)`` processes, process ``k`` running ``scales[k]`` times 10 ms.

    ``tail``: that process gets a slow tail (its slowest 20% of samples 3x slower).
    """
    samples, entries = [], []
    for k, s in enumerate(scales):
        x = 10e6 * s * rng.lognormal(0.0, 0.05, n)
        if k == tail:
            cut = np.quantile(x, 0.8)
            x = np.where(x > cut, x * 3, x)
        samples += [int(v) for v in x]
        entries.append(ProcessEntry(float(np.median(x)) / 1e6, n, None, None, None, None, 0.0, k))
    return Measurement("b", "m", "v", True, samples_ns=tuple(samples), processes=tuple(entries))


def test_process_rounds_cut_the_pooled_samples_back_into_processes() -> None:
    rng = np.random.default_rng(0)
    m = measured(rng, [1.0, 1.2, 0.9], n=100)
    assert process_rounds(m) == (100, 100, 100)
    values, kind = units(np.asarray(m.samples_ns) / 1e6, 0.5, process_rounds(m))
    assert kind == "process" and values[1] / values[0] == pytest.approx(1.2, rel=0.05)
    # one process, or entries that do not add up: batches of the samples instead
    one = Measurement("b", "m", "v", True, samples_ns=m.samples_ns, processes=m.processes[:1])
    assert process_rounds(one) is None
    assert units(np.asarray(m.samples_ns) / 1e6, 0.5)[1] == "batch"


def test_identical_reruns_are_no_change_and_a_10_percent_slowdown_is_slower() -> None:
    rng = np.random.default_rng(1)
    labels = {"same": [], "slow": []}
    for _ in range(50):
        # each fresh process lands on its own speed (1% spread), as on a real board
        def run(factor: float) -> Measurement:
            return measured(rng, list(factor * rng.lognormal(0.0, 0.01, 5)), n=200)

        a = run(1.0)
        labels["same"].append(compare_measurements(a, run(1.0), 0.5).label)
        labels["slow"].append(compare_measurements(a, run(1.10), 0.5).label)
    assert labels["same"].count(Change.NO_CHANGE) >= 45
    assert labels["same"].count(Change.SLOWER) + labels["same"].count(Change.FASTER) <= 2
    assert labels["slow"].count(Change.SLOWER) >= 48


def test_processes_that_disagree_are_not_a_decision_whatever_the_sample_count() -> None:
    rng = np.random.default_rng(2)
    # 100,000 samples a side, but the processes sit 10% apart from each other: the pooled
    # samples would call a 4% shift significant; per process it cannot be told apart
    a = measured(rng, [0.95, 1.05, 1.0], n=30_000)
    b = measured(rng, [1.0, 1.09, 1.04], n=30_000)
    c = compare_measurements(a, b, 0.5)
    assert c.unit == "process" and c.n_a == 3 and c.label == Change.UNDECIDED
    assert c.ratio_high - c.ratio_low > 0.1


def test_one_process_slow_tail_is_a_warning_not_a_regression() -> None:
    rng = np.random.default_rng(3)
    a = measured(rng, [1.0, 1.0, 1.0, 1.0, 1.0])
    b = measured(rng, [1.0, 1.0, 1.0, 1.0, 1.0], tail=2)
    p50, p90 = compare_measurements(a, b, 0.5), compare_measurements(a, b, 0.9)
    assert p50.label == Change.NO_CHANGE
    assert p90.label != Change.SLOWER and p90.spread_b is not None and p90.spread_b > 1
    w = spread_warning("b/m/v", p90)
    assert w is not None and "processes of B disagree on p90" in w and "not a regression" in w


def test_a_measurement_against_itself_is_no_change_on_every_quantile() -> None:
    rng = np.random.default_rng(4)
    a = measured(rng, [1.0, 1.3, 0.8])  # even processes that disagree wildly
    for q in (0.5, 0.9, 0.99):
        c = compare_measurements(a, a, q)
        assert c.label == Change.NO_CHANGE and c.ratio == c.ratio_low == c.ratio_high == 1.0


def test_limit_check_passes_fails_or_is_undecided_on_per_process_values() -> None:
    v = np.array([10.0, 10.2, 9.9, 10.1, 10.0])
    assert limit_check(v, 11.0)[0] is CheckVerdict.PASS
    assert limit_check(v, 9.0)[0] is CheckVerdict.FAIL
    verdict, est, lo, hi = limit_check(v, 10.04)
    assert verdict is CheckVerdict.UNDECIDED and lo < est < hi
    assert limit_check(np.array([10.0]), 20.0)[0] is CheckVerdict.UNDECIDED  # one unit: no interval


def test_regression_check_uses_the_median_and_widens_with_history() -> None:
    rng = np.random.default_rng(5)
    base = dataclasses.replace(measured(rng, list(rng.lognormal(0.0, 0.01, 5))), sha256="a" * 64)
    new = measured(rng, list(1.08 * rng.lognormal(0.0, 0.01, 5)))
    # one run each: a whole run's shift is invisible, so even a clear 8 % is not decided
    verdict, c = regression_check(base, new, 5.0)
    assert verdict is CheckVerdict.UNDECIDED and c.basis == "one run each" and 5 < c.delta_pct < 11
    # calm history (runs within ~0.5 %): the processes widened by it decide
    calm = list(10 * rng.lognormal(0.0, 0.005, 10))
    verdict, c = regression_check(base, new, 5.0, history=calm)
    assert verdict is CheckVerdict.FAIL and c.basis == "history"
    assert regression_check(base, new, 15.0, history=calm)[0] is CheckVerdict.PASS
    # earlier runs that swung by ~5% from run to run: an 8% step is no longer a clear failure
    swings = list(10 * rng.lognormal(0.0, 0.05, 10))
    assert history_se(swings) > 0.03 and history_se(swings[:2]) == 0.0
    assert regression_check(base, new, 5.0, history=swings)[0] is CheckVerdict.UNDECIDED
    # paired processes against the baseline's artifact decide whatever the history says
    verdict, c = regression_check(base, paired_with(base, new, 1.08), 5.0, history=swings)
    assert verdict is CheckVerdict.FAIL and c.basis == "paired" and c.ratio_low > 1.05
    assert regression_check(base, paired_with(base, new, 1.0), 5.0)[0] is CheckVerdict.PASS
    assert regression_check(base, base, 0.0)[0] is CheckVerdict.PASS  # a run against itself


def test_paired_change_labels_only_when_the_whole_interval_is_beyond_the_margin() -> None:
    a = [1.0] * 8
    rng = np.random.default_rng(11)
    same = paired_change(a, list(rng.lognormal(0.0, 0.005, 8)))
    assert same.label == Change.NO_CHANGE and same.unit == "pair" and same.n_a == 8
    slow = paired_change(a, list(1.05 * rng.lognormal(0.0, 0.005, 8)))
    assert slow.label == Change.SLOWER and slow.ratio_low > 1.03
    fast = paired_change(a, list(0.9 * rng.lognormal(0.0, 0.005, 8)))
    assert fast.label == Change.FASTER and fast.ratio_high < 1 / 1.03
    # 4 % on average but the processes disagree: the interval reaches below +3 %, so not "slower"
    wide = paired_change(a, [1.0, 1.09, 1.01, 1.07, 1.0, 1.08, 1.02, 1.05])
    assert wide.label == Change.UNDECIDED and wide.ratio_low < 1.03 < wide.ratio
    assert paired_change([1.0], [1.2]).label == Change.UNDECIDED  # one process: no interval


def test_the_default_repeats_decide_no_change_where_three_processes_cannot() -> None:
    # identical reruns whose processes land 1.5% apart (a busy 2-core board, tests/perf/perf_significance.py)
    rng = np.random.default_rng(7)

    def labels(n: int) -> list[Change]:
        def run() -> Measurement:
            return measured(rng, list(rng.lognormal(0.0, 0.015, n)), n=100)

        return [compare_measurements(run(), run(), 0.5).label for _ in range(60)]

    default, three = labels(RunSettings().repeats), labels(3)
    assert default.count(Change.NO_CHANGE) >= 54 and default.count(Change.SLOWER) + default.count(Change.FASTER) <= 3
    assert three.count(Change.NO_CHANGE) < 36  # 3 processes: the 90% interval rarely fits in +-3%


def test_the_margin_has_one_name() -> None:
    import inspect

    from edgebench.results.compare import compare_runs
    from edgebench.results.significance import compare_quantile

    for f in (compare_runs, compare_quantile):
        assert "margin" in inspect.signature(f).parameters
        assert "min_effect" not in inspect.signature(f).parameters
