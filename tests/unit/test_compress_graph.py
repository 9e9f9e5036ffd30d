"""Unit tests for graph-level helpers on tiny hand-built ONNX models: FLOPs, sparsity, topological order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebench.compress import metrics
from edgebench.compress.quantize import check_output, fold_constants, toposort
from edgebench.errors import ModelError


def conv_gemm_model(path: Path, batch: str | int = "N") -> Path:
    """x (N,3,8,8) -> Conv 4x3x3x3 pad 1 -> Flatten -> Gemm 256x10 (transB)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    w2 = rng.standard_normal((10, 256)).astype(np.float32)
    w2[:, :128] = 0
    g = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
            helper.make_node("Flatten", ["c"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "w2"], ["y"], transB=1, name="gemm"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 10])],
        [w, numpy_helper.from_array(w2, "w2")],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_flops_counted_from_the_graph(tmp_path: Path) -> None:
    p = conv_gemm_model(tmp_path / "m.onnx")
    got = metrics.onnx_flops(p)
    conv_macs = 4 * 8 * 8 * (3 * 3 * 3)
    gemm_macs = 10 * 256
    assert got["macs"] == conv_macs + gemm_macs
    assert got["flops"] == 2 * (conv_macs + gemm_macs)
    assert got["uncounted_nodes"] == 0


def test_weight_stats_count_zeros(tmp_path: Path) -> None:
    m = onnx.load(str(conv_gemm_model(tmp_path / "m.onnx")))
    s = metrics.onnx_weight_stats(m)
    assert s["params"] == 4 * 27 + 2560
    assert s["sparsity"] == pytest.approx(1280 / (108 + 2560))


def test_toposort_orders_producers_first() -> None:
    nodes = [
        helper.make_node("Relu", ["b"], ["c"]),
        helper.make_node("Relu", ["a"], ["b"]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])],
    )
    toposort(g)
    assert [n.output[0] for n in g.node] == ["b", "c"]


def test_not_a_model_and_truncated_files_are_model_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_text("hello, I am a text file\n")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        metrics.load_onnx(junk)
    full = conv_gemm_model(tmp_path / "m.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(ModelError, match=r"cut\.onnx"):
        metrics.load_onnx(cut)
    tfl = tmp_path / "x.tflite"
    tfl.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a TFLite model"):
        metrics.tflite_interpreter(tfl)


def test_data_checks_name_input_shape_and_dtype(tmp_path: Path) -> None:
    from edgebench.errors import DataError

    p = conv_gemm_model(tmp_path / "m.onnx")
    metrics.check_onnx_data(p, np.zeros((2, 3, 8, 8), np.float32), "eval data")
    with pytest.raises(DataError, match=r"shape \[2, 1, 8, 8\] but the model takes \['N', 3, 8, 8\]"):
        metrics.check_onnx_data(p, np.zeros((2, 1, 8, 8), np.float32), "eval data")
    with pytest.raises(DataError, match="is float64 but the model takes float32"):
        metrics.check_onnx_data(p, np.zeros((2, 3, 8, 8)), "eval data")


def test_zip_bytes_shrink_with_zeros(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dense, sparse = tmp_path / "d.bin", tmp_path / "s.bin"
    a = rng.standard_normal(20000).astype(np.float32)
    dense.write_bytes(a.tobytes())
    a[:15000] = 0
    sparse.write_bytes(a.tobytes())
    assert metrics.zip_bytes(sparse) < 0.5 * metrics.zip_bytes(dense)


def test_flops_unknown_until_free_dims_are_given(tmp_path: Path) -> None:
    """All-dynamic inputs: no figure at a made-up 1x1 image, the right one at the measured shape."""
    p = conv_gemm_model(tmp_path / "m.onnx")
    m = onnx.load(str(p))
    for d, name in zip(m.graph.input[0].type.tensor_type.shape.dim[2:], ("height", "width"), strict=True):
        d.dim_param = name
    onnx.save(m, str(p))
    assert metrics.onnx_flops(p)["flops"] is None
    got = metrics.onnx_flops(p, {"x": [1, 3, 8, 8]})
    assert got["flops"] == 2 * (4 * 8 * 8 * 27 + 10 * 256)


def test_flops_never_negative(tmp_path: Path) -> None:
    """A batch dim stored as -1 (seen in third-party files) gives no figure, not -0.25 MFLOP."""
    p = conv_gemm_model(tmp_path / "m.onnx", batch=-1)
    got = metrics.onnx_flops(p)
    assert got["flops"] is None or got["flops"] > 0


def test_params_count_constant_weights(tmp_path: Path) -> None:
    """Weights stored as Constant nodes (other exporters) are parameters too, and fold into initializers."""
    m = onnx.load(str(conv_gemm_model(tmp_path / "m.onnx")))
    consts = [helper.make_node("Constant", [], [t.name], value=t) for t in m.graph.initializer]
    nodes = [*consts, *m.graph.node]
    del m.graph.node[:], m.graph.initializer[:]
    m.graph.node.extend(nodes)
    assert metrics.onnx_weight_stats(m)["params"] == 4 * 27 + 2560
    assert fold_constants(m) == 2
    assert {t.name for t in m.graph.initializer} == {"w", "w2"} and all(n.op_type != "Constant" for n in m.graph.node)
    assert metrics.onnx_weight_stats(m)["params"] == 4 * 27 + 2560


def test_flops_unknown_with_control_flow(tmp_path: Path) -> None:
    """An If's branches do different work: no figure, rather than 0 from the MatMuls it hides."""
    branch = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["t"])], "b", [], [helper.make_tensor_value_info("t", 1, [1, 4])]
    )
    g = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")],
    )
    p = tmp_path / "if.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(p))
    assert metrics.onnx_flops(p)["flops"] is None


def test_an_invalid_quantizer_output_is_not_blamed_on_the_users_file(tmp_path: Path) -> None:
    bad = tmp_path / "step2.onnx"
    bad.write_bytes(b"junk")
    with pytest.raises(ModelError) as e:
        check_output(bad, "int8-static", "set per_channel = false")
    msg = str(e.value)
    assert msg.startswith("int8-static produced an invalid model (") and "edgebench's own output, not your file" in msg
    assert "check that the file is complete" not in msg and msg.endswith("set per_channel = false")
