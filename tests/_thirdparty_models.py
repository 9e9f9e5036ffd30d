"""Test models shaped like files that nobody in this project made (issue 10), built here, never downloaded.

* :func:`foreign_cnn` — a PyTorch CNN exported at opset 11 whose weights are ``Constant`` nodes (no
  initializers) and whose dims are all dynamic (``batch``, ``height``, ``width``), like the exports of
  another framework (an OCR text-direction classifier).
* :func:`dense_model` — a segmentation-like model with a dense output ``[N, C, H, W]``; with
  ``fragile=True`` weights float16 cannot hold make its fp16 variant garbage (degraded).
* :func:`stateful_model` — a streaming voice-activity-like model: signal ``[1, N]`` float, ``state``
  ``[2, 1, 64]`` (batch axis 1) and a scalar int64 ``sr`` that selects an ``If`` branch; the 16000
  branch does ``heavy`` extra 512x512 MatMuls (measurably slower) and answers class 1, the other class 0.
* :func:`fp16_tflite` — a Keras CNN converted to .tflite with float16 weights (DEQUANTIZE ops) and its
  SignatureDef stripped (``get_signature_list()`` is empty). Built in a child process (TensorFlow).

Each builder writes one file and returns its path; every one takes well under a few seconds except the
TFLite one (a TensorFlow import, ~10 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIGNAL = 512


def constants_from_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite every initializer of the main graph into a ``Constant`` node (in place), as other exporters do."""
    graph = model.graph
    consts = [helper.make_node("Constant", [], [t.name], value=t, name=f"const_{t.name}") for t in graph.initializer]
    names = {t.name for t in graph.initializer}
    kept_inputs = [i for i in graph.input if i.name not in names]
    nodes = consts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    del graph.input[:]
    graph.input.extend(kept_inputs)
    return model


