"""A measurement: what the agent found for one (board, variant), and its pytest-benchmark entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgebench.model.base import JSONObject, _emit, _extra, _nulls, _num
from edgebench.model.config_key import ConfigKey

# ------------------------------------------------------------------------------- measurement


@dataclass(frozen=True, slots=True)
class Summary:
    """Summary statistics of a measurement's samples, per inference of a batch, in ms."""

    rounds: int
    min_ms: float
    p50_ms: float
    mean_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    stddev_ms: float
    iqr_ms: float
    cv: float
    throughput: float

    @classmethod
    def from_json(cls, d: JSONObject) -> Summary:
        """Read a ``summary`` block."""
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})

    def to_json(self) -> dict[str, Any]:
        """The ``summary`` block."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class ProcessEntry:
    """One fresh agent process of a repeated measurement (``processes`` entries)."""

    p50_ms: float
    rounds: int
    peak_rss: int | None
    load_ms: float | None
    first_inference_ms: float | None
    pid: int | None
    started: float
    order: int

    @classmethod
    def from_json(cls, d: JSONObject) -> ProcessEntry:
        """Read a ``processes`` entry."""
        return cls(
            p50_ms=d["p50_ms"],
            rounds=d["rounds"],
            peak_rss=d.get("peak_rss"),
            load_ms=d.get("load_ms"),
            first_inference_ms=d.get("first_inference_ms"),
            pid=d.get("pid"),
            started=d["started"],
            order=d["order"],
        )

    def to_json(self) -> dict[str, Any]:
        """The ``processes`` entry (every key, null when unknown)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_ERROR_KEYS = ("kind", "message", "command", "output", "traceback", "process")


