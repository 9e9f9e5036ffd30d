"""Real model files for the bench tests, built without torch (ONNX helper, TensorFlow converter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from edgebench.compress.variant import Variant, save_variant


def onnx_model(path: Path, kind: str = "tiny", seed: int = 0, n_in: int = 4, n_out: int = 3) -> Path:
    """ONNX models: ``tiny`` (x float [batch, n_in]), ``multi`` (a, b), ``uint8`` input, ``badop`` (unknown op)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.standard_normal((n_in, n_out)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal(n_out).astype(np.float32), "B"),
    ]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])]
    mm = [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])]
    opsets = [helper.make_opsetid("", 17)]
    if kind == "tiny":
        nodes, ins = mm, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])]
    elif kind == "multi":
        nodes = [helper.make_node("Mul", ["a", "b"], ["x"]), *mm]
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", n_in]) for n in ("a", "b")]
    elif kind == "uint8":
        nodes = [helper.make_node("Cast", ["q"], ["x"], to=TensorProto.FLOAT), *mm]
        ins = [helper.make_tensor_value_info("q", TensorProto.UINT8, ["batch", n_in])]
    elif kind == "badop":
        nodes = [helper.make_node("NoSuchOp", ["x"], ["x2"], domain="com.example"), *mm]
        nodes[1] = helper.make_node("MatMul", ["x2", "W"], ["xw"])
        ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])]
        opsets.append(helper.make_opsetid("com.example", 1))
    else:
        raise ValueError(kind)
    graph = helper.make_graph(nodes, kind, ins, out, inits)
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def tflite_models(folder: Path, n_in: int = 4, n_out: int = 3, seed: int = 0) -> tuple[Path, Path]:
    """Two real .tflite files made by the TensorFlow converter in one child process: ``fp32.tflite``
    (MatMul, float input) and ``int8.tflite`` (post-training quantized, int8 input/output with scale and zero point).
    """
    fp32, int8 = folder / "fp32.tflite", folder / "int8.tflite"
    code = f"""
import numpy as np, tensorflow as tf
w = tf.constant(np.random.default_rng({seed}).standard_normal(({n_in}, {n_out})).astype('float32'))
@tf.function(input_signature=[tf.TensorSpec([1, {n_in}], tf.float32)])
def f(x):
    return tf.matmul(x, w)
fn = f.get_concrete_function()
open({str(fp32)!r}, 'wb').write(tf.lite.TFLiteConverter.from_concrete_functions([fn]).convert())
c = tf.lite.TFLiteConverter.from_concrete_functions([fn])
rng = np.random.default_rng(1)
c.optimizations = [tf.lite.Optimize.DEFAULT]
c.representative_dataset = lambda: ([rng.standard_normal((1, {n_in})).astype('float32')] for _ in range(100))
c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
c.inference_input_type = tf.int8
c.inference_output_type = tf.int8
open({str(int8)!r}, 'wb').write(c.convert())
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    return fp32, int8


def variant(root: Path, model: str, name: str, artifact: Path, fmt: str = "onnx", parent: str | None = None) -> Variant:
    """Save ``artifact`` as ``root/model/name`` (a real variant folder with a manifest)."""
    return save_variant(
        root / model / name, artifact, {"model": model, "variant": name, "fmt": fmt, "parent": parent, "passes": []}
    )


def eval_npz(path: Path, n: int = 64, n_in: int = 4, seed: int = 1, **extra: np.ndarray) -> Path:
    """Eval data ``x`` float32 [n, n_in] and labels ``y`` in 0..2."""
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.standard_normal((n, n_in)).astype(np.float32), "y": rng.integers(0, 3, n), **extra}
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path
