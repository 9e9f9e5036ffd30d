"""The agent on an older real interpreter than the host's: PyPy 3.9 (Debian's ``pypy3``) with numpy.

No CPython below 3.11 can be installed on this machine (Debian 12 ships none, and no PyPI
package ships a CPython binary), so the oldest real interpreter is PyPy implementing
Python 3.9; the 3.6 floor itself is checked statically (vermin, ``ast`` feature_version)
in tests/unit/test_bench_agent.py. No runtime wheel exists for PyPy, so the job runs with a
small numpy stand-in for the ``onnxruntime`` module (a MatMul + Add, the model's own
weights): everything else — job parsing, inputs, eval data, the timing loop, accuracy,
fidelity, memory, the result JSON — is the agent's real code on the old interpreter,
driven through the host's real pipeline, and compared with the host's run on real ONNX
Runtime.

scripts/test.sh makes the interpreter (``.venv-pypy``); ``EDGEBENCH_OLD_PYTHON`` points
at another one (it needs numpy).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from _bench_models import eval_npz, onnx_model, variant

from edgebench.agent.build import agent_path
from edgebench.bench.reference import reference_outputs
from edgebench.bench.settings import RunSettings
from edgebench.targets.board import local_board
from edgebench.targets.driver import LocalDriver
from edgebench.testing.runs import measure_variant

ROOT = Path(__file__).resolve().parents[2]
FAST = RunSettings(warmup_min_iters=3, warmup_min_s=0.0, min_rounds=20, min_time_s=0.05, max_time_s=5.0)

STAND_IN = '''\
"""A numpy stand-in for onnxruntime (the API subset the agent uses): y = x W + B."""
import os

import numpy

__version__ = "0.0-stand-in"


class SessionOptions(object):
    pass


class GraphOptimizationLevel(object):
    ORT_DISABLE_ALL, ORT_ENABLE_BASIC, ORT_ENABLE_EXTENDED, ORT_ENABLE_ALL = 0, 1, 2, 99


def get_available_providers():
    return ["CPUExecutionProvider"]


class _Arg(object):
    def __init__(self, name, shape):
        self.name, self.shape, self.type = name, shape, "tensor(float)"


class InferenceSession(object):
    def __init__(self, path, sess_options=None, providers=None):
        with numpy.load(os.environ["STAND_IN_WEIGHTS"]) as w:
            self.w, self.b = w["W"], w["B"]

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def get_inputs(self):
        return [_Arg("x", ["batch", self.w.shape[0]])]

    def get_outputs(self):
        return [_Arg("y", ["batch", self.w.shape[1]])]

    def run(self, names, feed):
        return [feed["x"].dot(self.w) + self.b]
'''


def _version(python: str) -> tuple[int, int] | None:
    """(major, minor) of ``python`` when it runs and imports numpy, else None."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys, numpy; print('%d %d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


@pytest.fixture(scope="module")
def old_python() -> str:
    for python in (os.environ.get("EDGEBENCH_OLD_PYTHON"), str(ROOT / ".venv-pypy" / "bin" / "python")):
        if python and (v := _version(python)) is not None and v < sys.version_info[:2]:
            return python
    msg = (
        "no older Python with numpy found, so the agent is not run on an old interpreter: "
        "run scripts/test.sh (it makes .venv-pypy) or set EDGEBENCH_OLD_PYTHON"
    )
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)


def test_agent_probe_on_the_old_interpreter(old_python: str) -> None:
    probe = [old_python, str(agent_path()), "--probe", '["onnxruntime"]']  # the archive, as deployed
    out = subprocess.run(probe, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    fp = json.loads(out.stdout)
    assert tuple(int(x) for x in fp["python"].split(".")[:2]) < sys.version_info[:2]
    assert fp["numpy"] and fp["runtimes"] == {}  # no onnxruntime for this interpreter: named as a problem
    assert any("onnxruntime" in p for p in fp["problems"])


def test_a_job_on_the_old_interpreter_matches_the_host(tmp_path: Path, old_python: str) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx_model(tmp_path / "a.onnx", seed=0)
    np.savez(tmp_path / "w.npz", **{i.name: numpy_helper.to_array(i) for i in onnx.load(str(model)).graph.initializer})
    (tmp_path / "stand_in" / "onnxruntime").mkdir(parents=True)
    (tmp_path / "stand_in" / "onnxruntime" / "__init__.py").write_text(STAND_IN)
    fp32 = variant(tmp_path / "variants", "tiny", "fp32", model)
    data = eval_npz(tmp_path / "e.npz", n=100)
    ref = reference_outputs(fp32, data, tmp_path / "cache")
    env = {"PYTHONPATH": str(tmp_path / "stand_in"), "STAND_IN_WEIGHTS": str(tmp_path / "w.npz")}
    results = {}
    for label, python, board_env in (("host", sys.executable, {}), ("old", old_python, env)):
        board = dataclasses.replace(local_board(), python=python, workdir=str(tmp_path / label), env=board_env)
        m = measure_variant(LocalDriver(board), fp32, eval_data=data, settings=FAST, reference=ref)
        assert m["ok"], (label, m["error"])
        results[label] = m
    host, old = results["host"], results["old"]
    assert old["host"]["python"] == old["fingerprint"]["python"] != host["host"]["python"]
    assert old["runtime"]["version"] == "0.0-stand-in" and host["runtime"]["name"] == old["runtime"]["name"]
    assert set(old) == set(host)  # the same result document
    assert len(old["samples_ns"]) >= 20 and all(isinstance(s, int) and s > 0 for s in old["samples_ns"])
    assert old["accuracy"]["top1"] == host["accuracy"]["top1"] and old["accuracy"]["n"] == 100
    assert old["fidelity"]["top1_agreement"] == 1.0 and old["fidelity"]["max_abs_diff"] < 1e-5
    assert old["memory"]["peak_rss"] >= old["memory"]["rss_before_load"] > 0
