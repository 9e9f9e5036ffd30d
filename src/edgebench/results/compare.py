"""`edgebench compare A B`: what changed between two runs.

The median decides a row, on the strongest basis at hand (`significance.decide_median`):
B's paired processes against A's artifact (`run --baseline A`), else the processes widened
by the run-to-run spread of history, else "undecided: one run each" (two separate runs
cannot see a shift of a whole run). p90 and p99 are shown with their ratio and interval
over the processes; they are labelled only when A and B are the same run. Measurements whose configuration
differs (batch, input shapes, threads, runtime version, board) are not paired unless
``allow_config_change`` is set.

Each row also carries each side's fidelity (`analysis.fidelity_of`: the board's cosine with eval data,
else the variant's manifest's from compress time): a variant degraded in B is shown degraded, faster
or not (`fidelity_fields`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgebench.errors import UserError
from edgebench.model import MIB, Comparison, ComparisonRow, FailedKey, Measurement, QuantileChange, Run
from edgebench.results import commit
from edgebench.results.analysis import fidelity_of, samples_ms
from edgebench.results.significance import (
    ALPHA,
    MARGIN,
    PAIRED,
    SAME_RUN,
    compare_measurements,
    decide_median,
    mann_whitney,
    one_run_each,
    overall_label,
    paired_of,
    spread_warning,
)

Key = tuple[str, str, str]


def config_differences(a: Measurement, b: Measurement) -> list[str]:
    """What differs between the configurations of two measurements of one (board, model, variant).

    Returns:
        One ``field: A -> B`` text per differing field of their `ConfigKey`; a field one
        of them does not record (runs from before it was kept) is not a difference.
    """
    return a.config_key.differences(b.config_key)


def refuse_config_change(pairs: list[tuple[Key, list[str]]], what: str) -> None:
    """Raise when any pair of measurements differs in configuration.

    Raises:
        UserError: naming the first (board, model, variant), the fields and the flag.
    """
    if pairs:
        key, diffs = pairs[0]
        more = f" (and {len(pairs) - 1} more)" if len(pairs) > 1 else ""
        raise UserError(
            f"{what}: {'/'.join(key)}{more} was measured with a different configuration ({'; '.join(diffs)}): "
            "these figures are not comparable; pass --allow-config-change to pair them anyway"
        )


def fidelity_fields(a: Measurement | None, b: Measurement) -> dict[str, Any]:
    """The `ComparisonRow` fidelity fields of A (None: not in a run, as for ``compare --ab``) and B.

    ``fidelity_note`` says what is degraded and why: ``degraded in B: host-side cosine 0.0312 < 0.99
    against its parent at compress time``; A too when it was (``degraded in A and B``, or ``in A only``).
    """
    fa, fb = (None if a is None else fidelity_of(a)), fidelity_of(b)
    da, db = fa is not None and fa.degraded, fb.degraded
    note = ""
    if db:
        note = f"degraded in {'A and B' if da else 'B'}: {fb.words()}: faster or not, its outputs are not usable"
    elif da and fa is not None:
        note = f"degraded in A only ({fa.words()}), not in B ({fb.words()})"
    return {
        "cosine_a": None if fa is None else fa.cosine, "cosine_b": fb.cosine,
        "degraded_a": da, "degraded_b": db, "fidelity_note": note,
    }  # fmt: skip


def tail(a: Measurement, b: Measurement, q: float, basis: str | None, alpha: float, margin: float) -> QuantileChange:
    """A tail of B against A: paired when the median was, the same run exact, else shown but not labelled."""
    if basis == PAIRED and (c := paired_of(a, b, q, alpha=alpha, margin=margin)) is not None:
        return c
    c = compare_measurements(a, b, q, alpha=alpha, margin=margin)
    return c if basis == SAME_RUN else one_run_each(c)


def compare_runs(
    a: Run,
    b: Run,
    *,
    alpha: float = ALPHA,
    margin: float = MARGIN,
    allow_config_change: bool = False,
    history: Mapping[Key, Sequence[float]] | None = None,
) -> Comparison:
    """Compare run B against run A for every (board, model, variant) measured in both.

    Args:
        margin: changes of the median within ``±margin`` are "no change" (when shown so).
        allow_config_change: pair measurements whose configuration keys differ (the
            differences are listed in the result).
        history: earlier runs' medians (ms) per key in the same configuration
            (`gate.comparable_history`); 3 or more widen a row with no paired processes.

    Returns:
        The rows measured in both (p50, p90 and p99 changes with their labels, the
        pooled Mann-Whitney figures for information, peak memory and top-1 of each side),
        what only one run has and what failed.

    Raises:
        UserError: when configurations differ and ``allow_config_change`` is not set.
    """
    sa, sb = samples_ms(a), samples_ms(b)
    ma = {m.key: m for m in a.measurements}
    mb = {m.key: m for m in b.measurements}
    both = sorted(set(sa) & set(sb))
    changed = [(k, d) for k in both if (d := config_differences(ma[k], mb[k]))]
    if not allow_config_change:
        refuse_config_change(changed, f"compare {a.run_id} {b.run_id}")
    rows = []
    for key in both:
        x, y = ma[key], mb[key]
        effect, p = mann_whitney(sa[key], sb[key])
        p50 = decide_median(x, y, history=(history or {}).get(key, ()), alpha=alpha, margin=margin)
        p90, p99 = (tail(x, y, q, p50.basis, alpha, margin) for q in (0.9, 0.99))
        notes = [w for c in (p50, p90, p99) if (w := spread_warning("/".join(key), c))]
        pa, pb = x.peak_rss, y.peak_rss
        rows.append(
            ComparisonRow(
                *key,
                p50=p50,
                p90=p90,
                p_value=p,
                mw_effect=effect,
                label=overall_label([p50, p90, p99]),
                peak_mb_a=None if pa is None else pa / MIB,
                peak_mb_b=None if pb is None else pb / MIB,
                top1_a=x.top1,
                top1_b=y.top1,
                p99=p99,
                warnings=tuple(notes[:1]),  # one per row is enough: they say the same thing
                **fidelity_fields(x, y),
            )
        )
    failed = [
        FailedKey(*k, side=which)
        for which, side, ok in (("A", ma, sa), ("B", mb, sb))
        for k in sorted(side)
        if k not in ok
    ]
    (commit_a, branch_a), (commit_b, branch_b) = commit.of(a.commit_info), commit.of(b.commit_info)
    return Comparison(
        a=a.run_id,
        b=b.run_id,
        commit_a=commit_a,
        commit_b=commit_b,
        branch_a=branch_a,
        branch_b=branch_b,
        alpha=alpha,
        margin=margin,
        rows=tuple(rows),
        only_a=tuple(sorted(set(ma) - set(mb))),
        only_b=tuple(sorted(set(mb) - set(ma))),
        failed=tuple(failed),
        config_changes=tuple(f"{'/'.join(k)}: {'; '.join(d)}" for k, d in changed),
    )


def compare_paired(run: Run, baseline: str, *, alpha: float = ALPHA, margin: float = MARGIN) -> Comparison:
    """The comparison a paired run holds by itself: each measurement against the baseline it re-measured.

    What ``compare --ab A B`` shows: B's measurements of ``run`` (made with ``--baseline
    A``) against A, decided on the paired processes only (p50, p90 and p99 per process).
    A measurement without paired processes is listed as only in B.
    """
    rows, only_b = [], []
    for m in run.measurements:
        p50 = paired_of(None, m, 0.5, alpha=alpha, margin=margin) if m.ok else None
        if p50 is None:
            only_b.append(m.key)
            continue
        p90 = paired_of(None, m, 0.9, alpha=alpha, margin=margin) or p50
        p99 = paired_of(None, m, 0.99, alpha=alpha, margin=margin)
        notes = [f"paired with the baseline only in part: {m.paired.error}"] if m.paired and m.paired.error else []
        rows.append(
            ComparisonRow(
                *m.key, p50=p50, p90=p90, p_value=p50.p, mw_effect=0.5, label=p50.label,
                peak_mb_b=None if m.peak_rss is None else m.peak_rss / MIB, top1_b=m.top1, p99=p99,
                warnings=tuple(notes), **fidelity_fields(None, m),
            )
        )  # fmt: skip
    commit_b, branch_b = commit.of(run.commit_info)
    return Comparison(
        a=baseline, b=run.run_id, commit_a=None, commit_b=commit_b, branch_a=None, branch_b=branch_b,
        alpha=alpha, margin=margin, rows=tuple(rows), only_b=tuple(only_b),
        failed=tuple(FailedKey(*m.key, side="B") for m in run.measurements if not m.ok),
    )  # fmt: skip
