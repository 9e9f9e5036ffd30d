"""Profile helpers for tests: the one-line answer a profile run gives about two variants."""

from __future__ import annotations

from edgebench.bench import profile
from edgebench.model import Run


def why_slower(run: Run, slow: str = "int8-dynamic", fast: str = "fp32") -> str | None:
    """The demo's one line: why ``slow`` is slower than ``fast`` in a stored profile run.

    Returns:
        The verdict line (e.g. ``"int8-dynamic is 4.5x slower than fp32: ConvInteger +
        DynamicQuantizeLinear: 81 % of int8-dynamic vs Conv 62 % of fp32"``), or None when the
        run lacks either profile or ``slow`` is not slower.
    """
    return profile.why_slower(profile.profiles_of_run(run), slow, fast)
