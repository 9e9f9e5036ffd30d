"""Trends over history: sparklines and change points in a series of nightly figures."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgebench.model import Report, Trend
from edgebench.results.index import history

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


def change_points(
    values: Sequence[float | None], *, min_rel: float = 0.05, min_z: float = 4.0, min_seg: int = 2
) -> list[int]:
    """Indices where a series shifts level (binary segmentation on the median).

    A split at ``i`` (the first point of the new level) is kept when the two sides'
    medians differ by more than ``min_rel`` of the earlier one and by more than
    ``min_z`` times the series' noise (1.48 · MAD of successive differences / sqrt 2).
    Missing values are ignored.

    Returns:
        Sorted indices into ``values``.
    """
    idx = [i for i, v in enumerate(values) if v is not None]
    x = np.asarray([values[i] for i in idx], dtype=np.float64)
    if x.size < 2 * min_seg:
        return []
    d = np.diff(x)
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / np.sqrt(2) if d.size else 0.0
    found: list[int] = []

    def split(lo: int, hi: int) -> None:
        best, best_i = 0.0, -1
        for i in range(lo + min_seg, hi - min_seg + 1):
            a, b = float(np.median(x[lo:i])), float(np.median(x[i:hi]))
            gap = abs(b - a)
            if a != 0 and gap / abs(a) > min_rel and gap > min_z * noise and gap > best:
                best, best_i = gap, i
        if best_i >= 0:
            found.append(best_i)
            split(lo, best_i)
            split(best_i, hi)

    split(0, int(x.size))
    return sorted(idx[i] for i in found)


def with_trends(
    report: Report,
    results: Path,
    *,
    last: int = 30,
    command: str | None = None,
    metrics: tuple[str, ...] = ("p90",),
) -> Report:
    """The report with its trends: per (board, model, variant) and metric, the last runs from the index.

    Each trend has the ``values``, the ``runs`` (ids), a ``sparkline`` and the
    ``changes`` (run ids where a change point starts).
    """
    keys = [(r.board, mm.model, r.variant) for mm in report.models for r in mm.rows if r.ok]
    hist = history(results, keys, metrics=metrics, last=last, command=command, before=report.started)
    trends = []
    for key in keys:
        h = hist[key]
        for metric in metrics:
            vals = tuple(x[metric] for x in h)
            cps = change_points(vals)
            runs = tuple(x["run_id"] for x in h)
            trends.append(Trend(*key, metric, vals, runs, sparkline(vals, cps), tuple(runs[i] for i in cps)))
    return dataclasses.replace(report, trends=tuple(trends))
