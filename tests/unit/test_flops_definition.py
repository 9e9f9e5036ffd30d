"""Issue 18 item 5: one FLOPs definition across a model's variants (`metrics.onnx_flops`).

A small Conv + MatMul + Gemm graph is counted against the hand formula (2 x multiply-accumulates), then
the same graph written with the int8 ops (ConvInteger / MatMulInteger fed by DynamicQuantizeLinear,
QLinearConv / QLinearMatMul between QuantizeLinear and DequantizeLinear, QDQ weights) and in float16
must give the very same figure; and the shape traps seen on third-party files (stale symbolic
``value_info``, a contrib op ONNX cannot infer, a free dim) give the right figure or none, never a
partial one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebench.compress import metrics

# x [N, 4, 10, 10] -> Conv 6x(4/2)x3x3, group 2, stride 2, pad 1 -> [1, 6, 5, 5] -> Reshape [1, 150]
# -> MatMul [150, 7] -> [1, 7] -> Gemm with B [5, 7] (transB) -> [1, 5]
CIN, H, COUT, K, GROUP, STRIDE, PAD, HIDDEN, CLASSES = 4, 10, 6, 3, 2, 2, 1, 7, 5
HO = (H + 2 * PAD - K) // STRIDE + 1  # 5
FLAT = COUT * HO * HO  # 150
CONV_MACS = (COUT * HO * HO) * (CIN // GROUP) * K * K  # each output element: Cin/group x k x k products
MATMUL_MACS = HIDDEN * FLAT  # each of the 7 outputs: a 150-long dot product
GEMM_MACS = CLASSES * HIDDEN
EXPECTED = 2 * (CONV_MACS + MATMUL_MACS + GEMM_MACS)  # a multiply-add is 2 FLOPs

RNG = np.random.default_rng(0)
W = (RNG.standard_normal((COUT, CIN // GROUP, K, K)) * 0.3).astype(np.float32)
W2 = (RNG.standard_normal((FLAT, HIDDEN)) * 0.1).astype(np.float32)
W3 = (RNG.standard_normal((CLASSES, HIDDEN)) * 0.1).astype(np.float32)
CONV = {"group": GROUP, "strides": [STRIDE, STRIDE], "pads": [PAD] * 4}


def _save(path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], batch: str | int = "N") -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, CIN, H, H])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, CLASSES])],
        [*inits, numpy_helper.from_array(np.array([-1, FLAT], np.int64), "flat"), numpy_helper.from_array(W3, "w3")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _head(src: str) -> list[onnx.NodeProto]:
    return [helper.make_node("Gemm", [src, "w3"], ["y"], transB=1)]


def fp32_model(path: Path, batch: str | int = "N") -> Path:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], **CONV),
        helper.make_node("Reshape", ["c", "flat"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m"]),
        *_head("m"),
    ]
    return _save(path, nodes, [numpy_helper.from_array(W, "w"), numpy_helper.from_array(W2, "w2")], batch)


def _q(name: str, a: np.ndarray) -> list[onnx.TensorProto]:
    """An int8 weight with its scale and zero point (``name``, ``name_s``, ``name_zp``)."""
    scale = float(np.abs(a).max() / 127)
    return [
        numpy_helper.from_array(np.round(a / scale).astype(np.int8), name),
        numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
        numpy_helper.from_array(np.array(0, np.int8), f"{name}_zp"),
    ]


def dynamic_int8_model(path: Path) -> Path:
    """As int8-dynamic writes it: DynamicQuantizeLinear -> ConvInteger / MatMulInteger -> Cast -> Mul."""
    one = numpy_helper.from_array(np.array(0.01, np.float32), "scale")
    nodes = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xzp"]),
        helper.make_node("ConvInteger", ["xq", "w", "xzp"], ["ci"], **CONV),
        helper.make_node("Cast", ["ci"], ["cf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["cf", "scale"], ["c"]),
        helper.make_node("Reshape", ["c", "flat"], ["r"]),
        helper.make_node("DynamicQuantizeLinear", ["r"], ["rq", "rs", "rzp"]),
        helper.make_node("MatMulInteger", ["rq", "w2", "rzp"], ["mi"]),
        helper.make_node("Cast", ["mi"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["mf", "scale"], ["m"]),
        *_head("m"),
    ]
    inits = [
        numpy_helper.from_array(np.round(W * 100 + 128).clip(0, 255).astype(np.uint8), "w"),
        numpy_helper.from_array(np.round(W2 * 100 + 128).clip(0, 255).astype(np.uint8), "w2"),
        one,
    ]
    return _save(path, nodes, inits)


def qlinear_model(path: Path) -> Path:
    """The QOperator form: QuantizeLinear -> QLinearConv / QLinearMatMul -> DequantizeLinear."""
    act = [
        numpy_helper.from_array(np.array(0.05, np.float32), "a_s"),
        numpy_helper.from_array(np.array(0, np.int8), "a_zp"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "a_s", "a_zp"], ["xq"]),
        helper.make_node("QLinearConv", ["xq", "a_s", "a_zp", "w", "w_s", "w_zp", "a_s", "a_zp"], ["cq"], **CONV),
        helper.make_node("DequantizeLinear", ["cq", "a_s", "a_zp"], ["c"]),
        helper.make_node("Reshape", ["c", "flat"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "a_s", "a_zp"], ["rq"]),
        helper.make_node("QLinearMatMul", ["rq", "a_s", "a_zp", "w2", "w2_s", "w2_zp", "a_s", "a_zp"], ["mq"]),
        helper.make_node("DequantizeLinear", ["mq", "a_s", "a_zp"], ["m"]),
        *_head("m"),
    ]
    return _save(path, nodes, [*act, *_q("w", W), *_q("w2", W2)])


def qdq_model(path: Path) -> Path:
    """The QDQ form int8-static writes: int8 weights behind DequantizeLinear feeding the float ops."""
    nodes = [
        helper.make_node("DequantizeLinear", ["w", "w_s", "w_zp"], ["wf"]),
        helper.make_node("DequantizeLinear", ["w2", "w2_s", "w2_zp"], ["w2f"]),
        helper.make_node("Conv", ["x", "wf"], ["c"], **CONV),
        helper.make_node("Reshape", ["c", "flat"], ["r"]),
        helper.make_node("MatMul", ["r", "w2f"], ["m"]),
        *_head("m"),
    ]
    return _save(path, nodes, [*_q("w", W), *_q("w2", W2)])


def fp16_model(src: Path, path: Path) -> Path:
    """The fp16 pass's converter on the float graph (float32 inputs and outputs kept, Casts added)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(path))
    return path


