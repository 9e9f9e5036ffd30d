"""Real models for the profile tests: the demo CNN's fp32 and int8-dynamic variants, a one-op-dominant ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebench import data, zoo
from edgebench.compress.api import build_variant, make_variants
from edgebench.compress.passes import Artifact, Data
from edgebench.compress.variant import Variant, variant_dir


def demo_variants(root: Path, epochs: int = 1) -> list[Variant]:
    """The 8x8 digits CNN as ``fp32`` and ``int8-dynamic``, built the way `workflows.demo` builds its variants.

    The demo itself measures the wider 32x32 CNN (`zoo.digits_cnn_32`, ~1 ms); this one runs in
    ~20 µs and trains in a second, which keeps the profile tests fast while its op types are the same.
    """
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    split = data.digits()
    model = zoo.digits_cnn()
    zoo.train(model, split.x_train, split.y_train, epochs=epochs)
    fp32 = build_variant(
        model="digits_cnn", variant="fp32", source=Artifact("torch", module=model), chain=[],
        data=Data(split.x_train, split.y_train, split.x_train[:64], split.x_test, split.y_test),
        final=variant_dir(root, "digits_cnn", "fp32"), parent=None, ref=None,
    )  # fmt: skip
    int8 = make_variants(
        fp32, [("int8-dynamic", "int8-dynamic", {})], root, calib=split.x_train[:64], eval_x=split.x_test,
        eval_y=split.y_test, torch_module=model,
    )  # fmt: skip
    return [fp32, *int8]


def dominant_onnx(path: Path, n: int, adds: int = 6, seed: int = 0, *, batch: int = 1, k: int | None = None) -> Path:
    """x[batch, k] -> MatMul with a k x n weight (k = n by default) -> Relu -> ``adds`` Adds on [batch, n].

    The MatMul costs batch*k*n, each element-wise op batch*n: a large ``k`` makes it dominate.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(rng.standard_normal((k or n, n)).astype(np.float32), "W")]
    # a Relu after the MatMul keeps ORT from fusing MatMul + Add into one Gemm
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["mm"], name="big_matmul"),
        helper.make_node("Relu", ["mm"], ["h0"]),
    ]
    for i in range(adds):
        inits.append(numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), f"b{i}"))
        nodes.append(helper.make_node("Add", [f"h{i}", f"b{i}"], [f"h{i + 1}"], name=f"add{i}"))
    nodes.append(helper.make_node("Identity", [f"h{adds}"], ["y"]))
    graph = helper.make_graph(
        nodes, "dominant", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, k or n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, n])], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
