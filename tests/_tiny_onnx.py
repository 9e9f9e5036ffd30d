"""A tiny real ONNX classifier for tests (importable from any test folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
