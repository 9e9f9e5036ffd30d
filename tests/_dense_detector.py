"""A third-party-style text detector, built here: a dense probability map whose variants come out degraded.

:func:`dense_detector` writes an ONNX graph shaped like a DB-style text detector exported by another
framework: opset 11, every weight a ``Constant`` node (no initializers), all dims dynamic (``batch``,
``height``, ``width``), input ``image`` ``[batch, 3, height, width]`` and output ``prob``
``[batch, 1, height, width]`` (Conv -> Relu -> Conv -> Sigmoid). Its weights are made so that the
usual compressions break it, as they break real exports with folded normalisations:

* the first convolution's weights span 1e-9..1e3 in one tensor with a 1e9 scale folded back after it,
  so float16 (which cannot hold 1e-9 nor 1e9) and int8 (one scale for 1e3 rounds the rest to 0) both
  lose the signal;
* a strongly negative bias before the sigmoid keeps the fp32 map near 0 except where text is, so a
  variant that lost the signal gives a map whose cosine to the parent's is far below 0.99.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name), name=f"const_{name}")


def dense_detector(path: Path, width: int = 8, seed: int = 0) -> Path:
    """Write the detector (see the module docstring) to ``path``; its path."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((width, 3, 3, 3)) * 0.3 * 1e-9).astype(np.float32)  # folded normalisation
    w1[0, 0, 0, 0] = 1e3 * 1e-9  # one outlier sets the int8 scale
    back = np.full((1, width, 1, 1), 1e9, np.float32)
    w2 = (rng.standard_normal((1, width, 3, 3)) * 0.5).astype(np.float32)
    w2[0, 0] = 0.0  # the outlier's channel does not reach the map
    nodes = [
        _const("w1", w1),
        _const("b1", np.zeros(width, np.float32)),
        _const("back", back),
        _const("w2", w2),
        _const("b2", np.full(1, -4.0, np.float32)),
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c1", "back"], ["s1"]),
        helper.make_node("Relu", ["s1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["logits"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["logits"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes,
        "text_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], producer_name="otherframework")
    model.ir_version = 6
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
