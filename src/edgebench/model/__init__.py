"""The typed core: what edgebench measures, stores and decides, as frozen dataclasses.

Inside the program data has a type; dicts exist only at the JSON boundary. Every type
here reads its JSON with ``from_json(d)`` and writes it back with ``to_json()``, and the
pair is exact: today's run files and manifests go through objects and come back as the
same JSON (run-file schema 1 is unchanged).

Why stdlib ``dataclasses`` rather than ``msgspec.Struct``: they need no dependency,
mypy understands them natively (no plugin), pydantic v2 validates them directly when a
config file is read (`edgebench.config`), and the JSON here is small enough that
msgspec's speed buys nothing measurable.

The agent's blocks the program reads are typed too (`Memory`, `Accuracy`,
`BoardFidelity`, `DeviceStates`, `ProfileBlock`, `Settings`: keys they have no field for
kept in ``extra``, their key order kept for the round trip); those it only stores and
shows (``timing``, ``runtime``, ``host``, ``fingerprint``, ``reference``) stay read-only
JSON objects (`JSONObject`). The figures the program reasons about are properties
(`Measurement.top1`, `Measurement.peak_rss`, `Measurement.fidelity_value`).

Presence of keys: an optional field that is ``None`` is left out of the JSON, unless its
key is in ``null_keys`` (then it is written as ``null``). `from_json` records which keys
were ``null`` so that a file round-trips exactly; code that builds a measurement the way
the agent path does passes ``null_keys=AGENT_NULLS``.

The package is split by subject (`base`, `measurement`, `run`, `manifest`, `decisions`);
import names from `edgebench.model` itself.
"""

from edgebench.model.base import JSON_SCHEMA, MIB, RUN_SCHEMA, Change, CheckVerdict, JSONObject, Worth
from edgebench.model.config_key import ConfigKey
from edgebench.model.decisions import (
    COSINE_FROM_BOARD,
    COSINE_FROM_COMPRESS,
    LIMITS,
    BoardCost,
    Budget,
    Budgets,
    Check,
    Choice,
    Comparison,
    ComparisonRow,
    FailedKey,
    Gate,
    Histogram,
    ModelReport,
    Option,
    QuantileChange,
    Report,
    ReportRow,
    Trend,
)
from edgebench.model.manifest import MANIFEST_SCHEMA, Manifest, PassStep, TensorSpec
from edgebench.model.measurement import (
    AGENT_NULLS,
    BASE_NULLS,
    Accuracy,
    Benchmark,
    BoardFidelity,
    ColdStart,
    DeviceState,
    DeviceStates,
    Measurement,
    MeasurementError,
    Memory,
    Paired,
    PairedProcess,
    ProcessEntry,
    ProfileBlock,
    Settings,
    Summary,
)
from edgebench.model.run import Run

__all__ = [
    "AGENT_NULLS",
    "BASE_NULLS",
    "COSINE_FROM_BOARD",
    "COSINE_FROM_COMPRESS",
    "JSON_SCHEMA",
    "LIMITS",
    "MANIFEST_SCHEMA",
    "MIB",
    "RUN_SCHEMA",
    "Accuracy",
    "Benchmark",
    "BoardCost",
    "BoardFidelity",
    "Budget",
    "Budgets",
    "Change",
    "Check",
    "CheckVerdict",
    "Choice",
    "ColdStart",
    "Comparison",
    "ComparisonRow",
    "ConfigKey",
    "DeviceState",
    "DeviceStates",
    "FailedKey",
    "Gate",
    "Histogram",
    "JSONObject",
    "Manifest",
    "Measurement",
    "MeasurementError",
    "Memory",
    "ModelReport",
    "Option",
    "Paired",
    "PairedProcess",
    "PassStep",
    "ProcessEntry",
    "ProfileBlock",
    "QuantileChange",
    "Report",
    "ReportRow",
    "Run",
    "Settings",
    "Summary",
    "TensorSpec",
    "Trend",
    "Worth",
]