def test_the_count_is_the_hand_formula(tmp_path: Path) -> None:
    got = metrics.onnx_flops(fp32_model(tmp_path / "m.onnx"))
    assert (CONV_MACS, MATMUL_MACS, GEMM_MACS) == (2700, 1050, 35)
    assert got["macs"] == CONV_MACS + MATMUL_MACS + GEMM_MACS
    assert got["flops"] == EXPECTED == 7570
    assert got["batch"] == 1 and got["uncounted_nodes"] == 0


def test_the_batch_given_multiplies_the_count(tmp_path: Path) -> None:
    got = metrics.onnx_flops(fp32_model(tmp_path / "m.onnx"), {"x": [3, CIN, H, H]})
    assert got["flops"] == 3 * EXPECTED and got["batch"] == 3


@pytest.mark.parametrize("form", ["int8-dynamic", "qlinear", "qdq", "fp16"])
def test_quantized_and_float16_forms_count_as_the_float_ops(tmp_path: Path, form: str) -> None:
    build = {
        "int8-dynamic": dynamic_int8_model,
        "qlinear": qlinear_model,
        "qdq": qdq_model,
        "fp16": lambda p: fp16_model(fp32_model(tmp_path / "f.onnx"), p),
    }[form]
    path = build(tmp_path / f"{form}.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"int8-dynamic": "ConvInteger", "qlinear": "QLinearMatMul", "qdq": "DequantizeLinear", "fp16": "Cast"}[
        form
    ] in ops
    got = metrics.onnx_flops(path)
    assert got["flops"] == EXPECTED, got  # Q / DQ / DynamicQuantizeLinear / Cast / Mul count 0


def test_the_real_quantizers_output_counts_as_the_float_graph(tmp_path: Path) -> None:
    """ONNX Runtime's own quantizers on the same graph (what the compress passes call)."""
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    src = fp32_model(tmp_path / "f.onnx", batch=1)

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.left = [{"x": RNG.standard_normal((1, CIN, H, H)).astype(np.float32)} for _ in range(4)]

        def get_next(self) -> dict[str, np.ndarray] | None:
            return self.left.pop() if self.left else None

    quantize_dynamic(str(src), str(tmp_path / "dyn.onnx"))
    for fmt in (QuantFormat.QDQ, QuantFormat.QOperator):
        quantize_static(str(src), str(tmp_path / f"static-{fmt.name}.onnx"), Reader(), quant_format=fmt)
    for name in ("dyn", "static-QDQ", "static-QOperator"):
        assert metrics.onnx_flops(tmp_path / f"{name}.onnx")["flops"] == EXPECTED, name
    assert "ConvInteger" in {n.op_type for n in onnx.load(str(tmp_path / "dyn.onnx")).graph.node}


