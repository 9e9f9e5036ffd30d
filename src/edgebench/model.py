"""The typed core: what edgebench measures, stores and decides, as frozen dataclasses.

Inside the program data has a type; dicts exist only at the JSON boundary. Every type
here reads its JSON with ``from_json(d)`` and writes it back with ``to_json()``, and the
pair is exact: today's run files and manifests go through objects and come back as the
same JSON (run-file schema 1 is unchanged).

Why stdlib ``dataclasses`` rather than ``msgspec.Struct``: they need no dependency,
mypy understands them natively (no plugin), pydantic v2 validates them directly when a
config file is read (`edgebench.config`), and the JSON here is small enough that
msgspec's speed buys nothing measurable.

Blocks that the board reports and the program only stores and shows (``timing``,
``memory``, ``accuracy``, ``fidelity``, ``runtime``, ``device``, ``host``,
``fingerprint``, ``settings``, ``reference``) stay read-only JSON objects
(`JSONObject`); the figures the program reasons about are properties
(`Measurement.top1`, `Measurement.peak_rss`, `Measurement.fidelity_value`).

Presence of keys: an optional field that is ``None`` is left out of the JSON, unless its
key is in ``null_keys`` (then it is written as ``null``). `from_json` records which keys
were ``null`` so that a file round-trips exactly; code that builds a measurement the way
the agent path does passes ``null_keys=AGENT_NULLS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSONObject = Mapping[str, Any]  # a JSON object the program stores and shows but does not reason about

RUN_SCHEMA = 1
MIB = 2**20


# ------------------------------------------------------------------------------- enums


class Change(StrEnum):
    """How a latency quantile moved from run A to run B (the significance label)."""

    SLOWER = "slower"
    FASTER = "faster"
    NO_CHANGE = "no change"
    UNDECIDED = "undecided"


class CheckVerdict(StrEnum):
    """The outcome of one budget check (and of the whole gate: pass or fail)."""

    PASS = "pass"
    FAIL = "fail"
    UNDECIDED = "undecided"


class Worth(StrEnum):
    """The verdict on a variant against fp32 on the same board."""

    WORTH_IT = "worth it"
    WORTH_IT_FOR_SIZE = "worth it for size"
    NOT_WORTH_IT = "not worth it"
    UNDECIDED = "undecided"


# ------------------------------------------------------------------------------- helpers


def _num(v: Any) -> float | None:
    """A JSON number as a float (bools are not numbers here), else None."""
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _emit(out: dict[str, Any], key: str, value: Any, nulls: frozenset[str]) -> None:
    if value is not None or key in nulls:
        out[key] = value


def _nulls(d: JSONObject, keys: Sequence[str]) -> frozenset[str]:
    return frozenset(k for k in keys if k in d and d[k] is None)


def _extra(d: JSONObject, known: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in known}


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


# the keys of a measurement, in the order the bench writes them
_MEASUREMENT_KEYS = (
    "board", "model", "variant", "format", "sha256", "bytes", "ok", "error", "samples_ns", "batch_size",
    "settings", "warnings", "timing", "memory", "accuracy", "fidelity", "runtime", "device", "host",
    "fingerprint", "agent_pid", "cold_start", "reference", "processes", "process_spread", "evaluation", "summary",
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
    extra: JSONObject = field(default_factory=dict)
    null_keys: frozenset[str] = BASE_NULLS

    @property
    def key(self) -> tuple[str, str, str]:
        """``(board, model, variant)``: what was measured."""
        return (self.board, self.model, self.variant)

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
        out.update(self.extra)
        _emit(out, "summary", None if self.summary is None else self.summary.to_json(), nulls)
        return out


@dataclass(frozen=True, slots=True)
class Benchmark:
    """A pytest-benchmark ``benchmarks`` entry: a successful measurement and its stats block.

    ``stats`` is pytest-benchmark's block (seconds; ``data`` holds the raw samples) and
    ``options`` its options block; both are built by `edgebench.results.schema`.
    """

    measurement: Measurement
    stats: JSONObject
    options: JSONObject

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
        return cls(measurement=m, stats=stats, options=d.get("options") or {})

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
        }


# ------------------------------------------------------------------------------- run


_RUN_KEYS = (
    "schema", "run_id", "command", "complete", "started", "finished", "versions", "boards", "failures",
    "nightly", "baseline", "interrupted", "upgraded_from", "dropped",
)  # fmt: skip
_DOC_KEYS = ("machine_info", "commit_info", "benchmarks", "datetime", "version", "edgebench")


@dataclass(frozen=True, slots=True)
class Run:
    """One run document: pytest-benchmark's layout plus the ``edgebench`` block (schema 1).

    See `edgebench.results.schema` for the file layout. ``measurements`` lists the
    successful measurements (the benchmarks) first, then the failures.
    """

    run_id: str
    command: str
    started: str
    machine_info: JSONObject = field(default_factory=dict)
    commit_info: JSONObject = field(default_factory=dict)
    datetime: str = ""
    version: str = ""
    schema: int = RUN_SCHEMA
    complete: bool = False
    finished: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    boards: Mapping[str, JSONObject] = field(default_factory=dict)
    benchmarks: tuple[Benchmark, ...] = ()
    failures: tuple[Measurement, ...] = ()
    nightly: JSONObject | None = None
    baseline: str | None = None
    interrupted: str | None = None
    upgraded_from: int | None = None
    dropped: tuple[str, ...] | None = None
    extra: JSONObject = field(default_factory=dict)  # unknown keys of the edgebench block
    doc_extra: JSONObject = field(default_factory=dict)  # unknown top-level keys

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        """Every measurement, successful ones first."""
        return tuple(b.measurement for b in self.benchmarks) + self.failures

    @classmethod
    def from_json(cls, doc: JSONObject) -> Run:
        """Read a run document that is already at `RUN_SCHEMA` (`results.schema.upgrade_run`).

        Raises:
            KeyError: when a field every run has is missing.
        """
        eb = doc["edgebench"]
        dropped = eb.get("dropped")
        return cls(
            run_id=eb["run_id"],
            command=eb.get("command", ""),
            started=eb.get("started") or "",
            machine_info=doc.get("machine_info") or {},
            commit_info=doc.get("commit_info") or {},
            datetime=doc.get("datetime", ""),
            version=doc.get("version", ""),
            schema=eb.get("schema", RUN_SCHEMA),
            complete=bool(eb.get("complete")),
            finished=eb.get("finished"),
            versions=eb.get("versions") or {},
            boards=eb.get("boards") or {},
            benchmarks=tuple(Benchmark.from_json(b) for b in doc.get("benchmarks") or ()),
            failures=tuple(Measurement.from_json(m) for m in eb.get("failures") or ()),
            nightly=eb.get("nightly"),
            baseline=eb.get("baseline"),
            interrupted=eb.get("interrupted"),
            upgraded_from=eb.get("upgraded_from"),
            dropped=None if dropped is None else tuple(dropped),
            extra=_extra(eb, _RUN_KEYS),
            doc_extra=_extra(doc, _DOC_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        """The run document, as written to its file."""
        eb: dict[str, Any] = {
            "schema": self.schema,
            "run_id": self.run_id,
            "command": self.command,
            "complete": self.complete,
            "started": self.started,
            "finished": self.finished,
            "versions": dict(self.versions),
            "boards": dict(self.boards),
            "failures": [m.to_json(samples=False) for m in self.failures],
        }
        for k in ("nightly", "baseline", "interrupted", "upgraded_from"):
            _emit(eb, k, getattr(self, k), frozenset())
        if self.dropped is not None:
            eb["dropped"] = list(self.dropped)
        eb.update(self.extra)
        return {
            "machine_info": dict(self.machine_info),
            "commit_info": dict(self.commit_info),
            "benchmarks": [b.to_json() for b in self.benchmarks],
            "datetime": self.datetime,
            "version": self.version,
            "edgebench": eb,
            **self.doc_extra,
        }


# ------------------------------------------------------------------------------- manifest


@dataclass(frozen=True, slots=True)
class PassStep:
    """One step of a variant's pass chain: the pass's name and its parameters."""

    name: str
    params: JSONObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: JSONObject) -> PassStep:
        """Read a ``passes`` entry (``{"pass": name, "params": {...}}``)."""
        return cls(name=d["pass"], params=d.get("params") or {})

    def to_json(self) -> dict[str, Any]:
        """The ``passes`` entry."""
        return {"pass": self.name, "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A model input or output: name, shape (ints, or names of free dims) and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    @classmethod
    def from_json(cls, d: JSONObject) -> TensorSpec:
        """Read an ``inputs``/``outputs`` entry."""
        return cls(name=d["name"], shape=tuple(d["shape"]), dtype=d["dtype"])

    def to_json(self) -> dict[str, Any]:
        """The ``inputs``/``outputs`` entry."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


