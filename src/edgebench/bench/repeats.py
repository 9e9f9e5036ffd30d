"""Repeated, interleaved measurement: ``repeats`` fresh agent processes per variant, pooled.

One process per variant is not enough: a process's own state (where the runtime's
thread pool landed, the core, the frequency when it started) or a drift of the board
during the run lands on that one variant and becomes a fake speed-up. So each variant
runs in ``repeats`` fresh processes, and on a board the processes go round-robin over
its variants (v1#1, v2#1, v3#1, v1#2, v2#2, ...): drift and per-process states spread
over all variants. The steady-state floors apply to the total (each process gets
``ceil(min_rounds / repeats)`` rounds and ``min_time_s / repeats`` seconds, warm-up as
usual) and the samples are pooled: the benchmark's statistics are over all of them.

A run stopped by a signal keeps each unfinished variant that has `MIN_PARTIAL` finished
processes: pooled from those, marked partial (``settings.repeats`` = the processes that ran,
``settings.repeats_planned`` = ``repeats``, and a warning), so every interval is over what ran.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.bench.paired import Baseline, paired_commands, paired_process
from edgebench.bench.runner import (
    add_noise_warning,
    base_measurement,
    deploy_jobs,
    from_agent,
    measure_settings,
    remote_error,
    run_agent,
    runtime_error,
    variant_settings,
)
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant
from edgebench.errors import RemoteError
from edgebench.model import (
    BoardFidelity,
    ColdStart,
    DeviceStates,
    JSONObject,
    Measurement,
    MeasurementError,
    Memory,
    Paired,
    PairedProcess,
    ProcessEntry,
    Settings,
)
from edgebench.results.stats import PROCESS_SPREAD
from edgebench.targets.board import Board
from edgebench.targets.driver import Driver

MIN_PARTIAL = 2  # finished processes a variant needs to be kept when the run stops (an interval needs two)
SPREAD_LIMIT = PROCESS_SPREAD  # per-process medians further apart than this (max/min - 1) get a warning
MEMORY_DEFINITION = (
    "RSS of fresh agent processes ({n} per variant); each field is the max over them, "
    "peak_rss is the highest peak (VmHWM) of the timed configuration, peak_rss_eval of the accuracy pass"
)

# called after each process (variant index, repeat index from 0, ok); a skipped process counts too
OnProcess = Callable[[int, int, bool], None]


class Stopped(Exception):
    """The run was stopped (``stopped()`` said so) while a board measured; unfinished variants with
    `MIN_PARTIAL` processes were handed to ``on_done`` as partial measurements first."""


def is_partial(m: Measurement) -> bool:
    """True for a measurement pooled from fewer processes than planned (a stopped run)."""
    return m.settings is not None and m.settings.repeats_planned is not None


@dataclass
class Planned:
    """One variant to measure on a board, with its eval data and fp32 reference."""

    variant: Variant
    eval_data: Path | None = None
    reference: Path | None = None
    reference_info: JSONObject | None = None
    warnings: list[str] = field(default_factory=list)
    reference_error: str | None = None  # the host-side fp32 reference failed: fidelity is unknown, and why
    baseline: Baseline | None = None  # re-measured paired with the variant (`edgebench.bench.paired`)


def interleave(variants: int, repeats: int) -> list[tuple[int, int]]:
    """The order of the processes on a board: ``(variant index, repeat index)``, round-robin.

    >>> interleave(3, 2)
    [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    """
    return [(v, r) for r in range(repeats) for v in range(variants)]


def _process_entry(m: Measurement, order: int, started: float) -> ProcessEntry:
    cold = m.cold_start
    return ProcessEntry(
        p50_ms=float(statistics.median(m.samples_ns)) / 1e6,  # per inference of a batch, like the summary
        rounds=len(m.samples_ns),
        peak_rss=m.peak_rss,
        load_ms=None if cold is None else cold.load_ms,
        first_inference_ms=None if cold is None else cold.first_inference_ms,
        pid=m.agent_pid,
        started=started,
        order=order,
    )


def _max_memory(procs: Sequence[Measurement]) -> Memory:
    """The processes' ``memory`` blocks in one: each figure the max over them (``peak_rss_scope`` is not kept)."""
    mems = [p.memory for p in procs if p.memory is not None]

    def most(name: str) -> int | None:
        return max((v for m in mems if (v := getattr(m, name)) is not None), default=None)

    extra: dict[str, float] = {}
    for m in mems:
        for k, v in m.extra.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                extra[k] = max(extra.get(k, v), v)
    return Memory(
        rss_start=most("rss_start"),
        rss_before_load=most("rss_before_load"),
        rss_after_load=most("rss_after_load"),
        rss_after_run=most("rss_after_run"),
        peak_rss=most("peak_rss"),
        peak_rss_eval=most("peak_rss_eval"),
        load_delta=most("load_delta"),
        definition=MEMORY_DEFINITION.format(n=len(procs)),
        extra=extra,
    )


def pool(procs: Sequence[Measurement], entries: Sequence[ProcessEntry], settings: RunSettings) -> Measurement:
    """One measurement from the per-process measurements of a variant (all successful, in run order).

    Samples are pooled, ``memory`` is the max of the processes' figures, ``cold_start``
    the median over processes, accuracy and fidelity come from the first process; a
    spread of the per-process medians above `SPREAD_LIMIT` adds a warning.

    Args:
        procs: the processes' measurements (`runner.from_agent` output), the first one evaluated.
        entries: their ``processes`` entries (same order).
        settings: the run's settings (totals, not per process).
    """
    first, n = procs[0], len(procs)
    per = settings.per_process()
    colds = [p.cold_start for p in procs if p.cold_start is not None]
    cold = first.cold_start
    if colds:
        cold = ColdStart(
            load_ms=statistics.median(c.load_ms for c in colds),
            first_inference_ms=statistics.median(c.first_inference_ms for c in colds),
        )
    warnings: list[str] = []
    for p in procs:
        warnings += [w for w in p.warnings if w not in warnings]
    p50s = [e.p50_ms for e in entries]
    spread = max(p50s) / min(p50s) - 1 if min(p50s) > 0 else 0.0
    if n > 1 and spread > SPREAD_LIMIT:
        warnings.append(
            f"the {n} agent processes disagree: their medians span {min(p50s) * 1e3:.1f}-{max(p50s) * 1e3:.1f} us "
            f"({spread:.0%} apart > {SPREAD_LIMIT:.0%}): the board's own slowdowns (a shared or busy machine, "
            "the clock) move each process; the interval over the processes carries it, and a paired comparison "
            "(run --baseline) cancels it; idle the board or raise --repeats to narrow it"
        )
    last = procs[-1].device
    m = dataclasses.replace(
        first,
        samples_ns=tuple(s for p in procs for s in p.samples_ns),
        settings=dataclasses.replace(
            measure_settings(settings),
            repeats=n,
            per_process={"min_rounds": per.min_rounds, "min_time_s": per.min_time_s},
        ),
        processes=tuple(entries),
        memory=_max_memory(procs),
        cold_start=cold,
        device=dataclasses.replace(first.device or DeviceStates(), after=None if last is None else last.after),
        warnings=tuple(warnings),
        evaluation=(
            f"accuracy and fidelity from process 1 of {n} only (the others time the same input)"
            if first.accuracy is not None or first.fidelity is not None
            else None
        ),
        process_spread=spread,
    )
    return add_noise_warning(m)


def measure_interleaved(
    driver: Driver,
    planned: Sequence[Planned],
    settings: RunSettings,
    *,
    on_process: OnProcess | None = None,
    clock: Callable[[], float] = time.time,
    on_done: Callable[[int, Measurement], None] | None = None,
    guard: Callable[[], list[str]] | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> list[Measurement]:
    """Measure a board's variants, ``settings.repeats`` fresh processes each, round-robin.

    A failed process fails its variant with that error (the variant's remaining
    processes are skipped); the other variants go on. The caller holds the board's lock.

    Args:
        driver: reaches the board.
        planned: the variants, in order.
        settings: the run's settings (``repeats``; floors are split per process).
        on_process: called after every process, including skipped ones (for progress).
        clock: wall clock recorded as each process's ``started``.
        on_done: called with (variant index, final measurement) as soon as a variant is finished,
            so a run can be written as it goes.
        guard: called before every agent process; returns warnings for the variant about to run
            (agents left by a dead run that it killed) and may raise to stop the board.
        stopped: True once the run is stopped (a signal): an agent that fails then was killed by
            the stop, not a failure of its variant.

    Raises:
        Stopped: the run was stopped (or whatever ``guard`` raised); either way the unfinished
            variants with `MIN_PARTIAL` finished processes went to ``on_done`` as partial ones.

    Returns:
        One measurement per planned variant, in order (failures as data).
    """
    board, n, per = driver.board, settings.repeats, settings.per_process()
    # each variant's settings (the run's, plus its manifest's defaults), resolved once
    own = [variant_settings(settings, p.variant, p.eval_data) for p in planned]
    own_per = [variant_settings(per, p.variant, p.eval_data) for p in planned]
    out: list[Measurement | None] = [None] * len(planned)
    commands: list[tuple[list[str], list[str] | None] | None] = []
    for i, p in enumerate(planned):
        error = runtime_error(board, p.variant)
        try:
            if error is None:
                commands.append(
                    deploy_jobs(driver, p.variant, per, eval_data=p.eval_data, reference=p.reference, later=n > 1)
                )
                continue
        except RemoteError as exc:
            error = remote_error(exc)
        commands.append(None)
        out[i] = _failure(board, p, own[i], error, [])
    paired_cmds: list[tuple[list[str], list[str]] | None] = [None] * len(planned)
    paired: list[list[PairedProcess]] = [[] for _ in planned]
    paired_err: list[str | None] = [None] * len(planned)
    for i, p in enumerate(planned):
        if p.baseline is None or out[i] is not None:
            continue
        if p.baseline.format != p.variant.format:
            paired_err[i] = f"the baseline is a {p.baseline.format} file and this variant {p.variant.format}"
            continue
        try:
            paired_cmds[i] = paired_commands(driver, p.variant, own_per[i], p.baseline, p.eval_data)
        except RemoteError as exc:
            paired_err[i] = str(exc)
    procs: list[list[Measurement]] = [[] for _ in planned]
    entries: list[list[ProcessEntry]] = [[] for _ in planned]
    extra: list[list[str]] = [[] for _ in planned]
    results: list[Measurement | None] = [None] * len(planned)

    def finish(i: int) -> None:
        p, done = planned[i], out[i]
        if done is None:
            done = pool(procs[i], entries[i], own[i])
            if len(procs[i]) < n:  # the run stopped: what ran, said so
                k = len(procs[i])
                done = dataclasses.replace(
                    done,
                    settings=dataclasses.replace(done.settings or Settings(), repeats_planned=n),
                    warnings=(
                        *done.warnings,
                        f"partial: {k} of {n} agent processes finished before the run stopped; its figures and "
                        f"intervals are over those {k}",
                    ),
                )
            if p.reference_info is not None and p.reference is not None and p.eval_data is not None:
                done = dataclasses.replace(done, reference=p.reference_info)
        if p.reference_error is not None and done.fidelity is None:  # recorded as data, shown by every report
            done = dataclasses.replace(done, fidelity=BoardFidelity(unknown=p.reference_error))
        if p.baseline is not None and done.ok:
            pr = Paired(p.baseline.sha256, tuple(paired[i]), p.baseline.run_id, paired_err[i])
            done = dataclasses.replace(done, paired=pr)
            if paired_err[i] is not None:
                extra[i].append(f"paired with the baseline only in {len(paired[i])} process(es): {paired_err[i]}")
        final = dataclasses.replace(done, warnings=(*done.warnings, *p.warnings, *extra[i]))
        results[i] = final
        if on_done is not None:
            on_done(i, final)

    for i in range(len(planned)):
        if out[i] is not None:  # failed before any process ran
            finish(i)
    try:
        for order, (i, r) in enumerate(interleave(len(planned), n)):
            cmd = commands[i]
            if out[i] is not None or cmd is None:
                if on_process is not None:
                    on_process(i, r, False)
                continue
            p = planned[i]
            if guard is not None:
                extra[i] += guard()
            started = clock()
            try:
                res = run_agent(driver, cmd[0] if r == 0 or cmd[1] is None else cmd[1], per.timeout_s)
            except RemoteError as exc:
                if stopped():  # killed by the stop: not its variant's failure
                    raise Stopped from None
                out[i] = _failure(board, p, own[i], remote_error(exc), entries[i], process=r + 1)
            else:
                m = from_agent(base_measurement(board, p.variant, own_per[i]), board, res)
                if not m.ok and stopped():
                    raise Stopped
                if m.ok:
                    procs[i].append(m)
                    entries[i].append(_process_entry(m, order, started))
                else:
                    out[i] = dataclasses.replace(
                        m,
                        samples_ns=(),
                        settings=measure_settings(own[i]),
                        processes=tuple(entries[i]),
                        error=_in_process(m.error, r + 1),
                    )
            pcmd = paired_cmds[i]
            if pcmd is not None and out[i] is None and paired_err[i] is None:  # its paired process follows it
                if guard is not None:
                    extra[i] += guard()
                try:
                    paired[i].append(paired_process(run_agent(driver, pcmd[r % 2], per.timeout_s)))
                except (RemoteError, ValueError) as exc:
                    if stopped():
                        raise Stopped from None
                    paired_err[i] = f"a paired process failed: {exc}"
            if on_process is not None:
                on_process(i, r, out[i] is None)
            if out[i] is not None or r == n - 1:  # failed, or its last process: the variant is finished
                finish(i)
        if stopped() and None in results:
            raise Stopped
    except BaseException:
        for i in range(len(planned)):  # stopped: each unfinished variant is kept from what ran, or not at all
            if results[i] is None and out[i] is None and len(procs[i]) >= MIN_PARTIAL:
                finish(i)
        raise
    return [m for m in results if m is not None]


def _in_process(error: MeasurementError | None, process: int) -> MeasurementError:
    """The error, naming the process (1-based) of the variant that failed; never without a kind and a message."""
    error = error or MeasurementError("no_result", "the agent's process failed without saying why")
    return dataclasses.replace(error, process=process)


def _failure(
    board: Board,
    p: Planned,
    settings: RunSettings,
    error: MeasurementError | None,
    entries: list[ProcessEntry],
    *,
    process: int | None = None,
) -> Measurement:
    """A failed variant's measurement, with ``settings`` already resolved for it (`variant_settings`)."""
    m = base_measurement(board, p.variant, settings, error if process is None else _in_process(error, process))
    return dataclasses.replace(m, processes=tuple(entries))
