"""Host-side measures of a variant: outputs, accuracy, fidelity, FLOPs, sparsity, zip size.

Only what can be known on the host without timing: latency is measured on boards.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import agent
from edgebench.errors import DataError, MissingDependency, ModelError

QUANT_OPS = {
    "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
    "DynamicQuantizeLinear", "QGemm", "QLinearAdd",
}  # fmt: skip
MAC_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul")


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message squeezed onto one line of at most ``limit`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_onnx(path: Path) -> Any:
    """Load and check an ONNX file.

    Raises:
        ModelError: if it is not a model or is truncated.
    """
    import onnx

    try:
        m = onnx.load(str(path))
        onnx.checker.check_model(m)
    except Exception as exc:
        raise ModelError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}: {one_line(exc, 120)}): "
            "check that the file is complete and really an ONNX model"
        ) from None
    if not m.graph.node:
        raise ModelError(f"{path} is not an ONNX model (its graph has no nodes): check the file")
    return m


def onnx_session(path: Path) -> Any:
    """An ONNX Runtime CPU session (1 thread so figures are comparable)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"{path} cannot be loaded by ONNX Runtime ({one_line(exc, 160)}): check the model") from None


def as_feeds(input_names: list[str], x: Any) -> dict[str, np.ndarray]:
    """Inputs as a name → array dict (one array means the model's only input)."""
    if isinstance(x, dict):
        return x
    if len(input_names) != 1:
        raise DataError(
            f"the model has {len(input_names)} inputs ({', '.join(input_names)}) but the data has one array x: "
            "save one array per input, named after the inputs"
        )
    return {input_names[0]: x}


class Batchless(np.ndarray):
    """An input array that is not split into samples (a scalar setting, a state whose batch axis is not 0):
    every sample of the data uses it whole. Made with ``np.asarray(a).view(Batchless)``."""


def n_samples(x: Any) -> int:
    """Number of samples in inputs (array or dict of arrays; `Batchless` arrays have none)."""
    if isinstance(x, dict):
        rows = [len(v) for v in x.values() if not isinstance(v, Batchless)]
        return rows[0] if rows else 1
    return len(x)


def take(x: Any, sl: slice | np.ndarray) -> Any:
    """Rows of inputs (array or dict of arrays); `Batchless` arrays are given whole."""
    if isinstance(x, dict):
        return {k: v if isinstance(v, Batchless) else v[sl] for k, v in x.items()}
    return x[sl]


def check_onnx_data(path: Path, x: Any, what: str) -> None:
    """Check that data fits an ONNX model's inputs (names, trailing shape, dtype).

    Raises:
        DataError: naming the input, what it expects and what the data has.
    """
    sess = onnx_session(path)
    names = [i.name for i in sess.get_inputs()]
    feeds = as_feeds(names, x)
    for inp in sess.get_inputs():
        if inp.name not in feeds:
            raise DataError(f"{what} has no array for model input '{inp.name}' (it has {sorted(feeds)})")
        arr = feeds[inp.name]
        if isinstance(arr, Batchless):  # used whole: the agent's checks made it at the model's shape
            continue
        want = inp.type.replace("tensor(", "").replace(")", "").replace("float", "float32")
        want = {"double": "float64", "float3216": "float16"}.get(want, want)
        if arr.dtype.name != want:
            raise DataError(
                f"{what} for input '{inp.name}' is {arr.dtype.name} but the model takes {want}: convert it (x.astype)"
            )
        shape = list(inp.shape)
        ok = arr.ndim == len(shape) and all(
            not isinstance(s, int) or s == a for s, a in zip(shape[1:], arr.shape[1:], strict=False)
        )
        if not ok:
            raise DataError(
                f"{what} for input '{inp.name}' has shape {list(arr.shape)} but the model takes {shape} "
                "(first axis = samples): reshape the data or give the matching model"
            )


def run_onnx(path: Path, x: Any) -> np.ndarray:
    """The first output of an ONNX model over all samples (see `run_artifact`)."""
    return run_artifact("onnx", path, x)


