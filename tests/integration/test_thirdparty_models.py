"""Issue 10 end to end: models shaped like third-party files go through `compress` and `run`, locally and on a
farm board, and the figures are checked (not just the exit codes).

The models (`tests/_thirdparty_models.py`, built here, nothing downloaded): a PyTorch CNN exported at opset 11
with ``Constant`` weights and all dims dynamic; a dense-output model whose fp16 variant overflows; a stateful
model whose scalar ``sr`` selects a slower ``If`` branch; a Keras CNN as .tflite with float16 weights and no
SignatureDef. Each test makes the real files and runs the real CLI in a child process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from _thirdparty_models import dense_model, foreign_cnn, fp16_tflite, stateful_model
from edgebench.compress import metrics
from edgebench.targets.farm import Farm

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.2", "--repeats", "1", "--warmup-time", "0", "--min-rounds", "10"]


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``edgebench ARGS`` in ``cwd`` (a child process, as a user runs it; caches in ``cwd``-cache)."""
    env = {**os.environ, "XDG_CACHE_HOME": f"{cwd}-cache"}
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


def compress(cwd: Path, recipe: str) -> dict[str, dict[str, Any]]:
    """Write and run a recipe (``--json``); the manifests by variant name. Asserts exit 0 and no stray files."""
    (cwd / "recipe.toml").write_text(recipe)
    before = sorted(p.name for p in cwd.iterdir())
    res = cli(cwd, "compress", "recipe.toml", "--json")
    assert res.returncode == 0, res.stderr + res.stdout
    assert sorted(p.name for p in cwd.iterdir()) == sorted({*before, "variants"})  # no sym_shape_infer_temp.onnx
    rows = json.loads(res.stdout)["variants"]
    assert all(r["status"].startswith("built") for r in rows), rows
    return {p.parent.name: json.loads(p.read_text()) for p in sorted((cwd / "variants").glob("*/*/manifest.json"))}


def run(cwd: Path, variants: str, *args: str, results: str = "results") -> dict[str, dict[str, Any]]:
    """``edgebench run --json``; each measurement's extra_info by variant name. Asserts exit 0."""
    res = cli(cwd, "run", "--variants", variants, "--results", results, *FAST, "--json", *args)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)["run"]
    return {b["extra_info"]["variant"]: b["extra_info"] for b in doc["benchmarks"]}


def check_memory(m: dict[str, Any], with_eval: bool) -> None:
    """The timed configuration's peak is there; the accuracy pass's peak is apart from it when there was one."""
    mem = m["memory"]
    assert mem["peak_rss"] > 0
    if with_eval and "peak_rss_eval" in mem:
        assert mem["peak_rss_eval"] > 0


# ------------------------------------------------------------- a CNN from another exporter (opset 11, Constant weights)


