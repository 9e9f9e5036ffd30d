"""Bad input through `edgebench run`: each failure is recorded for its variant, the run goes on, exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _bench_models import eval_npz, onnx_model, tflite_models, variant

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.05", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "3"]


def _run(
    tmp_path: Path, variants: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, dict[str, Any]]:
    results = tmp_path / "results"
    cmd = [EDGEBENCH, "run", "--variants", str(variants), "--results", str(results), *FAST, "--json", *args]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, **(env or {})}
    )
    runs = sorted((results / "runs").glob("*"))
    assert [p.suffix for p in runs] == [".json"], runs  # one run file, no temporary files left
    return out.returncode, out.stderr, json.loads(out.stdout)["run"] if out.stdout.strip() else {}


def _failure(run: dict[str, Any], model: str) -> dict[str, Any]:
    [f] = [f for f in run["edgebench"]["failures"] if f["model"] == model]
    return f  # type: ignore[no-any-return]


def test_unloadable_model_and_mismatched_eval_data(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    variant(root, "badop", "fp32", onnx_model(tmp_path / "b.onnx", kind="badop"))
    variant(root, "wide", "fp32", onnx_model(tmp_path / "c.onnx", n_in=5))
    ev = tmp_path / "eval"
    ev.mkdir()
    for model in ("tiny", "badop", "wide"):
        eval_npz(ev / f"{model}.npz", n=20, n_in=4)
    rc, err, run = _run(tmp_path, root, "--eval", str(ev))
    assert rc == 1
    assert "error: 2 measurement(s) failed (local/badop/fp32, local/wide/fp32)" in err
    assert [b["params"]["model"] for b in run["benchmarks"]] == ["tiny"]  # the run went on
    assert run["benchmarks"][0]["extra_info"]["accuracy"]["n"] == 20
    bad = _failure(run, "badop")["error"]
    assert bad["kind"] == "model_load" and "could not load model.onnx" in bad["message"]
    assert "NoSuchOp" in bad["message"] and "check the model's ops and opset" in bad["message"]
    wide = _failure(run, "wide")["error"]
    assert wide["kind"] == "bad_eval_data"
    assert "samples of shape [4] but input 'x' expects [5]: give eval data shaped [N, 5]" in wide["message"]
    assert run["edgebench"]["complete"] is True


def test_zero_samples_collected(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    rc, err, run = _run(tmp_path, root, "--max-time", "0")
    assert rc == 1 and "local/tiny/fp32" in err
    e = _failure(run, "tiny")["error"]
    assert e["kind"] == "no_samples" and "no latency samples were collected" in e["message"]
    assert "raise max_time_s" in e["message"]
    assert run["benchmarks"] == []


def _fake_package(root: Path, name: str, message: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(f"raise ImportError({message!r})\n")


def test_runtime_missing_on_the_board(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    _fake_package(fake, "onnxruntime", "No module named 'onnxruntime'")
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    variant(root, "other", "fp32", onnx_model(tmp_path / "b.onnx"))
    rc, err, run = _run(tmp_path, root, env={"PYTHONPATH": str(fake)})
    assert rc == 1 and "2 measurement(s) failed" in err
    for model in ("tiny", "other"):  # both were tried: the first failure did not stop the run
        e = _failure(run, model)["error"]
        assert e["kind"] == "runtime_missing"
        assert "onnxruntime cannot be imported on this board (No module named 'onnxruntime')" in e["message"]
        assert "install onnxruntime in the board's environment" in e["message"]


NUMPY_ABI = (
    "\nA module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.0.0 as it may crash. "
    "numpy.core.multiarray failed to import"
)


@pytest.mark.tflite
def test_tflite_runtime_beside_an_incompatible_numpy(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    _fake_package(fake, "tflite_runtime", NUMPY_ABI)
    _fake_package(fake, "ai_edge_litert", "No module named 'ai_edge_litert'")
    _fake_package(fake, "tensorflow", "No module named 'tensorflow'")
    root = tmp_path / "variants"
    (tmp_path / "m.tflite").write_bytes(b"TFL3" + bytes(60))  # never loaded: the import fails first
    variant(root, "tfl", "int8", tmp_path / "m.tflite", fmt="tflite")
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    rc, err, run = _run(tmp_path, root, env={"PYTHONPATH": str(fake)})
    assert rc == 1 and "local/tfl/int8" in err
    e = _failure(run, "tfl")["error"]
    assert e["kind"] == "runtime_numpy_abi"
    assert "tflite_runtime cannot be imported beside numpy " + np.__version__ in e["message"]
    assert "install numpy<2 in the board's environment" in e["message"]
    assert [b["params"]["model"] for b in run["benchmarks"]] == ["tiny"]


@pytest.mark.tflite
@pytest.mark.slow
def test_tflite_model_on_the_onnx_runtime_is_refused(tmp_path: Path) -> None:
    """A .tflite saved as an ONNX variant: ONNX Runtime refuses it, the message names the file and the fix."""
    root = tmp_path / "variants"
    tfl, _int8 = tflite_models(tmp_path)
    onnx_named = tmp_path / "t.onnx"
    onnx_named.write_bytes(tfl.read_bytes())
    from edgebench.compress.variant import save_variant
    from edgebench.errors import ModelError

    with pytest.raises(ModelError, match="is not a readable ONNX model"):  # compress refuses it on the host
        save_variant(
            root / "x" / "y", onnx_named, {"model": "x", "variant": "y", "fmt": "onnx", "parent": None, "passes": []}
        )
    # a manifest written by hand claiming onnx: the board's runtime refuses it
    v = variant(root, "tfl", "fp32", tfl, fmt="tflite")
    manifest = json.loads((v.path / "manifest.json").read_text())
    (v.path / "model.tflite").rename(v.path / "model.onnx")
    manifest.update(format="onnx", artifact="model.onnx")
    (v.path / "manifest.json").write_text(json.dumps(manifest))
    rc, _err, run = _run(tmp_path, root)
    assert rc == 1
    e = _failure(run, "tfl")["error"]
    assert e["kind"] == "model_load" and "onnxruntime" in e["message"] and "could not load model.onnx" in e["message"]


def test_board_python_without_numpy(tmp_path: Path) -> None:
    """A real interpreter with no numpy (the system Python here) as the board's python: a clear error."""
    import dataclasses
    import shutil

    from edgebench.targets.board import local_board
    from edgebench.targets.driver import LocalDriver
    from edgebench.testing.runs import measure_variant

    bare = shutil.which("python3", path="/usr/bin")
    if bare is None or subprocess.run([bare, "-c", "import numpy"], capture_output=True).returncode == 0:
        pytest.skip("needs a Python without numpy at /usr/bin/python3")
    board = dataclasses.replace(local_board(), python=bare, workdir=str(tmp_path / "board"))
    v = variant(tmp_path / "variants", "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    m = measure_variant(LocalDriver(board), v, settings={"min_time_s": 0.01})
    assert m["ok"] is False and m["error"]["kind"] == "runtime_missing"
    assert "numpy cannot be imported" in m["error"]["message"] and "install numpy on the board" in m["error"]["message"]
    assert m["host"]["python"].startswith("3.")  # the agent itself ran and reported
