"""The agent's job and result on the host: typed, built from the agent's own schema, and checked at the door.

`edgebench.agent.schema` declares every key of the job and the result once, with its type;
the agent checks each job against it, and this module builds the host's dataclasses on the
same key names (`AgentJob`, `AgentEval`, `AgentResult`: their fields are checked against the
tables when this module loads, so a key renamed on one side fails at once) and checks each
result before it is read (`malformed`). A board whose python or agent misbehaves (a replaced
agent, a wrapper that prints something else) must be said as such, never crash the host nor
pass for a wrong number.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from edgebench.agent import schema
from edgebench.model import MeasurementError
from edgebench.targets.board import Board


def _same_keys(cls: type, table: Mapping[str, Any], where: str) -> None:
    """Fail at import when a dataclass's fields are not the schema table's keys (a rename on one side only)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    if fields != set(table):
        raise TypeError(f"{cls.__name__} and edgebench.agent.schema.{where} differ: {sorted(fields ^ set(table))}")


def _plain(obj: Any) -> dict[str, Any]:
    """A job dataclass as the JSON the agent reads: unset (None) keys left out, nested blocks too."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        out[f.name] = _plain(value) if dataclasses.is_dataclass(value) else value
    return out


@dataclasses.dataclass(frozen=True)
class AgentEval:
    """The job's ``eval`` block (`schema.EVAL`): the eval data on the board and how to read it."""

    path: str | None = None
    seed: int | None = None
    limit: int | None = None
    evaluate: bool | None = None  # False: time the eval inputs only, no accuracy or fidelity
    reference: str | None = None
    x: str | None = None
    y: str | None = None
    inputs: dict[str, str] | None = None
    save_outputs: str | None = None
    n_total: int | None = None  # the agent's
    batched: list[bool] | None = None  # the agent's


@dataclasses.dataclass(frozen=True)
class AgentPaired:
    """The job's ``paired`` block (`schema.PAIRED_JOB`): the baseline A timed alternately with the artifact B."""

    artifact: str
    sha256: str | None = None
    first: str | None = None  # "a" or "b"


@dataclasses.dataclass(frozen=True)
class AgentSustained:
    """The job's ``sustained`` block (`schema.SUSTAINED_JOB`): run on for ``seconds``, a window per ``window_s``."""

    seconds: float
    window_s: float | None = None
    power_command: str | None = None  # a meter command (its output parsed by ``power_pattern``)
    power_pattern: str | None = None
    root: str | None = None  # where /sys is read from (tests)


@dataclasses.dataclass(frozen=True)
class AgentJob:
    """One agent process's job (`schema.JOB`); `to_json` is what the board reads."""

    artifact: str
    sha256: str | None = None
    runtime: str | None = None
    runtime_options: dict[str, Any] | None = None
    measure: dict[str, Any] | None = None
    dims: dict[str, Any] | None = None
    device: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None
    seed: int | None = None
    eval: AgentEval | None = None
    paired: AgentPaired | None = None
    profile: dict[str, Any] | None = None
    sustained: AgentSustained | None = None

    def to_json(self) -> dict[str, Any]:
        """The job JSON (unset keys left out)."""
        return _plain(self)


@dataclasses.dataclass(frozen=True)
class AgentResult:
    """An agent's result (`schema.RESULT`), checked (`from_json`); each block stays the agent's JSON object."""

    ok: bool
    schema: int | None = None
    agent_version: str | None = None
    error: dict[str, Any] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    host: dict[str, Any] | None = None
    pid: int | None = None
    numpy: str | None = None
    artifact_sha256: str | None = None
    memory: dict[str, Any] | None = None
    cooldown: dict[str, Any] | None = None
    device_before: dict[str, Any] | None = None
    device_after: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None
    signature: list[dict[str, Any]] | None = None
    inputs: list[dict[str, Any]] | None = None
    timing: dict[str, Any] | None = None
    accuracy: dict[str, Any] | None = None
    fidelity: dict[str, Any] | None = None
    paired: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None
    sustained: dict[str, Any] | None = None  # a sustained run: seconds, windows, overhead, sensors found
    timeline: list[dict[str, Any]] | None = None  # its windows
    power: dict[str, Any] | None = None  # its power sources and energy, or why there is none

    @classmethod
    def from_json(cls, out: Mapping[str, Any]) -> AgentResult:
        """The typed result; keys the schema does not list are left out.

        Raises:
            ValueError: ``out`` is not an agent result (`malformed` names the field).
        """
        problem = malformed(out)
        if problem is not None:
            raise ValueError(problem)
        values: dict[str, Any] = {}
        for key, kind in schema.RESULT.items():
            value = out.get(key)
            if isinstance(kind, dict) or kind == "object":
                values[key] = dict(value) if value is not None else None
            elif kind == "list":
                values[key] = list(value) if value is not None else None
            else:
                values[key] = value
        values["warnings"] = values["warnings"] or []
        return cls(**values)


_same_keys(AgentEval, schema.EVAL, "EVAL")
_same_keys(AgentPaired, schema.PAIRED_JOB, "PAIRED_JOB")
_same_keys(AgentSustained, schema.SUSTAINED_JOB, "SUSTAINED_JOB")
_same_keys(AgentJob, schema.JOB, "JOB")
_same_keys(AgentResult, schema.RESULT, "RESULT")


def parse_agent_output(stdout: str) -> dict[str, Any]:
    """The agent's result: the last line of stdout that is a JSON object.

    Raises:
        ValueError: if no line is a JSON object.
    """
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if isinstance(result, dict):
                return result
    raise ValueError("the agent printed no JSON result")


def malformed(out: Mapping[str, Any]) -> str | None:
    """What makes ``out`` something other than an agent result, naming the field; None if it is one.

    Every key the schema lists is checked for its type (`schema.result_problem`), then what
    the host relies on beyond types: a failure says why, a success has its samples (a paired
    process: its A and B samples), the cold start has both its parts, a batch is at least 1.
    """
    problem = schema.result_problem(out)
    if problem is not None:
        return problem
    err, timing = out.get("error"), out.get("timing") or {}
    if err is not None or not out["ok"]:  # a failure always has a kind and a message
        for key in ("kind", "message"):
            value = (err or {}).get(key)
            if not isinstance(value, str) or not value.strip():
                return schema.bad(f"error.{key}", value, "a non-empty string")
    if out["ok"] and timing.get("samples_ns") is None and out.get("paired") is None:  # paired: its own samples
        return schema.bad("timing.samples_ns", None, schema.want("ns_list"))
    for key in ("load_ns", "first_inference_ns"):  # the cold start: both or neither
        if "load_ns" in timing and timing.get(key) is None:
            return schema.bad(f"timing.{key}", None, schema.want("ns"))
    if "batch_size" in timing and (timing["batch_size"] is None or timing["batch_size"] < 1):
        return schema.bad("timing.batch_size", timing["batch_size"], "an integer >= 1")
    return None


def malformed_error(board: Board, problem: str, out: Mapping[str, Any]) -> MeasurementError:
    """The failure of a measurement whose agent answered something that is not a result."""
    return MeasurementError(
        "malformed_result",
        f"board {board.name}'s agent answered a malformed result: {problem}: check the board's python "
        f"{board.python!r} and its agent with `edgebench boards check {board.name}`",
        output=json.dumps(out, default=str)[-2000:],
    )
