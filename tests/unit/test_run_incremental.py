"""A run is written as it goes: each variant is handed over as soon as it finishes, stored at once
(``complete: false``), each exactly once; a stopped session stores what finished and why; a gate
never passes an incomplete run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edgebench.bench import repeats
from edgebench.bench.repeats import Planned, measure_interleaved
from edgebench.bench.session import EdgeSession, RunInterrupted
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant
from edgebench.model import Budget, Budgets, CheckVerdict, Gate, Manifest, Measurement
from edgebench.results import gate, store
from edgebench.targets.board import Board, local_board
from edgebench.targets.driver import killed_agents_warning, lock_owner


def _variant(name: str) -> Variant:
    manifest = Manifest(model="m", variant=name, format="onnx", artifact="model.onnx", sha256=name * 8, bytes=100)
    return Variant(Path("/nowhere") / name, manifest)


def _agent_out(n: int) -> dict[str, Any]:
    return {"ok": True, "pid": n, "timing": {"batch_size": 1, "samples_ns": [1000 + n] * 10}, "memory": {}}


@pytest.fixture(autouse=True)
def _run_id_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A session records its run id in the environment (for board locks): undone after each test."""
    monkeypatch.setenv("EDGEBENCH_RUN_ID", "")


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Deploy and the agent replaced: records the variant of every agent process, in order."""
    calls: list[str] = []

    def run_agent(driver: Any, command: list[str], timeout: float) -> dict[str, Any]:
        calls.append(command[1])
        return _agent_out(len(calls))

    monkeypatch.setattr(repeats, "deploy_jobs", lambda d, v, s, **kw: (["first", v.name], ["later", v.name]))
    monkeypatch.setattr(repeats, "run_agent", run_agent)
    return calls


def _driver() -> Any:
    return SimpleNamespace(board=Board(name="b", runtimes=("onnxruntime",)))


def test_each_variant_is_handed_over_when_its_last_process_ends(agent: list[str]) -> None:
    done: list[tuple[str, int]] = []  # (variant, agent processes run so far)
    ms = measure_interleaved(
        _driver(), [Planned(_variant("a")), Planned(_variant("b"))], RunSettings(repeats=2),
        on_done=lambda i, m: done.append((m.variant, len(agent))),
    )  # fmt: skip
    assert agent == ["a", "b", "a", "b"]
    assert done == [("a", 3), ("b", 4)]  # a is stored before b's last process runs
    assert [m.variant for m in ms] == ["a", "b"] and all(m.ok for m in ms)


def test_the_guard_runs_before_every_process_and_can_stop_the_board(agent: list[str]) -> None:
    guarded: list[int] = []

    def guard() -> list[str]:
        guarded.append(len(agent))
        if len(agent) == 2:
            raise RunInterrupted("interrupted by SIGINT")
        return ["board b: killed 1 agent process(es) left running by an earlier run"] if not agent else []

    done: list[Measurement] = []
    with pytest.raises(RunInterrupted):
        measure_interleaved(
            _driver(), [Planned(_variant("a")), Planned(_variant("b"))], RunSettings(repeats=2),
            on_done=lambda i, m: done.append(m), guard=guard,
        )  # fmt: skip
    assert guarded == [0, 1, 2] and agent == ["a", "b"]  # no agent started after the stop
    assert done == []  # nothing finished: nothing handed over


def test_a_killed_orphan_warning_lands_in_the_measurement(agent: list[str]) -> None:
    warning = killed_agents_warning("b", ["4242 python3 /w/cache/x/agent.py job.json"])
    (m,) = measure_interleaved(
        _driver(), [Planned(_variant("a"))], RunSettings(repeats=1), guard=lambda: [warning] if not agent else []
    )
    assert m.warnings == (warning,) and "pid 4242" in warning and "earlier run" in warning


def _session(tmp_path: Path) -> EdgeSession:
    return EdgeSession(
        [local_board()], [_variant("a"), _variant("b"), _variant("c")], RunSettings(), results=tmp_path, run_id="r1"
    )


def _ok(variant: str) -> Measurement:
    return Measurement(board="local", model="m", variant=variant, ok=True, samples_ns=(1000,) * 10, batch_size=1)


def test_every_record_is_on_disk_incomplete_and_once(tmp_path: Path) -> None:
    s = _session(tmp_path)
    path = store.run_path(tmp_path, "r1")
    s.record(_ok("a"), "local-m-a")
    doc = json.loads(path.read_text())
    assert doc["edgebench"]["complete"] is False and len(doc["benchmarks"]) == 1
    s.record(_ok("a"), "local-m-a")  # the test reporting it again does not add it twice
    s.record(_ok("b"), "local-m-b")
    run = store.read_run(path)
    assert [m.variant for m in run.measurements] == ["a", "b"] and not run.complete
    db = sqlite3.connect(tmp_path / "index.sqlite")
    assert db.execute("SELECT complete FROM runs WHERE run_id='r1'").fetchone() == (0,)  # the index knows
    assert db.execute("SELECT count(*) FROM rows WHERE run_id='r1'").fetchone() == (2,)


def test_a_stopped_session_stores_what_finished_and_why(tmp_path: Path) -> None:
    s = _session(tmp_path)
    s.record(_ok("a"), "local-m-a")
    s.stop("interrupted by SIGTERM")
    s.stop("interrupted by SIGINT")  # the first reason stays
    final = s.final_run()
    assert not final.complete and final.interrupted == "interrupted by SIGTERM" and final.finished
    assert [m.variant for m in final.measurements] == ["a"]
    with pytest.raises(RunInterrupted):  # a case that had not finished is not measured after the stop
        s._prefetched = {}
        s.measure(s.cases[1])


def test_a_finished_session_is_complete(tmp_path: Path) -> None:
    s = _session(tmp_path)
    for v in "abc":
        s.record(_ok(v), f"local-m-{v}")
    assert s.final_run().complete and s.final_run().interrupted is None


def test_the_lock_names_its_holder_and_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEBENCH_RUN_ID", "20261125T000000Z-abc123")
    assert lock_owner().endswith(" run 20261125T000000Z-abc123") and " pid " in lock_owner()


def test_a_gate_never_passes_an_incomplete_run(tmp_path: Path) -> None:
    s = _session(tmp_path)
    s.record(_ok("a"), "local-m-a")
    s.stop("interrupted by SIGINT")
    budgets = Budgets(budgets=(Budget.from_json({"model": "m", "variant": "a", "max_size_mb": 100}),))
    checks = gate.evaluate(s.final_run(), budgets)
    incomplete = [c for c in checks if c.check == "run complete"]
    assert len(incomplete) == 1 and incomplete[0].verdict is CheckVerdict.UNDECIDED
    assert "INCOMPLETE (interrupted by SIGINT)" in incomplete[0].note
    assert not Gate(run_id="r1", checks=checks).passed
