"""PyTorch passes on architectures we did not design (MobileNetV3-Small-like, ResNet-18-like) and
distillation on the digits data. Small inputs and few samples keep this fast; figures are in tests/perf."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgebench import data, zoo
from edgebench.compress import metrics
from edgebench.compress.api import build_variant, resolve_chain
from edgebench.compress.passes import Artifact, Data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_data(n: int = 16, size: int = 32) -> Data:
    rng = np.random.default_rng(0)
    x = rng.random((n, 3, size, size), dtype=np.float32)
    y = rng.integers(0, 10, n)
    return Data(x_train=x, y_train=y, x_calib=x[:8], x_eval=x[:8], y_eval=y[:8])


@pytest.mark.parametrize("factory", [zoo.mobilenet_v3_small_like, zoo.resnet18_like])
def test_channel_pruning_then_int8_on_foreign_architectures(factory: object, tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = factory(10).eval()  # type: ignore[operator]
    before = {k: v.clone() for k, v in module.state_dict().items()}
    d = random_data()
    src = Artifact("torch", module=module)
    fp32 = build_variant(
        model="m", variant="fp32", source=src, chain=[], data=d, final=tmp_path / "fp32", parent=None, ref=None
    )
    ref = metrics.run_onnx(fp32.artifact, d.x_eval)
    chain = resolve_chain([("prune-channels", {"ratio": 0.5, "fine_tune_epochs": 0}), ("int8-static", {})])
    v = build_variant(
        model="m", variant="pc-int8", source=src, chain=chain, data=d, final=tmp_path / "v", parent="fp32", ref=ref
    )
    # the input module is untouched (passes never mutate their input)
    assert all(torch.equal(before[k], t) for k, t in module.state_dict().items())
    pr = v.manifest.extra["pruning"]
    assert pr["macs_after"] < 0.45 * pr["macs_before"] and pr["params_after"] < 0.45 * pr["params_before"]
    # FLOPs counted from the exported graph agree: channels are physically gone (residual adds, depthwise ok)
    assert v.manifest.flops < 0.45 * fp32.manifest.flops
    assert metrics.run_onnx(v.artifact, d.x_eval).shape == (8, 10)
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(metrics.is_quantized_onnx(metrics.load_onnx(v.artifact)))


def test_magnitude_pruning_global_with_fine_tune_keeps_mask(tmp_path: Path) -> None:
    s = data.digits()
    d = Data(s.x_train[:256], s.y_train[:256], s.x_train[:64], s.x_test, s.y_test)
    torch.manual_seed(0)
    module = zoo.digits_cnn(8)
    chain = resolve_chain([("prune-magnitude", {"sparsity": 0.8, "fine_tune_epochs": 1})])
    v = build_variant(
        model="d", variant="sp", source=Artifact("torch", module=module), chain=chain, data=d,
        final=tmp_path / "sp", parent=None, ref=None,
    )  # fmt: skip
    assert v.manifest.extra["weight_sparsity"] == pytest.approx(0.8, abs=0.01)  # fine-tuning did not refill zeros
    assert v.manifest.extra["sparsity"] > 0.7  # as read back from the ONNX graph
    assert v.manifest.extra["zip_bytes"] < 0.6 * v.manifest.bytes


def test_distillation_reports_teacher_student_control(tmp_path: Path) -> None:
    s = data.digits()
    d = Data(s.x_train[:512], s.y_train[:512], s.x_train[:64], s.x_test, s.y_test)
    torch.manual_seed(0)  # the initial weights: not whatever this worker's earlier tests left in torch's RNG
    teacher = zoo.train(zoo.digits_cnn(8), s.x_train[:512], s.y_train[:512], epochs=2)
    chain = resolve_chain([("distill", {"width": 0.5, "epochs": 1, "alpha": 0.3, "temperature": 3.0})])
    v = build_variant(
        model="d", variant="kd", source=Artifact("torch", module=teacher), chain=chain, data=d,
        final=tmp_path / "kd", parent=None, ref=None,
    )  # fmt: skip
    rep = v.manifest.extra["distill"]
    assert set(rep) >= {"teacher", "student", "control", "param_ratio", "accuracy_vs_teacher"}
    assert rep["teacher"]["params"] == sum(p.numel() for p in teacher.parameters())
    assert rep["student"]["params"] == rep["control"]["params"] < rep["teacher"]["params"]
    assert 0.2 < rep["param_ratio"] < 0.3
    assert rep["teacher"]["top1"] == pytest.approx(zoo.accuracy(teacher, s.x_test, s.y_test))
    assert v.manifest.extra["accuracy"]["top1"] == pytest.approx(rep["student"]["top1"], abs=1e-6)  # ONNX = torch
    assert 0.0 < rep["control"]["top1"] <= 1.0


def test_taylor_importance_uses_gradients(tmp_path: Path) -> None:
    s = data.digits()
    d = Data(s.x_train[:256], s.y_train[:256], s.x_train[:64], s.x_test[:64], s.y_test[:64])
    chain = resolve_chain([("prune-channels", {"ratio": 0.25, "importance": "taylor", "fine_tune_epochs": 0})])
    v = build_variant(
        model="d", variant="t", source=Artifact("torch", module=zoo.digits_cnn(8)), chain=chain, data=d,
        final=tmp_path / "t", parent=None, ref=None,
    )  # fmt: skip
    pr = v.manifest.extra["pruning"]
    assert 0.4 < pr["macs_after"] / pr["macs_before"] < 0.7  # 25% of channels off both sides of each conv
