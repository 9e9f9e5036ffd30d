"""A recipe's ``[fidelity] min_cosine`` decides which variants are degraded, and a nightly loads recipes exactly
as `edgebench compress` does (a model's ``inputs`` table with no ``[data]``).

The model (built here with onnx.helper): ``y = x * A + x * B`` on ``x [N, 2]``, with ``A = (7500, 1e5)`` and
``B = (0, -9e4)``. In float32 ``y = (7500, 10000) * x``; the fp16 converter clamps 1e5 and -9e4 to float16's
±65504, so channel 1 cancels to 0 and, for ``x = ones``, the fp16 variant's cosine to fp32 is exactly
7500 / 12500 = 0.6.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from edgebench.cli import main


def cosine_model(path: Path, a: tuple[float, float] = (7500.0, 1e5), b: tuple[float, float] = (0.0, -9e4)) -> Path:
    """``y = x * A + x * B`` (see the module docstring); ``x`` and ``y`` are ``[N, 2]`` float32."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "A"], ["xa"]),
            helper.make_node("Mul", ["x", "B"], ["xb"]),
            helper.make_node("Add", ["xa", "xb"], ["y"]),
        ],
        "cosine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(np.array(a, np.float32), "A"), numpy_helper.from_array(np.array(b, np.float32), "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


RECIPE = """out = "variants"
{fidelity}
[models.m]
source = "m.onnx"
inputs = {{ x = "ones" }}
[models.m.variants.fp16]
passes = [{{ pass = "fp16" }}]
"""


def compress(tmp_path: Path, fidelity: str) -> tuple[int, str, dict[str, Any]]:
    """Write the recipe with ``fidelity`` (TOML), run `compress --json`; the fp16 manifest (or {})."""
    (tmp_path / "recipe.toml").write_text(RECIPE.format(fidelity=fidelity))
    res = CliRunner().invoke(main, ["compress", str(tmp_path / "recipe.toml"), "--json"])
    mf = tmp_path / "variants" / "m" / "fp16" / "manifest.json"
    return res.exit_code, res.output, json.loads(mf.read_text()) if mf.is_file() else {}


def test_recipe_min_cosine_decides_degraded(tmp_path: Path) -> None:
    cosine_model(tmp_path / "m.onnx")
    code, out, mf = compress(tmp_path, "[fidelity]\nmin_cosine = 0.5")
    assert code == 0, out
    assert abs(mf["fidelity"]["cosine"] - 0.6) < 1e-4  # the model does what the docstring says
    assert mf["fidelity"]["min_cosine"] == 0.5 and mf["degraded"] is False  # 0.6 >= 0.5: usable

    code, out, mf = compress(tmp_path, "")  # the default threshold, 0.99: the same variant is degraded
    assert code == 0 and mf["degraded"] is True and mf["fidelity"]["min_cosine"] == 0.99, out

    # a model's own [models.m.fidelity] wins over the recipe's (the variant is rebuilt: its hash has the threshold)
    (tmp_path / "recipe.toml").write_text(
        RECIPE.format(fidelity="[fidelity]\nmin_cosine = 0.99") + "[models.m.fidelity]\nmin_cosine = 0.55\n"
    )
    res = CliRunner().invoke(main, ["compress", str(tmp_path / "recipe.toml"), "--json"])
    assert res.exit_code == 0, res.output
    mf = json.loads((tmp_path / "variants" / "m" / "fp16" / "manifest.json").read_text())
    assert mf["degraded"] is False and mf["fidelity"]["min_cosine"] == 0.55


def test_recipe_min_cosine_out_of_range_is_one_line(tmp_path: Path) -> None:
    cosine_model(tmp_path / "m.onnx")
    code, out, mf = compress(tmp_path, "[fidelity]\nmin_cosine = 2")
    assert code == 1 and mf == {} and not (tmp_path / "variants").exists()
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "[fidelity]" in lines[0] and "min_cosine" in lines[0], out


def test_nightly_loads_a_recipe_with_inputs_and_no_data(tmp_path: Path) -> None:
    cosine_model(tmp_path / "m.onnx", a=(2.0, 3.0), b=(1.0, 1.0))  # an fp16-safe model
    (tmp_path / "recipe.toml").write_text(RECIPE.format(fidelity=""))
    (tmp_path / "nightly.toml").write_text(
        '[nightly]\nboards = ["local"]\nrecipe = "recipe.toml"\n'
        "[nightly.settings]\nmin_time_s = 0.2\nrepeats = 1\nwarmup_min_s = 0\nmin_rounds = 10\n"
    )
    res = CliRunner().invoke(
        main, ["nightly", str(tmp_path / "nightly.toml"), "--results", str(tmp_path / "r"), "--json"]
    )
    doc = json.loads(res.stdout)
    assert doc["compress"]["built"] == ["m/fp32", "m/fp16"] and doc["compress"]["failed"] == {}, res.output
    assert res.exit_code == 0, doc["problems"]
    mf = json.loads((tmp_path / "variants" / "m" / "fp16" / "manifest.json").read_text())
    assert mf["degraded"] is False and mf["fidelity"]["cosine"] > 0.999


def test_run_min_cosine_decides_degraded_per_run(tmp_path: Path) -> None:
    cosine_model(tmp_path / "m.onnx")
    code, out, _ = compress(tmp_path, "[fidelity]\nmin_cosine = 0.5")
    assert code == 0, out
    np.savez(tmp_path / "eval.npz", x=np.ones((4, 2), np.float32))  # the fp16 variant's cosine is 0.6 on ones
    edgebench = str(Path(sys.executable).with_name("edgebench"))
    fast = ["--min-time", "0.1", "--min-rounds", "10", "--warmup-time", "0", "--repeats", "1", "--json"]

    def fp16(results: str, *args: str) -> dict[str, Any]:
        cmd = [edgebench, "run", "--variants", "variants", "--eval", "eval.npz", "--results", results, *fast, *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        [m] = [
            b["extra_info"] for b in json.loads(res.stdout)["run"]["benchmarks"] if b["extra_info"]["variant"] == "fp16"
        ]
        return m  # type: ignore[no-any-return]

    # no --min-cosine: the threshold the manifest was judged by (the recipe's 0.5), so run agrees with compress
    lenient = fp16("lenient")
    assert abs(lenient["fidelity"]["cosine"] - 0.6) < 1e-4 and lenient["fidelity"]["degraded"] is False
    assert lenient["fidelity"]["min_cosine"] == 0.5 and lenient["settings"]["min_cosine"] == 0.5
    rep = subprocess.run([edgebench, "report", "--results", str(tmp_path / "lenient"), "--json"], capture_output=True,
                         text=True)  # fmt: skip
    [row] = [r for r in json.loads(rep.stdout)["models"][0]["rows"] if r["variant"] == "fp16"]
    assert row["degraded"] is False and row["verdict"] != "degraded", row
    strict = fp16("strict", "--min-cosine", "0.99")  # an explicit threshold overrides the manifest's
    assert strict["fidelity"]["min_cosine"] == 0.99 and strict["fidelity"]["degraded"] is True
    rep = subprocess.run([edgebench, "report", "--results", str(tmp_path / "strict"), "--json"], capture_output=True,
                         text=True)  # fmt: skip
    [row] = [r for r in json.loads(rep.stdout)["models"][0]["rows"] if r["variant"] == "fp16"]
    assert row["degraded"] is True and row["verdict"] == "degraded" and not row["pareto"]
