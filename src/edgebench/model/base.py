"""Shared pieces of the typed core: the JSON-object alias, schema constants, label enums, JSON helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

JSONObject = Mapping[str, Any]  # a JSON object the program stores and shows but does not reason about

RUN_SCHEMA = 1
JSON_SCHEMA = 1
"""The version of every other JSON object edgebench prints or writes (``--json``, the nightly's
``<run_id>.json``): its ``schema`` key, first; raised when a key changes meaning."""
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
    DEGRADED = "degraded"  # its outputs fall below the fidelity threshold: never worth it
    WORTH_IT_IF_ACCURATE = "worth it if its accuracy holds"  # faster, but neither accuracy nor fidelity was measured


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