_MANIFEST_KEYS = (
    "schema", "model", "variant", "format", "artifact", "sha256", "bytes", "parent", "passes", "created",
    "inputs", "outputs", "params",
)  # fmt: skip
MANIFEST_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a variant's ``manifest.json`` holds.

    ``extra`` carries what a pass adds (``flops``, ``sparsity``, ``accuracy``,
    ``fidelity``, ``zip_bytes``...), in the order it was written.
    """

    model: str
    variant: str
    format: str
    artifact: str
    sha256: str
    bytes: int
    parent: str | None = None
    passes: tuple[PassStep, ...] = ()
    created: str = ""
    inputs: tuple[TensorSpec, ...] | None = None
    outputs: tuple[TensorSpec, ...] | None = None
    params: int | None = None
    schema: int = MANIFEST_SCHEMA
    extra: JSONObject = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        """Host-side top-1 accuracy the pass measured, or None."""
        a = self.extra.get("accuracy")
        return _num(a.get("top1")) if isinstance(a, Mapping) else _num(a)

    @property
    def flops(self) -> int | None:
        """FLOPs of one inference, when the pass counted them."""
        v = _num(self.extra.get("flops"))
        return None if v is None else int(v)

    @classmethod
    def from_json(cls, d: JSONObject) -> Manifest:
        """Read a ``manifest.json`` document."""
        ins, outs = d.get("inputs"), d.get("outputs")
        return cls(
            model=d["model"],
            variant=d["variant"],
            format=d["format"],
            artifact=d["artifact"],
            sha256=d["sha256"],
            bytes=d["bytes"],
            parent=d.get("parent"),
            passes=tuple(PassStep.from_json(p) for p in d.get("passes") or ()),
            created=d.get("created", ""),
            inputs=None if ins is None else tuple(TensorSpec.from_json(t) for t in ins),
            outputs=None if outs is None else tuple(TensorSpec.from_json(t) for t in outs),
            params=d.get("params"),
            schema=d.get("schema", MANIFEST_SCHEMA),
            extra=_extra(d, _MANIFEST_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``manifest.json`` document."""
        out: dict[str, Any] = {
            "schema": self.schema,
            "model": self.model,
            "variant": self.variant,
            "format": self.format,
            "artifact": self.artifact,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "parent": self.parent,
            "passes": [p.to_json() for p in self.passes],
            "created": self.created,
        }
        if self.inputs is not None:
            out["inputs"] = [t.to_json() for t in self.inputs]
        if self.outputs is not None:
            out["outputs"] = [t.to_json() for t in self.outputs]
        _emit(out, "params", self.params, frozenset())
        out.update(self.extra)
        return out