@contextlib.contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Silence what native code writes to file descriptor 2 (Python's own errors still raise)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tflite_interpreter(path: Path) -> Any:
    """A TFLite interpreter from ai-edge-litert (or TensorFlow as a fallback).

    Raises:
        ModelError: if the file is not a readable TFLite model.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - the tflite extra brings ai-edge-litert
        try:
            import tensorflow as tf
        except ImportError:
            raise ModelError("running a .tflite model needs ai-edge-litert: pip install 'edgebench[tflite]'") from None
        Interpreter = tf.lite.Interpreter
    data = Path(path).read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path} is not a TFLite model (no TFL3 identifier): check the file")
    try:
        with native_stderr_quiet():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" is not ours to print
            it = Interpreter(model_content=data, num_threads=1)
            it.allocate_tensors()
    except Exception as exc:
        raise ModelError(f"{path} is not a readable TFLite model, perhaps truncated ({one_line(exc, 120)})") from None
    return it


def run_tflite(path: Path, x: Any) -> np.ndarray:
    """The first output of a TFLite model over all samples; int8 I/O is (de)quantized (see `run_artifact`)."""
    return run_artifact("tflite", path, x)


EVAL_BATCH = 256  # samples per inference on the host when the model's batch axis is free


def run_artifact(fmt: str, path: Path, x: Any) -> np.ndarray:
    """The first output of an ONNX or TFLite file over all samples, run as the agent runs it on a board.

    The agent's runtime wrappers and `agent.evaluate_outputs` do the work (one thread; int8 TFLite
    inputs quantized and outputs dequantized; `Batchless` inputs given whole to every batch; a fixed
    batch axis taken one sample at a time), so host-side and board-side figures come from one code.

    Raises:
        ModelError: the runtime cannot load the file.
        DataError: the data does not fit the model's inputs.
    """
    model = agent.RUNTIMES[agent.RUNTIME_OF_FORMAT[fmt]]({"threads": 1})
    try:
        model.load(str(path))
    except agent.AgentError as exc:
        raise ModelError(f"{path} cannot be loaded ({exc}): check the model") from None
    sig = model.signature()
    feeds = as_feeds([name for name, _, _ in sig], x)
    missing = [name for name, _, _ in sig if name not in feeds]
    if missing:
        raise DataError(f"the data has no array for model input(s) {missing} (it has {sorted(feeds)})")
    batched = [not isinstance(feeds[name], Batchless) for name, _, _ in sig]
    xs = [np.asarray(feeds[name]) for name, _, _ in sig]
    fixed = any(b and s and isinstance(s[0], int) and s[0] > 0 for (_, s, _), b in zip(sig, batched, strict=True))
    try:
        outs = agent.evaluate_outputs(model, xs, 1 if fixed else EVAL_BATCH, batched)
    except Exception as exc:  # the runtime's own words on data that does not fit, on one line
        raise DataError(f"{path.name} cannot run on the data ({one_line(exc)}): give data that fits it") from None
    return np.asarray(outs[0], dtype=np.float32)


def accuracy(logits: np.ndarray, y: np.ndarray | None) -> dict[str, Any] | None:
    """Top-1 accuracy of logits against labels, None without labels, "unknown" (not 0 %) for outputs that
    are not class scores (a dense map)."""
    if y is not None and not agent.is_classifier(logits.shape):
        return {**agent.accuracy_unknown("output0", logits.shape, len(logits)), "where": "host"}
    if y is None or len(logits) != len(y):
        return None
    return {"top1": float((logits.argmax(1) == y).mean()), "n": len(y), "where": "host"}


def fidelity(ref: np.ndarray, out: np.ndarray, min_cosine: float | None = None) -> dict[str, Any]:
    """How close a variant's outputs are to its fp32 parent's on the same inputs (`agent.fidelity`:
    cosine, max / mean abs error, SNR in dB, top-1 agreement for class scores only, ``degraded``)."""
    return agent.fidelity(out, ref, min_cosine=min_cosine)


def onnx_flops(path: Path, shapes: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """FLOPs (2 x multiply-accumulates) of one inference, counted from the ONNX graph's shapes.

    ``shapes`` gives input shapes (name -> dims) for the dims the file leaves free: the shape
    actually measured (``--dim``, an input spec, the data). A free leading batch axis counts as 1
    (FLOPs per sample); any other free dim with no shape given, or one stored as a negative
    number, makes the count unknown: ``flops`` is None, never a figure at a made-up 1x1 image
    or a negative one. So does control flow (``If``, ``Loop``, ``Scan``): which branch runs, and
    how often, depends on the inputs. Counts Conv, ConvTranspose, MatMul, Gemm and their
    integer / QLinear forms; element-wise ops are ignored (they are a small share for CNNs).
    """
    import onnx
    from onnx import shape_inference

    m = onnx.load(str(path))
    given = shapes or {}
    unknown_inputs = []
    for v in m.graph.input:
        dims = v.type.tensor_type.shape.dim
        want = given.get(v.name)
        for i, d in enumerate(dims):
            if want is not None and i < len(want) and (not d.HasField("dim_value") or d.dim_value <= 0):
                d.dim_value = int(want[i])
            elif i == 0 and len(dims) > 1 and not d.HasField("dim_value"):
                d.dim_value = 1  # a free leading batch axis: FLOPs are per sample
            elif not d.HasField("dim_value") or d.dim_value <= 0:
                unknown_inputs.append(v.name)
                break
    init_names = {i.name for i in m.graph.initializer}
    if any(n not in init_names for n in unknown_inputs):
        return {"flops": None, "macs": None, "batch": None, "uncounted_nodes": None, "unknown_inputs": unknown_inputs}
    m = shape_inference.infer_shapes(m)
    known: dict[str, list[int]] = {}
    for v in [*m.graph.input, *m.graph.value_info, *m.graph.output]:
        known[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    for init in m.graph.initializer:
        known[init.name] = list(init.dims)
    macs = 0
    unknown = 0
    for node in m.graph.node:
        if node.op_type not in MAC_OPS:
            continue
        wi = 3 if node.op_type.startswith("QLinear") else 1
        out = known.get(node.output[0])
        w = known.get(node.input[wi]) if len(node.input) > wi else None
        a = known.get(node.input[0])
        if not out or not w or min(out) <= 0 or min(w) <= 0:  # 0: not inferred; < 0: a -1 stored as a dim
            unknown += 1
            continue
        if "Conv" in node.op_type:
            # out: N, Cout, spatial...; w: Cout, Cin/group, k...
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type == "Gemm":
            trans_b = any(at.name == "transB" and at.i for at in node.attribute)
            k = w[1] if trans_b else w[0]
            macs += int(np.prod(out)) * int(k)
        else:
            k = a[-1] if a else (w[-2] if len(w) >= 2 else 0)
            macs += int(np.prod(out)) * int(k)
    branches = any(n.op_type in ("If", "Loop", "Scan") for n in m.graph.node)  # work depends on the data
    if macs < 0 or (unknown and not macs) or branches:  # no figure rather than a wrong one
        return {"flops": None, "macs": None, "batch": None, "uncounted_nodes": unknown}
    batch = next((d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[:1]), 1) if m.graph.input else 1
    return {"flops": 2 * macs, "macs": macs, "batch": batch, "uncounted_nodes": unknown}


def measured_flops(fmt: str, path: Path, inputs: Any) -> dict[str, Any]:
    """``{"flops", "flops_shapes"}`` of one timed inference at the shapes the agent used (its input
    records: name, shape), batch included; empty when unknown (TFLite, a shape left free)."""
    if fmt != "onnx" or not inputs:
        return {}
    shapes = {str(i["name"]): [int(d) for d in i["shape"]] for i in inputs}
    flops = onnx_flops(path, shapes)["flops"]
    return {} if flops is None else {"flops": flops, "flops_shapes": shapes}


def onnx_weights(model: Any) -> list[Any]:
    """The weight tensors of an ONNX model: its initializers and the tensors of its ``Constant`` nodes
    (how other exporters store weights)."""
    consts = [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return [*model.graph.initializer, *consts]


def onnx_weight_stats(model: Any) -> dict[str, Any]:
    """Parameter count and sparsity (exact zeros) of the weight tensors (rank >= 2) of an ONNX model."""
    from onnx import numpy_helper

    total = zeros = params = 0
    for init in onnx_weights(model):
        arr = numpy_helper.to_array(init)
        params += int(arr.size)
        if arr.ndim >= 2 and arr.dtype.kind in "fiu":
            total += int(arr.size)
            zeros += int((arr == 0).sum())
    return {"params": params, "sparsity": (zeros / total) if total else 0.0, "weights": total}


def tflite_weight_stats(path: Path) -> dict[str, Any]:
    """Parameter count (elements of constant tensors) and weight sparsity of a TFLite file.

    Raises:
        MissingDependency: without ai-edge-quantizer (the tflite extra), which reads the flatbuffer.
    """
    try:
        from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfu
    except ModuleNotFoundError:
        raise MissingDependency(
            f"reading a TFLite model's weights needs the tflite extra: pip install 'edgebench[tflite]' ({path.name})"
        ) from None

    model = tfu.read_model(Path(path))
    total = zeros = params = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            try:
                arr = tfu.get_tensor_data(t, model.buffers)
            except (ValueError, KeyError, TypeError):
                continue
            if arr is None or arr.size == 0:
                continue
            params += int(arr.size)
            if arr.ndim >= 2:
                total += int(arr.size)
                zeros += int((arr == 0).sum())
    return {"params": params, "sparsity": (zeros / total) if total else 0.0, "weights": total}


def onnx_int8_weights(model: Any) -> int:
    """How many 8-bit integer weight tensors (initializers with elements) an ONNX model holds."""
    return sum(1 for t in model.graph.initializer if t.data_type in (2, 3) and len(t.dims) > 0)  # UINT8, INT8


def is_quantized_onnx(model: Any) -> list[str]:
    """The quantization op types found in an ONNX model (empty if it is float)."""
    return sorted({n.op_type for n in model.graph.node if n.op_type in QUANT_OPS})


def tflite_quantized_tensors(path: Path) -> list[str]:
    """Names of int8/uint8/int16 constant (weight) tensors with quantization in a TFLite file."""
    it = tflite_interpreter(path)
    out = []
    for t in it.get_tensor_details():
        q = t.get("quantization_parameters", {})
        if t["dtype"] in (np.int8, np.uint8, np.int16) and len(q.get("scales", [])) > 0:
            out.append(t["name"])
    return out


def zip_bytes(path: Path) -> int:
    """Size of the file once deflate-compressed: what unstructured sparsity saves on disk or on the wire."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        z.write(path, arcname=path.name)
    return len(buf.getvalue())
