"""Issue 10's closing table: the four third-party-shaped models through the whole path, model x step.

Run with ``pytest tests/perf/perf_thirdparty.py -s -p no:cacheprovider`` (about two minutes on two
cores; needs sshd for the farm board and TensorFlow for the .tflite model). Each model
(`tests/_thirdparty_models.py`, built here, nothing downloaded) goes through `edgebench compress`
(fp16, int8-dynamic, int8-static for ONNX; tflite-quantize dynamic / weight-only / static for
.tflite), `edgebench run` on the local board and `edgebench run` on a farm board (a real sshd on
127.0.0.x). Every step prints one row: the outcome (built / degraded / not compressed / failed,
measured / failed) and its figures (bytes against fp32, cosine to fp32, p50 latency and speed-up
against fp32 on the same board, timed peak RSS, FLOPs at the measured shape). No assertion is on a
time; the table is the evidence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _thirdparty_models import dense_model, foreign_cnn, fp16_tflite, stateful_model
from edgebench.model import MIB
from edgebench.targets.farm import Farm, farm_up, find_sshd

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.5", "--repeats", "1", "--warmup-time", "0.1", "--min-rounds", "20"]
ONNX_PASSES = """
[models.{m}.variants.fp16]
passes = [{{ pass = "fp16" }}]
[models.{m}.variants.int8-dynamic]
passes = [{{ pass = "int8-dynamic" }}]
[models.{m}.variants.int8-static]
passes = [{{ pass = "int8-static" }}]
"""
TFLITE_PASSES = """
[models.{m}.variants.tflite-dynamic]
passes = [{{ pass = "tflite-quantize", recipe = "dynamic_int8" }}]
[models.{m}.variants.tflite-weight-only]
passes = [{{ pass = "tflite-quantize", recipe = "weight_only_int8" }}]
[models.{m}.variants.tflite-static]
passes = [{{ pass = "tflite-quantize", recipe = "static_int8" }}]
"""
ROWS: list[tuple[str, str, str, str]] = []


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": f"{cwd}-cache"}
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=900, cwd=cwd, env=env)


def compress(cwd: Path, model: str, recipe: str) -> dict[str, dict[str, Any]]:
    """Run the recipe; one table row per variant; the manifests by variant name."""
    (cwd / "recipe.toml").write_text(recipe)
    res = cli(cwd, "compress", "recipe.toml", "--json")
    rows = json.loads(res.stdout)["variants"] if res.stdout.strip() else []
    if not rows:
        ROWS.append((model, "compress", "failed", res.stderr.strip().splitlines()[-1]))
    mf = {p.parent.name: json.loads(p.read_text()) for p in (cwd / "variants").glob(f"{model}/*/manifest.json")}
    parent = mf.get("fp32", {})
    for r in rows:
        name = r["variant"]
        if r["status"] == "failed":
            ROWS.append((model, f"compress {name}", "FAILED", r.get("error", "")[:150]))
            continue
        m = mf[name]
        outcome = "degraded" if m.get("degraded") else "not compressed" if m.get("not_compressed") else "built"
        fig = [f"{m['bytes'] / 1024:.1f} KiB"]
        if name != "fp32" and parent:
            fig.append(f"{m['bytes'] / parent['bytes']:.2f}x fp32's bytes")
        if m.get("fidelity"):
            fig.append(f"cosine {m['fidelity']['cosine']:.4f}")
        if m.get("flops") is not None:
            fig.append(f"{m['flops'] / 1e6:.2f} MFLOP")
        elif name == "fp32":
            fig.append("FLOPs -")
        if m.get("params"):
            fig.append(f"{m['params']} params")
        if m.get("not_compressed"):
            fig.append("; ".join(m["not_compressed"]))
        ROWS.append((model, f"compress {name}", outcome, ", ".join(fig)))
    return mf


def run(cwd: Path, model: str, step: str, *args: str) -> dict[str, dict[str, Any]]:
    """`edgebench run --json` over the model's variants; one row per variant."""
    res = cli(cwd, "run", "--variants", "variants", "--models", model, "--results", f"results-{step}", *FAST,
              "--json", *args)  # fmt: skip
    doc = json.loads(res.stdout)["run"] if res.stdout.strip() else {"benchmarks": [], "edgebench": {}}
    ms = {b["extra_info"]["variant"]: b["extra_info"] for b in doc["benchmarks"]}
    for f in doc["edgebench"].get("failures") or []:
        ms[f["variant"]] = f
    if not ms:
        ROWS.append((model, step, "failed", res.stderr.strip().splitlines()[-1][:150]))
    base = ms.get("fp32", {}).get("summary", {}).get("p50_ms")
    for name in sorted(ms, key=lambda n: (n != "fp32", n)):
        m = ms[name]
        if not m.get("ok", True) or "summary" not in m:
            ROWS.append((model, f"{step} {name}", "FAILED", str((m.get("error") or {}).get("message", ""))[:150]))
            continue
        p50 = m["summary"]["p50_ms"]
        fig = [f"p50 {p50:.3f} ms"]
        if base and name != "fp32":
            fig.append(f"{base / p50:.2f}x fp32's speed")
        fig.append(f"peak {m['memory']['peak_rss'] / MIB:.1f} MiB")
        if m["memory"].get("peak_rss_eval"):
            fig.append(f"accuracy-pass peak {m['memory']['peak_rss_eval'] / MIB:.1f} MiB")
        if m.get("flops") is not None:
            fig.append(f"{m['flops'] / 1e6:.2f} MFLOP at {m.get('flops_shapes')}")
        acc = m.get("accuracy") or {}
        if acc.get("top1") is not None:
            fig.append(f"top-1 {acc['top1']:.2f}")
        fid = m.get("fidelity") or {}
        if fid.get("cosine") is not None:
            fig.append(f"cosine {fid['cosine']:.4f}" + (" DEGRADED" if fid.get("degraded") else ""))
        ROWS.append((model, f"{step} {name}", "measured", ", ".join(fig)))
    return ms


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    if find_sshd() is None:
        pytest.skip("needs OpenSSH sshd")
    f = farm_up(tmp_path_factory.mktemp("farm"), 1)
    try:
        yield f
    finally:
        f.down()