# ------------------------------------------------------------------------------- budgets and gate


LIMITS = {
    "max_p90_ms": "p90 latency (ms)",
    "max_p99_ms": "p99 latency (ms)",
    "max_peak_mb": "peak memory (MB)",
    "min_accuracy": "top-1 accuracy",
    "max_accuracy_drop_pt": "top-1 drop vs fp32 (pt)",
    "max_size_mb": "artifact size (MB)",
    "max_regression_pct": "p90 regression vs baseline (%)",
}


@dataclass(frozen=True, slots=True)
class Budget:
    """One ``[[budget]]`` table: glob patterns for what it covers and the limits it sets."""

    model: str = "*"
    board: str = "*"
    variant: str = "*"
    max_p90_ms: float | None = None
    max_p99_ms: float | None = None
    max_peak_mb: float | None = None
    min_accuracy: float | None = None
    max_accuracy_drop_pt: float | None = None
    max_size_mb: float | None = None
    max_regression_pct: float | None = None

    @property
    def limits(self) -> dict[str, float]:
        """The limits this budget sets, by name (in `LIMITS` order)."""
        return {k: v for k in LIMITS if (v := getattr(self, k)) is not None}

    @classmethod
    def from_json(cls, d: JSONObject) -> Budget:
        """Read a ``[[budget]]`` table (already validated)."""
        return cls(**{k: d[k] for k in ("model", "board", "variant", *LIMITS) if k in d})

    def to_json(self) -> dict[str, Any]:
        """The table, without the limits it does not set."""
        return {"model": self.model, "board": self.board, "variant": self.variant, **self.limits}


