"""Garbage from a board's agent is a malformed result naming the field, never wrong advice or a crash."""

from __future__ import annotations

from typing import Any

import pytest

from edgebench.bench.agent_result import malformed
from edgebench.bench.runner import from_agent
from edgebench.model import Measurement
from edgebench.targets.board import Board

BOARD = Board(name="pi4", host="10.0.0.2", python="python3")
BASE = Measurement(board="pi4", model="m", variant="v", ok=False, batch_size=1, settings={})
GOOD: dict[str, Any] = {
    "ok": True,
    "error": None,
    "timing": {"load_ns": 5_000_000, "first_inference_ns": 700_000, "batch_size": 1, "samples_ns": [1000] * 5},
    "memory": {"rss_before_load": 100, "rss_after_load": 350},
    "host": {"hostname": "h"},
    "runtime": {"name": "onnxruntime", "version": "1.0"},
    "warnings": [],
}


def test_the_issue_case_is_a_malformed_result_not_no_samples() -> None:
    m = from_agent(BASE, BOARD, {"ok": True, "samples_ns": "lol"}).to_json()
    assert m["ok"] is False and m["error"]["kind"] == "malformed_result"
    assert m["error"]["message"] == (
        "board pi4's agent answered a malformed result: field timing.samples_ns is missing "
        "(expected a list of integers >= 0, in ns): check the board's python 'python3' and its agent with "
        "`edgebench boards check pi4`"
    )
    assert "samples_ns" in m["error"]["output"] and not m["samples_ns"]


@pytest.mark.parametrize(
    ("change", "field", "shown"),
    [
        ({"timing": {**GOOD["timing"], "samples_ns": "lol"}}, "timing.samples_ns", '"lol"'),
        ({"timing": {**GOOD["timing"], "samples_ns": [1000, -5]}}, "timing.samples_ns", "[1000, -5]"),
        ({"timing": {**GOOD["timing"], "samples_ns": [True]}}, "timing.samples_ns", "[true]"),
        ({"timing": {**GOOD["timing"], "first_inference_ns": "x"}}, "timing.first_inference_ns", '"x"'),
        ({"timing": {**GOOD["timing"], "batch_size": 0}}, "timing.batch_size", "0"),
        ({"ok": "yes"}, "ok", '"yes"'),
        ({"ok": None}, "ok", "missing"),
        ({"timing": [1, 2]}, "timing", "[1, 2]"),
        ({"host": "pwned"}, "host", '"pwned"'),
        ({"warnings": "hot"}, "warnings", '"hot"'),
        ({"memory": {"rss_before_load": "a lot"}}, "memory.rss_before_load", '"a lot"'),
        ({"ok": False, "error": None}, "error.kind", "missing"),  # a failure always says why
        ({"ok": False, "error": {"kind": "", "message": ""}}, "error.kind", '""'),
        ({"ok": False, "error": {"kind": "exception", "message": " "}}, "error.message", '" "'),
    ],
)
def test_each_malformed_field_is_named(change: dict[str, Any], field: str, shown: str) -> None:
    out = {**GOOD, **change}
    problem = malformed(out)
    assert problem is not None and problem.startswith(f"field {field} is {shown} (expected ")
    m = from_agent(BASE, BOARD, out)
    assert not m.ok and m.error is not None and m.error.kind == "malformed_result"
    assert f"malformed result: field {field} is {shown} (expected " in m.error.message
    assert "\n" not in m.error.message and "edgebench boards check pi4" in m.error.message


def test_a_good_result_and_a_reported_failure_pass() -> None:
    assert malformed(GOOD) is None
    assert from_agent(BASE, BOARD, GOOD).ok
    failed = {"ok": False, "error": {"kind": "bad_job", "message": "job could not be read"}}
    assert malformed(failed) is None
    m = from_agent(BASE, BOARD, failed)
    assert m.error is not None and (m.error.kind, m.error.message) == ("bad_job", "job could not be read")
