"""Trends over history: one point per commit, over comparable measurements, with change points.

As asv does (``asv publish``: one point per commit, the x axis labelled by commit),
runs of the same commit are pooled; only measurements whose configuration key
(`edgebench.model.ConfigKey`) matches the newest one form a series; change points are
found by PELT (the ``ruptures`` library) with a penalty scaled to the series' noise.

Paired-linked medians: separate runs move as a block (5-20 % between invocations on a
shared runner), which would bury a 5-10 % step in noise. A run that re-measured an
earlier run of the series paired (``run --baseline``; every nightly after the first)
is placed at that run's value times the paired ratio, so the series moves only where
the paired comparisons say the model did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgebench.model import Report, Run, Trend
from edgebench.results.backend import Results, history, load_run_id

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], marks: Sequence[int] = ()) -> str:
    """A one-line bar chart of a series (``·`` for a missing value); marked indices get ``|`` before them."""
    vals = [v for v in values if v is not None]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    out = []
    for i, v in enumerate(values):
        if i in marks:
            out.append("|")
        if v is None:
            out.append("·")
            continue
        k = 0 if hi == lo else round((v - lo) / (hi - lo) * (len(BARS) - 1))
        out.append(BARS[k])
    return "".join(out)


def noise(x: np.ndarray) -> float:
    """A robust standard deviation of a series' noise: 1.4826 · MAD of successive differences / sqrt 2.

    Successive differences cancel the level, so steps barely move it; the MAD ignores spikes.
    """
    d = np.diff(x)
    return 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2) if d.size else 0.0


def change_points(
    values: Sequence[float | None], *, min_rel: float = 0.05, penalty: float = 3.0, floor_rel: float = 0.01
) -> list[int]:
    """Indices where a series shifts level: PELT (ruptures) on a spike-filtered series.

    The method (Killick, Fearnhead & Eckley 2012, PELT, as `ruptures.Pelt` implements it
    with the ``l2`` cost) minimises the squared error of piecewise-constant levels plus a
    penalty per change. The penalty is the BIC form ``penalty · sigma² · log n`` with the
    noise ``sigma`` estimated from the series itself (`noise`, floored at ``floor_rel`` of
    the median level so that a perfectly flat series is not split by rounding). Before the
    search a running median of three (ends held) removes single spikes, so one outlier is
    never a change, while a step, even on the newest point alone, is kept (the window at
    the end is [x[-2], x[-1], x[-1]]). A change is kept only if the levels on its two
    sides differ by more than ``min_rel`` of the earlier level. Missing values are ignored.

    Returns:
        Sorted indices into ``values``, each the first point of the new level.
    """
    # ruptures is imported here: only trends need it, and it loads in ~0.2 s
    import ruptures  # type: ignore[import-untyped]
    from scipy.ndimage import median_filter  # type: ignore[import-untyped]

    idx = [i for i, v in enumerate(values) if v is not None]
    x = np.asarray([values[i] for i in idx], dtype=np.float64)
    if x.size < 2:
        return []
    level = float(np.median(np.abs(x)))
    sigma = max(noise(x), floor_rel * level)
    if sigma == 0.0:
        return []
    smooth = median_filter(x, size=3, mode="nearest") if x.size >= 3 else x
    bkps = ruptures.Pelt(model="l2", min_size=1, jump=1).fit(smooth).predict(pen=penalty * sigma**2 * np.log(x.size))
    bounds = [0, *bkps]
    kept: list[int] = []
    for a, b, c in zip(bounds, bounds[1:], bounds[2:], strict=False):
        before, after = float(np.median(smooth[a:b])), float(np.median(smooth[b:c]))
        if before != 0 and abs(after - before) / abs(before) > min_rel:
            kept.append(b)
    return [idx[i] for i in kept]


def by_commit(points: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One point per commit (as asv plots), oldest first: runs of one commit pooled by their median.

    A run without a commit, or of a dirty checkout (whose code is not that commit), is a
    point of its own. Each point has ``value``, ``run_id`` (the commit's latest run),
    ``label`` (the short commit id, ``*`` when dirty, else the run id) and ``runs``.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in points:
        commit = p.get("commit")
        key = f"c:{commit}" if commit and not p.get("dirty") else f"r:{p['run_id']}"
        groups.setdefault(key, []).append(p)
    out = []
    for ps in groups.values():
        vals = [p[metric] for p in ps if p[metric] is not None]
        commit, last = ps[-1].get("commit"), ps[-1]
        label = f"{commit[:7]}{'*' if last.get('dirty') else ''}" if commit else str(last["run_id"])
        out.append({
            "value": float(np.median(vals)) if vals else None, "run_id": last["run_id"], "label": label,
            "runs": [p["run_id"] for p in ps],
        })  # fmt: skip
    return out


def linked(
    results: Results,
    key: tuple[str, str, str],
    rows: Sequence[dict[str, Any]],
    runs: dict[str, Run | None] | None = None,
) -> list[dict[str, Any]]:
    """The rows (oldest first) with each ``p50`` chained through its paired ratio to its baseline's, when in them.

    See the module docstring; a row without paired processes against an earlier row keeps its own median.
    ``runs`` caches the run files read, shared by the keys of one report (each file is read once).
    """
    runs = {} if runs is None else runs
    level: dict[str, float] = {}
    out = []
    for r in rows:
        v = r.get("p50")
        rid = str(r["run_id"])
        if rid not in runs:
            runs[rid] = load_run_id(results, rid)
        run = runs[rid]
        m = next((x for x in run.measurements if x.key == key), None) if run is not None else None
        p = m.paired if m is not None else None
        if p is not None and p.baseline_run in level and len(p.processes) >= 2:
            ratio = float(np.exp(np.mean([np.log(x.b_p50_ms / x.a_p50_ms) for x in p.processes])))
            v = level[p.baseline_run] * ratio
        if v is not None:
            level[rid] = float(v)
        out.append({**r, "p50": v})
    return out


def left_out_note(key: tuple[str, str, str], count: int, differences: Sequence[str]) -> str:
    """The report warning of a trend that leaves out ``count`` earlier runs of another configuration.

    One per series, whole (``--verbose`` and the JSON show each); the terminal and Markdown reports fold
    them into one line (`edgebench.render.report.fold_warnings` knows this wording).
    """
    return (
        f"trend of {'/'.join(key)} leaves out {count} earlier run(s) measured in another "
        f"configuration ({'; '.join(differences)})"
    )


def with_trends(
    report: Report,
    results: Results,
    *,
    last: int = 30,
    command: str | None = None,
    metrics: tuple[str, ...] = ("p50",),  # the statistic compare and gate decide on
) -> Report:
    """The report with its trends: per (board, model, variant) and metric, the last runs from the index.

    Only measurements with the configuration of the newest one count (`ConfigKey`: a
    run with another batch, inputs, threads, runtime version or board is another
    series, left out, counted in ``left_out`` and named in a report warning with the
    fields that differ); then one point per commit
    (`by_commit`). Each trend has the ``values``, the ``runs`` (the run id of each
    point), the ``commits`` (x-axis labels: short commit ids), a ``sparkline`` and the
    ``changes`` (run ids where a change point starts, `change_points`).
    """
    keys = [(r.board, mm.model, r.variant) for mm in report.models for r in mm.rows if r.ok]
    hist = history(results, keys, metrics=metrics, last=last, command=command, before=report.started)
    trends, notes = [], []
    read: dict[str, Run | None] = {}  # run files read for the paired links, once per report
    for key in keys:
        h = hist[key]
        ref = h[-1]["config"] if h else None
        same = [x for x in h if ref is None or ref.comparable(x["config"])]
        other = [x for x in h if x not in same]
        if ref is not None and other:  # say which field differs, as compare and gate do
            diffs = sorted({d for x in other for d in x["config"].differences(ref)})
            notes.append(left_out_note(key, len(other), diffs))
        if "p50" in metrics:
            same = linked(results, key, same, read)
        for metric in metrics:
            pts = by_commit(same, metric)
            vals = tuple(p["value"] for p in pts)
            cps = change_points(vals)
            runs = tuple(p["run_id"] for p in pts)
            trends.append(
                Trend(
                    *key,
                    metric,
                    vals,
                    runs,
                    sparkline(vals, cps),
                    tuple(runs[i] for i in cps),
                    commits=tuple(p["label"] for p in pts),
                    config=None if ref is None else ref.digest,
                    left_out=len(h) - len(same),
                )
            )
    return dataclasses.replace(report, trends=tuple(trends), warnings=(*report.warnings, *notes))
