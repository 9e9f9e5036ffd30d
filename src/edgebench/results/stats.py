"""Statistics over raw latency samples: summaries and (later) comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pytest_benchmark.stats import Stats

from edgebench.model import Summary

HIGH_CV = 0.10  # above this coefficient of variation a summary carries a warning
PROCESS_SPREAD = 0.10  # per-process medians of one variant further apart than this (max/min - 1) carry a warning


def is_noisy(summary: Mapping[str, Any] | float | None) -> bool:
    """True when a coefficient of variation (or a summary's ``cv``) is above `HIGH_CV`."""
    cv = summary.get("cv") if isinstance(summary, Mapping) else summary
    return bool((cv or 0.0) > HIGH_CV)


def summarize(samples_ns: Sequence[int], batch_size: int = 1) -> Summary:
    """Summary statistics of per-inference samples (ns), in milliseconds.

    Returns:
        ``rounds, min_ms, p50_ms, mean_ms, p90_ms, p95_ms, p99_ms, max_ms, stddev_ms,
        iqr_ms, cv`` (stddev / mean) and ``throughput`` (samples per second at the
        median, times the batch size).
    """
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6
    if a.size == 0:
        raise ValueError("no samples")
    q1, p50, q3, p90, p95, p99 = np.percentile(a, [25, 50, 75, 90, 95, 99])
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return Summary(
        rounds=int(a.size),
        min_ms=float(a.min()),
        p50_ms=float(p50),
        mean_ms=mean,
        p90_ms=float(p90),
        p95_ms=float(p95),
        p99_ms=float(p99),
        max_ms=float(a.max()),
        stddev_ms=std,
        iqr_ms=float(q3 - q1),
        cv=std / mean if mean > 0 else 0.0,
        throughput=batch_size * 1000.0 / float(p50) if p50 > 0 else 0.0,
    )


def pytest_benchmark_stats(samples_ns: Sequence[int]) -> dict[str, Any]:
    """The ``stats`` block pytest-benchmark stores for a benchmark, in seconds.

    Computed the way pytest-benchmark's own ``Stats`` does (quartiles, IQR outliers,
    stddev outliers), so ``pytest-benchmark compare`` reads it like its own files.
    """
    s = Stats()  # type: ignore[no-untyped-call]
    for v in samples_ns:
        s.update(v / 1e9)  # type: ignore[no-untyped-call]
    out: dict[str, Any] = {
        f: getattr(s, f)
        for f in (
            "min",
            "max",
            "mean",
            "stddev",
            "rounds",
            "median",
            "iqr",
            "q1",
            "q3",
            "iqr_outliers",
            "stddev_outliers",
            "outliers",
            "ld15iqr",
            "hd15iqr",
            "ops",
            "total",
        )
    }
    out["iterations"] = 1
    out["data"] = list(s.data)
    return out
