"""Real ONNX variants for the targets tests, built with the ONNX helper (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebench.compress.variant import Variant, save_variant, variant_dir


def _save(tmp: Path, root: Path, model_name: str, variant: str, graph: object) -> Variant:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])  # type: ignore[arg-type]
    model.ir_version = 8
    src = tmp / f"{variant}.onnx"
    onnx.save(model, str(src))
    return save_variant(
        variant_dir(root, model_name, variant),
        src,
        {"model": model_name, "variant": variant, "fmt": "onnx", "parent": None, "passes": []},
    )


def mlp_variant(root: Path, name: str = "mlp", width: int = 512, seed: int = 0) -> Variant:
    """A real MLP (256 -> width -> width -> 10) with enough work per inference to show CPU limits."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    dims = [256, width, width, 10]
    inits, nodes, prev = [], [], "x"
    for i in range(3):
        w = numpy_helper.from_array((rng.standard_normal((dims[i], dims[i + 1])) * 0.05).astype(np.float32), f"W{i}")
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [f"h{i}"]))
        prev = f"h{i}"
        if i < 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )
    tmp = root / ".src"
    tmp.mkdir(parents=True, exist_ok=True)
    return _save(tmp, root, "targets_mlp", name, graph)


def memhog_variant(root: Path, megabytes: int = 900) -> Variant:
    """A tiny file whose model materialises a ``megabytes`` tensor when loaded and run."""
    from onnx import TensorProto, helper, numpy_helper

    n = megabytes * 1024 * 1024 // 4
    shape = numpy_helper.from_array(np.array([n], dtype=np.int64), "shape")
    nodes = [
        helper.make_node(
            "ConstantOfShape", ["shape"], ["big"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
        ),
        helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
        helper.make_node("ReduceSum", ["x", "axes"], ["xs"], keepdims=1),
        helper.make_node("Add", ["xs", "s"], ["y"]),
    ]
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    graph = helper.make_graph(
        nodes,
        "memhog",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        [shape, axes],
    )
    tmp = root / ".src"
    tmp.mkdir(parents=True, exist_ok=True)
    return _save(tmp, root, "targets_memhog", "memhog", graph)
