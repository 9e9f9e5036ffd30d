"""`edgebench profile` with real runtimes and real model files, on the local board and a farm board."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _bench_models import onnx_model, tflite_models, variant
from _profile_models import demo_variants, dominant_onnx

from edgebench.bench.profile import TFLITE_NO_TIMING, Profile, diff_profiles, profile_variant
from edgebench.bench.settings import RunSettings
from edgebench.results.store import list_runs, read_run
from edgebench.targets.board import local_board
from edgebench.targets.driver import LocalDriver
from edgebench.targets.farm import Farm
from edgebench.testing.profiles import why_slower

pytestmark = pytest.mark.slow
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.3", "--min-rounds", "30", "--warmup-iters", "5", "--iterations", "40"]


def dense_small_and_big(root: Path, tmp_path: Path) -> None:
    """``dense/small`` (x[1, 64], its six Adds outweigh a tiny MatMul) and ``dense/big``, where the MatMul dominates
    whatever the machine's load.

    A busy machine preempts the profiled process at random moments, and a preemption adds a few ms to
    whichever node was running. ``big``'s MatMul (64 x 16384 by 16384 x 128, ~1 ms here) takes ~95 % of
    the profiled time and the Adds and Relu ~2 %: a wait lands in them rarely and adds ~0.1 ms per profiled
    inference, against a lead of ~1 ms per inference for the MatMul. (At x[1, 1024] @ 1024 x 1024, ~0.05 ms
    against ~0.014 ms of Adds and Relu, one such wait under a load of 4-5 let Add or Relu come first.)
    """
    variant(root, "dense", "small", dominant_onnx(tmp_path / "s.onnx", 64))
    variant(root, "dense", "big", dominant_onnx(tmp_path / "b.onnx", 128, batch=64, k=16384))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGEBENCH, "profile", *args], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "variants"
    demo_variants(root)
    return root


def _check_trace(doc: dict[str, Any], labels: set[str]) -> None:
    """Chrome trace-event format: traceEvents of complete events, one named process per variant."""
    assert isinstance(doc["traceEvents"], list)
    names = {e["args"]["name"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"}
    assert names == labels
    complete = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert complete
    for e in complete:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= set(e)
        assert isinstance(e["ts"], float) and isinstance(e["dur"], float) and e["dur"] >= 0
    for pid in {e["pid"] for e in complete}:  # every op of an inference lies inside its model_run
        run = next(e for e in complete if e["pid"] == pid and e["name"] == "model_run")
        for e in complete:
            if e["pid"] == pid and e is not run:
                assert run["ts"] <= e["ts"] <= run["ts"] + run["dur"] + 1


def test_demo_variants_coverage_overhead_and_diff(demo_root: Path, tmp_path: Path) -> None:
    res = tmp_path / "results"
    out = _cli(
        "--variants", str(demo_root), "--results", str(res), *FAST, "--format", "json",
        "--trace", str(tmp_path / "trace.json"), "--diff", "fp32", "int8-dynamic", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    assert next(iter(doc)) == "schema" and doc["schema"] == 1  # as every --json output
    profiles = {p["variant"]: p for p in doc["profiles"]}
    for name, p in profiles.items():
        assert p["ok"] and p["available"], p
        node_sum = sum(n["mean_ms"] for n in p["nodes"])
        # per-node sums against the profiled latency: coverage is that ratio, and it is in a sane range
        assert p["coverage"] == pytest.approx(node_sum / (p["node_mean_ms"] / p["coverage"]), rel=1e-6)
        assert 0.2 < p["coverage"] <= 1.2, (name, p["coverage"])
        assert 0.2 < p["session_coverage"] <= 1.01  # node time inside ORT's own model_run
        assert p["overhead_ratio"] == pytest.approx(p["profiled_p50_ms"] / p["unprofiled_p50_ms"])
        assert p["in_use"] == ["CPUExecutionProvider"]
        assert p["fallback"].startswith("0 of ")
        assert {"load", "warmup", "steady", "profile"} <= set(p["memory_by_phase"])
        if p["coverage"] < 0.8:
            assert any("coverage" in w for w in p["warnings"])
    types = {t["op_type"] for t in profiles["int8-dynamic"]["op_types"]}
    assert {"ConvInteger", "DynamicQuantizeLinear"} & types and "Conv" not in types
    assert "Conv" in {t["op_type"] for t in profiles["fp32"]["op_types"]}
    verdict = doc["diff"]["verdict"]
    assert verdict.startswith("int8-dynamic is ") and "slower than fp32" in verdict
    assert set(doc["diff"]["cause"]) & {"ConvInteger", "DynamicQuantizeLinear", "MatMulInteger", "Mul"}
    _check_trace(json.loads((tmp_path / "trace.json").read_text()), {p["board"] + "/digits_cnn/" + p["variant"]
                                                                     for p in profiles.values()})  # fmt: skip
    stored_run = read_run(list_runs(res)[-1])
    run = stored_run.to_json()
    assert run["edgebench"]["command"] == "profile" and run["edgebench"]["complete"]
    stored = [b["extra_info"] for b in run["benchmarks"]]
    assert all("profile" in m and m["runtime"]["in_use"] for m in stored)
    line = why_slower(stored_run)
    assert line is not None and line.startswith("int8-dynamic is") and "fp32" in line
    # the stored run renders again without profiling (markdown)
    md = _cli("--results", str(res), "--format", "markdown", cwd=tmp_path)
    assert md.returncode == 0 and "| op type |" in md.stdout and "ConvInteger" in md.stdout


def test_diff_names_the_dominant_op(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    dense_small_and_big(root, tmp_path)
    board = dataclasses.replace(local_board(), workdir=str(tmp_path / "board"))
    settings = RunSettings.from_mapping({"min_time_s": 0.3, "min_rounds": 20, "warmup_min_iters": 3})
    from edgebench.compress.variant import list_variants

    vs = {v.name: v for v in list_variants(root)}
    driver = LocalDriver(board)
    driver.activate()
    a = Profile.from_measurement(profile_variant(driver, vs["small"], settings, iterations=30))
    b = Profile.from_measurement(profile_variant(driver, vs["big"], settings, iterations=30))
    d = diff_profiles(a, b)
    assert d.slow.variant == "big" and d.ratio > 2
    assert d.cause[0] == "MatMul"
    assert "MatMul" in d.cause_line() and d.verdict().startswith("big is ")
    assert b.op_types[0].op_type == "MatMul" and (b.op_types[0].share or 0) > 0.4


def test_tflite_xnnpack_on_and_off_changes_the_delegate_column(tmp_path: Path) -> None:
    fp32, _ = tflite_models(tmp_path)
    v = variant(tmp_path / "variants", "tiny", "fp32", fp32, fmt="tflite")
    settings = RunSettings.from_mapping({"min_time_s": 0.1, "min_rounds": 10})
    seen = {}
    for xnn in (True, False):
        board = dataclasses.replace(
            local_board(), workdir=str(tmp_path / "board"), runtime_options={"tflite": {"xnnpack": xnn}}
        )
        driver = LocalDriver(board)
        driver.activate()
        m = profile_variant(driver, v, settings, iterations=10)
        p = Profile.from_measurement(m)
        assert p.ok and not p.available and TFLITE_NO_TIMING in p.warnings
        seen[xnn] = ({n.provider for n in p.nodes}, p.in_use, (m.runtime or {}).get("in_use"))
    assert seen[True][0] == {"xnnpack"} and seen[True][1] == ("xnnpack",)
    assert seen[False][0] == {"builtin"} and seen[False][1] == ("builtin",)


def test_a_variant_that_fails_to_load_is_recorded_and_the_others_profiled(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "tiny", "good", onnx_model(tmp_path / "g.onnx"))
    variant(root, "tiny", "broken", onnx_model(tmp_path / "b.onnx", kind="badop"))
    res = tmp_path / "results"
    out = _cli("--variants", str(root), "--results", str(res), *FAST, "--format", "json", cwd=tmp_path)
    assert out.returncode == 1
    err = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "tiny/broken" in err[0] and "could not load" in err[0]
    doc = json.loads(out.stdout)
    by = {p["variant"]: p for p in doc["profiles"]}
    assert by["good"]["ok"] and by["good"]["available"] and not by["broken"]["ok"]
    run = read_run(list_runs(res)[-1]).to_json()
    assert run["edgebench"]["complete"]
    assert [b["extra_info"]["variant"] for b in run["benchmarks"]] == ["good"]
    assert [f["variant"] for f in run["edgebench"]["failures"]] == ["broken"]


def test_diff_of_two_models_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "alpha", "fp32", onnx_model(tmp_path / "a.onnx"))
    variant(root, "beta", "fp32", onnx_model(tmp_path / "b.onnx", seed=3))
    res = tmp_path / "results"
    assert _cli("--variants", str(root), "--results", str(res), *FAST, cwd=tmp_path).returncode == 0
    before = list_runs(res)
    out = _cli("--results", str(res), "--diff", "alpha/fp32", "beta/fp32", cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "different models (alpha, beta)" in lines[0]
    assert "alpha/fp32" in lines[0] and "beta/fp32" in lines[0]
    assert list_runs(res) == before  # nothing written


@pytest.mark.ssh
def test_profile_on_a_farm_board_and_the_local_one(farm: Farm, tmp_path: Path) -> None:
    root = tmp_path / "variants"
    dense_small_and_big(root, tmp_path)
    name = farm.boards[0].name
    out = _cli(
        "--boards-file", str(farm.boards_file), "--boards", f"{name},local", "--variants", str(root),
        "--results", str(tmp_path / "results"), *FAST, "--format", "json", "--diff", f"{name}/big", "local/big",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    assert {(p["board"], p["variant"]) for p in doc["profiles"]} == {(b, v) for b in (name, "local") for v in
                                                                     ("small", "big")}  # fmt: skip
    for p in doc["profiles"]:
        assert p["ok"] and p["available"] and p["nodes"], p
        assert p["op_types"][0]["op_type"] == "MatMul" or p["variant"] == "small"
    assert doc["diff"]["a"] == f"{name}/dense/big" and doc["diff"]["b"] == "local/dense/big"
    assert doc["diff"]["verdict"].split(" is ")[0] in (name, "local")  # one variant on two boards: boards named
