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
FLOPS_DEFINITION = (
    "FLOPs = 2 x the multiply-accumulates of Conv, ConvTranspose, MatMul and Gemm for one inference at the "
    "measured input shape (batch 1 when the batch axis is free); their int8 (ConvInteger, MatMulInteger, "
    "QLinearConv, QLinearMatMul, QGemm) and float16 forms count as the float32 op, and element-wise ops, "
    "activations, pooling, Cast and (De)QuantizeLinear count 0, so every variant of a model is counted alike "
    "and fewer FLOPs means less compute (pruning)"
)
"""The one FLOPs definition (`onnx_flops`), in words: what `variants --help` and the README say."""

# op type -> (activation input, weight input, kind): the ops that do the multiply-accumulates, whatever
# their precision. An integer or QLinear op counts exactly as the float op it replaces (Q/DQ, Cast and
# DynamicQuantizeLinear around it count 0, as every op outside this table).
MAC_OPS: dict[str, tuple[int, int, str]] = {
    "Conv": (0, 1, "conv"), "ConvInteger": (0, 1, "conv"), "QLinearConv": (0, 3, "conv"), "FusedConv": (0, 1, "conv"),
    "ConvTranspose": (0, 1, "convT"),
    "MatMul": (0, 1, "matmul"), "MatMulInteger": (0, 1, "matmul"), "QLinearMatMul": (0, 3, "matmul"),
    "MatMulIntegerToFloat": (0, 1, "matmul"), "DynamicQuantizeMatMul": (0, 1, "matmul"),
    "FusedMatMul": (0, 1, "matmul"),
    "Gemm": (0, 1, "gemm"), "QGemm": (0, 3, "gemm"),
}  # fmt: skip


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
    """FLOPs of one inference, counted from the ONNX graph's shapes as `FLOPS_DEFINITION` says.

    FLOPs = 2 x multiply-accumulates (MACs) of the ops in `MAC_OPS`: Conv (MACs = output elements x
    weight elements per output channel, groups included), ConvTranspose (input elements x weight
    elements per input channel), MatMul and Gemm (output elements x the inner dim). Their int8 forms
    (ConvInteger, MatMulInteger, QLinearConv, QLinearMatMul, QGemm, ...) and float16 forms count as the
    float32 op; every other op (element-wise, activations, pooling, Cast, QuantizeLinear,
    DequantizeLinear, DynamicQuantizeLinear) counts 0. So fp32, fp16, int8-dynamic and int8-static
    variants of one model have the same FLOPs and only a pass that removes compute (pruning) lowers them.

    ``shapes`` gives input shapes (name -> dims) for the dims the file leaves free: the shape
    actually measured (``--dim``, an input spec, the data). A free leading batch axis counts as 1
    (FLOPs per sample). Shapes are inferred by ONNX's shape inference with the file's stored
    intermediate shapes dropped (stale symbolic dims) and data propagation on (shapes computed through
    Cast, Shape, Concat: a float16 Resize); a MAC op still unresolved (an op ONNX cannot infer, such as
    a contrib op) gets its shapes from one ONNX Runtime inference of zeros at the same input shapes.

    No figure (``flops`` None), never a partial or made-up one, when: a free dim other than the batch
    has no shape given, or an input dim is stored negative; a MAC op's shapes stay unknown; or the
    graph has control flow (``If``, ``Loop``, ``Scan``: which branch runs, and how often, depends on
    the inputs).
    """
    import onnx

    m = onnx.load(str(path))
    given = shapes or {}
    init_names = {i.name for i in m.graph.initializer}
    unknown_inputs = []
    for v in m.graph.input:
        if v.name in init_names:
            continue
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
    if unknown_inputs:
        return {"flops": None, "macs": None, "batch": None, "uncounted_nodes": None, "unknown_inputs": unknown_inputs}
    if any(n.op_type in ("If", "Loop", "Scan") for n in m.graph.node):  # the work depends on the data
        return {"flops": None, "macs": None, "batch": None, "uncounted_nodes": None}
    nodes = [n for n in m.graph.node if n.op_type in MAC_OPS]
    del m.graph.value_info[:]  # stored intermediate shapes may hold symbolic or stale dims: infer afresh
    for out in m.graph.output:
        out.type.tensor_type.ClearField("shape")
    known = _inferred_shapes(m)
    counted = [_node_macs(n, known) for n in nodes]
    if any(c is None for c in counted):
        need = {t for n, c in zip(nodes, counted, strict=True) if c is None for t in _mac_tensors(n)}
        known.update(_runtime_shapes(m, sorted(need - set(known))))
        counted = [_node_macs(n, known) for n in nodes]
    uncounted = sum(1 for c in counted if c is None)
    macs = sum(c for c in counted if c is not None)
    if uncounted or macs < 0:  # no figure rather than a partial one
        return {"flops": None, "macs": None, "batch": None, "uncounted_nodes": uncounted}
    batch = next((d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[:1]), 1) if m.graph.input else 1
    return {"flops": 2 * macs, "macs": macs, "batch": batch, "uncounted_nodes": 0}


