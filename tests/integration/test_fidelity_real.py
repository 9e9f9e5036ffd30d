"""Fidelity that fits the output, degraded variants, the two memory peaks and one bad model, for real.

A dense (segmentation-like) ONNX model (`_thirdparty_models.dense_model`, output ``[N, 4, 32, 32]``)
with an "fp16" variant broken on purpose (weights moved by 3x their scale: ONNX Runtime's CPU
provider computes float16 ops in float32, so a real fp16 conversion stays close) and a near-identical
"int8" variant (weights moved by 1e-4 relative), beside a small classifier; measured by
``edgebench run`` on the local board (real ONNX Runtime, fresh agent processes).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _bench_models import variant
from onnx import TensorProto, helper, numpy_helper

from edgebench.compress.api import describe_artifact
from edgebench.compress.passes import Data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _thirdparty_models import dense_model

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.1", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "1"]
SIZE = 32


def classifier(path: Path, size: int = 8, classes: int = 5) -> Path:
    """A tiny classifier ``x [batch, 3, size, size]`` -> ``logits [batch, classes]`` (fixed image size)."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array((rng.standard_normal((classes, 3 * size * size)) * 0.1).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "cls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def nudged(src: Path, dst: Path, rel: float) -> Path:
    """``src`` with every weight moved by ``rel`` of its scale (a near-identical variant)."""
    m = onnx.load(str(src))
    rng = np.random.default_rng(7)
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.ndim > 1:
            a = a + (rng.standard_normal(a.shape) * rel * float(np.abs(a).mean())).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
    onnx.save(m, str(dst))
    return dst