def test_foreign_cnn_compress_and_run(tmp_path: Path, farm: Farm) -> None:
    foreign_cnn(tmp_path / "cnn.onnx")
    mf = compress(
        tmp_path,
        """
[data]
source = "generated"
calib_samples = 8
[models.cnn]
source = "cnn.onnx"
dims = { height = 32, width = 32 }
[models.cnn.variants.fp16]
passes = [{ pass = "fp16" }]
[models.cnn.variants.int8-dynamic]
passes = [{ pass = "int8-dynamic" }]
[models.cnn.variants.int8-static]
passes = [{ pass = "int8-static" }]
""",
    )
    fp32, static, dyn = mf["fp32"], mf["int8-static"], mf["int8-dynamic"]
    assert fp32["params"] > 10_000  # Constant weights are parameters
    assert fp32["flops"] == metrics.onnx_flops(tmp_path / "cnn.onnx", {"x": [1, 3, 32, 32]})["flops"] > 0
    assert "opset 11 upgraded to 13 for per-channel QDQ" in static["notes"]
    assert any("Constant node(s) folded" in n for n in static["notes"] + dyn["notes"])
    for m in (static, dyn):
        assert "not_compressed" not in m and m["bytes"] < fp32["bytes"] / 2 and "zero_fraction" in m
        assert "sparsity" not in m  # zeros among int8 weights are not pruning
    assert not any(m.get("degraded") for m in mf.values())

    local = run(tmp_path, "variants", "--dim", "height=48", "--dim", "width=64")
    want = metrics.onnx_flops(tmp_path / "cnn.onnx", {"x": [1, 3, 48, 64]})["flops"]
    assert set(local) == {"fp32", "fp16", "int8-dynamic", "int8-static"}
    for m in local.values():
        assert m["flops"] == want and m["flops_shapes"] == {"x": [1, 3, 48, 64]}  # at the measured shape
        check_memory(m, with_eval=False)

    board = farm.boards[0].name
    remote = run(
        tmp_path, "variants", "--boards-file", str(farm.boards_file), "--boards", board, "--models", "cnn",
        "--dim", "height=32", "--dim", "width=32", results="farm",
    )  # fmt: skip
    assert {m["board"] for m in remote.values()} == {board}
    assert remote["int8-static"]["flops"] == fp32["flops"]

    direct = run(tmp_path, "cnn.onnx", "--dim", "height=32", "--dim", "width=32", results="direct")
    assert list(direct) == ["fp32"] and direct["fp32"]["flops"] == fp32["flops"]  # a model file is enough
    assert len(list(Path(f"{tmp_path}-cache/edgebench/variants").glob("*/cnn/fp32/manifest.json"))) == 1


# ------------------------------------------------------------- a dense output whose fp16 variant is garbage


def test_dense_model_fp16_is_degraded(tmp_path: Path) -> None:
    dense_model(tmp_path / "dense.onnx", fragile=True)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "dense.npz", x=rng.random((24, 3, 32, 32), dtype=np.float32))
    mf = compress(
        tmp_path,
        """
[data]
source = "dense.npz"
calib_samples = 8
[models.dense]
source = "dense.onnx"
[models.dense.variants.fp16]
passes = [{ pass = "fp16" }]
[models.dense.variants.int8-static]
passes = [{ pass = "int8-static" }]
""",
    )
    assert mf["fp16"]["degraded"] is True  # inf in float16: the outputs are garbage, and said so
    assert mf["int8-static"]["degraded"] is False
    # on a 2 KiB model the QDQ nodes outweigh the int8 savings: built, but not counted as compressed
    assert any("larger than its parent" in r for r in mf["int8-static"]["not_compressed"])
    assert mf["fp32"]["flops"] == metrics.onnx_flops(tmp_path / "dense.onnx", {"x": [1, 3, 32, 32]})["flops"]

    np.savez(tmp_path / "eval.npz", x=rng.random((4, 3, 32, 32), dtype=np.float32))
    local = run(tmp_path, "variants", "--eval", "eval.npz")
    assert local["fp32"]["accuracy"] is None or local["fp32"]["accuracy"].get("top1") is None  # no labels
    for m in local.values():
        check_memory(m, with_eval=True)
    if "degraded" in local["fp16"]:
        assert local["fp16"]["degraded"] is True and not local["int8-static"]["degraded"]


# ------------------------------------------------------------- a stateful model: sr selects the If branch


VAD_RECIPE = """
[models.vad]
source = "vad.onnx"
inputs = { sr = 16000, state = "zeros:batchless" }
[models.vad.variants.fp16]
passes = [{ pass = "fp16" }]
[models.vad.variants.int8-dynamic]
passes = [{ pass = "int8-dynamic" }]
"""


