"""The agent's result at the host's door: found in the agent's output, then checked before it is read.

A board whose python or agent misbehaves (a replaced agent, a wrapper that prints
something else) must be said as such, never crash the host nor pass for a wrong number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from edgebench.model import MeasurementError
from edgebench.targets.board import Board


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


_OBJECTS = ("error", "timing", "memory", "host", "runtime", "device_before", "device_after", "cooldown", "accuracy",
            "fidelity")  # fmt: skip
_LISTS = ("warnings", "inputs")


def malformed(out: Mapping[str, Any]) -> str | None:
    """What makes ``out`` something other than an agent result, naming the field; None if it is one.

    Only what the host reads is checked, so that a board's garbage is said as such rather
    than crashing the host or passing for a wrong number or wrong advice.
    """
    if not isinstance(out.get("ok"), bool):
        return _bad("ok", out.get("ok"), "true or false")
    for key in _OBJECTS:
        if out.get(key) is not None and not isinstance(out[key], Mapping):
            return _bad(key, out[key], "an object")
    for key in _LISTS:
        if out.get(key) is not None and not isinstance(out[key], list):
            return _bad(key, out[key], "a list")
    err, timing, memory = out.get("error"), out.get("timing") or {}, out.get("memory") or {}
    if err is not None or not out["ok"]:  # a failure always has a kind and a message
        for key in ("kind", "message"):
            value = (err or {}).get(key)
            if not isinstance(value, str) or not value.strip():
                return _bad(f"error.{key}", value, "a non-empty string")
    samples = timing.get("samples_ns")
    if (out["ok"] or samples is not None) and not (isinstance(samples, list) and all(map(_count, samples))):
        return _bad("timing.samples_ns", samples, "a list of integers >= 0, in ns")
    for key in ("load_ns", "first_inference_ns"):  # the cold start: both or neither
        if "load_ns" in timing and not _count(timing.get(key)):
            return _bad(f"timing.{key}", timing.get(key), "an integer >= 0, in ns")
    if "batch_size" in timing and not (_count(timing["batch_size"]) and timing["batch_size"] >= 1):
        return _bad("timing.batch_size", timing["batch_size"], "an integer >= 1")
    for key in ("rss_before_load", "rss_after_load"):
        if memory.get(key) is not None and not _count(memory[key]):
            return _bad(f"memory.{key}", memory[key], "an integer >= 0, in bytes")
    return None


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _bad(field: str, value: Any, want: str) -> str:
    shown = "missing" if value is None else json.dumps(value, default=str)[:40]
    return f"field {field} is {shown} (expected {want})"


def malformed_error(board: Board, problem: str, out: Mapping[str, Any]) -> MeasurementError:
    """The failure of a measurement whose agent answered something that is not a result."""
    return MeasurementError(
        "malformed_result",
        f"board {board.name}'s agent answered a malformed result: {problem}: check the board's python "
        f"{board.python!r} and its agent with `edgebench boards check {board.name}`",
        output=json.dumps(out, default=str)[-2000:],
    )
