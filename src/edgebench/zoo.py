"""Models edgebench makes itself (no downloads): the digits CNN and its trainer."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def digits_cnn(width: int = 16) -> Any:
    """A small CNN for 1x8x8 digits: three conv blocks, global pooling, a linear head.

    Args:
        width: channels of the first conv; later blocks use 2x and 4x.
    """
    from torch import nn

    w = width
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4 * w, 10),
    )


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
) -> Any:
    """Train a classifier with Adam and cross-entropy; deterministic for a seed.

    Args:
        on_epoch: called after each epoch with (epoch index, mean loss).
    """
    import torch

    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
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
