"""Host side of one agent process: build the job, deploy agent + artifact + data, run, parse.

The agent's JSON result is the boundary: `from_agent` turns it into a typed
`edgebench.model.Measurement` (cold start, memory deltas, the board's fingerprint),
the unit every other part reads. Its JSON form (`Measurement.to_json`) is what a run
file stores:

``board, model, variant, format, sha256, bytes, ok, error``
    what was measured and whether it worked; ``error`` is ``{kind, message}``.
``samples_ns, batch_size, settings``
    the board's raw per-inference latencies (ns) and the measurement settings used.
``cold_start``
    ``{load_ms, first_inference_ms}``: model load and first inference, separately.
``timing``
    the agent's timing block without the samples (``warmup_iters``, ``input``...).
``memory``
    RSS of the fresh agent process in bytes: ``rss_start, rss_before_load,
    rss_after_load, rss_after_run, peak_rss`` and ``load_delta`` (after - before load).
``accuracy, fidelity, reference``
    top-1 (with a Wilson 95% interval, ``quick`` when on a subset); agreement with the
    fp32 parent's outputs and what the parent was.
``inputs``
    the inputs of the timed inference, one ``{name, shape, dtype, made, batched}`` each;
    ``made`` says how: ``eval data``, ``constant 16000``, ``uniform 0..1, seed 0``,
    ``file state.npy``, ``generated: normal(0, 1), seed 0``.
``runtime, device, host, fingerprint, warnings, agent_pid``
    runtime name/version/providers/threads, device state before/after, the board's
    fingerprint, and warnings (throttling, temperature, high variation).
``processes, process_spread, evaluation``
    with ``repeats`` (`edgebench.bench.repeats`): one entry per fresh agent process
    (``p50_ms, rounds, peak_rss, load_ms, first_inference_ms, pid, started, order``), the
    spread of their medians, and which process evaluated accuracy and fidelity.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import agent
from edgebench.agent import RUNTIME_OF_FORMAT
from edgebench.agent.build import agent_path, agent_sha256
from edgebench.bench.agent_result import (
    AgentEval,
    AgentJob,
    AgentResult,
    AgentSustained,
    malformed_error,
    parse_agent_output,
)
from edgebench.bench.inputs import job_block, npy_files
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant, check_artifact
from edgebench.errors import ModelError, RemoteError
from edgebench.model import (
    AGENT_NULLS,
    Accuracy,
    BoardFidelity,
    ColdStart,
    DeviceState,
    DeviceStates,
    Measurement,
    MeasurementError,
    Memory,
    Settings,
)
from edgebench.model.measurement import Timeline
from edgebench.results.stats import HIGH_CV, is_noisy, summarize
from edgebench.targets.board import Board
from edgebench.targets.deploy import deploy
from edgebench.targets.driver import Driver, check_python
from edgebench.targets.remote import AGENT_CHANGED, agent_argv

MEMORY_DEFINITION = (
    "RSS of a fresh agent process per variant; peak_rss is the peak (VmHWM) of the timed configuration (load, "
    "warm-up, steady state at the measured batch), peak_rss_eval the peak of the accuracy pass"
)


def runtime_options(board: Board, runtime: str) -> dict[str, Any]:
    """The runtime options a board's settings give: threads plus ``runtime_options[runtime]``.

    ONNX Runtime reads ``graph_optimization_level`` and ``providers``; TFLite reads
    ``interpreter``, ``xnnpack`` and ``delegates``.
    """
    opts: dict[str, Any] = {"threads": board.threads}
    opts.update(board.runtime_options.get(runtime, {}))
    return opts


def variant_settings(settings: RunSettings, variant: Variant, eval_data: Path | None = None) -> RunSettings:
    """The settings ``variant`` is measured with: the run's, plus what its manifest recorded where the run is silent.

    The recipe that made the variant gave its model input specs and dims (``run_defaults``) and judged its
    ``degraded`` flag by a threshold (``fidelity.min_cosine``). An input that neither the run's ``--input`` nor
    its eval data gives takes the manifest's spec, a dim the run does not size the manifest's size, and with no
    ``--min-cosine`` the threshold is the manifest's (else `agent.DEFAULT_MIN_COSINE`), so that a run calls
    degraded what compress did. The same ``eval_data`` gives the same result however often it is applied.
    """
    mf = variant.manifest
    changes: dict[str, Any] = {}
    if settings.min_cosine is None:
        changes["min_cosine"] = agent.DEFAULT_MIN_COSINE if mf.min_cosine is None else mf.min_cosine
    given = {*settings.inputs, *_eval_inputs(variant, eval_data)}
    if any(k not in given for k in mf.run_inputs):
        changes["inputs"] = {**{k: v for k, v in mf.run_inputs.items() if k not in given}, **settings.inputs}
    if any(k not in settings.dims for k in mf.run_dims):
        changes["dims"] = {**mf.run_dims, **settings.dims}
    return settings.replace(**changes) if changes else settings


def _eval_inputs(variant: Variant, eval_data: Path | None) -> set[str]:
    """The inputs ``eval_data`` holds values for, as the agent reads it (`agent.load_eval`): a single-input model
    reads its one array, a multi-input model one array per input name; unreadable data: none (the agent says why)."""
    if eval_data is None:
        return set()
    names = [t.name for t in variant.manifest.inputs or ()]
    if len(names) == 1:
        return set(names)
    try:
        with np.load(eval_data) as data:
            return set(data.files)
    except Exception:  # a damaged npz is the agent's to report, for this variant
        return set()


def build_job(
    board: Board,
    variant: Variant,
    settings: RunSettings,
    *,
    artifact: str,
    eval_path: str | None = None,
    reference_path: str | None = None,
    evaluate: bool = True,
    input_files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The job JSON the agent reads, from the board's settings and the run's settings.

    With ``evaluate=False`` the agent still times the eval inputs but computes no
    accuracy or fidelity (the later processes of a repeated measurement). A sustained
    run (``settings.sustained_s``) is the first process's only: the model runs on after
    its steady state and the timeline comes back with it (`sustained_job`).
    ``input_files`` maps an input to its .npy on the board (`edgebench.bench.inputs`).
    """
    runtime = RUNTIME_OF_FORMAT[variant.format]
    ev = None
    if eval_path is not None:
        ev = AgentEval(
            path=eval_path,
            seed=settings.seed,
            limit=settings.quick or None,
            evaluate=None if evaluate else False,
            reference=reference_path if evaluate else None,
        )
    return AgentJob(
        artifact=artifact,
        sha256=variant.sha256,  # the agent checks the file it loads against it
        runtime=runtime,
        runtime_options=runtime_options(board, runtime),
        measure=settings.measure_block(),
        dims=dict(settings.dims),
        device=settings.device_block(),
        inputs=job_block(settings.inputs, input_files),
        seed=settings.seed,
        eval=ev,
        sustained=sustained_job(board, settings) if evaluate else None,
    ).to_json()


