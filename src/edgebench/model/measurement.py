"""A measurement: what the agent found for one (board, variant), and its pytest-benchmark entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

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


# ------------------------------------------------------------------------------- agent blocks


def _frozen(v: Any) -> Any:
    """A JSON value as a field holds it: a list becomes a tuple (and back in `_plain`)."""
    return tuple(v) if isinstance(v, list) else v


def _plain(v: Any) -> Any:
    """A field's value as JSON: a tuple becomes a list, a block its JSON."""
    if isinstance(v, tuple):
        return list(v)
    return v.to_json() if isinstance(v, _Block) else v


class _Block:
    """A block the agent writes (``memory``, ``accuracy``...), typed: its keys are its fields (`_keys`).

    Every block keeps the keys it has no field for in ``extra`` and the order it was read in
    (``keys_read``, None when built in code), so that a stored block comes back as the same JSON:
    its keys in the order read, a null where it held one; a block built in code writes its
    fields in declaration order, leaving out those that are None (but for ``_ALWAYS``).
    """

    __slots__ = ()
    _ALWAYS: ClassVar[frozenset[str]] = frozenset()
    extra: JSONObject
    keys_read: tuple[str, ...] | None

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        """The block's keys: its fields but ``extra`` and ``keys_read``, in the order declared."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "keys_read"))  # type: ignore[arg-type]

    @classmethod
    def _fields_of(cls, d: JSONObject) -> dict[str, Any]:
        """The constructor's arguments from a JSON block (nested blocks: override)."""
        return {k: _frozen(d.get(k)) for k in cls._keys()}

    @classmethod
    def from_json(cls, d: JSONObject) -> Self:
        """Read the block (keys it has no field for go to ``extra``)."""
        make: Callable[..., Self] = cls
        return make(**cls._fields_of(d), extra=_extra(d, cls._keys()), keys_read=tuple(d))

    def to_json(self) -> dict[str, Any]:
        """The block's JSON (see the class docstring for which keys, in which order)."""
        full = {k: _plain(getattr(self, k)) for k in self._keys()}
        full.update(self.extra)
        if self.keys_read is None:
            return {k: v for k, v in full.items() if v is not None or k in self._ALWAYS}
        out = {k: full[k] for k in self.keys_read if k in full}
        out.update((k, v) for k, v in full.items() if k not in out and v is not None)  # set since it was read
        return out


def _keys_read() -> Any:
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Settings(_Block):
    """The ``settings`` block: the measure settings a measurement ran with (the job's ``measure`` block).

    With ``repeats`` (`edgebench.bench.repeats`): the run's totals, ``repeats`` processes, the floors of
    each (``per_process``) and, in a stopped run, ``repeats_planned``. Older runs have other keys (``extra``).
    """

    warmup_min_iters: int | None = None
    warmup_min_s: float | None = None
    min_rounds: int | None = None
    min_time_s: float | None = None
    max_time_s: float | None = None
    max_rounds: int | None = None
    batch_size: int | None = None
    min_cosine: float | None = None
    repeats: int | None = None
    per_process: JSONObject | None = None
    repeats_planned: int | None = None
    extra: JSONObject = field(default_factory=dict)
    keys_read: tuple[str, ...] | None = _keys_read()


@dataclass(frozen=True, slots=True)
class Memory(_Block):
    """The ``memory`` block: RSS of the fresh agent process in bytes (see `edgebench.bench.runner`).

    ``peak_rss`` is the timed configuration's peak (``peak_rss_scope``: ``timed``, or ``process`` where
    the board gives no per-phase peak), ``peak_rss_eval`` the accuracy pass's; the host adds
    ``load_delta`` (after - before load) and ``definition``.
    """

    rss_start: int | None = None
    rss_before_load: int | None = None
    rss_after_load: int | None = None
    rss_after_run: int | None = None
    peak_rss: int | None = None
    peak_rss_scope: str | None = None
    peak_rss_eval: int | None = None
    load_delta: int | None = None
    definition: str | None = None
    extra: JSONObject = field(default_factory=dict)
    keys_read: tuple[str, ...] | None = _keys_read()


