"""Compression figures on this CPU, measured side by side in one run and printed.

Run: ``/work/venv/bin/pytest tests/perf/perf_compress.py -s``

Model: `edgebench.zoo.digits_cnn_32` (width 32) — the digits CNN working at 32x32 (the
8x8 digits upsampled in the graph), trained on the real digits data. The 8x8 demo CNN
runs in ~18 µs, where per-call overhead hides what compression does.

Latency: ONNX Runtime, CPU, 1 thread, batch 1, the variants interleaved in rounds and
the median of the rounds' mean per-call time reported (these machines are shared and
noisy). Targets from issue 3 are printed beside each figure as met / NOT met; the test
asserts only what does not depend on timing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgebench import data, zoo
from edgebench.compress import metrics
from edgebench.compress.api import build_variant, resolve_chain
from edgebench.compress.passes import Artifact, Data
from edgebench.compress.variant import Variant

EPOCHS = 8
WIDTH = 32

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def latency_us(paths: dict[str, Path], x: np.ndarray, rounds: int = 7, calls: int = 150) -> dict[str, float]:
    """Median over rounds of the mean per-call latency (µs), the models interleaved in each round."""
    sessions = {k: metrics.onnx_session(p) for k, p in paths.items()}
    feeds = {k: {s.get_inputs()[0].name: x[:1]} for k, s in sessions.items()}
    for k, s in sessions.items():  # warm-up
        for _ in range(30):
            s.run(None, feeds[k])
    per: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            f = feeds[k]
            t0 = time.perf_counter_ns()
            for _ in range(calls):
                s.run(None, f)
            per[k].append((time.perf_counter_ns() - t0) / calls / 1000)
    return {k: float(np.median(v)) for k, v in per.items()}


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    s = data.digits()
    t0 = time.monotonic()
    teacher = zoo.train(zoo.digits_cnn_32(WIDTH), s.x_train, s.y_train, epochs=EPOCHS)
    print(f"\ntrained digits_cnn_32(width={WIDTH}) for {EPOCHS} epochs in {time.monotonic() - t0:.0f} s")
    d = Data(s.x_train, s.y_train, s.x_train[:256], s.x_test, s.y_test)
    root = tmp_path_factory.mktemp("perf")
    src = Artifact("torch", module=teacher)
    fp32 = build_variant(
        model="d32", variant="fp32", source=src, chain=[], data=d, final=root / "fp32", parent=None, ref=None
    )
    ref = metrics.run_onnx(fp32.artifact, s.x_test)
    yield {"split": s, "data": d, "root": root, "src": src, "fp32": fp32, "ref": ref, "teacher": teacher}


def make(st: dict[str, Any], name: str, steps: list[tuple[str, dict[str, Any]]]) -> Variant:
    t0 = time.monotonic()
    v = build_variant(
        model="d32", variant=name, source=st["src"], chain=resolve_chain(steps), data=st["data"],
        final=st["root"] / name, parent="fp32", ref=st["ref"],
    )  # fmt: skip
    print(f"  made {name} in {time.monotonic() - t0:.1f} s")
    return v


def test_quantization_figures(setup: dict[str, Any]) -> None:
    st = setup
    fp32: Variant = st["fp32"]
    vs = {
        "fp32": fp32,
        "fp16": make(st, "fp16", [("fp16", {})]),
        "int8-dynamic": make(st, "int8-dynamic", [("int8-dynamic", {})]),
        "int8-dynamic-matmul": make(st, "int8-dynamic-matmul", [("int8-dynamic", {"op_types": ["MatMul", "Gemm"]})]),
        "int8-static": make(st, "int8-static", [("int8-static", {"per_channel": True})]),
        "int8-static-entropy": make(
            st, "int8-static-entropy", [("int8-static", {"per_channel": True, "calibrate_method": "Entropy"})]
        ),
    }
    lat = latency_us({k: v.artifact for k, v in vs.items()}, st["split"].x_test)
    base_acc = fp32.manifest.extra["accuracy"]["top1"]
    print(
        f"\n{'variant':22} {'KiB':>8} {'size x':>7} {'µs/call':>9} {'speed x':>8} "
        f"{'top-1 %':>8} {'drop pt':>8} {'agree %':>8}"
    )
    for k, v in vs.items():
        m = v.manifest.to_json()
        drop = 100 * (base_acc - m["accuracy"]["top1"])
        agree = m.get("fidelity", {}).get("top1_agreement", 1.0)
        print(
            f"{k:22} {m['bytes'] / 1024:8.1f} {fp32.manifest.bytes / m['bytes']:7.2f} {lat[k]:9.1f} "
            f"{lat['fp32'] / lat[k]:8.2f} {100 * m['accuracy']['top1']:8.2f} {drop:8.2f} {100 * agree:8.2f}"
        )
    st8 = vs["int8-static"].manifest.to_json()
    size_x = fp32.manifest.bytes / st8["bytes"]
    speed_x = lat["fp32"] / lat["int8-static"]
    drop = 100 * (base_acc - st8["accuracy"]["top1"])
    print(
        f"int8-static targets: size {size_x:.2f}x (>= 3.5: {verdict(size_x >= 3.5)}), "
        f"speed {speed_x:.2f}x (>= 1.5: {verdict(speed_x >= 1.5)}), drop {drop:.2f} pt (<= 1: {verdict(drop <= 1)})"
    )
    print(f"int8-dynamic (ConvInteger) vs fp32: {lat['fp32'] / lat['int8-dynamic']:.2f}x speed (< 1 means slower)")
    assert size_x >= 3.5 and drop <= 1.0


def test_structured_pruning_figures(setup: dict[str, Any]) -> None:
    st = setup
    fp32: Variant = st["fp32"]
    pruned = make(st, "pruned-50", [("prune-channels", {"ratio": 0.5, "fine_tune_epochs": 5})])
    no_ft = make(st, "pruned-50-noft", [("prune-channels", {"ratio": 0.5, "fine_tune_epochs": 0})])
    chain = make(st, "pruned-50-int8", [("prune-channels", {"ratio": 0.5, "fine_tune_epochs": 5}), ("int8-static", {})])
    vs = {"fp32": fp32, "pruned-50": pruned, "pruned-50-int8": chain}
    lat = latency_us({k: v.artifact for k, v in vs.items()}, st["split"].x_test)
    base = fp32.manifest.to_json()
    print(f"\n{'variant':18} {'MFLOPs':>8} {'flops x':>8} {'µs/call':>9} {'speed x':>8} {'top-1 %':>8} {'drop pt':>8}")
    for k, v in vs.items():
        m = v.manifest.to_json()
        print(
            f"{k:18} {m['flops'] / 1e6:8.2f} {base['flops'] / m['flops']:8.2f} {lat[k]:9.1f} "
            f"{lat['fp32'] / lat[k]:8.2f} "
            f"{100 * m['accuracy']['top1']:8.2f} {100 * (base['accuracy']['top1'] - m['accuracy']['top1']):8.2f}"
        )
    print(f"pruned-50 before fine-tuning: top-1 {100 * no_ft.manifest.extra['accuracy']['top1']:.2f} %")
    fx = base["flops"] / pruned.manifest.flops
    sx = lat["fp32"] / lat["pruned-50"]
    drop = 100 * (base["accuracy"]["top1"] - pruned.manifest.extra["accuracy"]["top1"])
    print(
        f"structured 50% targets: FLOPs {fx:.2f}x (>= 1.5: {verdict(fx >= 1.5)}), speed {sx:.2f}x "
        f"(>= 1.3: {verdict(sx >= 1.3)}), drop {drop:.2f} pt (<= 1: {verdict(drop <= 1)})"
    )
    assert fx >= 1.5


def test_distillation_figures(setup: dict[str, Any]) -> None:
    st = setup
    v = make(st, "student", [("distill", {"width": 0.45, "epochs": EPOCHS, "alpha": 0.5, "temperature": 4.0})])
    r = v.manifest.extra["distill"]
    print(f"\n{'model':10} {'params':>9} {'top-1 %':>8}")
    for k in ("teacher", "student", "control"):
        print(f"{k:10} {r[k]['params']:9d} {100 * r[k]['top1']:8.2f}")
    pr, rel = r["param_ratio"], r["accuracy_vs_teacher"]
    ok_c = r["student"]["top1"] >= r["control"]["top1"]
    print(
        f"distillation targets: params {100 * pr:.1f} % of teacher (<= 25: {verdict(pr <= 0.25)}), "
        f"accuracy {100 * rel:.2f} % of teacher (>= 98: {verdict(rel >= 0.98)}), "
        f"student {'>=' if ok_c else '<'} control ({verdict(ok_c)})"
    )
    assert pr <= 0.25


def test_foreign_architectures(tmp_path: Path) -> None:
    """MobileNetV3-Small-like and ResNet-18-like at 224x224, random weights: what the passes do to them."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.random((16, 3, 224, 224), dtype=np.float32)
    y = rng.integers(0, 1000, 16)
    d = Data(x, y, x[:8], x[:4], y[:4])
    print(f"\n{'model':26} {'variant':16} {'MB':>7} {'GFLOPs':>7} {'ms/call':>8} {'speed x':>8} {'agree %':>8}")
    for factory in (zoo.mobilenet_v3_small_like, zoo.resnet18_like):
        torch.manual_seed(0)
        src = Artifact("torch", module=factory().eval())
        name = factory.__name__
        fp32 = build_variant(
            model=name,
            variant="fp32",
            source=src,
            chain=[],
            data=d,
            final=tmp_path / name / "fp32",
            parent=None,
            ref=None,
        )
        ref = metrics.run_onnx(fp32.artifact, d.x_eval)
        vs = {"fp32": fp32}
        for vname, steps in [
            ("fp16", [("fp16", {})]),
            ("int8-static", [("int8-static", {"calib_samples": 8})]),
            ("pruned-50", [("prune-channels", {"ratio": 0.5, "fine_tune_epochs": 0})]),
        ]:
            vs[vname] = build_variant(
                model=name, variant=vname, source=src, chain=resolve_chain(steps), data=d,
                final=tmp_path / name / vname, parent="fp32", ref=ref,
            )  # fmt: skip
        lat = latency_us({k: v.artifact for k, v in vs.items()}, x, rounds=3, calls=5)
        for k, v in vs.items():
            m = v.manifest.to_json()
            agree = m.get("fidelity", {}).get("top1_agreement", 1.0)
            print(
                f"{name:26} {k:16} {m['bytes'] / 1e6:7.2f} {m['flops'] / 1e9:7.3f} {lat[k] / 1000:8.2f} "
                f"{lat['fp32'] / lat[k]:8.2f} {100 * agree:8.2f}"
            )
        assert vs["pruned-50"].manifest.flops < 0.5 * fp32.manifest.flops
