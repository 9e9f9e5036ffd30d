"""End to end: `edgebench demo` trains, exports, measures in an agent process, stores the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent import AGENT_VERSION
from edgebench.bench.runner import AGENT, parse_agent_output
from edgebench.results.store import list_runs

pytestmark = pytest.mark.slow


def _agent(job: dict[str, object], tmp_path: Path) -> dict[str, object]:
    jf = tmp_path / "job.json"
    jf.write_text(json.dumps(job))
    out = subprocess.run([sys.executable, str(AGENT), str(jf)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return parse_agent_output(out.stdout)


def test_agent_protocol_job_in_result_out(tmp_path: Path, tiny_onnx: Path) -> None:
    x = np.random.default_rng(1).standard_normal((20, 4)).astype(np.float32)
    y = np.zeros(20, dtype=np.int64)
    np.savez(tmp_path / "eval.npz", x=x, y=y)
    res = _agent(
        {
            "artifact": str(tiny_onnx),
            "runtime": "onnxruntime",
            "measure": {"min_rounds": 30, "min_time_s": 0.05, "warmup_min_iters": 3, "warmup_min_s": 0.0},
            "eval": {"path": str(tmp_path / "eval.npz")},
        },
        tmp_path,
    )
    assert res["ok"] is True and res["error"] is None
    assert res["agent_version"] == AGENT_VERSION
    timing = res["timing"]
    assert isinstance(timing, dict)
    samples = timing["samples_ns"]
    assert len(samples) >= 30 and all(isinstance(s, int) and s > 0 for s in samples)
    assert res["pid"] != os.getpid()
    acc = res["accuracy"]
    assert isinstance(acc, dict) and acc["n"] == 20
    # the same model evaluated here must agree with the agent's accuracy
    import onnxruntime as ort

    pred = ort.InferenceSession(str(tiny_onnx)).run(None, {"x": x})[0].argmax(1)
    assert acc["top1"] == pytest.approx(float((pred == y).mean()))


def test_agent_reports_failures_as_data(tmp_path: Path) -> None:
    res = _agent({"artifact": str(tmp_path / "absent.onnx"), "runtime": "onnxruntime"}, tmp_path)
    assert res["ok"] is False
    err = res["error"]
    assert isinstance(err, dict) and err["kind"] == "missing_artifact" and "absent.onnx" in err["message"]


def test_demo_end_to_end(tmp_path: Path) -> None:
    results = tmp_path / "fresh" / "results"  # does not exist yet: must be created
    exe = Path(sys.executable).with_name("edgebench")
    cmd = [str(exe), "demo", "--results", str(results), "--epochs", "2", "--min-time", "0.3", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)
    run_file = Path(doc["run_file"])
    assert run_file.is_file() and list_runs(results) == [run_file]
    run = json.loads(run_file.read_text())
    assert run["edgebench"]["complete"] is True and run["edgebench"]["schema"] == 1
    assert run["edgebench"]["failures"] == []
    by_variant = {b["params"]["variant"]: b for b in run["benchmarks"]}
    assert sorted(by_variant) == ["fp16", "fp32", "int8-dynamic", "int8-static", "pruned-50"]
    bench = by_variant["fp32"]
    # a compressed variant says what it is against its parent, measured on the board
    static = by_variant["int8-static"]["extra_info"]
    assert static["bytes"] * 2.5 < bench["extra_info"]["bytes"]
    assert static["fidelity"]["top1_agreement"] > 0.9
    info = bench["extra_info"]
    # the latency samples came from the agent process, not from this one or the CLI's
    assert info["agent_pid"] not in (os.getpid(), None)
    assert bench["stats"]["rounds"] == len(bench["stats"]["data"]) >= 50
    assert info["summary"]["p50_ms"] == pytest.approx(1e3 * float(np.median(bench["stats"]["data"])))
    assert 0.8 < info["accuracy"]["top1"] <= 1.0
    assert info["memory"]["peak_rss"] > info["memory"]["rss_before_load"] > 0
    manifest = json.loads((results / "demo" / "variants" / "digits_cnn" / "fp32" / "manifest.json").read_text())
    assert manifest["sha256"] == info["sha256"]
    assert manifest["inputs"][0]["shape"][1:] == [1, 8, 8]
    # the run carries a profile per variant (as `run --profile`), and the demo's one line says why
    assert all("profile" in b["extra_info"] for b in run["benchmarks"])
    assert doc["why_slower"].startswith("int8-dynamic is ") and "slower than fp32" in doc["why_slower"]
    assert doc["seconds"] < 600