def test_conv_transpose_counts_input_elements_times_its_kernel(tmp_path: Path) -> None:
    """ConvTranspose's weight is (Cin, Cout/group, k, k): each input element feeds Cout/group x k x k."""
    w = numpy_helper.from_array(np.ones((4, 3, 2, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 10, 10])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "t.onnx"))
    assert metrics.onnx_flops(tmp_path / "t.onnx")["flops"] == 2 * (4 * 5 * 5) * (3 * 2 * 2)


def test_stale_symbolic_shapes_stored_in_the_file_do_not_hide_ops(tmp_path: Path) -> None:
    """A file whose ``value_info`` keeps symbolic dims (a converter's or a pre-processor's): inferred afresh."""
    path = fp32_model(tmp_path / "m.onnx")
    m = onnx.load(str(path))
    m.graph.value_info.extend(
        [
            helper.make_tensor_value_info("c", TensorProto.FLOAT, ["batch", COUT, "h", "w"]),
            helper.make_tensor_value_info("m", TensorProto.FLOAT, ["batch", HIDDEN]),
        ]
    )
    onnx.save(m, str(path))
    assert metrics.onnx_flops(path)["flops"] == EXPECTED


def test_an_op_onnx_cannot_infer_is_resolved_by_the_runtime(tmp_path: Path) -> None:
    """A contrib op (com.microsoft Gelu) before the MatMul: ONNX's inference stops there; one ONNX Runtime
    inference at the same input shape gives the shapes, so the figure is the float graph's."""
    path = fp32_model(tmp_path / "m.onnx")
    m = onnx.load(str(path))
    for n in m.graph.node:
        if n.op_type == "MatMul":
            n.input[0] = "g"
    m.graph.node.insert(2, helper.make_node("Gelu", ["r"], ["g"], domain="com.microsoft"))
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(m, str(path))
    assert metrics.onnx_flops(path)["flops"] == EXPECTED


def test_a_partial_count_is_no_figure(tmp_path: Path) -> None:
    """An op neither ONNX nor the runtime knows before the MatMul: no figure, not the Conv's alone."""
    path = fp32_model(tmp_path / "m.onnx")
    m = onnx.load(str(path))
    for n in m.graph.node:
        if n.op_type == "MatMul":
            n.input[0] = "g"
    m.graph.node.insert(2, helper.make_node("Mystery", ["r"], ["g"], domain="vendor.custom"))
    m.opset_import.append(helper.make_opsetid("vendor.custom", 1))
    onnx.save(m, str(path))
    got = metrics.onnx_flops(path)
    assert got["flops"] is None and got["uncounted_nodes"] == 2  # the MatMul and the Gemm after it


def test_a_float16_resize_whose_scales_pass_through_a_cast(tmp_path: Path) -> None:
    """The fp16 converter puts a Cast on a Resize's scales: the batch dim behind it must still resolve."""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["u"], mode="nearest"),
        helper.make_node("Conv", ["u", "w"], ["c"], **CONV),
        helper.make_node("Reshape", ["c", "flat2"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["m"]),
        *_head("m"),
    ]
    ho = (2 * H + 2 * PAD - K) // STRIDE + 1  # 10
    w2 = RNG.standard_normal((COUT * ho * ho, HIDDEN)).astype(np.float32)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", CIN, H, H])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", CLASSES])],
        [
            scales,
            numpy_helper.from_array(W, "w"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(np.array([-1, COUT * ho * ho], np.int64), "flat2"),
            numpy_helper.from_array(W3, "w3"),
        ],
    )
    src = tmp_path / "f.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(src))
    want = 2 * (COUT * ho * ho * (CIN // GROUP) * K * K + HIDDEN * COUT * ho * ho + GEMM_MACS)
    assert metrics.onnx_flops(src)["flops"] == want
    assert metrics.onnx_flops(fp16_model(src, tmp_path / "h.onnx"))["flops"] == want


def test_the_definition_is_stated_once() -> None:
    text = metrics.FLOPS_DEFINITION
    for word in ("2 x", "multiply-accumulate", "ConvInteger", "QLinearConv", "float16", "count 0", "pruning"):
        assert word in text
