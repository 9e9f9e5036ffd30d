"""The typed core model: stored run files and manifests go through objects and come back the same."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from unittest.mock import ANY

import pytest

from edgebench.model import (
    AGENT_NULLS,
    Accuracy,
    BoardFidelity,
    Budget,
    Budgets,
    Change,
    Manifest,
    Measurement,
    MeasurementError,
    Memory,
    ProcessEntry,
    ProfileBlock,
    Run,
    Settings,
)
from edgebench.results.schema import add_measurement, finish, new_run

RUNS = sorted((Path(__file__).parent / "data" / "results_runs").glob("*.json"))


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.name)
def test_stored_run_round_trips_exactly(path: Path) -> None:
    doc = json.loads(path.read_text())
    run = Run.from_json(doc)
    assert run.measurements and all(m.samples_ns for m in run.measurements if m.ok)
    assert run.to_json() == doc
    # the samples come back in ns, exactly as the board timed them
    first = run.benchmarks[0]
    assert [s / 1e9 for s in first.measurement.samples_ns] == first.stats["data"]


@pytest.mark.parametrize("path", RUNS, ids=lambda p: p.name)
def test_a_run_built_measurement_by_measurement_writes_the_stored_format(path: Path) -> None:
    doc = json.loads(path.read_text())
    run = new_run("test", boards=[("pi", "10.0.0.9")], settings={"repeats": 3})
    assert run.to_json()["edgebench"]["boards"] == {"pi": {"name": "pi", "address": "10.0.0.9"}}
    failed = Measurement("pi", "m", "v", ok=False, samples_ns=(5,), error=MeasurementError("JobTimeout", "slow"))
    for m in (*Run.from_json(doc).measurements, failed):
        run = add_measurement(run, dataclasses.replace(m, fingerprint={"name": m.board, "cpu_count": 4}))
    out = finish(run, complete=False, interrupted="KeyboardInterrupt: ").to_json()
    # benchmarks (summary and pytest-benchmark stats recomputed from the samples) are the stored ones
    stored = [{**b, "extra_info": {**b["extra_info"], "fingerprint": ANY}} for b in doc["benchmarks"]]
    assert out["benchmarks"] == stored
    eb = out["edgebench"]
    assert eb["boards"]["local"] == {"name": "local", "cpu_count": 4} and eb["boards"]["pi"]["address"] == "10.0.0.9"
    assert [f["variant"] for f in eb["failures"]] == ["v"] and "samples_ns" not in eb["failures"][0]
    assert (eb["complete"], eb["interrupted"], eb["settings"]) == (False, "KeyboardInterrupt: ", {"repeats": 3})
    assert eb["finished"] >= eb["started"] and Run.from_json(out).to_json() == out


def test_measurement_round_trip_keeps_nulls_extras_and_order_of_meaning() -> None:
    d = {
        "board": "pi", "model": "m", "variant": "int8", "format": "onnx", "sha256": "ab", "bytes": None,
        "ok": False, "error": {"kind": "JobTimeout", "message": "too slow", "command": "python agent.py",
                               "output": "", "process": 2},
        "samples_ns": [], "batch_size": 1, "settings": {"min_rounds": 5}, "warnings": ["w"],
        "timing": {}, "memory": {"peak_rss": 1234}, "accuracy": None, "fidelity": None, "runtime": None,
        "device": {"before": None}, "host": None, "fingerprint": {"name": "pi"}, "agent_pid": None,
        "processes": [{"p50_ms": 1.0, "rounds": 3, "peak_rss": None, "load_ms": None,
                       "first_inference_ms": None, "pid": 7, "started": 1.5, "order": 0}],
        "future_key": {"x": 1},
    }  # fmt: skip
    m = Measurement.from_json(d)
    assert isinstance(m.error, MeasurementError) and m.error.process == 2
    assert m.processes == (ProcessEntry(1.0, 3, None, None, None, 7, 1.5, 0),)
    assert m.to_json() == d
    assert "samples_ns" not in m.to_json(samples=False)


def test_an_older_measurement_reads_typed_and_writes_back_the_same_json() -> None:
    """Older runs: a numeric ``fidelity``, blocks with their keys in another order, nulls and keys no field holds."""
    d = {
        "board": "pi", "model": "m", "variant": "int8", "ok": True, "samples_ns": [1, 2], "batch_size": 1,
        "settings": {"min_time_s": 2.0, "warmup_min_iters": 10, "min_cosine": None, "old_knob": 3},
        "warnings": [], "memory": {"peak_rss": 2048, "rss_start": None, "vm_peak": 9},
        "accuracy": {"n": 10, "top1": 0.9, "quick": None}, "fidelity": 0.97,
        "device": {"after": {"temp_c": 50.0, "governor": "ondemand", "zone": "cpu"}, "before": None},
        "profile": {"iterations": 5, "available": True, "nodes": [], "extra_key": [1]},
    }  # fmt: skip
    m = Measurement.from_json(d)
    assert isinstance(m.settings, Settings) and m.min_time_s == 2.0 and m.settings.extra == {"old_knob": 3}
    assert isinstance(m.memory, Memory) and m.peak_rss == 2048 and m.memory.extra == {"vm_peak": 9}
    assert m.fidelity == 0.97 and m.fidelity_value == 0.97 and m.top1 == 0.9
    assert m.device is not None and m.device.after is not None and m.device.after.governor == "ondemand"
    assert isinstance(m.profile, ProfileBlock) and m.profile.iterations == 5
    assert json.dumps(m.to_json()) == json.dumps(d)  # same keys, same order, same nulls
    assert Measurement.from_json(m.to_json()) == m


def test_accessors_are_properties() -> None:
    m = Measurement(
        board="b", model="m", variant="v", ok=True,
        accuracy=Accuracy(top1=0.97), memory=Memory.from_json({"peak_rss": 2048.0}),
        fidelity=BoardFidelity(cosine=0.5, top1_agreement=0.99),
    )  # fmt: skip
    assert (m.top1, m.peak_rss, m.fidelity_value, m.key) == (0.97, 2048, 0.99, ("b", "m", "v"))
    assert Measurement("b", "m", "v", ok=False, fidelity=0.8).fidelity_value == 0.8
    bare = Measurement("b", "m", "v", ok=False, memory=Memory.from_json({"peak_rss": True}), accuracy=Accuracy())
    assert (bare.top1, bare.peak_rss, bare.fidelity_value, bare.error_message) == (None, None, None, None)


def test_a_fresh_agent_measurement_writes_its_null_blocks() -> None:
    m = Measurement("b", "m", "v", ok=True, samples_ns=(1, 2), timing={}, null_keys=AGENT_NULLS)
    out = m.to_json()
    assert out["accuracy"] is None and out["fidelity"] is None and out["error"] is None
    assert "cold_start" not in out and "processes" not in out


def test_manifest_round_trip() -> None:
    d = {
        "schema": 1, "model": "digits", "variant": "int8", "format": "onnx", "artifact": "model.onnx",
        "sha256": "ff", "bytes": 10, "parent": "fp32", "passes": [{"pass": "quantize", "params": {"mode": "static"}}],
        "created": "2026-01-01T00:00:00+00:00",
        "inputs": [{"name": "x", "shape": ["N", 1, 8, 8], "dtype": "float32"}],
        "outputs": [{"name": "y", "shape": ["N", 10], "dtype": "float32"}], "params": 100,
        "flops": 2000, "accuracy": {"top1": 0.95},
    }  # fmt: skip
    mf = Manifest.from_json(d)
    assert mf.passes[0].name == "quantize" and mf.inputs is not None and mf.inputs[0].shape == ("N", 1, 8, 8)
    assert (mf.flops, mf.accuracy) == (2000, 0.95)
    assert mf.to_json() == d


def test_budgets_and_enums() -> None:
    d = {"baseline": "latest~1", "budget": [{"model": "m", "board": "*", "variant": "int8-*", "max_p90_ms": 20.0}]}
    b = Budgets.from_json(d)
    assert b.budgets[0].limits == {"max_p90_ms": 20.0}
    assert b.to_json() == d
    assert Budget().limits == {}
    # str-valued: the JSON and the text stay the same strings
    assert Change("no change") is Change.NO_CHANGE and f"{Change.FASTER}" == "faster"
    assert json.dumps({"label": Change.SLOWER}) == '{"label": "slower"}'
