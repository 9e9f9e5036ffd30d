"""Change-point detection on seeded synthetic nightly series with known truth: precision and recall.

Run: ``.venv/bin/pytest tests/perf/perf_changepoints.py -s -p no:cacheprovider``

Each series is 12-40 nightly p90 figures around 10 ms with a coefficient of variation
of 1-3 %, 0-2 level shifts of 8-30 % (up or down) at least 3 runs apart, and in half of
the series one spike of 20-60 % on a single run (a noisy neighbour, not a change). A
detected change is exact when it is the first run of the new level, near when it is
one run off. Precision and recall are printed for exact and near matches, for all
series and for those with a spike (spikes reported as changes lower the precision);
plus the share of series whose single step is on the newest run that were caught.
The assertions are sanity floors only.
"""

from __future__ import annotations

import numpy as np

from edgebench.results.trend import change_points

SERIES = 400


def synthetic(rng: np.random.Generator) -> tuple[list[float], list[int], bool]:
    """One series, its true change indices and whether it holds a spike."""
    n = int(rng.integers(12, 41))
    k = int(rng.integers(0, 3))
    truth: list[int] = []
    while len(truth) < k:
        c = int(rng.integers(3, n))
        if all(abs(c - t) >= 3 for t in truth):
            truth.append(c)
    truth.sort()
    level = np.full(n, 10.0)
    for c in truth:
        level[c:] *= 1 + rng.choice([-1, 1]) * rng.uniform(0.08, 0.30)
    x = level * (1 + rng.normal(0, rng.uniform(0.01, 0.03), n))
    spike = bool(rng.random() < 0.5)
    if spike:
        free = [i for i in range(1, n - 1) if all(abs(i - t) > 1 for t in truth)]
        if free:
            i = int(rng.choice(free))
            x[i] *= 1 + rng.uniform(0.2, 0.6)
        else:
            spike = False
    return list(x), truth, spike


def _score(found: list[int], truth: list[int], tol: int) -> tuple[int, int]:
    """(true positives among found, true changes caught), each true change matched once."""
    left, tp = list(truth), 0
    for f in found:
        hit = next((t for t in left if abs(f - t) <= tol), None)
        if hit is not None:
            left.remove(hit)
            tp += 1
    return tp, len(truth) - len(left)


def test_precision_and_recall_on_synthetic_series() -> None:
    rng = np.random.default_rng(20261125)
    rows = [synthetic(rng) for _ in range(SERIES)]
    newest: list[tuple[list[float], list[int]]] = []
    for s in range(100):  # a single step on the newest run
        r = np.random.default_rng(1000 + s)
        n = int(r.integers(10, 31))
        x = 10 * (1 + r.normal(0, r.uniform(0.01, 0.03), n))
        x[-1] *= 1 + r.choice([-1, 1]) * r.uniform(0.15, 0.30)
        newest.append((list(x), [n - 1]))
    print(f"\nchange points on {SERIES} seeded synthetic series (PELT, ruptures; penalty 3 sigma^2 log n)")
    for label, subset in (("all", rows), ("with a spike", [r for r in rows if r[2]])):
        for tol in (0, 1):
            found = [change_points(x) for x, _, _ in subset]
            tp = sum(_score(f, t, tol)[0] for f, (_, t, _) in zip(found, subset, strict=True))
            caught = sum(_score(f, t, tol)[1] for f, (_, t, _) in zip(found, subset, strict=True))
            n_found, n_true = sum(len(f) for f in found), sum(len(t) for _, t, _ in subset)
            prec, rec = tp / max(n_found, 1), caught / max(n_true, 1)
            kind = "exact" if tol == 0 else "+-1 run"
            print(f"  {label:13s} {kind:8s} precision {prec:.3f} recall {rec:.3f}  ({n_found} found, {n_true} true)")
            if tol == 1 and label == "all":
                assert prec > 0.5 and rec > 0.5
    flat = [r for r in rows if not r[1]]
    print(f"  series without a change: {sum(bool(change_points(x)) for x, _, _ in flat)}/{len(flat)} reported one")
    spiky = [r for r in rows if r[2] and not r[1]]
    false_on_spike = sum(bool(change_points(x)) for x, _, _ in spiky)
    print(f"  series with only a spike and no change: {false_on_spike}/{len(spiky)} reported a change")
    hit = sum(change_points(x) == t for x, t in newest)
    print(f"  a 15-30 % step on the newest run alone: {hit}/{len(newest)} caught on that run")
