"""A direct path to one measurement, for tests: one variant, one board, one fresh agent process.

Users measure through `edgebench.bench.session.EdgeSession` (``edgebench run``, the
pytest plugin), which runs ``repeats`` processes per variant, interleaved. Tests that
check one board-side behaviour (a runtime, a bad input, a killed job) need a single
process and no session: this is it, built from the same pieces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgebench.bench.runner import (
    add_noise_warning,
    base_measurement,
    deploy_jobs,
    from_agent,
    remote_error,
    run_agent,
    runtime_error,
)
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant
from edgebench.errors import RemoteError
from edgebench.model import JSONObject, Measurement
from edgebench.targets.driver import Driver


def measure_once(
    driver: Driver,
    variant: Variant,
    *,
    eval_data: Path | None = None,
    settings: RunSettings | Mapping[str, Any] | None = None,
    reference: Path | None = None,
    reference_info: JSONObject | None = None,
    timeout: float | None = None,
) -> Measurement:
    """Run one variant on one board in one fresh agent process (whatever ``settings.repeats`` says).

    Args:
        driver: reaches the board (the caller holds its lock if it wants one).
        variant: what to measure.
        eval_data: npz deployed with the job for accuracy (``x`` / per-input arrays, ``y``).
        settings: measurement settings (a `RunSettings` or a mapping of its fields).
        reference: npz of the parent's outputs on ``eval_data`` (``outputs``), for fidelity.
        reference_info: what ``reference`` is (stored as the measurement's ``reference``).
        timeout: seconds before the agent is killed (default ``settings.timeout_s``).

    Returns:
        The measurement; a failure on the board is returned as data (``ok`` false), never raised.
    """
    board = driver.board
    rs = settings if isinstance(settings, RunSettings) else RunSettings.from_mapping(settings)
    m = base_measurement(board, variant, rs, runtime_error(board, variant))
    if m.error is not None:
        return m
    try:
        command, _ = deploy_jobs(driver, variant, rs, eval_data=eval_data, reference=reference)
        out = run_agent(driver, command, timeout or rs.timeout_s)
    except RemoteError as exc:
        return dataclasses.replace(m, error=remote_error(exc))
    m = add_noise_warning(from_agent(m, board, out))
    if reference_info is not None and reference is not None and eval_data is not None:
        m = dataclasses.replace(m, reference=reference_info)
    return m


def measure_variant(driver: Driver, variant: Variant, **kwargs: Any) -> dict[str, Any]:
    """`measure_once` as the JSON a run file stores (``samples_ns`` included), for tests that read keys."""
    return measure_once(driver, variant, **kwargs).to_json()