@dataclass(frozen=True, slots=True)
class Accuracy(_Block):
    """The ``accuracy`` block: top-1 on the board with its Wilson 95% interval over ``n`` of ``n_total``
    samples (``quick``: a subset), or ``unknown`` (why there is no top-1: the output is not class scores)."""

    top1: float | None = None
    top1_ci95: tuple[float, ...] | None = None
    n: int | None = None
    n_total: int | None = None
    quick: bool | None = None
    unknown: str | None = None
    eval_ns: int | None = None
    extra: JSONObject = field(default_factory=dict)
    keys_read: tuple[str, ...] | None = _keys_read()


@dataclass(frozen=True, slots=True)
class BoardFidelity(_Block):
    """The ``fidelity`` block: the variant's outputs against its fp32 parent's on the board.

    ``cosine`` is the worst output's (``cosine_mean`` the first output's: runs made before per-output
    fidelity have only it), ``degraded`` whether it fell below ``min_cosine``; ``outputs`` (in ``extra``)
    one block per output. ``unknown``: why it was not measured (the host-side reference failed).
    ``agreement`` and ``value`` are older runs' figures.
    """

    cosine: float | None = None
    cosine_mean: float | None = None
    cosine_min: float | None = None
    snr_db: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    n: int | None = None
    min_cosine: float | None = None
    degraded: bool | None = None
    top1_agreement: float | None = None
    top1_agreement_ci95: tuple[float, ...] | None = None
    unknown: str | None = None
    agreement: float | None = None
    value: float | None = None
    extra: JSONObject = field(default_factory=dict)
    keys_read: tuple[str, ...] | None = _keys_read()


@dataclass(frozen=True, slots=True)
class DeviceState(_Block):
    """The board's state before or after a measurement: CPU governor and frequency, hottest zone, CPU ticks."""

    governor: str | None = None
    freq_mhz: float | None = None
    max_freq_mhz: float | None = None
    temp_c: float | None = None
    cpu_ticks: tuple[int, ...] | None = None
    extra: JSONObject = field(default_factory=dict)
    keys_read: tuple[str, ...] | None = _keys_read()


