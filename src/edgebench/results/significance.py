"""Noise-aware comparison of two sets of raw latency samples.

Two tools, both distribution-free:

* the Mann-Whitney U test (normal approximation with tie correction): is one set of
  samples stochastically larger than the other?
* confidence intervals for a quantile (p50, p90, p99): the wider of the
  order-statistic interval (binomial, distribution-free, no resampling, so fast on
  100,000 samples) and a batch-means interval over contiguous batches of the samples
  in measurement order. The interval for the *ratio* of two quantiles divides the ends
  of the two intervals (conservative).

Samples inside one run are not independent (a board drifts, the OS interrupts, other
work comes and goes): the batch-means interval widens with such drift, and a
statistically significant change smaller than ``min_effect`` (5% by default) is called
"no change": the point is to flag changes that matter, not every one that exists.
What no statistic on one run can see is the difference between two agent processes
that were each steady; a run that joins several processes per variant shows it.

Labels (`compare_quantile`):

* ``slower`` / ``faster``: the ratio's interval excludes 1, the point estimate moved
  by more than ``min_effect`` and, for the median, Mann-Whitney agrees at ``alpha``
  (a change in the tail alone does not move Mann-Whitney, so p90/p99 go by the interval);
* ``no change``: not the above, and the interval lies within ``1 ± 2·min_effect``;
* ``undecided``: the interval is too wide to tell (too few or too noisy samples).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ALPHA = 0.01
MIN_EFFECT = 0.05
BATCHES = 8
SLOWER, FASTER, NO_CHANGE, UNDECIDED = "slower", "faster", "no change", "undecided"


def _z(confidence: float) -> float:
    """Two-sided standard normal quantile for a confidence level."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def mann_whitney(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of ``a`` against ``b``.

    Returns:
        ``(effect, p)``: ``effect`` is the probability that a sample of ``b`` exceeds
        one of ``a`` (0.5: no shift; > 0.5: ``b`` is slower), ``p`` the two-sided
        p-value (normal approximation with tie correction; fine above ~20 samples).
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError("no samples")
    allv = np.concatenate([x, y])
    order = np.argsort(allv, kind="mergesort")
    sorted_v = allv[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_v, return_index=True, return_counts=True)
    avg_rank = first + (counts + 1) / 2.0
    ranks = np.empty_like(allv)
    ranks[order] = np.repeat(avg_rank, counts)
    u2 = float(ranks[n1:].sum()) - n2 * (n2 + 1) / 2.0  # times a b-sample beats an a-sample
    mu = n1 * n2 / 2.0
    n = n1 + n2
    tie = float((counts**3 - counts).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1))) if n > 1 else 0.0
    effect = u2 / (n1 * n2)
    if var <= 0:
        return effect, 1.0
    zval = (abs(u2 - mu) - 0.5) / math.sqrt(var)
    p = math.erfc(max(zval, 0.0) / math.sqrt(2))
    return effect, min(1.0, p)


def _t(confidence: float, df: int) -> float:
    """Two-sided Student t quantile (Cornish-Fisher expansion; good to ~1% for df >= 3)."""
    z = _z(confidence)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def batch_se(samples: Sequence[float] | np.ndarray, q: float, batches: int = BATCHES) -> float | None:
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
    samples: Sequence[float] | np.ndarray, q: float, confidence: float = 0.95, *, batches: int = BATCHES
) -> tuple[float, float, float]:
    """A quantile and its confidence interval.

    The interval is the wider of two: the distribution-free one from the order
    statistics at ranks ``n·q ± z·sqrt(n·q·(1-q))`` (right for independent samples) and
    ``estimate ± t·batch_se`` (batch means over time; see `batch_se`).

    Returns:
        ``(estimate, low, high)``, in the unit of the samples (kept in measurement order).
    """
    raw = np.asarray(samples, dtype=np.float64)
    a = np.sort(raw)
    n = a.size
    if n == 0:
        raise ValueError("no samples")
    est = float(np.percentile(a, q * 100))
    half = _z(confidence) * math.sqrt(n * q * (1 - q))
    lo = float(a[max(math.floor(n * q - half), 0)])
    hi = float(a[min(math.ceil(n * q + half), n - 1)])
    se = batch_se(raw, q, batches)
    if se is not None:
        spread = _t(confidence, batches - 1) * se
        lo, hi = min(lo, est - spread), max(hi, est + spread)
    return est, lo, hi


@dataclass(frozen=True)
class QuantileChange:
    """The change of one quantile from samples A to samples B.

    Attributes:
        q: the quantile (0.5, 0.9, ...).
        a: estimate in A; ``b``: estimate in B (same unit as the samples).
        ratio: ``b / a`` (> 1: B is slower).
        ratio_low, ratio_high: confidence interval of the ratio.
        p: Mann-Whitney two-sided p-value of the whole distributions.
        label: ``slower``, ``faster``, ``no change`` or ``undecided``.
    """

    q: float
    a: float
    b: float
    ratio: float
    ratio_low: float
    ratio_high: float
    p: float
    label: str

    @property
    def delta_pct(self) -> float:
        """The change in percent of A."""
        return (self.ratio - 1.0) * 100.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {**asdict(self), "delta_pct": self.delta_pct}


def label_for(
    ratio: float,
    low: float,
    high: float,
    p: float | None = None,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> str:
    """The label of a ratio with its interval (see the module docstring).

    Args:
        p: a Mann-Whitney p-value that must also be below ``alpha`` (pass it for the
            median; a change in the tail alone does not move Mann-Whitney, so for p90
            and p99 the interval decides by itself).
    """
    sig = p is None or p < alpha
    if sig and low > 1.0 and ratio > 1.0 + min_effect:
        return SLOWER
    if sig and high < 1.0 and ratio < 1.0 - min_effect:
        return FASTER
    if low >= 1.0 - 2 * min_effect and high <= 1.0 + 2 * min_effect:
        return NO_CHANGE
    return UNDECIDED


def compare_quantile(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
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


def overall_label(changes: Sequence[QuantileChange]) -> str:
    """One label from several quantiles: a slowdown anywhere wins, then a speed-up, then doubt."""
    labels = {c.label for c in changes}
    if SLOWER in labels and FASTER not in labels:
        return SLOWER
    if FASTER in labels and SLOWER not in labels:
        return FASTER
    if labels == {NO_CHANGE}:
        return NO_CHANGE
    return UNDECIDED


def budget_check(
    samples: Sequence[float] | np.ndarray, q: float, budget: float, confidence: float = 0.95
) -> tuple[str, float, float, float]:
    """Is quantile ``q`` of the samples within ``budget`` (same unit)?

    Returns:
        ``(verdict, estimate, low, high)``: ``pass`` when the whole interval is within
        the budget, ``fail`` when the whole interval is above it, ``undecided`` otherwise.
    """
    est, lo, hi = quantile_ci(samples, q, confidence)
    if hi <= budget:
        return "pass", est, lo, hi
    if lo > budget:
        return "fail", est, lo, hi
    return "undecided", est, lo, hi