@dataclass(frozen=True, slots=True)
class Budgets:
    """A budgets file: an optional baseline run and its budgets."""

    budgets: tuple[Budget, ...]
    baseline: str | None = None

    @classmethod
    def from_json(cls, d: JSONObject) -> Budgets:
        """Read a budgets document (already validated)."""
        return cls(budgets=tuple(Budget.from_json(b) for b in d["budget"]), baseline=d.get("baseline"))

    def to_json(self) -> dict[str, Any]:
        """The budgets document."""
        out: dict[str, Any] = {} if self.baseline is None else {"baseline": self.baseline}
        out["budget"] = [b.to_json() for b in self.budgets]
        return out


@dataclass(frozen=True, slots=True)
class Check:
    """One budget check of one (model, board, variant)."""

    budget: int
    model: str
    board: str
    variant: str
    check: str
    measured: float | None
    limit: float | None
    margin: float | None
    verdict: CheckVerdict
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """The check as plain data (``verdict`` as its string)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"verdict": self.verdict.value}


@dataclass(frozen=True, slots=True)
class Gate:
    """The checks of a gate on one run; it passes only when every check passes."""

    run_id: str
    checks: tuple[Check, ...]

    @property
    def outcome(self) -> CheckVerdict:
        """``pass`` when every check passed, else ``fail`` (undecided counts against the gate)."""
        ok = self.checks and all(c.verdict is CheckVerdict.PASS for c in self.checks)
        return CheckVerdict.PASS if ok else CheckVerdict.FAIL

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return self.outcome is CheckVerdict.PASS

    @property
    def counts(self) -> dict[CheckVerdict, int]:
        """How many checks have each verdict."""
        return {v: sum(c.verdict is v for c in self.checks) for v in CheckVerdict}

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench gate --json``)."""
        return {
            "run_id": self.run_id,
            "outcome": self.outcome.value,
            "counts": {v.value: n for v, n in self.counts.items()},
            "checks": [c.to_json() for c in self.checks],
        }


# ------------------------------------------------------------------------------- comparison


@dataclass(frozen=True, slots=True)
class QuantileChange:
    """The change of one quantile from samples A to samples B.

    Attributes:
        q: the quantile (0.5, 0.9, ...).
        a: estimate in A; ``b``: estimate in B (same unit as the samples).
        ratio: ``b / a`` (> 1: B is slower).
        ratio_low, ratio_high: confidence interval of the ratio.
        p: Mann-Whitney two-sided p-value of the whole distributions.
        label: how it moved.
    """

    q: float
    a: float
    b: float
    ratio: float
    ratio_low: float
    ratio_high: float
    p: float
    label: Change

    @property
    def delta_pct(self) -> float:
        """The change in percent of A."""
        return (self.ratio - 1.0) * 100.0

    @classmethod
    def from_json(cls, d: JSONObject) -> QuantileChange:
        """Read `to_json` output."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: d[k] for k in names if k != "label"}, label=Change(d["label"]))

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON, with ``delta_pct``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {"label": self.label.value, "delta_pct": self.delta_pct}


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One (board, model, variant) measured in both runs of a comparison."""

    board: str
    model: str
    variant: str
    p50: QuantileChange
    p90: QuantileChange
    p_value: float
    mw_effect: float
    label: Change
    peak_mb_a: float | None = None
    peak_mb_b: float | None = None
    top1_a: float | None = None
    top1_b: float | None = None

    @property
    def d_peak_mb(self) -> float | None:
        """Change of peak memory, MB (B - A)."""
        return None if self.peak_mb_a is None or self.peak_mb_b is None else self.peak_mb_b - self.peak_mb_a

    @property
    def d_top1_pt(self) -> float | None:
        """Change of top-1 accuracy, percentage points (B - A)."""
        return None if self.top1_a is None or self.top1_b is None else (self.top1_b - self.top1_a) * 100

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "board": self.board, "model": self.model, "variant": self.variant,
            "p50": self.p50.to_json(), "p90": self.p90.to_json(), "p_value": self.p_value, "mw_effect": self.mw_effect,
            "label": self.label.value, "peak_mb_a": self.peak_mb_a, "peak_mb_b": self.peak_mb_b,
            "d_peak_mb": self.d_peak_mb, "top1_a": self.top1_a, "top1_b": self.top1_b, "d_top1_pt": self.d_top1_pt,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FailedKey:
    """A (board, model, variant) that failed in one run of a comparison (``side`` A or B)."""

    board: str
    model: str
    variant: str
    side: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``in`` is the side)."""
        return {"board": self.board, "model": self.model, "variant": self.variant, "in": self.side}


@dataclass(frozen=True, slots=True)
class Comparison:
    """Run B against run A: rows measured in both, what only one has, what failed."""

    a: str
    b: str
    alpha: float
    min_effect: float
    rows: tuple[ComparisonRow, ...]
    only_a: tuple[tuple[str, str, str], ...] = ()
    only_b: tuple[tuple[str, str, str], ...] = ()
    failed: tuple[FailedKey, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench compare --json``)."""
        return {
            "a": self.a,
            "b": self.b,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "rows": [r.to_json() for r in self.rows],
            "only_a": [list(k) for k in self.only_a],
            "only_b": [list(k) for k in self.only_b],
            "failed": [f.to_json() for f in self.failed],
        }