@dataclass(frozen=True, slots=True)
class DeviceStates(_Block):
    """The ``device`` block: the board's state before and after, and the cool-down waited before (``waited_s``,
    ``reached``); all three are written, null when unknown."""

    _ALWAYS: ClassVar[frozenset[str]] = frozenset({"before", "after", "cooldown"})

    before: DeviceState | None = None
    after: DeviceState | None = None
    cooldown: JSONObject | None = None
    extra: JSONObject = field(default_factory=dict)
    keys_read: tuple[str, ...] | None = _keys_read()

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        """The block's keys: its fields but ``extra`` and ``keys_read``, in the order declared."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "keys_read"))

    @classmethod
    def _fields_of(cls, d: JSONObject) -> dict[str, Any]:
        state = {k: DeviceState.from_json(d[k]) if isinstance(d.get(k), Mapping) else None for k in ("before", "after")}
        return {**state, "cooldown": d.get("cooldown")}


@dataclass(frozen=True, slots=True)
class ProfileBlock(_Block):
    """The ``profile`` block of one profiling agent process (`agent.profile_job`; read by `bench.profile.Profile`).

    The unprofiled and profiled medians (ns), the runtime's per-node times (``runs``, ``nodes``; ONNX Runtime)
    or its ops without timing (``ops``; TFLite: ``available`` false, ``note`` says why), the RSS timeline, the
    trace of one profiled inference, and the process that made it (``agent_pid``, the host's).
    """

    iterations: int | None = None
    available: bool | None = None
    note: str | None = None
    requested_provider: str | None = None
    unprofiled_p50_ns: float | None = None
    profiled_p50_ns: float | None = None
    profiled_samples_ns: tuple[float, ...] | None = None
    overhead_ratio: float | None = None
    runs: tuple[JSONObject, ...] | None = None  # per profiled inference: node_us, model_run_us
    nodes: tuple[JSONObject, ...] | None = None  # name, op_type, provider, total_us
    ops: tuple[JSONObject, ...] | None = None  # name, op_type, delegate
    memory_timeline: tuple[Any, ...] | None = None  # [phase, t_s, rss]
    trace: tuple[JSONObject, ...] | None = None
    agent_pid: int | None = None
    extra: JSONObject = field(default_factory=dict)
    keys_read: tuple[str, ...] | None = _keys_read()


B = TypeVar("B", bound=_Block)


def _block(read: Callable[[JSONObject], B], v: object) -> B | None:
    """A block of a measurement's JSON, typed (None when absent or not an object)."""
    return read(v) if isinstance(v, Mapping) else None


def _fidelity(v: object) -> BoardFidelity | float | None:
    """The ``fidelity`` of a measurement's JSON: a block, or a number in older runs."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v
    return _block(BoardFidelity.from_json, v)


# the keys of a measurement, in the order the bench writes them
_MEASUREMENT_KEYS = (
    "board", "model", "variant", "format", "sha256", "bytes", "ok", "error", "samples_ns", "batch_size",
    "settings", "warnings", "timing", "memory", "accuracy", "fidelity", "runtime", "device", "host",
    "fingerprint", "agent_pid", "cold_start", "reference", "processes", "process_spread", "evaluation", "summary",
    "inputs", "paired", "compress_fidelity", "timeline", "profile", "profile_error",
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

    The agent's blocks the program reads are typed (`Settings`, `Memory`, `Accuracy`, `BoardFidelity`,
    `DeviceStates`, `ProfileBlock`); `from_json` reads them from their JSON.
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
    settings: Settings | None = None
    warnings: tuple[str, ...] = ()
    timing: JSONObject | None = None
    memory: Memory | None = None
    accuracy: Accuracy | None = None
    fidelity: BoardFidelity | float | None = None  # a number in older runs
    runtime: JSONObject | None = None
    device: DeviceStates | None = None
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
    profile: ProfileBlock | None = None  # `profile`, `run --profile`
    profile_error: str | None = None  # `run --profile`: measured, but its profiling process failed (why)
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
        return None if self.accuracy is None else _num(self.accuracy.top1)

    @property
    def peak_rss(self) -> int | None:
        """Peak resident memory of the agent process in bytes, or None."""
        v = None if self.memory is None else _num(self.memory.peak_rss)
        return None if v is None else int(v)

    @property
    def fidelity_value(self) -> float | None:
        """One fidelity figure (agreement of the variant with its parent, 0..1), or None."""
        f = self.fidelity
        if not isinstance(f, BoardFidelity):
            return _num(f)
        return next((v for v in map(_num, (f.top1_agreement, f.agreement, f.cosine, f.value)) if v is not None), None)

    @property
    def error_message(self) -> str | None:
        """The failure's message, or None when the measurement has no error."""
        return None if self.error is None else self.error.message

    @property
    def min_rounds(self) -> int:
        """The ``min_rounds`` setting the measurement ran with (0 when unknown)."""
        s = self.settings
        return 0 if s is None or s.min_rounds is None else int(s.min_rounds)

    @property
    def min_time_s(self) -> float:
        """The ``min_time_s`` setting the measurement ran with (0 when unknown)."""
        s = self.settings
        return 0.0 if s is None or s.min_time_s is None else float(s.min_time_s)

    @property
    def max_time_s(self) -> float:
        """The ``max_time_s`` setting the measurement ran with (0 when unknown)."""
        s = self.settings
        return 0.0 if s is None or s.max_time_s is None else float(s.max_time_s)

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
            settings=_block(Settings.from_json, d.get("settings")),
            warnings=tuple(d.get("warnings") or ()),
            timing=d.get("timing"),
            memory=_block(Memory.from_json, d.get("memory")),
            accuracy=_block(Accuracy.from_json, d.get("accuracy")),
            fidelity=_fidelity(d.get("fidelity")),
            runtime=d.get("runtime"),
            device=_block(DeviceStates.from_json, d.get("device")),
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
            profile=_block(ProfileBlock.from_json, d.get("profile")),
            profile_error=d.get("profile_error"),
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
        _emit(out, "settings", _plain(self.settings), nulls)
        out["warnings"] = list(self.warnings)
        for k in ("timing", "memory", "accuracy", "fidelity", "runtime", "device", "host", "fingerprint", "agent_pid"):
            _emit(out, k, _plain(getattr(self, k)), nulls)
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
        if self.profile is not None:
            out["profile"] = self.profile.to_json()
        if self.profile_error is not None:
            out["profile_error"] = self.profile_error
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