def outputs(path: Path, x: np.ndarray) -> np.ndarray:
    return np.asarray(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Variants: seg (fp32, fp16 by the real pass, int8 nudged), cls (fp32, int8 nudged); eval data."""
    tmp = tmp_path_factory.mktemp("fid")
    root = tmp / "variants"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((48, 3, SIZE, SIZE)).astype(np.float32)
    parent = variant(root, "seg", "fp32", dense_model(tmp / "seg.onnx", size=SIZE))
    variant(root, "seg", "fp16", nudged(parent.artifact, tmp / "seg16.onnx", 3.0), parent="fp32")
    variant(root, "seg", "int8", nudged(parent.artifact, tmp / "seg8.onnx", 1e-4), parent="fp32")
    cls = variant(root, "cls", "fp32", classifier(tmp / "cls.onnx"))
    variant(root, "cls", "int8", nudged(cls.artifact, tmp / "cls8.onnx", 1e-4), parent="fp32")
    evals = tmp / "eval"
    evals.mkdir()
    np.savez(evals / "seg.npz", x=x, y=rng.integers(0, 4, len(x)))  # labels for a dense output: accuracy unknown
    xc = rng.standard_normal((40, 3, 8, 8)).astype(np.float32)
    np.savez(evals / "cls.npz", x=xc, y=outputs(cls.artifact, xc).argmax(1))
    np.savez(tmp / "seg-only.npz", x=x, y=np.zeros(len(x), np.int64))  # 32x32 images: the classifier rejects them
    return {"root": root, "tmp": tmp, "x": x, "evals": evals}


def run(made: dict[str, Any], *args: str, results: str) -> tuple[int, str, dict[str, Any]]:
    cmd = [EDGEBENCH, "run", "--variants", str(made["root"]), "--results", str(made["tmp"] / results), *FAST]
    out = subprocess.run([*cmd, "--json", *args], capture_output=True, text=True, timeout=600, cwd=made["tmp"])
    return out.returncode, out.stderr, json.loads(out.stdout)["run"] if out.stdout.strip() else {}


def by_variant(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    ms = [b["extra_info"] for b in doc["benchmarks"]] + list(doc["edgebench"].get("failures") or [])
    return {(m["model"], m["variant"]): m for m in ms}


def test_compress_marks_the_broken_variant_degraded(made: dict[str, Any]) -> None:
    """The manifest fields compress writes for a variant (`describe_artifact`), with labels given."""
    x, root = made["x"], made["root"]
    data = Data(x_train=x, y_train=None, x_calib=x, x_eval=x, y_eval=np.zeros(len(x), np.int64))
    ref = outputs(root / "seg" / "fp32" / "model.onnx", x)
    fields = {n: describe_artifact("onnx", root / "seg" / n / "model.onnx", data, ref) for n in ("fp16", "int8")}
    assert fields["fp16"]["degraded"] is True and fields["fp16"]["fidelity"]["cosine"] < 0.99
    assert fields["int8"]["degraded"] is False and fields["int8"]["fidelity"]["cosine"] > 0.999
    assert "top1_agreement" not in fields["fp16"]["fidelity"]  # a dense map gets no top-1 ...
    assert fields["fp16"]["accuracy"]["top1"] is None and fields["fp16"]["accuracy"]["unknown"]  # ... nor 0 %
    strict = describe_artifact("onnx", root / "seg" / "int8" / "model.onnx", data, ref, min_cosine=1.0)
    assert strict["degraded"] is True  # the threshold is the caller's


def test_fidelity_per_output_degraded_flag_and_accuracy_unknown(made: dict[str, Any]) -> None:
    code, err, doc = run(made, "--eval", str(made["evals"]), results="r1")
    assert code == 0, err
    ms = by_variant(doc)
    x = made["x"]
    ref = outputs(made["root"] / "seg" / "fp32" / "model.onnx", x)
    for name, degraded in (("fp16", True), ("int8", False)):
        f = ms[("seg", name)]["fidelity"]
        out = outputs(made["root"] / "seg" / name / "model.onnx", x)
        a, b = out.reshape(len(x), -1).astype(np.float64), ref.reshape(len(x), -1).astype(np.float64)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        snr = 10 * np.log10((b**2).sum() / ((a - b) ** 2).sum())
        [o] = f["outputs"]
        assert o["name"] == "mask" and o["shape"] == ["N", 4, SIZE, SIZE] and "top1_agreement" not in o
        assert o["cosine"] == pytest.approx(float(cos.mean()), abs=1e-5)
        assert o["snr_db"] == pytest.approx(float(snr), abs=0.05)
        assert o["max_abs_diff"] == pytest.approx(float(np.abs(a - b).max()), rel=1e-4)
        assert f["degraded"] is degraded, f
        acc = ms[("seg", name)]["accuracy"]
        assert acc["top1"] is None and "not class scores" in acc["unknown"]
    assert ms[("cls", "int8")]["fidelity"]["top1_agreement"] > 0.9 and not ms[("cls", "int8")]["fidelity"]["degraded"]
    assert ms[("cls", "fp32")]["accuracy"]["top1"] == 1.0
    rep = subprocess.run(
        [EDGEBENCH, "report", "--results", str(made["tmp"] / "r1"), "--format", "markdown"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    md = rep.stdout
    assert "| load ms |" in md and "| first inference ms |" in md and "peak MiB" in md and "| cosine |" in md
    assert "degraded" in md and "fp16: " in md and "fp16: 1.0" not in md
    fp16_line = next(ln for ln in md.splitlines() if "fp16:" in ln)
    assert "worth it" not in fp16_line.replace("not worth it", "") and "degraded" in fp16_line
    seg = md.split("### seg")[1]
    assert "| 0.00% |" not in seg and seg.count("| unknown |") == 3  # a dense output never shows a top-1 of 0 %
    js = json.loads(
        subprocess.run(
            [EDGEBENCH, "report", "--results", str(made["tmp"] / "r1"), "--json"], capture_output=True, text=True
        ).stdout
    )
    rows = {(mm["model"], r["variant"]): r for mm in js["models"] for r in mm["rows"]}
    assert rows[("seg", "fp16")]["degraded"] is True and rows[("seg", "fp16")]["verdict"] == "degraded"
    assert rows[("seg", "int8")]["degraded"] is False and rows[("seg", "int8")]["load_ms"] > 0
    assert rows[("seg", "int8")]["accuracy_unknown"] and rows[("seg", "int8")]["peak_rss_eval"] > 0


def test_timed_peak_is_the_same_with_generated_inputs_and_eval_data(made: dict[str, Any]) -> None:
    """The eval set (48 x 3 x 32 x 32 plus every output) weighs on the accuracy pass only."""
    big = made["tmp"] / "big.npz"
    rng = np.random.default_rng(1)
    np.savez(big, x=rng.standard_normal((6000, 3, SIZE, SIZE)).astype(np.float32))  # 70 MiB of inputs
    code, err, gen = run(made, "--models", "seg", results="gen")
    assert code == 0, err
    code, err, ev = run(made, "--models", "seg", "--eval", str(big), results="ev")
    assert code == 0, err
    g, e = by_variant(gen)[("seg", "fp32")]["memory"], by_variant(ev)[("seg", "fp32")]["memory"]
    mib = 2**20
    print(f"timed peak: generated {g['peak_rss'] / mib:.1f} MiB, eval {e['peak_rss'] / mib:.1f} MiB; "
          f"accuracy pass {e['peak_rss_eval'] / mib:.1f} MiB")  # fmt: skip
    assert abs(g["peak_rss"] - e["peak_rss"]) < 8 * mib
    assert "peak_rss_eval" not in g and e["peak_rss_eval"] > e["peak_rss"] + 60 * mib


def test_eval_data_one_model_rejects_fails_that_model_only(made: dict[str, Any]) -> None:
    code, err, _ = run(made, "--eval", str(made["tmp"] / "seg-only.npz"), results="bad")
    assert code == 1 and "2 measurement(s) failed (local/cls/fp32, local/cls/int8)" in err, err
    [path] = (made["tmp"] / "bad" / "runs").glob("*.json")
    doc = json.loads(path.read_text())
    ms = by_variant(doc)
    assert doc["edgebench"]["complete"] is True
    assert ms[("seg", "fp32")]["ok"] and ms[("seg", "int8")]["ok"]  # the valid model is measured and stored
    for name in ("fp32", "int8"):
        m = ms[("cls", name)]
        assert m["ok"] is False and "x" in m["error"]["message"], m["error"]
    assert len(doc["benchmarks"]) == 3 and len(doc["edgebench"]["failures"]) == 2
    rep = subprocess.run(
        [EDGEBENCH, "report", "--results", str(made["tmp"] / "bad")], capture_output=True, text=True, timeout=120
    )
    whole = " ".join(rep.stdout.split())
    assert " ".join(ms[("cls", "fp32")]["error"]["message"].split()) in whole  # the error whole, under the table