def _mac_tensors(node: Any) -> list[str]:
    """The tensors whose shapes a MAC op's count needs: activation, weight, output."""
    ai, wi, _ = MAC_OPS[node.op_type]
    return [t for t in (*[node.input[i] for i in (ai, wi) if i < len(node.input)], node.output[0]) if t]


def _attr_int(node: Any, name: str) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), 0)


def _node_macs(node: Any, known: dict[str, list[int]]) -> int | None:
    """Multiply-accumulates of one op of `MAC_OPS` from its tensors' shapes; None when one it needs is unknown."""
    ai, wi, kind = MAC_OPS[node.op_type]
    a = known.get(node.input[ai]) if len(node.input) > ai else None
    w = known.get(node.input[wi]) if len(node.input) > wi else None
    out = known.get(node.output[0])
    if kind == "convT":  # weight (Cin, Cout/group, k...): each input element feeds Cout/group x k outputs
        return None if a is None or w is None else int(np.prod(a)) * int(np.prod(w[1:]))
    if out is None:
        return None
    if kind == "conv":  # weight (Cout, Cin/group, k...): each output element sums Cin/group x k products
        return None if w is None else int(np.prod(out)) * int(np.prod(w[1:]))
    if kind == "gemm":
        if a is not None and len(a) == 2:
            k = a[0] if _attr_int(node, "transA") else a[1]
        elif w is not None and len(w) == 2:
            k = w[1] if _attr_int(node, "transB") else w[0]
        else:
            return None
        return int(np.prod(out)) * int(k)
    if a is not None:  # MatMul: numpy semantics, the inner dim is A's last (FusedMatMul may transpose A)
        k = a[-2] if _attr_int(node, "transA") and len(a) >= 2 else a[-1]
    elif w is not None:
        k = (w[-1] if _attr_int(node, "transB") else w[-2]) if len(w) >= 2 else w[0]
    else:
        return None
    return int(np.prod(out)) * int(k)


def _inferred_shapes(model: Any) -> dict[str, list[int]]:
    """Fully known shapes (every dim a positive number) of a model's tensors by ONNX's shape inference,
    with data propagation; initializers and ``Constant`` outputs included. Empty if inference fails."""
    from onnx import shape_inference

    known: dict[str, list[int]] = {init.name: list(init.dims) for init in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for at in n.attribute:
                if at.name == "value":
                    known[n.output[0]] = list(at.t.dims)
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # an op ONNX cannot check: the runtime fallback answers
        inferred = model
    for v in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        tt = v.type.tensor_type
        if v.name in known or not tt.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tt.shape.dim]
        if all(d > 0 for d in dims):
            known[v.name] = dims
    return known


def _runtime_shapes(model: Any, names: list[str]) -> dict[str, list[int]]:
    """Shapes of ``names`` as ONNX Runtime computes them on one inference of zeros at the model's (fixed)
    input shapes: for the tensors shape inference leaves unknown (contrib ops). Empty if it cannot run."""
    if not names:
        return {}
    import onnx
    import onnxruntime as ort

    m = onnx.ModelProto()
    m.CopyFrom(model)
    outputs = {o.name for o in m.graph.output}
    m.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in outputs)
    inits = {i.name for i in m.graph.initializer}
    feeds = {}
    for v in m.graph.input:
        if v.name in inits:
            continue
        tt = v.type.tensor_type
        dims = [d.dim_value for d in tt.shape.dim]
        if not v.type.HasField("tensor_type") or any(d <= 0 for d in dims):
            return {}
        feeds[v.name] = np.zeros(dims, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        got = sess.run(names, feeds)
    except Exception:  # a model too big to serialise, an op the runtime lacks: no figure
        return {}
    return {n: list(np.shape(g)) for n, g in zip(names, got, strict=True) if all(d > 0 for d in np.shape(g))}


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
