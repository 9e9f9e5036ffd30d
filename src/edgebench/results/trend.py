"""Trends over history: sparklines and change points in a series of nightly figures."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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
