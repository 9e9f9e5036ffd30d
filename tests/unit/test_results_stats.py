"""Significance tests and trends: Mann-Whitney, quantile intervals, labels, change points."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.model import Change
from edgebench.results.significance import (
    budget_check,
    compare_quantile,
    mann_whitney,
    quantile_ci,
)
from edgebench.results.trend import change_points, sparkline


def lat(rng: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    return scale * rng.lognormal(0.0, 0.1, n)


def test_mann_whitney_matches_scipy_with_ties() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    a = np.round(lat(rng, 300), 2)
    b = np.round(lat(rng, 250, 1.03), 2)
    effect, p = mann_whitney(a, b)
    ref = scipy_stats.mannwhitneyu(b, a, method="asymptotic")
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    assert effect == pytest.approx(ref.statistic / (len(a) * len(b)))


def test_quantile_ci_covers_the_true_median_about_95_percent() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(400):
        _, lo, hi = quantile_ci(rng.exponential(1.0, 200), 0.5)
        hits += lo <= np.log(2) <= hi
    assert 0.92 <= hits / 400 <= 0.99


def test_labels_slower_faster_no_change_undecided() -> None:
    rng = np.random.default_rng(3)
    base = lat(rng, 2000)
    assert compare_quantile(base, lat(rng, 2000, 1.10), 0.5).label == Change.SLOWER
    assert compare_quantile(base, lat(rng, 2000, 0.85), 0.9).label == Change.FASTER
    same = compare_quantile(base, lat(rng, 2000), 0.5)
    assert same.label == Change.NO_CHANGE and abs(same.delta_pct) < 3
    # a real 10% shift seen through five noisy samples cannot be decided
    assert compare_quantile(base[:5], lat(rng, 5, 1.10), 0.9).label == Change.UNDECIDED


def test_batch_means_widen_the_interval_when_the_run_drifts() -> None:
    rng = np.random.default_rng(6)
    steady = lat(rng, 4000)
    drifting = steady * np.repeat([1.0, 1.08, 0.95, 1.1, 1.0, 0.92, 1.05, 1.0], 500)  # load comes and goes
    _, lo_s, hi_s = quantile_ci(steady, 0.5)
    _, lo_d, hi_d = quantile_ci(drifting, 0.5)
    _, lo_shuffled, hi_shuffled = quantile_ci(rng.permutation(drifting), 0.5)
    assert (hi_d - lo_d) > 3 * (hi_s - lo_s)
    assert (hi_shuffled - lo_shuffled) < (hi_d - lo_d) / 2  # the same values without drift in time
    # two drifting runs of the same thing are not called different
    other = lat(rng, 4000) * np.repeat([1.05, 0.95, 1.0, 1.1, 0.9, 1.0, 1.08, 1.0], 500)
    assert compare_quantile(drifting, other, 0.5).label in (Change.NO_CHANGE, Change.UNDECIDED)


def test_budget_check_passes_fails_or_is_undecided() -> None:
    rng = np.random.default_rng(4)
    s = lat(rng, 3000, 10.0)  # p90 ~ 11.4
    assert budget_check(s, 0.9, 20.0)[0] == "pass"
    assert budget_check(s, 0.9, 5.0)[0] == "fail"
    verdict, est, lo, hi = budget_check(s, 0.9, float(np.percentile(s, 90)))
    assert verdict == "undecided" and lo <= est <= hi


def test_change_points_flag_a_step_and_not_noise() -> None:
    rng = np.random.default_rng(5)
    flat = list(10 + rng.normal(0, 0.1, 20))
    assert change_points(flat) == []
    step = list(10 + rng.normal(0, 0.1, 12)) + list(11.5 + rng.normal(0, 0.1, 8))
    assert change_points(step) == [12]
    line = sparkline(step, [12])
    assert line.count("|") == 1 and len(line) == 21 and line.index("|") == 12


def test_sparkline_shows_missing_values() -> None:
    assert sparkline([1.0, None, 3.0]) == "▁·█"
