"""Garbage from a board's agent is a malformed result naming the field, never wrong advice or a crash."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgebench import agent
from edgebench.agent import schema
from edgebench.bench.agent_result import AgentEval, AgentJob, AgentResult, _same_keys, malformed
from edgebench.bench.runner import from_agent
from edgebench.model import Measurement, Settings
from edgebench.targets.board import Board

BOARD = Board(name="pi4", host="10.0.0.2", python="python3")
BASE = Measurement(board="pi4", model="m", variant="v", ok=False, batch_size=1, settings=Settings())
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


# ---- one schema for both sides (edgebench.agent.schema) ----


def _unknown_keys(doc: Mapping[str, Any], table: Mapping[str, Any], where: str = "") -> list[str]:
    """Keys of ``doc`` its schema table does not list, nested tables included."""
    out = [where + k for k in doc if k not in table]
    for key, kind in table.items():
        if isinstance(kind, dict) and isinstance(doc.get(key), Mapping):
            out += _unknown_keys(doc[key], kind, f"{where}{key}.")
    return out


def test_every_key_a_real_agent_writes_is_in_the_schema(tmp_path: Path, tiny_onnx: Path) -> None:
    from _tiny_onnx import make_tiny_onnx

    x = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    np.savez(tmp_path / "e.npz", x=x, y=np.arange(20) % 3)
    np.savez(tmp_path / "r.npz", outputs=np.zeros((20, 3), np.float32))
    fast = {"min_rounds": 3, "min_time_s": 0.0, "warmup_min_iters": 1, "warmup_min_s": 0.0}
    job = AgentJob(
        artifact=str(tiny_onnx), runtime="onnxruntime", measure=fast, dims={"batch": 1}, seed=0,
        device={"cooldown": {"seconds": 0.01}},
        eval=AgentEval(path=str(tmp_path / "e.npz"), reference=str(tmp_path / "r.npz"), limit=10, seed=1),
    ).to_json()  # fmt: skip
    assert schema.job_problem(job) is None
    other = make_tiny_onnx(tmp_path / "b.onnx", seed=1)
    results = {
        "measure": agent.run_job(job),
        "profile": agent.run_job({**job, "profile": {"iterations": 3}}),
        "paired": agent.run_job({**job, "paired": {"artifact": str(other), "first": "b"}}),
    }
    for kind, res in results.items():
        assert res["ok"], (kind, res["error"])
        assert _unknown_keys(res, schema.RESULT) == [], kind
        assert malformed(res) is None and AgentResult.from_json(res).ok, kind
    assert {"cooldown", "accuracy", "fidelity", "memory", "timing", "runtime"} <= set(results["measure"])
    assert malformed({**results["paired"], "paired": None}) is not None  # ok needs samples of some kind
    assert _unknown_keys(job, schema.JOB) == []
    failed = agent.run_job({**job, "artifact": str(tmp_path / "missing.onnx")})
    assert _unknown_keys(failed, schema.RESULT) == [] and malformed(failed) is None


def test_a_key_renamed_on_one_side_fails_when_the_host_loads() -> None:
    @dataclasses.dataclass(frozen=True)
    class Renamed:
        path: str
        seeds: int  # the schema says "seed"

    with pytest.raises(TypeError, match=r"Renamed and edgebench.agent.schema.EVAL differ"):
        _same_keys(Renamed, schema.EVAL, "EVAL")
    _same_keys(AgentEval, schema.EVAL, "EVAL")  # the real one matches


def test_the_host_job_is_the_json_the_agent_reads() -> None:
    job = AgentJob(artifact="/w/cache/x/m.onnx", sha256="ab", eval=AgentEval(path="/w/e.npz", evaluate=False))
    assert job.to_json() == {"artifact": "/w/cache/x/m.onnx", "sha256": "ab", "eval": {"path": "/w/e.npz",
                                                                                      "evaluate": False}}  # fmt: skip
    assert schema.job_problem(job.to_json()) is None
    assert schema.job_problem({"artifact": 3}) == "field artifact is 3 (expected a string)"
    assert schema.job_problem({"sha256": "ab"}) == "field artifact is missing (expected a string)"
    assert schema.job_problem({"artifact": "m", "eval": {"limit": -1}}) == (
        "field eval.limit is -1 (expected an integer >= 0)"
    )


def test_the_typed_result_reads_what_the_agent_wrote() -> None:
    res = AgentResult.from_json({**GOOD, "pid": 42, "unknown_later_key": 1})
    assert res.ok and res.pid == 42 and res.timing is not None and res.timing["samples_ns"] == [1000] * 5
    assert res.warnings == [] and res.accuracy is None
    with pytest.raises(ValueError, match=r"^field memory.rss_before_load is"):
        AgentResult.from_json({**GOOD, "memory": {"rss_before_load": -1}})