# ------------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Histogram:
    """Latency samples binned from the minimum to p99; ``above`` counts the tail beyond."""

    lo_ms: float
    hi_ms: float
    counts: tuple[int, ...]
    above: int

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"lo_ms": self.lo_ms, "hi_ms": self.hi_ms, "counts": list(self.counts), "above": self.above}


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One (board, variant) of a model in a run's report, with its ratios to fp32."""

    board: str
    variant: str
    ok: bool
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    rounds: int | None = None
    cv: float | None = None
    peak_rss: int | None = None
    top1: float | None = None
    fidelity: float | None = None
    bytes: int | None = None
    process_spread: float | None = None
    error: str | None = None
    hist: Histogram | None = None
    speedup: float | None = None
    size_ratio: float | None = None
    acc_delta_pt: float | None = None
    speed: Change | None = None
    verdict: Worth | None = None
    verdict_text: str | None = None
    pareto: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (enums as their strings)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["hist"] = None if self.hist is None else self.hist.to_json()
        out["speed"] = None if self.speed is None else self.speed.value
        out["verdict"] = None if self.verdict is None else self.verdict.value
        return out


@dataclass(frozen=True, slots=True)
class ModelReport:
    """The rows of one model in a run's report and its Pareto set per board."""

    model: str
    rows: tuple[ReportRow, ...]
    pareto: Mapping[str, tuple[str, ...]]

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "model": self.model,
            "rows": [r.to_json() for r in self.rows],
            "pareto": {k: list(v) for k, v in self.pareto.items()},
        }


@dataclass(frozen=True, slots=True)
class Trend:
    """One metric of one (board, model, variant) over the last runs, oldest first."""

    board: str
    model: str
    variant: str
    metric: str
    values: tuple[float | None, ...]
    runs: tuple[str, ...]
    sparkline: str
    changes: tuple[str, ...]  # run ids where a change point starts

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {"values": list(self.values), "runs": list(self.runs), "changes": list(self.changes)}


@dataclass(frozen=True, slots=True)
class Report:
    """What a run says: per model, board x variant figures, verdicts and warnings."""

    run_id: str
    command: str | None
    started: str | None
    complete: bool
    boards: tuple[str, ...]
    models: tuple[ModelReport, ...]
    warnings: tuple[str, ...] = ()
    trends: tuple[Trend, ...] | None = None
    run_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench report --json``)."""
        return {
            "run_id": self.run_id,
            "command": self.command,
            "started": self.started,
            "complete": self.complete,
            "boards": list(self.boards),
            "models": [m.to_json() for m in self.models],
            "warnings": list(self.warnings),
            **({} if self.run_file is None else {"run_file": self.run_file}),
            **({} if self.trends is None else {"trends": [t.to_json() for t in self.trends]}),
        }


# ------------------------------------------------------------------------------- choose


@dataclass(frozen=True, slots=True)
class BoardCost:
    """What a board costs to buy and to run, from the inventory (None when not given)."""

    cost: float | None = None
    power_w: float | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One (board, variant) of a model with its latest figures and why it fails, if it does."""

    board: str
    variant: str
    run_id: str
    p90_ms: float
    top1: float | None
    peak_mb: float | None
    cost: float | None
    power_w: float | None
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Choice:
    """The options of a model that meet the constraints (best first) and the rejected ones."""

    model: str
    rank: str
    max_p90_ms: float | None
    min_accuracy: float | None
    max_memory_mb: float | None
    chosen: tuple[Option, ...]
    rejected: tuple[Option, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench choose --json``)."""
        return {
            "model": self.model,
            "rank": self.rank,
            "constraints": {
                "max_p90_ms": self.max_p90_ms,
                "min_accuracy": self.min_accuracy,
                "max_memory_mb": self.max_memory_mb,
            },
            "chosen": [o.to_json() for o in self.chosen],
            "rejected": [o.to_json() for o in self.rejected],
        }