@dataclass(frozen=True, slots=True)
class MeasurementError:
    """Why a measurement failed: ``{kind, message}`` plus what a remote failure carries."""

    kind: str
    message: str
    command: str | None = None
    output: str | None = None
    traceback: str | None = None
    process: int | None = None
    extra: JSONObject = field(default_factory=dict)
    null_keys: frozenset[str] = frozenset()

    @classmethod
    def from_json(cls, d: JSONObject) -> MeasurementError:
        """Read an ``error`` block."""
        return cls(
            kind=str(d.get("kind", "")),
            message=str(d.get("message", "")),
            command=d.get("command"),
            output=d.get("output"),
            traceback=d.get("traceback"),
            process=d.get("process"),
            extra=_extra(d, _ERROR_KEYS),
            null_keys=_nulls(d, _ERROR_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``error`` block."""
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        for k in _ERROR_KEYS[2:]:
            _emit(out, k, getattr(self, k), self.null_keys)
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class ColdStart:
    """Model load and first inference, separately (ms)."""

    load_ms: float
    first_inference_ms: float

    @classmethod
    def from_json(cls, d: JSONObject) -> ColdStart:
        """Read a ``cold_start`` block."""
        return cls(load_ms=d["load_ms"], first_inference_ms=d["first_inference_ms"])

    def to_json(self) -> dict[str, Any]:
        """The ``cold_start`` block."""
        return {"load_ms": self.load_ms, "first_inference_ms": self.first_inference_ms}


@dataclass(frozen=True, slots=True)
class PairedProcess:
    """One paired A/B agent process: the medians of A and B timed alternately in it (ms)."""

    a_p50_ms: float
    b_p50_ms: float
    rounds: int  # samples of each side
    first: str  # "a" or "b": which model ran first (processes alternate it)
    a_p90_ms: float | None = None
    b_p90_ms: float | None = None
    a_p99_ms: float | None = None
    b_p99_ms: float | None = None

    @classmethod
    def from_json(cls, d: JSONObject) -> PairedProcess:
        """Read a ``paired.processes`` entry."""
        tails = {k: d.get(k) for k in ("a_p90_ms", "b_p90_ms", "a_p99_ms", "b_p99_ms")}
        return cls(float(d["a_p50_ms"]), float(d["b_p50_ms"]), int(d["rounds"]), str(d.get("first", "a")), **tails)

    def of(self, q: float) -> tuple[float, float] | None:
        """A's and B's value of quantile ``q`` (0.5, 0.9, 0.99) in this process, None when not recorded."""
        a, b = {0.5: (self.a_p50_ms, self.b_p50_ms), 0.9: (self.a_p90_ms, self.b_p90_ms)}.get(
            q, (self.a_p99_ms, self.b_p99_ms)
        )
        return None if a is None or b is None else (a, b)

    def to_json(self) -> dict[str, Any]:
        """The ``paired.processes`` entry."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class Paired:
    """A baseline's artifact (A) re-measured with this measurement's (B) in paired processes.

    Each process times A and B alternately (`edgebench.agent.paired_job`), so what moves a
    process or a whole run moves both: the per-process ratios are what `compare` and
    `gate` decide on when the baseline run's artifact is A (`baseline_sha256`).
    """

    baseline_sha256: str
    processes: tuple[PairedProcess, ...] = ()
    baseline_run: str | None = None
    error: str | None = None  # why the paired processes failed (the measurement itself stands)

    @classmethod
    def from_json(cls, d: JSONObject) -> Paired:
        """Read a ``paired`` block."""
        procs = tuple(PairedProcess.from_json(p) for p in d.get("processes") or ())
        return cls(str(d["baseline_sha256"]), procs, d.get("baseline_run"), d.get("error"))

    def to_json(self) -> dict[str, Any]:
        """The ``paired`` block."""
        return {
            "baseline_sha256": self.baseline_sha256,
            "baseline_run": self.baseline_run,
            "processes": [p.to_json() for p in self.processes],
            "error": self.error,
        }


_WINDOW_KEYS = (
    "t_s", "duration_s", "count", "p50_ms", "p99_ms", "freq_mhz", "temp_c", "flags", "power_w", "sensor_ms",
    "overhead_ms",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a sustained run's timeline, as the agent recorded it (`edgebench.agent.sustained`).

    ``t_s`` is the window's start since the run's, ``count`` its inferences and ``p50_ms``/``p99_ms``
    their latency (None: an empty window); ``freq_mhz`` the highest CPU frequency, ``temp_c`` the
    hottest thermal zone (None where the board has no such sensor); ``flags`` the throttle flags
    (``freq_drop``, ``trip_<type>``, ``rpi_*``); ``power_w`` the power per domain or rail (None: no
    source); ``sensor_ms`` the time the sensors took after the window, ``overhead_ms`` that plus the
    window's statistics.
    """

    t_s: float
    duration_s: float
    count: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    freq_mhz: float | None = None
    temp_c: float | None = None
    flags: tuple[str, ...] = ()
    power_w: JSONObject | None = None
    sensor_ms: float | None = None
    overhead_ms: float | None = None
    extra: JSONObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: JSONObject) -> Window:
        """Read a ``timeline.windows`` entry."""
        return cls(
            t_s=float(d["t_s"]),
            duration_s=float(d["duration_s"]),
            count=int(d["count"]),
            p50_ms=d.get("p50_ms"),
            p99_ms=d.get("p99_ms"),
            freq_mhz=d.get("freq_mhz"),
            temp_c=d.get("temp_c"),
            flags=tuple(d.get("flags") or ()),
            power_w=d.get("power_w"),
            sensor_ms=d.get("sensor_ms"),
            overhead_ms=d.get("overhead_ms"),
            extra=_extra(d, _WINDOW_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``timeline.windows`` entry: every key, null where unknown (the agent writes them all)."""
        out = {k: getattr(self, k) for k in _WINDOW_KEYS}
        out["flags"] = list(self.flags)
        out["power_w"] = None if self.power_w is None else dict(self.power_w)
        out.update(self.extra)
        return out


@dataclass(frozen=True, slots=True)
class Timeline:
    """A sustained run of one variant: its windows, what the agent said of the run, and its power sources.

    ``run`` is the agent's ``sustained`` block (``seconds``, ``window_s``, ``elapsed_s``,
    ``inferences``, ``sensor_overhead`` and ``overhead`` as fractions of the run, the sensors found);
    ``power`` its ``power`` block (``available``; ``domains`` with what each covers, its sampling,
    energy, mean power and mJ per inference; or ``none``: no power sensor on this board, and why).
    """

    windows: tuple[Window, ...]
    run: JSONObject = field(default_factory=dict)
    power: JSONObject | None = None

    @property
    def window_s(self) -> float:
        """The window length the run asked for (s)."""
        return float(self.run.get("window_s") or 1.0)

    @property
    def sensor_overhead(self) -> float | None:
        """Time spent reading sensors, as a fraction of the run (None when not recorded)."""
        v = self.run.get("sensor_overhead")
        return None if v is None else float(v)

    @classmethod
    def from_json(cls, d: JSONObject) -> Timeline:
        """Read a measurement's ``timeline`` block."""
        power = d.get("power")
        return cls(
            windows=tuple(Window.from_json(w) for w in d.get("windows") or ()),
            run=dict(d.get("run") or {}),
            power=None if power is None else dict(power),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``timeline`` block: ``run``, ``windows``, ``power``."""
        return {
            "run": dict(self.run),
            "windows": [w.to_json() for w in self.windows],
            "power": None if self.power is None else dict(self.power),
        }


# the keys of a measurement, in the order the bench writes them
_MEASUREMENT_KEYS = (
    "board", "model", "variant", "format", "sha256", "bytes", "ok", "error", "samples_ns", "batch_size",
    "settings", "warnings", "timing", "memory", "accuracy", "fidelity", "runtime", "device", "host",
    "fingerprint", "agent_pid", "cold_start", "reference", "processes", "process_spread", "evaluation", "summary",
    "inputs", "paired", "compress_fidelity", "timeline",
)  # fmt: skip
# a measurement the bench has just built writes these even when null
BASE_NULLS = frozenset({"format", "sha256", "bytes", "error"})
# ... and these too once the agent answered (`bench.runner._fill`)
AGENT_NULLS = BASE_NULLS | {"accuracy", "fidelity", "runtime", "host", "agent_pid"}


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one (board, variant) measurement found; see `edgebench.bench.runner` for the fields.

    ``samples_ns`` are the board's raw per-inference latencies; in a stored run they
    live in the benchmark's ``stats.data`` (seconds) and come back from there.
    """

    board: str
    model: str
    variant: str
    ok: bool
    format: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    error: MeasurementError | None = None
    samples_ns: tuple[int, ...] = ()
    batch_size: int = 1
    settings: JSONObject | None = None
    warnings: tuple[str, ...] = ()
    timing: JSONObject | None = None
    memory: JSONObject | None = None
    accuracy: JSONObject | None = None
    fidelity: JSONObject | float | None = None
    runtime: JSONObject | None = None
    device: JSONObject | None = None
    host: JSONObject | None = None
    fingerprint: JSONObject | None = None
    agent_pid: int | None = None
    cold_start: ColdStart | None = None
    reference: JSONObject | None = None
    processes: tuple[ProcessEntry, ...] | None = None
    process_spread: float | None = None
    evaluation: str | None = None
    summary: Summary | None = None
    inputs: tuple[JSONObject, ...] | None = None  # the timed inputs: name, shape, dtype, how made (agent records)
    paired: Paired | None = None  # the baseline re-measured with it, in paired processes (`run --baseline`)
    # the variant's manifest fidelity (`Manifest.compress_fidelity`): host-side, at compress time; what a run
    # without eval data knows of its outputs (a board-side ``fidelity`` always wins)
    compress_fidelity: JSONObject | None = None
    timeline: Timeline | None = None  # a sustained run's windows (`run --sustained`); absent otherwise
    extra: JSONObject = field(default_factory=dict)
    null_keys: frozenset[str] = BASE_NULLS

    @property
    def key(self) -> tuple[str, str, str]:
        """``(board, model, variant)``: what was measured."""
        return (self.board, self.model, self.variant)

    @property
    def config_key(self) -> ConfigKey:
        """What the measurement was configured with (batch, inputs, threads, runtime, board)."""
        return ConfigKey.of(
            batch_size=self.batch_size, inputs=self.inputs, runtime=self.runtime, fingerprint=self.fingerprint
        )

    @property
    def top1(self) -> float | None:
        """Top-1 accuracy measured on the board (0..1), or None."""
        return _num(self.accuracy.get("top1")) if self.accuracy is not None else None

    @property
    def peak_rss(self) -> int | None:
        """Peak resident memory of the agent process in bytes, or None."""
        v = _num(self.memory.get("peak_rss")) if self.memory is not None else None
        return None if v is None else int(v)

    @property
    def fidelity_value(self) -> float | None:
        """One fidelity figure (agreement of the variant with its parent, 0..1), or None."""
        f = self.fidelity
        if not isinstance(f, Mapping):
            return _num(f)
        for k in ("top1_agreement", "agreement", "cosine", "value"):
            v = _num(f.get(k))
            if v is not None:
                return v
        return None

    @property
    def error_message(self) -> str | None:
        """The failure's message, or None when the measurement has no error."""
        return None if self.error is None else self.error.message

    @property
    def min_rounds(self) -> int:
        """The ``min_rounds`` setting the measurement ran with (0 when unknown)."""
        return int((self.settings or {}).get("min_rounds", 0))

    @property
    def max_time_s(self) -> float:
        """The ``max_time_s`` setting the measurement ran with (0 when unknown)."""
        return float((self.settings or {}).get("max_time_s", 0.0))

    @classmethod
    def from_json(cls, d: JSONObject) -> Measurement:
        """Read a measurement dict (the bench's, a benchmark's ``extra_info`` or a failure).

        Raises:
            KeyError: when ``board``, ``model``, ``variant`` are missing.
        """
        err, cold, procs, summ = d.get("error"), d.get("cold_start"), d.get("processes"), d.get("summary")
        return cls(
            board=d["board"],
            model=d["model"],
            variant=d["variant"],
            ok=bool(d.get("ok")),
            format=d.get("format"),
            sha256=d.get("sha256"),
            bytes=d.get("bytes"),
            error=MeasurementError.from_json(err) if isinstance(err, Mapping) else None,
            samples_ns=tuple(d.get("samples_ns") or ()),
            batch_size=int(d.get("batch_size", 1)),
            settings=d.get("settings"),
            warnings=tuple(d.get("warnings") or ()),
            timing=d.get("timing"),
            memory=d.get("memory"),
            accuracy=d.get("accuracy"),
            fidelity=d.get("fidelity"),
            runtime=d.get("runtime"),
            device=d.get("device"),
            host=d.get("host"),
            fingerprint=d.get("fingerprint"),
            agent_pid=d.get("agent_pid"),
            cold_start=ColdStart.from_json(cold) if isinstance(cold, Mapping) else None,
            reference=d.get("reference"),
            processes=None if procs is None else tuple(ProcessEntry.from_json(p) for p in procs),
            process_spread=d.get("process_spread"),
            evaluation=d.get("evaluation"),
            summary=Summary.from_json(summ) if isinstance(summ, Mapping) else None,
            inputs=None if d.get("inputs") is None else tuple(d["inputs"]),
            paired=Paired.from_json(d["paired"]) if isinstance(d.get("paired"), Mapping) else None,
            compress_fidelity=d["compress_fidelity"] if isinstance(d.get("compress_fidelity"), Mapping) else None,
            timeline=Timeline.from_json(d["timeline"]) if isinstance(d.get("timeline"), Mapping) else None,
            extra=_extra(d, _MEASUREMENT_KEYS),
            null_keys=_nulls(d, _MEASUREMENT_KEYS),
        )

    def to_json(self, *, samples: bool = True) -> dict[str, Any]:
        """The measurement dict; ``samples=False`` leaves ``samples_ns`` out (as stored)."""
        nulls = self.null_keys
        out: dict[str, Any] = {"board": self.board, "model": self.model, "variant": self.variant}
        for k in ("format", "sha256", "bytes"):
            _emit(out, k, getattr(self, k), nulls)
        out["ok"] = self.ok
        _emit(out, "error", None if self.error is None else self.error.to_json(), nulls)
        if samples:
            out["samples_ns"] = list(self.samples_ns)
        out["batch_size"] = self.batch_size
        _emit(out, "settings", self.settings, nulls)
        out["warnings"] = list(self.warnings)
        for k in ("timing", "memory", "accuracy", "fidelity", "runtime", "device", "host", "fingerprint", "agent_pid"):
            _emit(out, k, getattr(self, k), nulls)
        _emit(out, "cold_start", None if self.cold_start is None else self.cold_start.to_json(), nulls)
        _emit(out, "reference", self.reference, nulls)
        procs = None if self.processes is None else [p.to_json() for p in self.processes]
        _emit(out, "processes", procs, nulls)
        _emit(out, "process_spread", self.process_spread, nulls)
        _emit(out, "evaluation", self.evaluation, nulls)
        _emit(out, "inputs", None if self.inputs is None else [dict(i) for i in self.inputs], nulls)
        if self.paired is not None:
            out["paired"] = self.paired.to_json()
        if self.compress_fidelity is not None:
            out["compress_fidelity"] = dict(self.compress_fidelity)
        if self.timeline is not None:
            out["timeline"] = self.timeline.to_json()
        out.update(self.extra)
        _emit(out, "summary", None if self.summary is None else self.summary.to_json(), nulls)
        return out


_BENCHMARK_KEYS = ("group", "name", "fullname", "params", "param", "extra_info", "options", "stats")


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A pytest-benchmark ``benchmarks`` entry: a successful measurement and its stats block.

    ``stats`` is pytest-benchmark's block (seconds; ``data`` holds the raw samples) and
    ``options`` its options block; both are built by `edgebench.results.schema`.
    """

    measurement: Measurement
    stats: JSONObject
    options: JSONObject
    extra: JSONObject = field(default_factory=dict)  # other keys pytest-benchmark wrote (``cprofile``...)

    @property
    def param(self) -> str:
        """The benchmark's parameter id, ``board-model-variant``."""
        m = self.measurement
        return f"{m.board}-{m.model}-{m.variant}"

    @classmethod
    def from_json(cls, d: JSONObject) -> Benchmark:
        """Read a ``benchmarks`` entry; the samples come back from ``stats.data``."""
        stats = d["stats"]
        m = Measurement.from_json(d["extra_info"])
        m = dataclasses.replace(m, samples_ns=tuple(round(s * 1e9) for s in stats["data"]))
        return cls(measurement=m, stats=stats, options=d.get("options") or {}, extra=_extra(d, _BENCHMARK_KEYS))

    def to_json(self) -> dict[str, Any]:
        """The ``benchmarks`` entry."""
        m, param = self.measurement, self.param
        return {
            "group": m.model,
            "name": f"test_variant[{param}]",
            "fullname": f"edgebench::test_variant[{param}]",
            "params": {"board": m.board, "model": m.model, "variant": m.variant},
            "param": param,
            "extra_info": m.to_json(samples=False),
            "options": dict(self.options),
            "stats": dict(self.stats),
            **self.extra,
        }