def test_stateful_model_without_data(tmp_path: Path, farm: Farm) -> None:
    stateful_model(tmp_path / "vad.onnx")
    mf = compress(tmp_path, VAD_RECIPE)  # no [data]: passes that need none run on the model file alone
    assert "not_compressed" not in mf["int8-dynamic"]  # the If branch's weights were quantized
    assert mf["int8-dynamic"]["bytes"] < mf["fp32"]["bytes"] / 3
    assert not mf["fp16"]["degraded"] and not mf["int8-dynamic"]["degraded"]
    assert mf["fp32"]["flops"] is None  # an If: the work depends on sr, so no figure (not 0)

    rng = np.random.default_rng(1)
    np.savez(
        tmp_path / "vad-eval.npz", input=rng.standard_normal((4, 512)).astype(np.float32),
        state=np.zeros((2, 1, 64), np.float32), batchless=np.array(["state"]), y=np.ones(4, np.int64),
    )  # fmt: skip
    fast = run(tmp_path, "variants", "--eval", "vad-eval.npz", "--input", "sr=8000", results="r8k")
    slow = run(tmp_path, "variants", "--eval", "vad-eval.npz", "--input", "sr=16000", results="r16k")
    for name in ("fp32", "int8-dynamic"):  # labels all 1: top-1 says which branch ran
        assert slow[name]["accuracy"]["top1"] == 1.0 and fast[name]["accuracy"]["top1"] == 0.0
        check_memory(slow[name], with_eval=True)
    assert {i["name"]: i["made"] for i in slow["fp32"]["inputs"]}["sr"] == "constant 16000"
    assert "flops" not in slow["fp32"]

    board = farm.boards[0].name
    remote = run(
        tmp_path, "variants", "--boards-file", str(farm.boards_file), "--boards", board,
        "--eval", "vad-eval.npz", "--input", "sr=16000", results="farm",
    )  # fmt: skip
    assert remote["int8-dynamic"]["board"] == board and remote["int8-dynamic"]["accuracy"]["top1"] == 1.0


def test_a_calibrating_pass_without_data_is_refused(tmp_path: Path) -> None:
    stateful_model(tmp_path / "vad.onnx", heavy=1)
    (tmp_path / "recipe.toml").write_text(VAD_RECIPE + '[models.vad.variants.s]\npasses = [{ pass = "int8-static" }]\n')
    res = cli(tmp_path, "compress", "recipe.toml")
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert "pass int8-static calibrates or trains on data and the recipe has no [data] table" in lines[0]
    assert '"generated"' in lines[0] and not (tmp_path / "variants").exists()  # nothing written


# ------------------------------------------------------------- a float16 .tflite without SignatureDef


def test_fp16_tflite_without_signature(tmp_path: Path, farm: Farm) -> None:
    fp16_tflite(tmp_path / "mobile.tflite")
    mf = compress(
        tmp_path,
        """
[data]
source = "generated"
calib_samples = 8
[models.mobile]
source = "mobile.tflite"
[models.mobile.variants.dynamic]
passes = [{ pass = "tflite-quantize", recipe = "dynamic_int8" }]
[models.mobile.variants.weight-only]
passes = [{ pass = "tflite-quantize", recipe = "weight_only_int8" }]
[models.mobile.variants.static]
passes = [{ pass = "tflite-quantize", recipe = "static_int8" }]
""",
    )
    fp32 = mf["fp32"]
    shas = {m["sha256"] for m in mf.values()}
    assert len(shas) == 4  # no variant is its parent's (or a sibling's) file again
    for name in ("dynamic", "weight-only", "static"):
        m = mf[name]
        assert "not_compressed" not in m and m["bytes"] < fp32["bytes"], m
        assert any("float16 weight(s) behind DEQUANTIZE restored" in n for n in m["notes"])
        assert m["fidelity"]["max_abs_diff"] > 0  # really quantized: not the parent's outputs

    local = run(tmp_path, "variants")
    assert set(local) == {"fp32", "dynamic", "weight-only", "static"}
    board = farm.boards[0].name
    remote = run(
        tmp_path, "variants", "--boards-file", str(farm.boards_file), "--boards", board, results="farm"
    )  # fmt: skip
    assert {m["board"] for m in remote.values()} == {board} and len(remote) == 4


def test_run_refuses_a_file_that_is_no_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.onnx").write_bytes(b"garbage")
    for arg, want in [
        ("notes.txt", "notes.txt is not a variants folder nor a .onnx/.tflite file"),
        ("broken.onnx", "broken.onnx is not a readable ONNX model"),
    ]:
        res = cli(tmp_path, "run", "--variants", arg, "--results", "results")
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        assert res.returncode == 1 and len(lines) == 1 and want in lines[0], res.stderr
    assert not (tmp_path / "results").exists()  # nothing half-written
