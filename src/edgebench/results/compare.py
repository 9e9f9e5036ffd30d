"""`edgebench compare A B`: what changed between two runs, with significance on the raw samples."""

from __future__ import annotations

from edgebench.model import MIB, Comparison, ComparisonRow, FailedKey, Run
from edgebench.results.analysis import samples_ms
from edgebench.results.significance import ALPHA, MIN_EFFECT, compare_quantile, mann_whitney, overall_label


def compare_runs(a: Run, b: Run, *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> Comparison:
    """Compare run B against run A for every (board, model, variant) measured in both.

    Returns:
        The rows measured in both (p50 and p90 changes with their label, Mann-Whitney
        effect, peak memory and top-1 of each side), what only one run has and what failed.
    """
    sa, sb = samples_ms(a), samples_ms(b)
    ma = {m.key: m for m in a.measurements}
    mb = {m.key: m for m in b.measurements}
    rows = []
    for key in sorted(set(sa) & set(sb)):
        effect, p = mann_whitney(sa[key], sb[key])
        p50 = compare_quantile(sa[key], sb[key], 0.5, p=p, alpha=alpha, min_effect=min_effect)
        p90 = compare_quantile(sa[key], sb[key], 0.9, p=p, alpha=alpha, min_effect=min_effect)
        pa, pb = ma[key].peak_rss, mb[key].peak_rss
        rows.append(
            ComparisonRow(
                *key,
                p50=p50,
                p90=p90,
                p_value=p,
                mw_effect=effect,
                label=overall_label([p50, p90]),
                peak_mb_a=None if pa is None else pa / MIB,
                peak_mb_b=None if pb is None else pb / MIB,
                top1_a=ma[key].top1,
                top1_b=mb[key].top1,
            )
        )
    failed = [
        FailedKey(*k, side=which)
        for which, side, ok in (("A", ma, sa), ("B", mb, sb))
        for k in sorted(side)
        if k not in ok
    ]
    return Comparison(
        a=a.run_id,
        b=b.run_id,
        alpha=alpha,
        min_effect=min_effect,
        rows=tuple(rows),
        only_a=tuple(sorted(set(ma) - set(mb))),
        only_b=tuple(sorted(set(mb) - set(ma))),
        failed=tuple(failed),
    )