def foreign_cnn(path: Path, classes: int = 4, width: int = 16, seed: int = 0) -> Path:
    """A PyTorch CNN (conv-bn-relu x3, global pool, linear) exported at opset 11, weights as ``Constant``
    nodes, input ``x`` ``[batch, 3, height, width]`` and output ``[batch, classes]`` all dynamic."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(width * 2, width * 2, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width * 2, classes),
    ).eval()
    raw = path.with_suffix(".raw.onnx")
    torch.onnx.export(
        net,
        (torch.randn(1, 3, 32, 32),),
        str(raw),
        opset_version=11,
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    model = constants_from_initializers(onnx.load(str(raw)))
    raw.unlink()
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def dense_model(path: Path, classes: int = 4, size: int = 32, fragile: bool = False, seed: int = 0) -> Path:
    """A segmentation-like ONNX model (opset 13): ``x`` ``[batch, 3, size, size]`` -> ``mask``
    ``[batch, classes, size, size]`` through two 3x3 convolutions.

    ``fragile=True`` stores the weights of the dominant output channel scaled by 1e-9 and multiplies
    that channel back by 1e9 after the convolution, as exporters that fold a normalisation do:
    exact in float32, but float16 cannot hold 1e-9 nor 1e9 (the converter clamps them to 6e-8 and
    65504), so an fp16 variant's output is far from the parent's (cosine well below 0.99).
    """
    rng = np.random.default_rng(seed)
    width = 8
    w2 = (rng.standard_normal((classes, width, 3, 3)) * 0.2).astype(np.float32)
    if fragile:
        w2[0] *= 10 * 1e-9  # channel 0 carries most of the output's energy once scaled back
    inits = [
        numpy_helper.from_array((rng.standard_normal((width, 3, 3, 3)) * 0.3).astype(np.float32), "w1"),
        numpy_helper.from_array(np.zeros(width, np.float32), "b1"),
        numpy_helper.from_array(w2, "w2"),
        numpy_helper.from_array(np.zeros(classes, np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
    ]
    if fragile:
        back = np.ones((1, classes, 1, 1), np.float32)
        back[0, 0] = 1e9
        inits.append(numpy_helper.from_array(back, "back"))
        nodes += [
            helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
            helper.make_node("Mul", ["c2", "back"], ["mask"]),
        ]
    else:
        nodes.append(helper.make_node("Conv", ["r1", "w2", "b2"], ["mask"], pads=[1, 1, 1, 1]))
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", classes, size, size])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def stateful_model(path: Path, heavy: int = 8, signal: int | str = SIGNAL) -> Path:
    """The stateful model described in the module docstring (opset 13).

    ``signal`` is the length of the signal axis, or a dim name (``"N"``) to leave it dynamic (the
    model then only runs at ``N=512``, like a streaming model with a fixed window).
    """
    n = SIGNAL
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array(16000, dtype=np.int64), "sr16k"),
        numpy_helper.from_array(np.array([[0.0, 10.0]], dtype=np.float32), "bias_then"),
        numpy_helper.from_array(np.array([[10.0, 0.0]], dtype=np.float32), "bias_else"),
        numpy_helper.from_array((rng.standard_normal((n, 2)) * 1e-3).astype(np.float32), "w_out"),
        numpy_helper.from_array(np.array([0.5], dtype=np.float32), "half"),
    ]
    then_nodes, prev = [], "input"
    for i in range(heavy):
        inits.append(numpy_helper.from_array((rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32), f"w{i}"))
        then_nodes += [
            helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
            helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]),
        ]
        prev = f"t{i}"
    then_nodes += [
        helper.make_node("MatMul", [prev, "w_out"], ["lt"]),
        helper.make_node("Add", ["lt", "bias_then"], ["logits_then"]),
    ]
    info = helper.make_tensor_value_info
    then_g = helper.make_graph(then_nodes, "then", [], [info("logits_then", TensorProto.FLOAT, [1, 2])])
    else_g = helper.make_graph(
        [helper.make_node("MatMul", ["input", "w_out"], ["le"]), helper.make_node("Add", ["le", "bias_else"], ["l_e"])],
        "else",
        [],
        [info("l_e", TensorProto.FLOAT, [1, 2])],
    )
    nodes = [
        helper.make_node("Equal", ["sr", "sr16k"], ["is16k"]),
        helper.make_node("If", ["is16k"], ["logits"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Mul", ["state", "half"], ["state_out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "vad",
        [
            info("input", TensorProto.FLOAT, [1, signal]),
            info("state", TensorProto.FLOAT, [2, 1, 64]),
            info("sr", TensorProto.INT64, []),
        ],
        [info("logits", TensorProto.FLOAT, [1, 2]), info("state_out", TensorProto.FLOAT, [2, 1, 64])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


_FP16_TFLITE = r"""
import sys
import numpy as np, tensorflow as tf, keras
from tensorflow.lite.tools import flatbuffer_utils
out, size, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keras.utils.set_random_seed(0)
net = keras.Sequential([
    keras.Input((size, size, 3), batch_size=1, name="image"),
    keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
    keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(classes),
])
conv = tf.lite.TFLiteConverter.from_keras_model(net)
conv.optimizations = [tf.lite.Optimize.DEFAULT]
conv.target_spec.supported_types = [tf.float16]
model = flatbuffer_utils.convert_bytearray_to_object(bytearray(conv.convert()))
model.signatureDefs = []
data = flatbuffer_utils.convert_object_to_bytearray(model)
open(out, "wb").write(data)
interp = tf.lite.Interpreter(model_content=bytes(data))
ops = {d["op_name"] for d in interp._get_ops_details()}
assert interp.get_signature_list() == {}, interp.get_signature_list()
assert "DEQUANTIZE" in ops, ops
"""


def fp16_tflite(path: Path, size: int = 32, classes: int = 4) -> Path:
    """A Keras CNN (input ``[1, size, size, 3]``) as .tflite with float16 weights behind DEQUANTIZE ops and no
    SignatureDef; the child process checks both with the interpreter before returning."""
    subprocess.run(
        [sys.executable, "-c", _FP16_TFLITE, str(path), str(size), str(classes)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path
