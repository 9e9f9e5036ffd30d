"""The agent protocol end to end: a job in, a result out, failures as data (the demo itself: test_readme.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgebench.agent import AGENT_VERSION
from edgebench.agent.build import agent_path
from edgebench.bench.runner import parse_agent_output

pytestmark = pytest.mark.slow


def _agent(job: dict[str, object], tmp_path: Path) -> dict[str, object]:
    jf = tmp_path / "job.json"
    jf.write_text(json.dumps(job))
    out = subprocess.run([sys.executable, str(agent_path()), str(jf)], capture_output=True, text=True, timeout=120)
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


# `edgebench demo` end to end (train, export, measure in agent processes, store, profile) is checked by
# tests/integration/test_readme.py, which runs the demo of the README's first command once for the whole
# suite and builds the rest of the README's tour on it.