def sustained_job(board: Board, settings: RunSettings) -> AgentSustained | None:
    """The job's ``sustained`` block: the run's duration and window, the board's power meter command if it has one.

    The meter command and its pattern are the board's ``power_command`` / ``power_pattern``
    (`Board` attributes, when the inventory gives them).
    """
    block = settings.sustained_block()
    if block is None:
        return None
    command, pattern = board.power_command, board.power_pattern
    return AgentSustained(
        seconds=float(block["seconds"]),
        window_s=float(block["window_s"]),
        power_command=str(command) if command else None,
        power_pattern=str(pattern) if pattern else None,
    )


def fingerprint(board: Board, out: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies the board a measurement came from (stored with every result)."""
    host = out.get("host") or {}
    rt = out.get("runtime") or {}
    before = out.get("device_before") or {}
    return {
        "name": board.name,
        "address": board.host or "local",
        "tags": dict(board.tags),
        "hostname": host.get("hostname"),
        "platform": host.get("platform"),
        "machine": host.get("machine"),
        "cpu_count": host.get("cpu_count"),
        "affinity": host.get("affinity"),
        "python": host.get("python"),
        "numpy": out.get("numpy"),
        "runtime": f"{rt.get('name')} {rt.get('version')}" if rt else None,
        "governor": before.get("governor"),
        "max_freq_mhz": before.get("max_freq_mhz"),
    }


def measure_settings(settings: RunSettings) -> Settings:
    """The ``settings`` block of a measurement made with ``settings``: the job's ``measure`` block, as sent."""
    return Settings.from_json(settings.measure_block())


def base_measurement(
    board: Board, variant: Variant, settings: RunSettings, error: MeasurementError | None = None
) -> Measurement:
    """A measurement of ``variant`` on ``board`` before the agent answered (``ok`` false)."""
    return Measurement(
        board=board.name,
        model=variant.model,
        variant=variant.name,
        ok=False,
        format=variant.format,
        sha256=variant.sha256,
        bytes=variant.manifest.bytes,
        error=error,
        batch_size=settings.batch_size,
        settings=measure_settings(settings),
        compress_fidelity=variant.manifest.compress_fidelity,  # what a run without eval data knows of its outputs
    )


def from_agent(m: Measurement, board: Board, out: Mapping[str, Any]) -> Measurement:
    """``m`` filled from the agent's result: samples, cold start, memory deltas, fingerprint, warnings.

    A result that is not what the agent writes (`AgentResult.from_json`, `malformed`) becomes a
    ``malformed_result`` failure.
    """
    try:
        res = AgentResult.from_json(out)
    except ValueError as exc:
        return dataclasses.replace(m, ok=False, error=malformed_error(board, str(exc), out))
    timing = dict(res.timing or {})
    samples = tuple(int(s) for s in timing.pop("samples_ns", None) or ())
    used = timing.pop("settings", None)  # the settings the agent ran with (the job's, as it read them)
    settings = Settings.from_json(used) if isinstance(used, Mapping) else m.settings
    memory = Memory.from_json(res.memory or {})
    if memory.rss_after_load is not None and memory.rss_before_load is not None:
        memory = dataclasses.replace(memory, load_delta=memory.rss_after_load - memory.rss_before_load)
    memory = dataclasses.replace(memory, definition=MEMORY_DEFINITION)
    ok = res.ok
    error = MeasurementError.from_json(res.error) if res.error is not None else None
    if ok and not samples:
        ok = False
        error = MeasurementError("no_samples", "the agent returned no latency samples: raise max_time_s")
    cold = None
    if "load_ns" in timing:
        cold = ColdStart(load_ms=timing["load_ns"] / 1e6, first_inference_ms=timing["first_inference_ns"] / 1e6)
    return dataclasses.replace(
        m,
        ok=ok,
        error=error,
        samples_ns=samples,
        batch_size=int(timing.get("batch_size", m.batch_size)),
        settings=settings,
        timing=timing,
        memory=memory,
        accuracy=None if res.accuracy is None else Accuracy.from_json(res.accuracy),
        fidelity=None if res.fidelity is None else BoardFidelity.from_json(res.fidelity),
        runtime=res.runtime,
        device=DeviceStates(_state(res.device_before), _state(res.device_after), res.cooldown),
        host=res.host,
        fingerprint=fingerprint(board, out),
        agent_pid=res.pid,
        warnings=tuple(res.warnings),
        cold_start=cold,
        inputs=None if res.inputs is None else tuple(res.inputs),
        timeline=None
        if res.timeline is None
        else Timeline.from_json({"run": res.sustained or {}, "windows": res.timeline, "power": res.power}),
        null_keys=AGENT_NULLS,
    )


def _state(d: Mapping[str, Any] | None) -> DeviceState | None:
    return None if d is None else DeviceState.from_json(d)


def add_noise_warning(m: Measurement) -> Measurement:
    """``m`` with a warning when it succeeded and its samples vary a lot."""
    if not m.ok:
        return m
    cv = summarize(m.samples_ns, m.batch_size).cv
    if not is_noisy(cv):
        return m
    warning = (
        f"latency varies a lot (CV {cv:.0%} > {HIGH_CV:.0%}): idle the board, pin the CPU "
        "governor to performance, or raise min_time_s"
    )
    return dataclasses.replace(m, warnings=(*m.warnings, warning))


def runtime_error(board: Board, variant: Variant) -> MeasurementError | None:
    """The ``runtime_missing`` error when the board cannot run this variant's format, else None."""
    runtime = RUNTIME_OF_FORMAT.get(variant.format)
    if runtime is not None and runtime in board.runtimes:
        return None
    return MeasurementError(
        "runtime_missing",
        f"board {board.name} has no {runtime or variant.format} runtime for this {variant.format} "
        f"variant (its runtimes: {', '.join(board.runtimes) or 'none'}): install it on the board and list it "
        "in the board's runtimes, or skip this variant",
    )


def deploy_artifact(driver: Driver, variant: Variant) -> str:
    """Check the variant's artifact against its manifest (sha256), then deploy it; its path on the board.

    Every path that puts a model on a board (`deploy_jobs`, `edgebench profile`) goes through it.

    Raises:
        RemoteError: the artifact changed after its manifest was written (naming `edgebench compress`),
            recorded for this variant like a board's refusal so that the run goes on; or the board refused it.
    """
    try:
        check_artifact(variant)
    except ModelError as exc:
        raise RemoteError(driver.board.name, f"sha256 {variant.artifact.name}", "", str(exc)) from None
    return deploy(driver, variant.artifact, variant.sha256)


def deploy_jobs(
    driver: Driver,
    variant: Variant,
    settings: RunSettings,
    *,
    eval_data: Path | None = None,
    reference: Path | None = None,
    later: bool = False,
) -> tuple[list[str], list[str] | None]:
    """Deploy agent, artifact, eval data, reference and job; the agent's command line(s).

    Returns:
        The command of the (first) process, which evaluates accuracy and fidelity, and with
        ``later`` the command of the later processes of the same variant (same input, no
        evaluation), else None.

    Raises:
        RemoteError: the board refused a copy.
    """
    board, settings = driver.board, variant_settings(settings, variant, eval_data)
    agent = deploy(driver, agent_path(), agent_sha256())
    artifact = deploy_artifact(driver, variant)
    eval_path = deploy(driver, eval_data) if eval_data is not None else None
    ref_path = deploy(driver, reference) if (reference is not None and eval_data is not None) else None
    input_files = {name: deploy(driver, path) for name, path in npy_files(settings.inputs).items()}
    commands: list[list[str]] = []
    for evaluate in (True, False) if later else (True,):
        job = build_job(
            board, variant, settings, artifact=artifact, eval_path=eval_path, reference_path=ref_path,
            evaluate=evaluate, input_files=input_files,
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            job_file = Path(tmp) / ("job.json" if evaluate else "job-later.json")
            job_file.write_text(json.dumps(job))
            commands.append([board.python, agent, deploy(driver, job_file)])
    return commands[0], commands[1] if later else None


class AgentChanged(RemoteError):
    """The agent file cached on the board is not the one deployed (changed since): it did not run."""


def run_agent(driver: Driver, command: list[str], timeout: float) -> dict[str, Any]:
    """Run one fresh agent process and parse its result (the agent's JSON).

    ``command`` is ``[python, deployed agent, args...]``; the board checks the agent file
    against its sha256 before it runs (`agent_argv`). A file that changed is not run: it is
    uploaded again for the next process, and this one fails.

    Raises:
        AgentChanged: the cached agent file changed on the board.
        RemoteError: the agent printed no result (crashed, killed, timed out).
    """
    board = driver.board
    python, agent_file, *args = command
    res = driver.run(agent_argv(python, agent_file, agent_sha256(), *args), timeout)
    try:
        return parse_agent_output(res.stdout)
    except ValueError:
        tail = (res.stderr or res.stdout)[-2000:]
        said = [ln for ln in res.stderr.splitlines() if ln.startswith(AGENT_CHANGED)]  # not a shell's echo
        if res.exit_code == 1 and said:
            got = said[-1].rsplit(" has sha256 ", 1)[-1].strip()
            with contextlib.suppress(RemoteError):  # else the next process says so again
                driver.put(agent_path(), agent_file, sha256=agent_sha256())
            raise AgentChanged(
                board.name, shlex.join(command), tail,
                f"the cached agent {agent_file} on board {board.name} is not the file deployed (its sha256 is "
                f"{got}, not {agent_sha256()}): it did not run; redeploy: the cached agent changed (uploaded "
                "again for the next process)",
            ) from None  # fmt: skip
        check_python(driver)  # a SyntaxError from a Python too old for the agent is said as such
        raise RemoteError(
            board.name, res.command, tail, f"the agent exited {res.exit_code} without a result: {_last_line(tail)}"
        ) from None


def remote_error(exc: RemoteError) -> MeasurementError:
    """A measurement's error from a board-side failure."""
    return MeasurementError(type(exc).__name__, str(exc), command=exc.command, output=exc.output)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else "no output"
