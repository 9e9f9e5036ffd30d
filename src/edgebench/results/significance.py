"""Noise-aware comparison of two sets of raw latency samples.

Two tools, both distribution-free, from SciPy:

* the Mann-Whitney U test (`scipy.stats.mannwhitneyu`, asymptotic with tie and
  continuity correction): is one set of samples stochastically larger than the other?
* confidence intervals for a quantile (p50, p90, p99): the wider of the
  order-statistic interval (ranks from the binomial distribution, `scipy.stats.binom`:
  distribution-free, no resampling, so fast on 100,000 samples) and a batch-means
  interval (Student t, `scipy.stats.t`) over contiguous batches of the samples in
  measurement order. The interval for the *ratio* of two quantiles divides the ends of
  the two intervals (conservative).

Samples inside one run are not independent (a board drifts, the OS interrupts, other
work comes and goes): the batch-means interval widens with such drift, and a
statistically significant change smaller than ``min_effect`` (5% by default) is called
"no change": the point is to flag changes that matter, not every one that exists.
What no statistic on one run can see is the difference between two agent processes
that were each steady; a run that joins several processes per variant shows it.

Labels (`compare_quantile`, a `Change`):

* ``slower`` / ``faster``: the ratio's interval excludes 1, the point estimate moved
  by more than ``min_effect`` and, for the median, Mann-Whitney agrees at ``alpha``
  (a change in the tail alone does not move Mann-Whitney, so p90/p99 go by the interval);
* ``no change``: not the above, and the interval lies within ``1 ± 2·min_effect``;
* ``undecided``: the interval is too wide to tell (too few or too noisy samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from edgebench.model import Change, CheckVerdict, QuantileChange

ALPHA = 0.01
MIN_EFFECT = 0.05
BATCHES = 8

Samples = Sequence[float] | np.ndarray


def mann_whitney(a: Samples, b: Samples) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of ``a`` against ``b``.

    Returns:
        ``(effect, p)``: ``effect`` is the probability that a sample of ``b`` exceeds
        one of ``a`` (0.5: no shift; > 0.5: ``b`` is slower), ``p`` the two-sided
        p-value (normal approximation with tie correction; fine above ~20 samples).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("no samples")
    res = stats.mannwhitneyu(y, x, alternative="two-sided", method="asymptotic")
    p = float(res.pvalue)
    return float(res.statistic) / (x.size * y.size), 1.0 if math.isnan(p) else min(1.0, p)


def batch_se(samples: Samples, q: float, batches: int = BATCHES) -> float | None:
    """Standard error of quantile ``q`` from batch means: the samples, in the order they
    were taken, cut into ``batches`` contiguous batches.

    This sees what the order-statistic interval cannot: drift and bursts of interference
    during the run, and differences between agent processes when a run joins several.
    Returns None with fewer than 20 samples per batch.
    """
    a = np.asarray(samples, dtype=np.float64)
    if a.size < 20 * batches:
        return None
    v = np.array([np.percentile(part, q * 100) for part in np.array_split(a, batches)])
    return float(v.std(ddof=1) / math.sqrt(batches))


def quantile_ci(
    samples: Samples, q: float, confidence: float = 0.95, *, batches: int = BATCHES
) -> tuple[float, float, float]:
    """A quantile and its confidence interval.

    The interval is the wider of two: the distribution-free one between the order
    statistics whose ranks are the binomial ``(n, q)`` quantiles at ``(1 ± confidence) / 2``
    (right for independent samples) and ``estimate ± t·batch_se`` (batch means over
    time; see `batch_se`).

    Returns:
        ``(estimate, low, high)``, in the unit of the samples (kept in measurement order).
    """
    raw = np.asarray(samples, dtype=np.float64)
    a = np.sort(raw)
    n = a.size
    if n == 0:
        raise ValueError("no samples")
    est = float(np.percentile(a, q * 100))
    tail = (1 - confidence) / 2
    # X_(l) <= quantile with probability P(Binom(n, q) >= l): 1-based rank l, index l - 1
    lo_rank, hi_rank = stats.binom.ppf(tail, n, q), stats.binom.ppf(1 - tail, n, q)
    lo = float(a[min(max(int(lo_rank) - 1, 0), n - 1)])
    hi = float(a[min(int(hi_rank), n - 1)])
    se = batch_se(raw, q, batches)
    if se is not None:
        spread = float(stats.t.ppf(0.5 + confidence / 2, batches - 1)) * se
        lo, hi = min(lo, est - spread), max(hi, est + spread)
    return est, lo, hi


def label_for(
    ratio: float,
    low: float,
    high: float,
    p: float | None = None,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> Change:
    """The label of a ratio with its interval (see the module docstring).

    Args:
        p: a Mann-Whitney p-value that must also be below ``alpha`` (pass it for the
            median; a change in the tail alone does not move Mann-Whitney, so for p90
            and p99 the interval decides by itself).
    """
    sig = p is None or p < alpha
    if sig and low > 1.0 and ratio > 1.0 + min_effect:
        return Change.SLOWER
    if sig and high < 1.0 and ratio < 1.0 - min_effect:
        return Change.FASTER
    if low >= 1.0 - 2 * min_effect and high <= 1.0 + 2 * min_effect:
        return Change.NO_CHANGE
    return Change.UNDECIDED


def compare_quantile(
    a: Samples,
    b: Samples,
    q: float,
    *,
    p: float | None = None,
    confidence: float = 0.95,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> QuantileChange:
    """Compare quantile ``q`` of samples A and B.

    Args:
        p: a Mann-Whitney p-value already computed for these samples (saves time).
    """
    ea, la, ha = quantile_ci(a, q, confidence)
    eb, lb, hb = quantile_ci(b, q, confidence)
    if p is None:
        _, p = mann_whitney(a, b)
    ratio = eb / ea if ea > 0 else math.inf
    low = lb / ha if ha > 0 else math.inf
    high = hb / la if la > 0 else math.inf
    label = label_for(ratio, low, high, p if q == 0.5 else None, alpha=alpha, min_effect=min_effect)
    return QuantileChange(q, ea, eb, ratio, low, high, p, label)


def overall_label(changes: Sequence[QuantileChange]) -> Change:
    """One label from several quantiles: a slowdown anywhere wins, then a speed-up, then doubt."""
    labels = {c.label for c in changes}
    if Change.SLOWER in labels and Change.FASTER not in labels:
        return Change.SLOWER
    if Change.FASTER in labels and Change.SLOWER not in labels:
        return Change.FASTER
    if labels == {Change.NO_CHANGE}:
        return Change.NO_CHANGE
    return Change.UNDECIDED


def budget_check(
    samples: Samples, q: float, budget: float, confidence: float = 0.95
) -> tuple[CheckVerdict, float, float, float]:
    """Is quantile ``q`` of the samples within ``budget`` (same unit)?

    Returns:
        ``(verdict, estimate, low, high)``: ``pass`` when the whole interval is within
        the budget, ``fail`` when the whole interval is above it, ``undecided`` otherwise.
    """
    est, lo, hi = quantile_ci(samples, q, confidence)
    if hi <= budget:
        return CheckVerdict.PASS, est, lo, hi
    if lo > budget:
        return CheckVerdict.FAIL, est, lo, hi
    return CheckVerdict.UNDECIDED, est, lo, hi
