"""Build ``detector.onnx``: a small text detector shaped like a file another framework exported.

edgebench's README compresses and measures it (``examples/detector.toml``) to show what
happens with a model nobody in this project made. It is built here from numpy weights
with ``onnx.helper`` (no download, no torch), and looks like a DB-style text detector
exported by another framework:

* opset 11, IR version 6, producer ``otherframework``;
* every weight a ``Constant`` node (no initializers), as some exporters write them;
* every dimension dynamic: input ``image`` ``[batch, 3, height, width]``;
* a dense output: ``prob`` ``[batch, 1, height, width]``, a per-pixel text probability
  (Conv-Relu x3 with one stride-2 step, a nearest 2x Resize back, Conv, Sigmoid).

Usage::

    python examples/make_detector.py                 # writes examples/detector.onnx
    python examples/make_detector.py -o other.onnx   # or another path

Exit 0 with the path written; exit 1 with one line when the folder cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT = Path(__file__).resolve().parent / "detector.onnx"
OPSET = 11


def _const(name: str, value: np.ndarray) -> onnx.NodeProto:
    """A ``Constant`` node holding ``value`` under ``name`` (how the weights are stored)."""
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name), name=f"const_{name}")


def _conv_weights(rng: np.random.Generator, cout: int, cin: int, k: int = 3) -> np.ndarray:
    """He-initialised convolution weights ``[cout, cin, k, k]`` (float32)."""
    std = np.sqrt(2.0 / (cin * k * k))
    return (rng.standard_normal((cout, cin, k, k)) * std).astype(np.float32)


def detector(width: int = 16, seed: int = 0) -> onnx.ModelProto:
    """The detector graph (see the module docstring), checked by ``onnx.checker``.

    Args:
        width: channels of the first convolution (the second and third have twice as many).
        seed: seed of the random weights.
    """
    rng = np.random.default_rng(seed)
    w2 = 2 * width
    consts = {
        "w1": _conv_weights(rng, width, 3),
        "b1": np.zeros(width, np.float32),
        "w2": _conv_weights(rng, w2, width),
        "b2": np.zeros(w2, np.float32),
        "w3": _conv_weights(rng, w2, w2),
        "b3": np.zeros(w2, np.float32),
        "w4": _conv_weights(rng, 1, w2),
        "b4": np.full(1, -1.0, np.float32),
        "roi": np.zeros(0, np.float32),  # Resize-11 takes roi and scales as inputs
        "scales": np.array([1, 1, 2, 2], np.float32),
    }
    nodes = [_const(k, v) for k, v in consts.items()]
    nodes += [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], pads=[1, 1, 1, 1], name="conv3"),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("Resize", ["r3", "roi", "scales"], ["up"], mode="nearest", name="upsample"),
        helper.make_node("Conv", ["up", "w4", "b4"], ["logits"], pads=[1, 1, 1, 1], name="head"),
        helper.make_node("Sigmoid", ["logits"], ["prob"], name="prob"),
    ]
    graph = helper.make_graph(
        nodes,
        "text_detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="otherframework")
    model.ir_version = 6
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    """Write the detector; the exit code (0, or 1 with one line on stderr)."""
    parser = argparse.ArgumentParser(description="Build a small third-party-style text detector (ONNX, opset 11).")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT, help=f"where to write it (default {DEFAULT})")
    args = parser.parse_args(argv)
    out: Path = args.output
    try:
        onnx.save(detector(), str(out))
    except OSError as exc:
        print(f"make_detector: cannot write {out} ({exc.strerror}): give a writable path with -o", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
