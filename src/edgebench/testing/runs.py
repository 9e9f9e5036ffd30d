"""Runs and measurements for tests: one measurement without a session, a run written as it grows.

Users measure through `edgebench.bench.session.EdgeSession` (``edgebench run``, the
pytest plugin), which runs ``repeats`` processes per variant, interleaved. Tests that
check one board-side behaviour (a runtime, a bad input, a killed job) need a single
process and no session: `measure_once` is it, built from the same pieces. `RunWriter`
writes a run after every measurement the way a session does, for tests of run files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

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
from edgebench.model import JSONObject, Measurement, Paired, PairedProcess, Run
from edgebench.results import schema, store
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


class RunWriter:
    """Write a run as it is measured: after every measurement, atomically.

    Use as a context manager::

        with RunWriter(results, schema.new_run("test")) as w:
            for m in measurements:
                w.add(m)

    On a clean exit the run is marked complete; on an exception (or Ctrl-C) it keeps
    every finished measurement and records ``complete: false`` and why it stopped.
    """

    def __init__(self, results: Path, run: Run) -> None:
        self.results = results
        self.run = run
        self.path = store.run_path(results, run.run_id)
        store.prepare(results)

    def save(self) -> Path:
        """Write the run as it is now."""
        return store.save_run(self.results, self.run)

    def add(self, measurement: Measurement) -> None:
        """Add one measurement and write the run."""
        self.run = schema.add_measurement(self.run, measurement)
        self.save()

    def __enter__(self) -> RunWriter:
        self.run = dataclasses.replace(self.run, complete=False)
        self.save()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        why = None if et is None else f"{et.__name__}: {ev}"[:500]
        self.run = schema.finish(self.run, complete=et is None, interrupted=why)
        self.save()


def paired_with(
    base: Measurement, new: Measurement, ratio: float, *, spread: float = 0.005, processes: int = 8, seed: int = 0
) -> Measurement:
    """``new`` as if it had re-measured ``base``'s artifact in paired processes (`run --baseline`).

    Each paired process gets A at ``base``'s median and B at ``ratio`` times it, with a
    log-normal per-process ``spread`` on the ratio; ``base`` must carry a sha256.
    """
    if not base.sha256:
        raise ValueError("the baseline measurement has no sha256")
    rng = np.random.default_rng(seed)
    a = float(np.median(base.samples_ns)) / 1e6
    procs = tuple(
        PairedProcess(a, a * ratio * float(rng.lognormal(0.0, spread)), 100, "ab"[k % 2]) for k in range(processes)
    )
    return dataclasses.replace(new, paired=Paired(base.sha256, procs))
