"""Issue 10's bad-input list, the cases no other test covered: each is one line, exit 1, nothing written.

Covered elsewhere (run): an ONNX input the model lacks, a value the dtype cannot hold, a .npy of the wrong
shape and a 0-d array in an eval npz (test_inputs_stateful.py); an eval file one model rejects, recorded for
that model only (test_fidelity_real.py); a 0-d array in compress data (tests/unit/test_inputs.py).
Here: ``run --input`` naming an input a .tflite model lacks (checked on the host from the interpreter's
input details), and the same cases in a recipe's ``[models.M]`` tables and ``[data]`` (compress).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _bench_models import tflite_models, variant

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_recipe_fidelity_nightly import cosine_model

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))


def refused(cwd: Path, *args: str) -> str:
    """``edgebench ARGS`` exits 1 with exactly one line on stderr; that line."""
    out = subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
    assert out.returncode == 1 and len(lines) == 1, out.stderr + out.stdout
    return lines[0]


@pytest.mark.tflite
def test_run_input_a_tflite_model_does_not_have(tmp_path: Path) -> None:
    fp32, _int8 = tflite_models(tmp_path)
    root = tmp_path / "variants"
    variant(root, "tfl", "fp32", fp32, fmt="tflite")
    line = refused(tmp_path, "run", "--variants", str(root), "--results", "results", "--input", "foo=1")
    assert "--input foo: no model has an input named 'foo'" in line and "the inputs are x" in line
    assert not (tmp_path / "results").exists()  # checked on the host, before any work
    # the .tflite file itself (an fp32 variant made on the fly): the same check, the same line
    line = refused(tmp_path, "run", "--variants", str(fp32), "--results", "results", "--input", "foo=1")
    assert "no model has an input named 'foo'" in line and "the inputs are x" in line
    assert not (tmp_path / "results").exists()


RECIPE = """out = "variants"
{data}
[models.m]
source = "m.onnx"
{table}
[models.m.variants.fp16]
passes = [{{ pass = "fp16" }}]
"""


@pytest.mark.parametrize(
    ("table", "data", "expected"),
    [
        (
            'inputs = { xx = "ones" }',
            "",
            "[models.m] inputs: no input 'xx' in m.onnx (did you mean 'x'?); its inputs are: x",
        ),
        (
            "dims = { NN = 4 }",
            "",
            "[models.m] dims: no dynamic dimension 'NN' in m.onnx (did you mean 'N'?); its dims are: N",
        ),
        ('inputs = { x = "fast" }', "", "[models.m] inputs: input 'x': spec 'fast' is not a constant (16000)"),
        ("inputs = { x = true }", "", "input 'x' is float32: the value True cannot be cast to it"),
        ('inputs = { x = "bad.npy" }', "", "bad.npy has shape [3, 5] but the input takes [1, 2] or one sample [2]"),
        ("", '[data]\nsource = "d.npz"', "array 'x' is 0-d (one value) but compress data holds one row per sample"),
    ],
    ids=["unknown-input", "unknown-dim", "no-spec", "not-castable", "npy-shape", "0d-npz"],
)
def test_recipe_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, table: str, data: str, expected: str) -> None:
    cosine_model(tmp_path / "m.onnx")
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    np.savez(tmp_path / "d.npz", x=np.float32(1.0))
    (tmp_path / "recipe.toml").write_text(RECIPE.format(table=table, data=data))
    line = refused(tmp_path, "compress", "recipe.toml")
    assert expected in line and "\n" not in line, line
    assert not (tmp_path / "variants").exists()  # nothing half-written
