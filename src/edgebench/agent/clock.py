"""The agent's clock: monotonic nanoseconds (``time.perf_counter_ns``, or its Python 3.6 fallback)."""

import time
from typing import Callable, Optional


def _perf_counter_ns_36() -> int:
    """``time.perf_counter`` in ns, for Python 3.6 (``perf_counter_ns`` came in 3.7)."""
    return round(time.perf_counter() * 1e9)


def ns_clock() -> Callable[[], int]:
    """The monotonic nanosecond clock: ``time.perf_counter_ns``, or its 3.6 fallback.

    Looked up at call time (not bound at import) so tests can replace ``time.perf_counter_ns``.
    """
    clock: Optional[Callable[[], int]] = getattr(time, "perf_counter_ns", None)
    return clock if clock is not None else _perf_counter_ns_36


def now_ns() -> int:
    """One reading of :func:`ns_clock` (for single timings; loops bind ``ns_clock()`` once)."""
    return ns_clock()()
