"""Fixtures shared by every test folder."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def make_tiny_onnx(path: Path, n_in: int = 4, n_out: int = 3, seed: int = 0) -> Path:
    """A real ONNX classifier (MatMul + Add) with a dynamic batch axis, made without torch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.standard_normal((n_in, n_out)).astype(np.float32), "W")
    b = numpy_helper.from_array(rng.standard_normal(n_out).astype(np.float32), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    """Path to a tiny real ONNX model: input x [batch, 4] float32, output y [batch, 3]."""
    return make_tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Train with one torch thread: on a shared 2-core machine two OpenMP threads ran tiny models ~30x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import tensorflow`` fail as it does where TensorFlow is not installed."""
    real = builtins.__import__

    def fake(name: str, *a: Any, **kw: Any) -> Any:
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("No module named 'tensorflow'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
