"""Repeats: interleaving order, per-process floors and pooling, over a fake agent layer (no processes)."""

from __future__ import annotations

import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edgebench.bench import repeats
from edgebench.bench.repeats import Planned, interleave, measure_interleaved
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant
from edgebench.errors import ConfigError, RemoteError
from edgebench.model import Manifest
from edgebench.targets.board import Board, local_board
from edgebench.workflows.run import pytest_argv


def _variant(name: str, fmt: str = "onnx") -> Variant:
    manifest = Manifest(model="m", variant=name, format=fmt, artifact=f"model.{fmt}", sha256=name * 8, bytes=100)
    return Variant(Path("/nowhere") / name, manifest)


def _measure(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """`measure_interleaved`, its measurements as the JSON a run stores."""
    return [m.to_json() for m in measure_interleaved(*args, **kwargs)]


def _out(pid: int, samples: list[int], *, peak: int, load_ns: int, evaluated: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ok": True,
        "error": None,
        "pid": pid,
        "timing": {"load_ns": load_ns, "first_inference_ns": 2 * load_ns, "batch_size": 1, "samples_ns": samples},
        "memory": {"rss_before_load": 100, "rss_after_load": 200, "peak_rss": peak},
        "host": {"hostname": "h"},
        "runtime": {"name": "onnxruntime", "version": "1"},
        "warnings": ["hot"] if pid % 2 else [],
    }
    if evaluated:
        out["accuracy"] = {"top1": 0.9, "n": 10}
    return out


class FakeAgent:
    """Stands in for deploy + the agent: records the run order and answers from a latency table (ns)."""

    def __init__(self, latency: dict[str, list[int]], fail: tuple[str, int] | None = None) -> None:
        self.latency, self.fail = latency, fail
        self.calls: list[tuple[str, bool]] = []  # (variant, evaluated)
        self.jobs: list[dict[str, Any]] = []

    def deploy_jobs(self, driver: Any, variant: Variant, settings: RunSettings, **kw: Any) -> tuple[Any, Any]:
        self.jobs.append({"variant": variant.name, "settings": settings, **kw})
        return ["first", variant.name], (["later", variant.name] if kw["later"] else None)

    def run_agent(self, driver: Any, command: list[str], timeout: float) -> dict[str, Any]:
        name, evaluated = command[1], command[0] == "first"
        k = sum(1 for n, _ in self.calls if n == name)
        self.calls.append((name, evaluated))
        if self.fail == (name, k):
            raise RemoteError("b", " ".join(command), "Killed", "the agent exited 137 without a result: Killed")
        samples = [self.latency[name][k]] * (10 + k)
        return _out(len(self.calls), samples, peak=1000 * (k + 1), load_ns=(k + 1) * 1_000_000, evaluated=evaluated)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAgent:
    agent = FakeAgent({"a": [1000, 1000, 1000], "b": [2000, 2000, 2000], "c": [1000, 3000, 1000]})
    monkeypatch.setattr(repeats, "deploy_jobs", agent.deploy_jobs)
    monkeypatch.setattr(repeats, "run_agent", agent.run_agent)
    return agent


def _driver() -> Any:
    return SimpleNamespace(board=Board(name="b", runtimes=("onnxruntime",)))


def test_interleave_is_round_robin_over_variants() -> None:
    assert interleave(3, 2) == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert interleave(2, 1) == [(0, 0), (1, 0)]
    assert interleave(1, 3) == [(0, 0), (0, 1), (0, 2)]


def test_floors_are_split_between_processes_and_repeats_is_validated() -> None:
    per = RunSettings(min_rounds=50, min_time_s=2.0, repeats=3, warmup_min_s=0.2, max_time_s=30).per_process()
    assert (per.min_rounds, per.warmup_min_s, per.max_time_s) == (17, 0.2, 30.0)
    assert per.min_time_s == pytest.approx(2 / 3)
    assert RunSettings().repeats == 8 and RunSettings(repeats=1).per_process().min_rounds == 50
    with pytest.raises(ConfigError, match="repeats must be >= 1"):
        RunSettings(repeats=0)
    argv = pytest_argv(
        variants=Path("v"), boards=["local"], results=Path("r"), run_id="x", settings=RunSettings(repeats=5)
    )
    assert argv[argv.index("--edge-repeats") + 1] == "5"


def test_local_board_runs_on_one_thread() -> None:
    assert local_board().threads == 1
    assert "one thread" in (local_board.__doc__ or "")


def test_processes_run_interleaved_and_samples_pool(fake: FakeAgent) -> None:
    settings = RunSettings(repeats=3, min_rounds=30, min_time_s=0.3)
    seen: list[tuple[int, int, bool]] = []
    planned = [Planned(_variant(n)) for n in ("a", "b", "c")]
    ms = _measure(_driver(), planned, settings, on_process=lambda i, r, ok: seen.append((i, r, ok)))
    assert [n for n, _ in fake.calls] == ["a", "b", "c"] * 3
    assert [ev for n, ev in fake.calls if n == "a"] == [True, False, False]  # only the first process evaluates
    assert [(i, r) for i, r, _ in seen] == interleave(3, 3) and all(ok for *_, ok in seen)
    assert all(j["settings"].min_rounds == 10 and j["settings"].min_time_s == pytest.approx(0.1) for j in fake.jobs)
    a, b, c = ms
    assert [p["order"] for p in a["processes"]] == [0, 3, 6] and [p["order"] for p in c["processes"]] == [2, 5, 8]
    for m in ms:
        assert m["ok"] and len(m["processes"]) == 3
        assert len(m["samples_ns"]) == sum(p["rounds"] for p in m["processes"]) == 10 + 11 + 12
        assert m["memory"]["peak_rss"] == max(p["peak_rss"] for p in m["processes"]) == 3000
        assert m["cold_start"]["load_ms"] == statistics.median(p["load_ms"] for p in m["processes"]) == 2.0
        assert m["accuracy"]["top1"] == 0.9 and "process 1 of 3" in m["evaluation"]
        assert m["settings"]["min_rounds"] == 30 and m["settings"]["repeats"] == 3
        assert m["settings"]["per_process"] == {"min_rounds": 10, "min_time_s": pytest.approx(0.1)}
        assert m["warnings"].count("hot") == 1  # process warnings merged once
        assert m["agent_pid"] == m["processes"][0]["pid"]
    assert [p["p50_ms"] for p in b["processes"]] == [0.002] * 3
    assert a["process_spread"] == 0 and not any("disagree" in w for w in a["warnings"])
    assert c["process_spread"] == pytest.approx(2.0)
    [spread] = [w for w in c["warnings"] if "disagree" in w]
    assert "1.0-3.0 us" in spread and "200% apart > 10%" in spread and "paired comparison" in spread


def test_one_repeat_is_one_process_per_variant(fake: FakeAgent) -> None:
    ms = _measure(_driver(), [Planned(_variant("a")), Planned(_variant("b"))], RunSettings(repeats=1))
    assert fake.calls == [("a", True), ("b", True)]
    assert [len(m["processes"]) for m in ms] == [1, 1] and ms[0]["process_spread"] == 0


def test_a_failed_process_fails_its_variant_and_the_others_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    agent = FakeAgent({"a": [1000] * 3, "b": [2000] * 3}, fail=("a", 1))
    monkeypatch.setattr(repeats, "deploy_jobs", agent.deploy_jobs)
    monkeypatch.setattr(repeats, "run_agent", agent.run_agent)
    seen: list[bool] = []
    a, b = _measure(
        _driver(), [Planned(_variant("a")), Planned(_variant("b"))], RunSettings(repeats=3),
        on_process=lambda i, r, ok: seen.append(ok),
    )  # fmt: skip
    assert [n for n, _ in agent.calls] == ["a", "b", "a", "b", "b"]  # a's third process is skipped
    assert len(seen) == 6 and seen.count(False) == 2
    assert a["ok"] is False and a["samples_ns"] == [] and a["error"]["process"] == 2
    assert "exited 137" in a["error"]["message"] and len(a["processes"]) == 1
    assert b["ok"] and len(b["processes"]) == 3


def test_a_variant_the_board_cannot_run_fails_without_processes(fake: FakeAgent) -> None:
    ms = _measure(_driver(), [Planned(_variant("t", fmt="tflite")), Planned(_variant("a"))], RunSettings(repeats=2))
    assert ms[0]["ok"] is False and ms[0]["error"]["kind"] == "runtime_missing" and ms[0]["processes"] == []
    assert [n for n, _ in fake.calls] == ["a", "a"] and ms[1]["ok"]


def test_the_report_names_variants_whose_processes_disagree(fake: FakeAgent) -> None:
    from edgebench.results import schema
    from edgebench.results.analysis import analyze_run

    run = schema.new_run("test")
    for m in measure_interleaved(_driver(), [Planned(_variant(n)) for n in ("a", "c")], RunSettings(repeats=3)):
        run = schema.add_measurement(run, m)
    [w] = [w for w in analyze_run(schema.finish(run)).warnings if "disagree" in w]
    assert "b/m/c (200%)" in w and "b/m/a" not in w and "run --baseline" in w