def on_farm(farm: Farm) -> list[str]:
    return ["--boards-file", str(farm.boards_file), "--boards", farm.boards[0].name]


def test_the_third_party_path(tmp_path: Path, farm: Farm) -> None:
    rng = np.random.default_rng(0)
    # a PyTorch CNN at opset 11, Constant weights, all dims dynamic
    cnn = tmp_path / "cnn"
    cnn.mkdir()
    foreign_cnn(cnn / "cnn.onnx")
    recipe = '[data]\nsource = "generated"\ncalib_samples = 16\n[models.cnn]\nsource = "cnn.onnx"\n'
    compress(cnn, "cnn", recipe + "dims = { height = 32, width = 32 }\n" + ONNX_PASSES.format(m="cnn"))
    run(cnn, "cnn", "run local", "--dim", "height=48", "--dim", "width=64")
    run(cnn, "cnn", "run farm", "--dim", "height=32", "--dim", "width=32", *on_farm(farm))

    # a dense (segmentation-like) output whose fp16 variant is garbage
    dense = tmp_path / "dense"
    dense.mkdir()
    dense_model(dense / "dense.onnx", fragile=True)
    np.savez(dense / "dense.npz", x=rng.random((32, 3, 32, 32), dtype=np.float32))
    np.savez(dense / "eval.npz", x=rng.random((8, 3, 32, 32), dtype=np.float32), y=np.zeros(8, np.int64))
    recipe = '[data]\nsource = "dense.npz"\ncalib_samples = 16\n[models.dense]\nsource = "dense.onnx"\n'
    compress(dense, "dense", recipe + ONNX_PASSES.format(m="dense"))
    run(dense, "dense", "run local", "--eval", "eval.npz")
    run(dense, "dense", "run farm", "--eval", "eval.npz", *on_farm(farm))

    # a stateful model: state [2, 1, 64], scalar int64 sr selecting an If branch
    vad = tmp_path / "vad"
    vad.mkdir()
    stateful_model(vad / "vad.onnx")
    recipe = (
        '[data]\nsource = "generated"\ncalib_samples = 16\n[models.vad]\nsource = "vad.onnx"\n'
        'inputs = { sr = 16000, state = "zeros:batchless" }\n'
    )
    compress(vad, "vad", recipe + ONNX_PASSES.format(m="vad"))
    np.savez(
        vad / "eval.npz", input=rng.standard_normal((8, 512)).astype(np.float32),
        state=np.zeros((2, 1, 64), np.float32), batchless=np.array(["state"]), y=np.ones(8, np.int64),
    )  # fmt: skip
    run(vad, "vad", "run local sr=16000", "--eval", "eval.npz", "--input", "sr=16000")
    run(vad, "vad", "run local sr=8000", "--eval", "eval.npz", "--input", "sr=8000")
    run(vad, "vad", "run farm sr=16000", "--eval", "eval.npz", "--input", "sr=16000", *on_farm(farm))

    # a Keras CNN as .tflite, float16 weights behind DEQUANTIZE, no SignatureDef
    mobile = tmp_path / "mobile"
    mobile.mkdir()
    fp16_tflite(mobile / "mobile.tflite")
    recipe = '[data]\nsource = "generated"\ncalib_samples = 16\n[models.mobile]\nsource = "mobile.tflite"\n'
    compress(mobile, "mobile", recipe + TFLITE_PASSES.format(m="mobile"))
    run(mobile, "mobile", "run local")
    run(mobile, "mobile", "run farm", *on_farm(farm))

    print("\n| model | step | outcome | figures |\n| --- | --- | --- | --- |")
    for row in ROWS:
        print("| " + " | ".join(row) + " |")
    assert ROWS
