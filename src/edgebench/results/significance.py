"""Noise-aware decisions on latency: the agent processes are the units of replication.

What separates two runs is not the sample-to-sample noise of one process (tens of
thousands of samples make that look tiny) but what changes from one fresh agent process
to the next: thread placement, the core, the clock, memory layout. So, as asv does with
its processes, a statistic (p50, p90, p99) is computed **per process** and the
processes are the replicates. A measurement with ``--repeats N`` (default 8) has N
processes; their rounds (``Measurement.processes``) cut the pooled samples back into the
samples of each process. A measurement of one process (``--repeats 1``, or a run from
before repeats) falls back to 8 contiguous batches of its samples in measurement order:
that sees drift inside the process, not between processes, and the comparison says so.

The test, per quantile: Student's two-sample t-test (`scipy.stats.ttest_ind`,
``equal_var=True``) on the logarithms of the per-process values, so the effect is a
ratio (the ratio of geometric means) and the interval is a ratio interval. Why a t-test
and not a bootstrap: with 3-8 processes a side, a bootstrap's resampling distribution
has a handful of distinct values and its intervals are too narrow (it needs ~10-20
replicates); the t distribution pays for the few degrees of freedom honestly. Logs,
because latency changes are multiplicative and per-process figures are skewed.

Why 8 processes by default: the "no change" decision needs the whole 90% interval
inside +-3%, and its half-width is ``t(2n-2) * s * sqrt(2/n)`` for a process-to-process
spread ``s`` of ~1-1.5% on a busy board: 1.18 s at n=5 and 0.88 s at n=8. Measured on
a farm board (tests/perf/perf_significance.py, 2 s per variant, 20 trials, load 5 on
2 cores) identical reruns were "no change" in 85% of trials at 5 processes, 90% at 6
and 100% at 8 (at 3: ~30%); more processes cost one agent start each, not more
measuring time (the floors are split between them).

Labels (`Change`), at ``alpha`` per one-sided test (default 0.05: the 90% interval):

* ``no change`` — a decision, not a lack of one: the two one-sided tests (TOST) reject
  both "B is slower by ``margin`` or more" and "B is faster by ``margin`` or more"
  (``margin`` 3% by default); equivalently the 90% interval of the ratio lies inside
  ``[1/(1+margin), 1+margin]``. A measurement compared with itself is ``no change``.
* ``slower`` / ``faster`` — the one-sided test for that direction rejects "no
  slowdown" (resp. "no speed-up") at ``alpha`` and the ratio moved by more than
  ``margin``.
* ``undecided`` — neither: too few processes or processes that disagree too much.

Tails (p90, p99) go through the same test with per-process tails as units, so one
process's slow tail makes the processes disagree (wide interval, a warning from
`spread_warning`) rather than a regression. Gates against an absolute limit
(`limit_check`) use the one-sample interval of the per-process values; a gate against a
baseline run (`regression_check`) uses the two-sample interval of the median, widened by
the run-to-run spread of earlier runs when the history is known (Conbench compares a
result with the distribution of its history in the same way).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from edgebench.model import Change, CheckVerdict, Measurement, QuantileChange

ALPHA = 0.05  # per one-sided test: the two-sided interval is 90%, as TOST uses it
MARGIN = 0.03  # equivalence margin on a ratio: within +-3% is "no change"
MIN_EFFECT = MARGIN  # the old name
BATCHES = 8
MIN_BATCH = 10  # samples per batch at least, when batches stand in for processes
SPREAD_WARN = 0.10  # per-process values further apart than this (max/min - 1) carry a warning
PROCESS, BATCH, PAIR = "process", "batch", "pair"
PAIRED, HISTORY, ONE_RUN_EACH, SAME_RUN = "paired", "history", "one run each", "same run"  # `QuantileChange.basis`

Samples = Sequence[float] | np.ndarray


def mann_whitney(a: Samples, b: Samples) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test of the pooled samples ``a`` against ``b`` (informational).

    Returns:
        ``(effect, p)``: ``effect`` is the probability that a sample of ``b`` exceeds
        one of ``a`` (0.5: no shift), ``p`` the two-sided p-value. It treats samples as
        independent, so it is shown next to a comparison but never decides one.
    """
    from scipy import stats  # type: ignore[import-untyped]  # imported here, not at the top: it is 0.8 s of every CLI start

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.size == 0 or y.size == 0:
        raise ValueError("no samples")
    res = stats.mannwhitneyu(y, x, alternative="two-sided", method="asymptotic")
    p = float(res.pvalue)
    return float(res.statistic) / (x.size * y.size), 1.0 if math.isnan(p) else min(1.0, p)


