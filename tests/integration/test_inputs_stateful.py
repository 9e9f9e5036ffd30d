"""Input specs through `edgebench run` on a real stateful ONNX model, locally and on a farm board.

The model (built here with onnx.helper) is shaped like a streaming voice-activity model: a
signal ``input`` [1, 512] float, a ``state`` [2, 1, 64] float whose batch axis is 1, and a
scalar int64 ``sr`` that selects an ``If`` branch. The 16000 branch does eight extra
512x512 MatMuls and answers class 1; the other branch answers class 0. With eval labels all
1, top-1 accuracy says which branch ran: 1.0 for ``sr=16000``, 0.0 for ``sr=8000``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _bench_models import variant
from onnx import TensorProto, helper, save

from _thirdparty_models import stateful_model
from edgebench.targets.farm import Farm

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.1", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "1"]
N = 512


def _variants(tmp_path: Path) -> Path:
    root = tmp_path / "variants"
    if not root.exists():
        variant(root, "vad", "fp32", stateful_model(tmp_path / "vad.onnx"))
    return root


def _eval(tmp_path: Path) -> Path:
    """Eval data: 6 signals, the state stored whole (listed as batchless), labels all 1; no sr."""
    path = tmp_path / "vad-eval.npz"
    rng = np.random.default_rng(1)
    np.savez(
        path, input=rng.standard_normal((6, N)).astype(np.float32), state=np.zeros((2, 1, 64), np.float32),
        batchless=np.array(["state"]), y=np.ones(6, np.int64),
    )  # fmt: skip
    return path


def run(tmp_path: Path, *args: str, results: str = "results") -> tuple[int, str, dict[str, Any]]:
    """``edgebench run --json`` on the vad variants; (exit code, stderr, the stored run or {})."""
    cmd = [EDGEBENCH, "run", "--variants", str(_variants(tmp_path)), "--results", str(tmp_path / results), *FAST]
    out = subprocess.run([*cmd, "--json", *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    return out.returncode, out.stderr, json.loads(out.stdout)["run"] if out.stdout.strip() else {}


def _measurement(run_doc: dict[str, Any]) -> dict[str, Any]:
    [b] = run_doc["benchmarks"]
    return b["extra_info"]  # type: ignore[no-any-return]


def _inputs(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in m["inputs"]}


def test_sr_selects_the_branch_and_the_inputs_are_recorded_locally(tmp_path: Path) -> None:
    ev = str(_eval(tmp_path))
    rc, err, fast_run = run(tmp_path, "--eval", ev, "--input", "sr=8000", results="r8k")
    assert rc == 0, err
    rc, err, slow_run = run(tmp_path, "--eval", ev, "--input", "sr=16000", results="r16k")
    assert rc == 0, err
    fast, slow = _measurement(fast_run), _measurement(slow_run)
    assert slow["accuracy"]["top1"] == 1.0 and fast["accuracy"]["top1"] == 0.0  # the branch each one ran
    rec = _inputs(slow)
    assert rec["sr"] == {"name": "sr", "shape": [], "dtype": "int64", "made": "constant 16000", "batched": False}
    assert rec["state"]["made"] == "eval data" and rec["state"]["shape"] == [2, 1, 64] and not rec["state"]["batched"]
    assert rec["input"]["made"] == "eval data" and rec["input"]["shape"] == [1, N]
    report = subprocess.run(
        [EDGEBENCH, "report", "--results", str(tmp_path / "r16k"), "--format", "json"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    [row] = json.loads(report.stdout)["models"][0]["rows"]
    assert {i["name"]: i["made"] for i in row["inputs"]}["sr"] == "constant 16000"


def test_an_integer_input_without_a_spec_fails_that_variant_naming_input(tmp_path: Path) -> None:
    rc, err, run_doc = run(tmp_path)
    assert rc == 1 and "local/vad/fp32" in err
    [f] = run_doc["edgebench"]["failures"]
    assert f["error"]["kind"] == "missing_input"
    assert "input 'sr' is int64 [] and has no value" in f["error"]["message"]
    assert "--input sr=VALUE" in f["error"]["message"]
    assert run_doc["edgebench"]["complete"] is True  # the run was stored


def test_generated_inputs_with_specs_and_a_npy_state(tmp_path: Path) -> None:
    np.save(tmp_path / "state.npy", np.full((2, 1, 64), 0.25, np.float32))
    rc, err, run_doc = run(
        tmp_path, "--input", "sr=16000", "--input", "state=state.npy:batchless", "--input", "input=-1..1"
    )
    assert rc == 0, err
    rec = _inputs(_measurement(run_doc))
    assert rec["state"]["made"] == "file state.npy" and rec["state"]["shape"] == [2, 1, 64]
    assert rec["input"]["made"] == "uniform -1..1, seed 0" and rec["sr"]["made"] == "constant 16000"


@pytest.mark.ssh
def test_specs_and_a_npy_on_a_farm_board(farm: Farm, tmp_path: Path) -> None:
    np.save(tmp_path / "state.npy", np.zeros((2, 1, 64), np.float32))
    board = farm.boards[0].name
    ev = str(_eval(tmp_path))
    rc, err, run_doc = run(
        tmp_path, "--boards-file", str(farm.boards_file), "--boards", board, "--eval", ev,
        "--input", "sr=16000", "--input", f"state={tmp_path / 'state.npy'}:batchless",
    )  # fmt: skip
    assert rc == 0, err
    m = _measurement(run_doc)
    assert m["board"] == board and m["accuracy"]["top1"] == 1.0  # the 16000 branch ran on the board
    assert _inputs(m)["state"]["made"] == "file state.npy"
    rc, err, run_doc = run(tmp_path, "--boards-file", str(farm.boards_file), "--boards", board, results="r2")
    assert rc == 1 and "--input sr=VALUE" in run_doc["edgebench"]["failures"][0]["error"]["message"]


# ---------------------------------------------------------------- bad input: one line, exit 1, nothing written


def _refused(tmp_path: Path, *args: str) -> str:
    rc, err, run_doc = run(tmp_path, *args)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 1 and run_doc == {} and len(lines) == 1, err
    assert not (tmp_path / "results").exists()  # nothing half-written
    return lines[0]


def test_an_input_the_model_does_not_have(tmp_path: Path) -> None:
    line = _refused(tmp_path, "--input", "srr=16000")
    assert "no model has an input named 'srr' (did you mean 'sr'?)" in line and "input, sr, state" in line


def test_a_value_the_dtype_cannot_hold(tmp_path: Path) -> None:
    line = _refused(tmp_path, "--input", "sr=16000.5")
    assert "input 'sr' is int64: the value 16000.5 cannot be cast to it" in line


def test_a_npy_of_the_wrong_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((3, 64), np.float32))
    line = _refused(tmp_path, "--input", "sr=16000", "--input", "state=bad.npy:batchless")
    assert "bad.npy has shape [3, 64] but the input takes [2, 1, 64]" in line


def test_a_spec_that_is_no_spec(tmp_path: Path) -> None:
    line = _refused(tmp_path, "--input", "sr=fast")
    assert "spec 'fast' is not a constant (16000), a range (0..1)" in line


def test_a_0d_array_in_an_npz_for_a_batched_input(tmp_path: Path) -> None:
    ev = tmp_path / "scalar.npz"
    np.savez(ev, input=np.float32(1.0), state=np.zeros((2, 1, 64), np.float32), batchless=np.array(["state"]))
    rc, _err, run_doc = run(tmp_path, "--eval", str(ev), "--input", "sr=16000")
    assert rc == 1
    msg = run_doc["edgebench"]["failures"][0]["error"]["message"]
    assert "array 'input' is 0-d (one value) but input 'input' takes [1, 512] with a sample axis" in msg
    assert "--input input=batchless" in msg


def dynamic_model(path: Path) -> Path:
    """x [batch, height, width] and y [?, ?]: named and unnamed dynamic dims."""
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("ReduceSum", ["y"], ["t"])],
        "dyn", [vi("x", TensorProto.FLOAT, ["batch", "height", "width"]), vi("y", TensorProto.FLOAT, [None, None])],
        [vi("s", TensorProto.FLOAT, None), vi("t", TensorProto.FLOAT, None)],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    save(m, str(path))
    return path


def _dyn(tmp_path: Path, *args: str) -> str:
    root = tmp_path / "dyn-variants"
    if not root.exists():
        variant(root, "dyn", "fp32", dynamic_model(tmp_path / "dyn.onnx"))
    cmd = [EDGEBENCH, "run", "--variants", str(root), "--results", str(tmp_path / "results"), *FAST, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert out.returncode == 1 and len(lines) == 1 and not (tmp_path / "results").exists(), out.stderr
    return lines[0]


def test_every_missing_dim_at_once_unknown_names_and_an_ambiguous_question_mark(tmp_path: Path) -> None:
    line = _dyn(tmp_path)
    assert "add --dim height=SIZE --dim width=SIZE --dim y:1=SIZE" in line  # all at once, ready to paste
    line = _dyn(tmp_path, "--dim", "heigth=7")
    assert "no model has a dynamic dimension 'heigth' (did you mean 'height'?)" in line
    line = _dyn(tmp_path, "--dim", "height=4", "--dim", "width=4", "--dim", "?=48")
    assert "dim '?' is ambiguous" in line and "--dim y:0=48 --dim y:1=48" in line


def test_dims_by_name_and_by_input_axis_run(tmp_path: Path) -> None:
    root = tmp_path / "dyn-variants"
    variant(root, "dyn", "fp32", dynamic_model(tmp_path / "dyn.onnx"))
    cmd = [EDGEBENCH, "run", "--variants", str(root), "--results", str(tmp_path / "results"), *FAST, "--json"]
    args = ["--dim", "height=3", "--dim", "width=5", "--dim", "y:1=7", "--batch-size", "2"]
    out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rec = {i["name"]: i for i in json.loads(out.stdout)["run"]["benchmarks"][0]["extra_info"]["inputs"]}
    assert rec["x"]["shape"] == [2, 3, 5] and rec["y"]["shape"] == [2, 7]
    assert rec["x"]["made"] == "generated: normal(0, 1), seed 0"


if os.environ.get("EDGEBENCH_PRINT_BRANCH_FIGURES"):  # figures for the report: p50 of each branch

    def test_print_branch_p50(tmp_path: Path) -> None:
        for sr in ("8000", "16000"):
            _rc, _err, doc = run(tmp_path, "--input", f"sr={sr}", "--input", "state=zeros", results=f"p{sr}")
            print(f"sr={sr}: p50 {doc['benchmarks'][0]['stats']['median'] * 1e3:.4f} ms")
