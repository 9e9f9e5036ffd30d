"""Models edgebench makes itself (no downloads): the digits CNN and its trainer."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import MissingDependency


def digits_cnn(width: int = 16) -> Any:
    """A small CNN for 1x8x8 digits: three conv blocks, global pooling, a linear head.

    Args:
        width: channels of the first conv; later blocks use 2x and 4x.
    """
    from torch import nn

    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, padding=1),
        nn.BatchNorm2d(2 * w),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1),
        nn.BatchNorm2d(4 * w),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * w, 10),
    )


TORCH_EXTRA = "pip install 'edgebench[torch]' torch==2.13.0"


def require_torch(what: str) -> Any:
    """The ``torch`` module, or a `MissingDependency` saying that ``what`` needs the torch extra."""
    try:
        import torch
    except ModuleNotFoundError:
        raise MissingDependency(f"{what} needs the torch extra: {TORCH_EXTRA}") from None
    return torch


def train(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int = 12,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    on_epoch: Callable[[int, float], None] | None = None,
    loss_fn: Callable[[Any, Any, Any], Any] | None = None,
) -> Any:
    """Train a classifier with Adam and a cosine schedule; deterministic for a seed.

    The one training loop of edgebench: ``train_epochs``, fine-tuning after pruning and
    distillation all use it.

    Args:
        on_epoch: called after each epoch with (epoch index, mean loss).
        loss_fn: ``loss_fn(logits, x_batch, y_batch)``; cross-entropy when not given
            (distillation passes one that also runs the teacher on ``x_batch``).

    Raises:
        MissingDependency: without PyTorch.
    """
    torch = require_torch("training")

    def cross_entropy(logits: Any, _x: Any, y_batch: Any) -> Any:
        return torch.nn.functional.cross_entropy(logits, y_batch)

    loss_of = loss_fn or cross_entropy
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), batch_size):
            idx = perm[i : i + batch_size]
            xb = xt[idx]
            opt.zero_grad()
            loss = loss_of(model(xb), xb, yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if on_epoch:
            on_epoch(epoch, total / len(xt))
    model.eval()
    return model


def accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a torch classifier on host."""
    import torch

    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def export_onnx(model: Any, sample: np.ndarray, path: Path, dynamic_batch: bool = True) -> Path:
    """Export a torch module to ONNX (one input ``input``, one output ``logits``)."""
    import torch

    model.eval()
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (torch.from_numpy(sample),),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return path


# ---- models for the compression work: bigger digits CNNs and architectures we did not design ----


def digits_cnn_32(width: int = 32) -> Any:
    """The digits CNN on inputs upsampled to 32x32 (nearest, 4x): the same data, realistic compute.

    Input ``(N, 1, 8, 8)`` as the digits set; the first layer upsamples, so the ONNX graph
    works at 32x32 and per-call overhead no longer dominates timing.
    """
    from torch import nn

    w = width
    return nn.Sequential(
        nn.Upsample(scale_factor=4, mode="nearest"),
        nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4 * w, 10),
    )  # fmt: skip


def _mnv3_block(cin: int, exp: int, cout: int, k: int, stride: int, se: bool, hs: bool) -> Any:
    import torch
    from torch import nn

    act: type[nn.Module] = nn.Hardswish if hs else nn.ReLU

    class SqueezeExcite(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            mid = max(8, c // 4)
            self.fc1, self.fc2 = nn.Conv2d(c, mid, 1), nn.Conv2d(mid, c, 1)

        def forward(self, x: Any) -> Any:
            s = torch.nn.functional.adaptive_avg_pool2d(x, 1)
            return x * torch.nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(s))))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            if exp != cin:
                layers += [nn.Conv2d(cin, exp, 1, bias=False), nn.BatchNorm2d(exp), act()]
            layers += [nn.Conv2d(exp, exp, k, stride, k // 2, groups=exp, bias=False), nn.BatchNorm2d(exp), act()]
            if se:
                layers.append(SqueezeExcite(exp))
            layers += [nn.Conv2d(exp, cout, 1, bias=False), nn.BatchNorm2d(cout)]
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: Any) -> Any:
            y = self.body(x)
            return x + y if self.residual else y

    return Block()


def mobilenet_v3_small_like(num_classes: int = 1000) -> Any:
    """MobileNetV3-Small's layer table (torchvision's) in plain torch.nn: depthwise convs,
    squeeze-excite, hard-swish, residual adds, BatchNorm. Random weights; input (N, 3, 224, 224)."""
    from torch import nn

    cfg = [  # in, expand, out, kernel, stride, SE, hard-swish
        (16, 16, 16, 3, 2, True, False), (16, 72, 24, 3, 2, False, False), (24, 88, 24, 3, 1, False, False),
        (24, 96, 40, 5, 2, True, True), (40, 240, 40, 5, 1, True, True), (40, 240, 40, 5, 1, True, True),
        (40, 120, 48, 5, 1, True, True), (48, 144, 48, 5, 1, True, True), (48, 288, 96, 5, 2, True, True),
        (96, 576, 96, 5, 1, True, True), (96, 576, 96, 5, 1, True, True),
    ]  # fmt: skip
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish(),
        *[_mnv3_block(*c) for c in cfg],
        nn.Conv2d(96, 576, 1, bias=False), nn.BatchNorm2d(576), nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(576, 1024), nn.Hardswish(), nn.Linear(1024, num_classes),
    )  # fmt: skip


def resnet18_like(num_classes: int = 1000) -> Any:
    """ResNet-18's layout (torchvision's) in plain torch.nn: basic blocks with residual adds,
    1x1 downsampling shortcuts, BatchNorm. Random weights; input (N, 3, 224, 224)."""
    from torch import nn

    class Basic(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
            )  # fmt: skip
            self.short = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )
            self.relu = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.relu(self.body(x) + self.short(x))

    layers: list[Any] = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        layers += [Basic(cin, cout, stride), Basic(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)]
    return nn.Sequential(*layers)


def two_input_onnx(path: Path, seed: int = 0) -> Path:
    """An ONNX model with two inputs and a dynamic batch axis: ``image`` (N, 1, 8, 8) and
    ``extra`` (N, 4), a conv branch and a dense branch summed into 10 logits. Random weights."""
    import torch
    from torch import nn

    class TwoInputs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10)
            )
            self.dense = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 10))

        def forward(self, image: Any, extra: Any) -> Any:
            return self.conv(image) + self.dense(extra)

    torch.manual_seed(seed)
    model = TwoInputs().eval()
    sample = (torch.zeros(1, 1, 8, 8), torch.zeros(1, 4))
    axes = {"image": {0: "batch"}, "extra": {0: "batch"}, "logits": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, sample, str(path), input_names=["image", "extra"], output_names=["logits"],
            dynamic_axes=axes, opset_version=17, dynamo=False,
        )  # fmt: skip
    return path