def process_rounds(m: Measurement) -> tuple[int, ...] | None:
    """The number of samples of each agent process of ``m``, when they add up to its samples.

    Pooling keeps the processes' samples in process order (`edgebench.bench.repeats.pool`),
    so these counts cut the pooled samples back into processes. None for one process or
    a measurement without (consistent) ``processes`` entries.
    """
    procs = m.processes or ()
    rounds = tuple(p.rounds for p in procs)
    if len(rounds) < 2 or sum(rounds) != len(m.samples_ns) or min(rounds) < 1:
        return None
    return rounds


def units(samples: Samples, q: float, rounds: Sequence[int] | None = None) -> tuple[np.ndarray, str]:
    """Quantile ``q`` of each unit of replication: each process, else each contiguous batch.

    Args:
        samples: the pooled samples in measurement order.
        rounds: samples per process (`process_rounds`), or None for batches.

    Returns:
        ``(values, kind)``; ``kind`` is ``"process"`` or ``"batch"``. Fewer than
        ``MIN_BATCH`` samples give a single batch (nothing to replicate).
    """
    a = np.asarray(samples, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    if rounds:
        parts = np.split(a, np.cumsum(rounds)[:-1])
        kind = PROCESS
    else:
        parts = np.array_split(a, max(1, min(BATCHES, a.size // MIN_BATCH)))
        kind = BATCH
    return np.array([np.percentile(p, q * 100) for p in parts]), kind


def spread(values: np.ndarray) -> float:
    """``max / min - 1`` of per-unit values (0 for one value)."""
    lo = float(values.min())
    return float(values.max()) / lo - 1.0 if lo > 0 else 0.0


def compare_units(
    ua: np.ndarray,
    ub: np.ndarray,
    q: float,
    *,
    kind: str = PROCESS,
    alpha: float = ALPHA,
    margin: float = MARGIN,
    extra_se: float = 0.0,
) -> QuantileChange:
    """Compare per-unit values of quantile ``q`` of A and B (see the module docstring).

    Args:
        extra_se: a further standard error of the log ratio (the run-to-run spread of
            history, `regression_check`), added in quadrature to the processes' one.

    Returns:
        The change with its ``1 - 2 alpha`` ratio interval, the p-value of "B differs
        from A" and the TOST p-value of "B is within ``margin`` of A".
    """
    from scipy import stats

    la, lb = np.log(ua), np.log(ub)
    ga, gb = float(np.exp(la.mean())), float(np.exp(lb.mean()))
    d = float(lb.mean() - la.mean())
    delta = math.log1p(margin)

    def made(ratio: float, low: float, high: float, p: float, label: Change, p_eq: float) -> QuantileChange:
        return QuantileChange(
            q, ga, gb, ratio, low, high, p, label, p_equivalence=p_eq, n_a=int(la.size), n_b=int(lb.size),
            unit=kind, spread_a=spread(ua), spread_b=spread(ub),
        )  # fmt: skip

    if la.size == lb.size and np.array_equal(la, lb):  # the same measurement: no sampling between them
        return made(1.0, 1.0, 1.0, 1.0, Change.NO_CHANGE, 0.0)
    df = la.size + lb.size - 2
    if df < 1:
        return made(math.exp(d), 0.0, math.inf, 1.0, Change.UNDECIDED, 1.0)
    if extra_se == 0.0:
        # the library's test; the TOST shifts B by the margin both ways
        p = float(stats.ttest_ind(lb, la).pvalue)
        p_eq = max(
            float(stats.ttest_ind(lb - delta, la, alternative="less").pvalue),
            float(stats.ttest_ind(lb + delta, la, alternative="greater").pvalue),
        )
        se = _pooled_se(la, lb)
    else:
        se = math.hypot(_pooled_se(la, lb), extra_se)
        t = stats.t(df)
        p, _, _, p_eq = _t_pvalues(d, se, delta, t)
    if math.isnan(p):  # no spread at all on either side (constant values): the difference is exact
        se, p = 0.0, 0.0 if d else 1.0
        p_eq = 0.0 if abs(d) < delta else 1.0
    half = float(stats.t.ppf(1 - alpha, df)) * se
    low, high = math.exp(d - half), math.exp(d + half)
    ratio = math.exp(d)
    return made(ratio, low, high, p, label_of(low, high, p_eq, alpha, margin), p_eq)


def label_of(low: float, high: float, p_eq: float, alpha: float, margin: float) -> Change:
    """The label of a ratio interval: "slower"/"faster" only when the WHOLE interval lies beyond the margin."""
    if p_eq < alpha:
        return Change.NO_CHANGE
    if low > 1 + margin:
        return Change.SLOWER
    if high < 1 / (1 + margin):
        return Change.FASTER
    return Change.UNDECIDED


def _pooled_se(la: np.ndarray, lb: np.ndarray) -> float:
    """Standard error of ``mean(lb) - mean(la)`` with the pooled variance (Student)."""
    na, nb = la.size, lb.size
    ssq = float(((la - la.mean()) ** 2).sum() + ((lb - lb.mean()) ** 2).sum())
    return math.sqrt(ssq / (na + nb - 2) * (1 / na + 1 / nb))


def _t_pvalues(d: float, se: float, delta: float, t: object) -> tuple[float, float, float, float]:
    """The p-values of `compare_units` from a difference, its standard error and a t distribution."""
    if se == 0:
        return math.nan, math.nan, math.nan, math.nan
    sf = t.sf  # type: ignore[attr-defined]
    p_up, p_down = float(sf(d / se)), float(sf(-d / se))
    p_eq = max(float(sf((delta - d) / se)), float(sf((d + delta) / se)))
    return min(1.0, 2 * min(p_up, p_down)), p_up, p_down, p_eq


def compare_quantile(
    a: Samples,
    b: Samples,
    q: float,
    *,
    rounds_a: Sequence[int] | None = None,
    rounds_b: Sequence[int] | None = None,
    alpha: float = ALPHA,
    margin: float = MARGIN,
) -> QuantileChange:
    """Compare quantile ``q`` of samples A and B, per process when ``rounds_*`` are given.

    Args:
        rounds_a, rounds_b: samples per process (`process_rounds`); batches are used for
            a side without them (and then for both, so like is compared with like).
    """
    if not (rounds_a and rounds_b):
        rounds_a = rounds_b = None
    ua, kind = units(a, q, rounds_a)
    ub, _ = units(b, q, rounds_b)
    if kind == BATCH and np.array_equal(np.asarray(a), np.asarray(b)):
        ub = ua  # the same samples: exact
    return compare_units(ua, ub, q, kind=kind, alpha=alpha, margin=margin)


def compare_measurements(
    a: Measurement, b: Measurement, q: float, *, alpha: float = ALPHA, margin: float = MARGIN
) -> QuantileChange:
    """Compare quantile ``q`` of two measurements with their processes as the units."""
    sa = np.asarray(a.samples_ns, dtype=np.float64) / 1e6
    sb = np.asarray(b.samples_ns, dtype=np.float64) / 1e6
    return compare_quantile(
        sa, sb, q, rounds_a=process_rounds(a), rounds_b=process_rounds(b), alpha=alpha, margin=margin
    )


def paired_change(
    a_ms: Sequence[float], b_ms: Sequence[float], *, alpha: float = ALPHA, margin: float = MARGIN, q: float = 0.5
) -> QuantileChange:
    """The median of B against A from paired processes (each timed A and B alternately).

    The unit is a process's ratio ``b / a`` of medians: what moved that process or the
    whole run moved both sides, so it cancels, and what is left is the difference of the
    models. One-sample t-test on the log ratios (`scipy.stats.ttest_1samp`), TOST at
    ``margin`` for "no change"; "slower"/"faster" only when the whole ``1 - 2 alpha``
    interval lies beyond the margin. Fewer than 2 processes: undecided.
    """
    from scipy import stats

    la, lb = np.log(np.asarray(a_ms, dtype=np.float64)), np.log(np.asarray(b_ms, dtype=np.float64))
    d = lb - la
    ga, gb = float(np.exp(la.mean())), float(np.exp(lb.mean()))
    ratio = float(np.exp(d.mean()))
    delta = math.log1p(margin)
    n = int(d.size)

    def made(low: float, high: float, p: float, label: Change, p_eq: float) -> QuantileChange:
        r = np.exp(d)
        return QuantileChange(
            q, ga, gb, ratio, low, high, p, label, p_equivalence=p_eq, n_a=n, n_b=n, unit=PAIR,
            spread_a=spread(r) if n else None, spread_b=None, basis=PAIRED,
        )  # fmt: skip

    if n < 2:
        return made(0.0, math.inf, 1.0, Change.UNDECIDED, 1.0)
    se = float(d.std(ddof=1)) / math.sqrt(n)
    if se == 0.0:  # every process gave the same ratio: the difference is exact
        p_eq = 0.0 if abs(d.mean()) < delta else 1.0
        return made(ratio, ratio, 0.0 if d.mean() else 1.0, label_of(ratio, ratio, p_eq, alpha, margin), p_eq)
    p = float(stats.ttest_1samp(d, 0.0).pvalue)
    p_eq = max(
        float(stats.ttest_1samp(d, delta, alternative="less").pvalue),
        float(stats.ttest_1samp(d, -delta, alternative="greater").pvalue),
    )
    half = float(stats.t.ppf(1 - alpha, n - 1)) * se
    low, high = math.exp(d.mean() - half), math.exp(d.mean() + half)
    return made(low, high, p, label_of(low, high, p_eq, alpha, margin), p_eq)


def paired_of(
    base: Measurement | None, new: Measurement, q: float = 0.5, *, alpha: float = ALPHA, margin: float = MARGIN
) -> QuantileChange | None:
    """The paired change of quantile ``q`` of ``new`` when ``new`` re-measured ``base``'s artifact.

    None when ``new`` has no paired processes against exactly the artifact ``base``
    measured (its sha256; ``base`` None: whatever baseline ``new`` was paired with), or
    fewer than 2 of them with that quantile.
    """
    p = new.paired
    if p is None or (base is not None and (not base.sha256 or p.baseline_sha256 != base.sha256)):
        return None
    vals = [v for x in p.processes if (v := x.of(q)) is not None]
    if len(vals) < 2:
        return None
    return paired_change([a for a, _ in vals], [b for _, b in vals], alpha=alpha, margin=margin, q=q)


def one_run_each(c: QuantileChange) -> QuantileChange:
    """``c`` labelled "undecided" (basis "one run each") unless it already is.

    Two runs of one process set each cannot see a shift of a whole run (measured here:
    identical reruns minutes apart moved 5-10 % as a block), so neither a change nor its
    absence is decided from them alone.
    """
    return dataclasses.replace(c, label=Change.UNDECIDED, basis=ONE_RUN_EACH)


def decide_median(
    base: Measurement,
    new: Measurement,
    *,
    history: Sequence[float] = (),
    alpha: float = ALPHA,
    margin: float = MARGIN,
) -> QuantileChange:
    """The median of ``new`` against ``base``, decided on the strongest basis at hand.

    1. ``same run``: the very same measurement (no sampling between them): no change.
    2. ``paired``: ``new`` re-measured ``base``'s artifact in paired processes (`paired_of`).
    3. ``history``: 3 or more earlier runs in the same configuration: the two-sample
       interval of the processes widened by their run-to-run spread (`history_se`).
    4. ``one run each``: otherwise; the figures are shown, the label is "undecided".
    """
    sa = np.asarray(base.samples_ns, dtype=np.float64) / 1e6
    sb = np.asarray(new.samples_ns, dtype=np.float64) / 1e6
    ra, rb = process_rounds(base), process_rounds(new)
    if not (ra and rb):
        ra = rb = None
    ua, kind = units(sa, 0.5, ra)
    ub, _ = units(sb, 0.5, rb)
    if base is new or (sa.size == sb.size and np.array_equal(sa, sb)):
        return dataclasses.replace(compare_units(ua, ua, 0.5, kind=kind), basis=SAME_RUN)
    paired = paired_of(base, new, alpha=alpha, margin=margin)
    if paired is not None:  # its a and b are the paired processes' own (geometric means), as its ratio
        return paired
    extra = history_se(history)
    c = compare_units(ua, ub, 0.5, kind=kind, alpha=alpha, margin=margin, extra_se=extra)
    return dataclasses.replace(c, basis=HISTORY) if extra > 0 else one_run_each(c)


def overall_label(changes: Sequence[QuantileChange]) -> Change:
    """The label of a comparison row: the median's (the first change given).

    Tails are shown with their own labels but do not decide a row: their run-to-run
    spread is several times the median's (see the module docstring).
    """
    return changes[0].label


def spread_warning(what: str, c: QuantileChange) -> str | None:
    """A warning when the processes of either side disagree on a quantile by more than `SPREAD_WARN`."""
    worst = max(c.spread_a or 0.0, c.spread_b or 0.0)
    if worst <= SPREAD_WARN or c.unit != PROCESS:  # batches: the CV warning says it; pairs: the spread cancels
        return None
    side = "A" if (c.spread_a or 0.0) >= (c.spread_b or 0.0) else "B"
    head = f"{what}: the processes of {side} disagree on p{round(c.q * 100)} ({worst:.0%} apart)"
    if c.q == 0.5:
        return (
            f"{head}: what moves a fresh process (the core, the clock, the hypervisor's steal) moves this median; "
            "the interval carries it; measure paired (run --baseline, compare --ab) to cancel it"
        )
    return f"{head}: one process's slow tail widens the interval, it is not a regression by itself"


def limit_check(values: np.ndarray, limit: float, *, alpha: float = ALPHA) -> tuple[CheckVerdict, float, float, float]:
    """Is the statistic whose per-unit values are ``values`` within ``limit`` (same unit)?

    The estimate is the geometric mean of the units with its one-sample t interval
    (``1 - 2 alpha``, on logs).

    Returns:
        ``(verdict, estimate, low, high)``: ``pass`` when the whole interval is within
        the limit, ``fail`` when it is wholly above, ``undecided`` otherwise (and with one unit).
    """
    from scipy import stats

    logs = np.log(np.asarray(values, dtype=np.float64))
    est = float(np.exp(logs.mean()))
    if logs.size < 2:
        return CheckVerdict.UNDECIDED, est, 0.0, math.inf
    half = float(stats.t.ppf(1 - alpha, logs.size - 1)) * float(logs.std(ddof=1)) / math.sqrt(logs.size)
    lo, hi = est * math.exp(-half), est * math.exp(half)
    if hi <= limit:
        return CheckVerdict.PASS, est, lo, hi
    if lo > limit:
        return CheckVerdict.FAIL, est, lo, hi
    return CheckVerdict.UNDECIDED, est, lo, hi


def budget_check(
    samples: Samples, q: float, budget: float, rounds: Sequence[int] | None = None, *, alpha: float = ALPHA
) -> tuple[CheckVerdict, float, float, float]:
    """`limit_check` of quantile ``q`` of samples, per process when ``rounds`` are given."""
    values, _ = units(samples, q, rounds)
    return limit_check(values, budget, alpha=alpha)


def history_se(values: Sequence[float]) -> float:
    """The standard error a new run's log median has against earlier runs' medians.

    The standard deviation of the logs of ``values`` (one median per earlier run) times
    ``sqrt(1 + 1/k)``: a prediction interval for one more run. 0 with fewer than 3 runs.
    """
    v = np.log(np.asarray([x for x in values if x and x > 0], dtype=np.float64))
    if v.size < 3:
        return 0.0
    return float(v.std(ddof=1)) * math.sqrt(1 + 1 / v.size)


def regression_check(
    base: Measurement,
    new: Measurement,
    limit_pct: float,
    *,
    history: Sequence[float] = (),
    alpha: float = ALPHA,
) -> tuple[CheckVerdict, QuantileChange]:
    """Is the median of ``new`` at most ``limit_pct`` % slower than that of ``base``?

    Decided on `decide_median`'s basis: paired processes when ``new`` re-measured the
    baseline's artifact, else the processes widened by history (3 or more earlier runs'
    medians in ``history``); with neither ("one run each") the check is undecided.

    Returns:
        ``pass`` when the whole ``1 - 2 alpha`` interval of the ratio is within the limit,
        ``fail`` when it is wholly beyond, ``undecided`` otherwise; and the change.
    """
    c = decide_median(base, new, history=history, alpha=alpha)
    cap = 1 + limit_pct / 100
    if c.basis == ONE_RUN_EACH:
        return CheckVerdict.UNDECIDED, c
    verdict = (
        CheckVerdict.PASS if c.ratio_high <= cap else CheckVerdict.FAIL if c.ratio_low > cap else CheckVerdict.UNDECIDED
    )
    return verdict, c


def quantile_ci(samples: Samples, q: float, confidence: float = 0.95) -> tuple[float, float, float]:
    """A quantile of one set of samples and its interval (for showing one run, not for deciding).

    The wider of the distribution-free order-statistic interval (ranks from the binomial
    ``(n, q)`` quantiles, right for independent samples) and ``estimate ± t·se`` of the
    batch values (`units` without processes), which widens when the samples drift in time.

    Returns:
        ``(estimate, low, high)``, in the unit of the samples (kept in measurement order).
    """
    from scipy import stats

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
    batch, _ = units(raw, q)
    if batch.size >= 2:
        spread_ = float(stats.t.ppf(0.5 + confidence / 2, batch.size - 1)) * float(batch.std(ddof=1))
        spread_ /= math.sqrt(batch.size)
        lo, hi = min(lo, est - spread_), max(hi, est + spread_)
    return est, lo, hi
