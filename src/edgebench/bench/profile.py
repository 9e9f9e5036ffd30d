"""Host side of `edgebench profile` and `edgebench run --profile`: run a profile job on a board, read its block.

The agent (`agent.profile_job`) loads the variant in a fresh process, measures the
unprofiled steady state (the only latency ever reported), then runs the runtime's own
profiler; ONNX Runtime's trace is parsed on the board (see the agent's profiling section
for why). Here the compact block becomes a typed `Profile`: per-node and per-op-type means
and shares of the profiled latency, the nodes that left the requested provider, coverage
(sum of node times / profiled end-to-end latency), the overhead ratio and the RSS
timeline; `diff_profiles` lines two profiles up by op type and names the cause of the
difference, and `chrome_trace` writes one profiled inference per variant for Perfetto.
`run --profile` (`attach_profile`, called by the measuring session after a board's
measurement) adds the profile block of one more fresh process to each measurement's
``profile``, the same place a profile run keeps it; `profiles_in_run` reads either.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.agent import TFLITE_NO_TIMING
from edgebench.agent.build import agent_path, agent_sha256
from edgebench.bench.runner import (
    base_measurement,
    build_job,
    deploy_artifact,
    from_agent,
    remote_error,
    run_agent,
    runtime_error,
    variant_settings,
)
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant
from edgebench.errors import RemoteError, UserError
from edgebench.model import Measurement, ProfileBlock, Run
from edgebench.targets.deploy import deploy
from edgebench.targets.driver import Driver

COVERAGE_MIN = 0.80  # a profile whose node times cover less of the profiled latency says so
DEFAULT_ITERATIONS = 50

__all__ = [
    "COVERAGE_MIN",
    "DEFAULT_ITERATIONS",
    "TFLITE_NO_TIMING",
    "DiffRow",
    "NodeTime",
    "OpTypeTime",
    "Profile",
    "ProfileDiff",
    "attach_profile",
    "chrome_trace",
    "diff_profiles",
    "profile_variant",
    "profiles_in_run",
    "profiles_of_run",
    "slower_causes",
    "why_slower",
]


@dataclass(frozen=True)
class NodeTime:
    """One node (ONNX Runtime) or op (TFLite) and where its time went.

    ``mean_ms`` and ``share`` (of the profiled end-to-end latency) are None when the
    runtime gives no per-operator timing.
    """

    name: str
    op_type: str
    provider: str
    mean_ms: float | None
    share: float | None


@dataclass(frozen=True)
class OpTypeTime:
    """All nodes of one op type: count, summed mean time and share, providers they ran on."""

    op_type: str
    nodes: int
    mean_ms: float | None
    share: float | None
    providers: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """The profile of one variant on one board (see the module docstring)."""

    board: str
    model: str
    variant: str
    ok: bool
    error: str | None = None
    runtime: str = ""
    in_use: tuple[str, ...] = ()
    available: bool = False
    note: str | None = None
    requested_provider: str | None = None
    iterations: int = 0
    unprofiled_p50_ms: float | None = None
    profiled_p50_ms: float | None = None
    profiled_mean_ms: float | None = None
    overhead_ratio: float | None = None
    node_mean_ms: float | None = None
    coverage: float | None = None
    session_coverage: float | None = None  # node time / the runtime's own end-to-end time (model_run)
    nodes: tuple[NodeTime, ...] = ()
    op_types: tuple[OpTypeTime, ...] = ()
    memory_timeline: tuple[tuple[str, float, int], ...] = ()
    trace: tuple[dict[str, Any], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``board/model/variant``."""
        return f"{self.board}/{self.model}/{self.variant}"

    @property
    def fallback(self) -> tuple[NodeTime, ...]:
        """The nodes that did not run on the requested provider or delegate."""
        want = self.requested_provider
        return tuple(n for n in self.nodes if want is not None and n.provider != want)

    def fallback_line(self) -> str | None:
        """``"12 of 64 nodes fell back to CPUExecutionProvider"`` (None when nothing is known)."""
        if not self.nodes or self.requested_provider is None:
            return None
        off = self.fallback
        where = sorted({n.provider for n in off})
        unit = "nodes" if self.available else "ops"
        if not off:
            return f"0 of {len(self.nodes)} {unit} fell off {self.requested_provider}"
        return f"{len(off)} of {len(self.nodes)} {unit} did not run on {self.requested_provider} ({', '.join(where)})"

    def top(self, n: int = 10) -> list[NodeTime]:
        """The ``n`` nodes that take the most time (all nodes, in graph order, without timing)."""
        if not self.available:
            return list(self.nodes[:n])
        return sorted(self.nodes, key=lambda x: -(x.mean_ms or 0.0))[:n]

    def share_of(self, op_types: Sequence[str]) -> float:
        """The summed share of these op types (0 when unknown)."""
        return sum(t.share or 0.0 for t in self.op_types if t.op_type in op_types)

    def memory_by_phase(self) -> dict[str, int]:
        """The highest RSS (bytes) seen in each phase, in phase order."""
        out: dict[str, int] = {}
        for phase, _t, rss in self.memory_timeline:
            out[phase] = max(out.get(phase, 0), rss)
        return out

    @classmethod
    def from_measurement(cls, m: Measurement) -> Profile:
        """A profile from a measurement (its ``profile`` block; a failure gives ``ok=False``)."""
        board, model, variant = m.board, m.model, m.variant
        p, rt = m.profile, m.runtime or {}
        if m.profile_error:  # `run --profile`: measured, but its profile process failed
            return cls(board, model, variant, ok=False, error=f"profile failed: {m.profile_error}")
        if not m.ok or p is None:
            return cls(board, model, variant, ok=False, error=m.error_message or "no profile was recorded")
        up = _ms(p.unprofiled_p50_ns)
        pp = _ms(p.profiled_p50_ns)
        samples = [float(s) for s in p.profiled_samples_ns or ()]
        pmean = statistics.fmean(samples) / 1e6 if samples else None
        available = bool(p.available)
        nodes: list[NodeTime] = []
        runs = p.runs or ()
        node_mean = statistics.fmean(r["node_us"] for r in runs) / 1e3 if runs else None
        coverage = node_mean / pmean if (node_mean is not None and pmean) else None
        run_us = sum(r["model_run_us"] for r in runs)
        session_cov = sum(r["node_us"] for r in runs) / run_us if run_us else None
        if available:
            for n in p.nodes or ():
                mean = n["total_us"] / 1e3 / max(1, len(runs))  # per inference (a node may run twice)
                nodes.append(NodeTime(n["name"], n["op_type"], n["provider"], mean, mean / pmean if pmean else None))
        else:
            for op in p.ops or ():
                nodes.append(NodeTime(op["name"], op["op_type"], op["delegate"], None, None))
        warnings: list[str] = []
        if not available:
            warnings.append(str(p.note or TFLITE_NO_TIMING))
        elif coverage is not None and coverage < COVERAGE_MIN:
            warnings.append(
                f"coverage {coverage:.0%} < {COVERAGE_MIN:.0%}: the node times miss {1 - coverage:.0%} of the "
                "profiled latency (session overhead, input/output copies, Python binding): read the shares with care"
            )
        timeline = tuple((str(ph), float(t), int(r)) for ph, t, r in p.memory_timeline or ())
        return cls(
            board,
            model,
            variant,
            ok=True,
            runtime=f"{rt.get('name')} {rt.get('version')}",
            in_use=tuple(rt.get("in_use") or ()),
            available=available,
            note=p.note,
            requested_provider=p.requested_provider,
            iterations=int(p.iterations or 0),
            unprofiled_p50_ms=up,
            profiled_p50_ms=pp,
            profiled_mean_ms=pmean,
            overhead_ratio=p.overhead_ratio,
            node_mean_ms=node_mean,
            coverage=coverage,
            session_coverage=session_cov,
            nodes=tuple(nodes),
            op_types=_op_types(nodes, available),
            memory_timeline=timeline,
            trace=tuple(dict(e) for e in p.trace or ()),
            warnings=tuple(warnings),
        )

    def to_json(self, *, trace: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (the trace events only with ``trace``)."""
        out: dict[str, Any] = {
            "board": self.board, "model": self.model, "variant": self.variant, "ok": self.ok, "error": self.error,
            "runtime": self.runtime, "in_use": list(self.in_use), "available": self.available, "note": self.note,
            "requested_provider": self.requested_provider, "iterations": self.iterations,
            "unprofiled_p50_ms": self.unprofiled_p50_ms, "profiled_p50_ms": self.profiled_p50_ms,
            "overhead_ratio": self.overhead_ratio, "node_mean_ms": self.node_mean_ms, "coverage": self.coverage,
            "session_coverage": self.session_coverage,
            "fallback": self.fallback_line(),
            "nodes": [n.__dict__ for n in self.nodes],
            "op_types": [{**t.__dict__, "providers": list(t.providers)} for t in self.op_types],
            "memory_by_phase": self.memory_by_phase(),
            "memory_timeline": [list(p) for p in self.memory_timeline],
            "warnings": list(self.warnings),
        }  # fmt: skip
        if trace:
            out["trace"] = list(self.trace)
        return out


def _ms(ns: Any) -> float | None:
    return float(ns) / 1e6 if isinstance(ns, int | float) and not isinstance(ns, bool) else None


def _op_types(nodes: Sequence[NodeTime], timed: bool) -> tuple[OpTypeTime, ...]:
    groups: dict[str, list[NodeTime]] = {}
    for n in nodes:
        groups.setdefault(n.op_type, []).append(n)
    out = []
    for op, ns in groups.items():
        mean = sum(n.mean_ms or 0.0 for n in ns) if timed else None
        share = sum(n.share or 0.0 for n in ns) if timed else None
        out.append(OpTypeTime(op, len(ns), mean, share, tuple(sorted({n.provider for n in ns}))))
    return tuple(sorted(out, key=lambda t: (-(t.mean_ms or 0.0), -t.nodes, t.op_type)))


# ------------------------------------------------------------------------------ running


def profile_variant(
    driver: Driver,
    variant: Variant,
    settings: RunSettings,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    eval_data: Path | None = None,
    timeout: float | None = None,
) -> Measurement:
    """Profile one variant on one board in one fresh agent process.

    Returns:
        A measurement (see `edgebench.bench.runner`; its samples are the unprofiled steady
        state) whose ``profile`` is the agent's profile block. A failure is data
        (``ok`` false), never raised.
    """
    board, settings = driver.board, variant_settings(settings, variant, eval_data)  # as `run` measures it
    m = base_measurement(board, variant, settings, runtime_error(board, variant))
    if m.error is not None:
        return m
    try:
        agent = deploy(driver, agent_path(), agent_sha256())
        artifact = deploy_artifact(driver, variant)  # checked against its manifest, as `run` does
        eval_path = deploy(driver, eval_data) if eval_data is not None else None
        job = build_job(board, variant, settings, artifact=artifact, eval_path=eval_path, evaluate=False)
        job["profile"] = {"iterations": int(iterations)}
        with tempfile.TemporaryDirectory() as tmp:
            job_file = Path(tmp) / "job-profile.json"
            job_file.write_text(json.dumps(job))
            command = [board.python, agent, deploy(driver, job_file)]
        out = run_agent(driver, command, timeout or settings.timeout_s)
    except RemoteError as exc:
        return dataclasses.replace(m, error=remote_error(exc))
    m = from_agent(m, board, out)
    if isinstance(out.get("profile"), Mapping):  # the process that made it, to tell it from the measuring ones
        m = dataclasses.replace(m, profile=ProfileBlock.from_json({**out["profile"], "agent_pid": out.get("pid")}))
    return m


def attach_profile(
    driver: Driver, variant: Variant, m: Measurement, settings: RunSettings, *, eval_data: Path | None = None
) -> Measurement:
    """``m`` (a measurement of `edgebench run`) with its variant's profile, for ``run --profile``.

    The profile comes from one more fresh agent process after the measurement (``settings.profile``
    profiled inferences; its own unprofiled steady state gets one process's share of the time,
    `RunSettings.per_process`); only its ``profile`` block is kept, in ``m.profile`` as
    `edgebench profile` stores it, so the latency figures stay those of the unprofiled processes.
    A profile that fails is recorded as ``m.profile_error``; ``m`` itself stays as it was.
    A failed measurement is returned unchanged (there is nothing to explain).
    """
    if not m.ok or settings.profile <= 0:
        return m
    one = settings.per_process()
    p = profile_variant(driver, variant, one, iterations=settings.profile, eval_data=eval_data)
    if p.ok and p.profile is not None:
        return dataclasses.replace(m, profile=p.profile)
    why = p.error.message if p.error is not None else "the agent returned no profile"
    return dataclasses.replace(m, profile_error=why)


def profiles_of_run(run: Run) -> list[Profile]:
    """Every profile of a stored run (failures included, as ``ok=False``)."""
    return [Profile.from_measurement(m) for m in run.measurements]


def profiles_in_run(run: Run) -> list[Profile]:
    """The profiles a run carries: all of a ``profile`` run, those of ``run --profile`` (none without it)."""
    if run.command == "profile":
        return profiles_of_run(run)
    return [
        Profile.from_measurement(m) for m in run.measurements if m.profile is not None or m.profile_error is not None
    ]


def slower_causes(profiles: Sequence[Profile], base: str = "fp32") -> list[str]:
    """For each variant slower than ``base`` (same board and model), the `ProfileDiff.verdict` naming its top cause."""
    bases = {(p.board, p.model): p for p in profiles if p.ok and p.variant == base}
    out = []
    for p in profiles:
        ref = bases.get((p.board, p.model))
        if p.ok and ref is not None and p is not ref:
            d = diff_profiles(ref, p)
            if d.slow is p and d.ratio > 1.0:
                out.append(d.verdict())
    return out


def why_slower(profiles: Sequence[Profile], slow: str = "int8-dynamic", fast: str = "fp32") -> str | None:
    """One line: why variant ``slow`` is slower than ``fast`` (the demo shows it).

    Returns:
        The verdict line (e.g. ``"int8-dynamic is 4.5x slower than fp32: ConvInteger +
        DynamicQuantizeLinear: 81 % of int8-dynamic vs Conv 62 % of fp32"``), or None when
        either profile is missing or failed, they are of different models, or ``slow`` is not slower.
    """
    by_name = {p.variant: p for p in profiles if p.ok}
    if slow not in by_name or fast not in by_name or by_name[slow].model != by_name[fast].model:
        return None
    d = diff_profiles(by_name[fast], by_name[slow])
    return d.verdict() if d.slow.variant == slow else None


# ------------------------------------------------------------------------------ diff


@dataclass(frozen=True)
class DiffRow:
    """One op type in two profiles: mean time and share in each, and the change (b - a)."""

    op_type: str
    a_ms: float
    b_ms: float
    a_share: float
    b_share: float

    @property
    def delta_ms(self) -> float:
        """``b - a`` in ms."""
        return self.b_ms - self.a_ms


@dataclass(frozen=True)
class ProfileDiff:
    """Two profiles lined up by op type, with the cause of the difference."""

    a: Profile
    b: Profile
    rows: tuple[DiffRow, ...]
    slower: str  # "a" or "b"
    ratio: float  # slower / faster unprofiled p50
    cause: tuple[str, ...]  # op types that explain most of the slower one's extra time
    counterpart: tuple[str, ...]  # the faster one's op types that the cause replaces or outgrew
    notes: tuple[str, ...] = field(default=())

    @property
    def slow(self) -> Profile:
        """The slower profile."""
        return self.b if self.slower == "b" else self.a

    @property
    def fast(self) -> Profile:
        """The faster profile."""
        return self.a if self.slower == "b" else self.b

    def cause_line(self) -> str:
        """``"ConvInteger + DynamicQuantizeLinear: 81 % of int8-dynamic vs Conv 62 % of fp32"``."""
        slow, fast = self.slow, self.fast
        left = f"{' + '.join(self.cause)}: {slow.share_of(self.cause):.0%} of {_who(slow, fast)}"
        if not self.counterpart:
            return left
        return f"{left} vs {' + '.join(self.counterpart)} {fast.share_of(self.counterpart):.0%} of {_who(fast, slow)}"

    def verdict(self) -> str:
        """One line: which is slower, by how much, and its top cause."""
        return f"{_who(self.slow, self.fast)} is {self.ratio:.1f}x slower than {_who(self.fast, self.slow)}: " + (
            self.cause_line() if self.cause else "no op type explains it (per-operator timing missing)"
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "a": self.a.label, "b": self.b.label, "slower": self.slow.label, "ratio": self.ratio,
            "cause": list(self.cause), "counterpart": list(self.counterpart), "verdict": self.verdict(),
            "rows": [{**r.__dict__, "delta_ms": r.delta_ms} for r in self.rows], "notes": list(self.notes),
        }  # fmt: skip


def _who(p: Profile, other: Profile) -> str:
    """The variant name, or the board when the two are one variant on two boards."""
    return p.board if p.variant == other.variant and p.model == other.model else p.variant


def diff_profiles(a: Profile, b: Profile) -> ProfileDiff:
    """Line two profiles up by op type and name what makes the slower one slower.

    The cause is the op types with the largest growth in time (slower minus faster), taken
    until they explain 60 % of the total growth (at most three); the counterpart is the
    faster profile's op types that shrank or vanished the most, taken the same way (at most two).

    Raises:
        UserError: the profiles are of different models, one failed, or they are the same case.
    """
    if a.model != b.model:
        raise UserError(
            f"--diff {a.label} {b.label}: these are variants of different models ({a.model}, {b.model}): compare "
            "two variants of one model, or one variant on two boards"
        )
    if a.label == b.label:
        raise UserError(f"--diff {a.label} {b.label}: the same profile twice: name two variants or two boards")
    for p in (a, b):
        if not p.ok:
            raise UserError(f"--diff: {p.label} has no profile ({p.error}): profile it again")
    up_a, up_b = a.unprofiled_p50_ms or 0.0, b.unprofiled_p50_ms or 0.0
    slower = "b" if up_b >= up_a else "a"
    ratio = max(up_a, up_b) / min(up_a, up_b) if min(up_a, up_b) > 0 else float("nan")
    ta = {t.op_type: t for t in a.op_types}
    tb = {t.op_type: t for t in b.op_types}
    rows = tuple(
        DiffRow(op, ta[op].mean_ms or 0.0 if op in ta else 0.0, tb[op].mean_ms or 0.0 if op in tb else 0.0,
                ta[op].share or 0.0 if op in ta else 0.0, tb[op].share or 0.0 if op in tb else 0.0)
        for op in dict.fromkeys([*ta, *tb])
    )  # fmt: skip
    rows = tuple(sorted(rows, key=lambda r: -abs(r.delta_ms)))
    notes: list[str] = []
    if not (a.available and b.available):
        notes.append(TFLITE_NO_TIMING + ": op types are listed, not timed")
        return ProfileDiff(a, b, rows, slower, ratio, (), (), tuple(notes))
    sign = 1.0 if slower == "b" else -1.0
    growth = sorted(((sign * r.delta_ms, r.op_type) for r in rows if sign * r.delta_ms > 0), reverse=True)
    total = sum(g for g, _ in growth)
    cause: list[str] = []
    acc = 0.0
    for g, op in growth[:3]:
        cause.append(op)
        acc += g
        if acc >= 0.6 * total:
            break
    shrink = sorted(((-sign * r.delta_ms, r.op_type) for r in rows if -sign * r.delta_ms > 0), reverse=True)
    counterpart: list[str] = []
    acc, total_shrink = 0.0, sum(g for g, _ in shrink)
    for g, op in shrink[:2]:  # as for the cause: the op types that explain 60 % of what shrank, not a 2 µs one
        counterpart.append(op)
        acc += g
        if acc >= 0.6 * total_shrink:
            break
    if not counterpart and cause:
        counterpart = [op for op in cause if op in (ta if slower == "b" else tb)][:1]
    for p in (a, b):
        if p.coverage is not None and p.coverage < COVERAGE_MIN:
            notes.append(f"{p.label}: coverage {p.coverage:.0%} < {COVERAGE_MIN:.0%}")
    return ProfileDiff(a, b, rows, slower, ratio, tuple(cause), tuple(counterpart), tuple(notes))


# ------------------------------------------------------------------------------ trace


def chrome_trace(profiles: Sequence[Profile]) -> dict[str, Any]:
    """One profiled inference per variant in Chrome trace-event format (Perfetto, chrome://tracing).

    Each profile is a process (``pid``) named ``board/model/variant``; its events are complete
    events (``ph: "X"``, microseconds from the start of that inference). A profile without
    per-operator timing gets one event for the whole inference at its unprofiled p50.
    """
    events: list[dict[str, Any]] = []
    for pid, p in enumerate((p for p in profiles if p.ok), start=1):
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": p.label}})
        if p.available and p.trace:
            tids: dict[Any, int] = {}
            for e in p.trace:
                tid = 0 if e.get("cat") == "Session" else tids.setdefault(e.get("tid", 0), len(tids) + 1)
                args = {"op_type": e.get("cat"), "provider": e.get("provider")} if e.get("cat") != "Session" else {}
                events.append({
                    "name": e["name"], "cat": e.get("cat", "op"), "ph": "X", "ts": float(e["ts"]),
                    "dur": float(e["dur"]), "pid": pid, "tid": tid, "args": args,
                })  # fmt: skip
        else:
            dur = (p.unprofiled_p50_ms or 0.0) * 1e3
            note = p.note or TFLITE_NO_TIMING
            events.append({
                "name": "invoke", "cat": "Session", "ph": "X", "ts": 0.0, "dur": dur, "pid": pid, "tid": 0,
                "args": {"note": note, "ops": [f"{n.op_type} on {n.provider}" for n in p.nodes]},
            })  # fmt: skip
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"source": "edgebench profile"}}
