"""ONNX quantization passes: fp16, int8 dynamic, int8 static (QDQ) with accuracy-aware fallback.

Facts measured on this project's CPU (x86 AVX2 without VNNI, ONNX Runtime 1.32, 1 thread,
batch 1; ``tests/perf/perf_compress.py``): on the 32x32 digits CNN, static QDQ int8 ran
2.6x faster than fp32 and dynamic int8 (Conv becomes ConvInteger) 4.7x *slower*; fp16
was no faster than fp32 (ONNX Runtime's CPU provider computes most ops in float32 and
casts), and on MobileNetV3-Small-like it was 2.6x slower. The passes do not hide this:
each manifest records what was quantized, and latency is measured on the board.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgebench.compress import metrics
from edgebench.compress.passes import Artifact, Context, Pass, label, param
from edgebench.errors import DataError, ModelError

DynamicOp = Literal["Conv", "MatMul", "Gemm", "Attention", "LSTM", "Gather", "EmbedLayerNormalization"]


QDQ_PER_CHANNEL_OPSET = 13  # DequantizeLinear takes an ``axis`` (per-channel scales) from opset 13


def _refuse_quantized(path: Path, ctx: Context) -> Any:
    m = metrics.load_onnx(path)
    found = metrics.is_quantized_onnx(m)
    if found:
        raise ModelError(
            f"{label(path, ctx)} is already quantized (it has {', '.join(found)} nodes): "
            "use it as is instead of quantizing twice"
        )
    return m


def fold_constants(model: Any) -> int:
    """Turn the main graph's ``Constant`` nodes into initializers, in place; returns how many.

    Exporters other than PyTorch's often store weights as ``Constant`` nodes; ONNX Runtime's
    quantizers only quantize initializers ("Expected ... to be an initializer").
    """
    from onnx import helper, numpy_helper

    outputs = {o.name for o in model.graph.output}
    kept, folded = [], []
    for node in model.graph.node:
        if node.op_type != "Constant" or len(node.attribute) != 1 or node.output[0] in outputs:
            kept.append(node)
            continue
        attr = node.attribute[0]
        if attr.name == "value":
            t = type(attr.t)()
            t.CopyFrom(attr.t)
            t.name = node.output[0]
        elif attr.name in ("value_float", "value_floats", "value_int", "value_ints"):
            dtype = np.float32 if "float" in attr.name else np.int64
            t = numpy_helper.from_array(np.array(helper.get_attribute_value(attr), dtype=dtype), node.output[0])
        else:  # sparse or string constants stay nodes
            kept.append(node)
            continue
        folded.append(t)
    if folded:
        del model.graph.node[:]
        model.graph.node.extend(kept)
        model.graph.initializer.extend(folded)
    return len(folded)


def opset_of(model: Any) -> int:
    """The default-domain opset a model imports."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def prepare_for_quantization(src: Path, ctx: Context, pass_name: str, min_opset: int = 0) -> tuple[Path, list[str]]:
    """A copy of ``src`` the quantizers can work on: ``Constant`` weights folded, opset raised to ``min_opset``.

    Returns:
        The file to quantize (``src`` itself when nothing had to change) and notes for the manifest.

    Raises:
        ModelError: the opset cannot be raised, naming the fix.
    """
    import onnx
    from onnx import version_converter

    m = _refuse_quantized(src, ctx)
    notes = []
    folded = fold_constants(m)
    if folded:
        notes.append(f"{folded} Constant node(s) folded into initializers before quantizing")
    opset = opset_of(m)
    if opset < min_opset:
        try:
            m = version_converter.convert_version(m, min_opset)
            onnx.checker.check_model(m)
        except Exception as exc:
            raise ModelError(
                f"{pass_name}: {label(src, ctx)} is opset {opset} and per-channel QDQ needs opset {min_opset}, "
                f"but converting it failed ({metrics.one_line(exc, 120)}): set per_channel = false, "
                f"or re-export the model at opset {min_opset} or later"
            ) from None
        notes.append(f"opset {opset} upgraded to {min_opset} for per-channel QDQ")
    if not notes:
        return src.resolve(), notes  # absolute: the quantizers run in the pass's folder (see _quiet)
    out = ctx.new_path(".prepared.onnx")
    onnx.save(m, str(out))
    return out, notes


def check_output(path: Path, pass_name: str, hint: str) -> Any:
    """Load what a quantizer wrote; if it is not a valid model, say it is edgebench's output, not the user's file.

    Raises:
        ModelError: naming the pass and ``hint`` (the settings to change).
    """
    try:
        return metrics.load_onnx(path)
    except ModelError as exc:
        reason = str(exc).split(" is not a readable ONNX model ", 1)[-1].split(": check", 1)[0]
        raise ModelError(
            f"{pass_name} produced an invalid model {reason}: edgebench's own output, not your file: {hint}"
        ) from None


@contextlib.contextmanager
def _quiet(work: Path | None = None) -> Iterator[None]:
    """Keep entropy calibration's prints off stdout (they would break ``--json``), and run in ``work``.

    ONNX Runtime's symbolic shape inference writes ``sym_shape_infer_temp.onnx`` into the current
    directory when it gives up: running in the pass's private folder keeps the user's folder clean.
    Its advice on the root logger is the CLI's business: the CLI sets the log level.
    """
    old = os.getcwd()
    if work is not None:
        os.chdir(work)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        os.chdir(old)


def _qtype(name: str) -> Any:
    from onnxruntime.quantization import QuantType

    return QuantType.QInt8 if name == "qint8" else QuantType.QUInt8


@dataclass(frozen=True)
class Fp16Params:
    """The parameters of `Fp16`."""

    keep_io_types: bool = param(True, "keep float32 model inputs and outputs (a cast is inserted)")
    op_block_list: tuple[str, ...] = param((), "op types to leave in float32")


class Fp16(Pass[Fp16Params]):
    """Convert float32 weights and compute to float16; inputs and outputs stay float32."""

    name = "fp16"
    summary = "ONNX float16 weights and compute, float32 inputs/outputs kept"
    accepts = ("onnx",)
    produces = "onnx"

    def run(self, src: Artifact, params: Fp16Params, ctx: Context) -> Artifact:
        """Convert with ONNX Runtime's float16 converter."""
        import onnx
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

        assert src.path is not None
        m = _refuse_quantized(src.path, ctx)
        block = list(DEFAULT_OP_BLOCK_LIST) + list(params.op_block_list)
        m16 = convert_float_to_float16(m, keep_io_types=params.keep_io_types, op_block_list=block)
        toposort(m16.graph)  # the converter appends its input casts at the end of the node list
        out = ctx.new_path(".onnx")
        onnx.save(m16, str(out))
        check_output(out, self.name, "list the op types it breaks in op_block_list, or leave fp16 out")
        return src.derive("onnx", out)


def produced(graph: Any) -> set[str]:
    """Names the graph's own nodes, inputs and initializers produce (others come from an outer scope)."""
    names = {o for n in graph.node for o in n.output}
    return names | {i.name for i in graph.input} | {i.name for i in graph.initializer}


def _outer_names(node: Any) -> list[str]:
    """What an ``If``/``Loop``/``Scan`` node's subgraphs read from the enclosing graph (implicit inputs)."""
    out: list[str] = []
    for a in node.attribute:
        for g in [a.g] if a.HasField("g") else list(a.graphs):
            inner = produced(g)
            out += [i for n in g.node for i in [*n.input, *_outer_names(n)] if i and i not in inner]
    return out


def toposort(graph: Any) -> None:
    """Reorder a graph's nodes in place so every node comes after the producers of its inputs."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    nodes = list(graph.node)
    ordered = []
    needs = {id(n): [*n.input, *_outer_names(n)] for n in nodes}
    own = produced(graph)  # a name from outside (an outer scope) is always ready
    while nodes:
        rest = []
        for n in nodes:
            if all(i in ready or i not in own for i in needs[id(n)]):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(nodes):  # a cycle or a missing input: leave the rest as they were
            ordered.extend(rest)
            break
        nodes = rest
    del graph.node[:]
    graph.node.extend(ordered)


@dataclass(frozen=True)
class Int8DynamicParams:
    """The parameters of `Int8Dynamic`."""

    op_types: tuple[DynamicOp, ...] = param(
        (), "op types to quantize (empty: all ONNX Runtime supports; Conv becomes ConvInteger, slow on AVX2)"
    )
    weight_type: Literal["qint8", "quint8"] = param("qint8", "weight integer type")
    per_channel: bool = param(False, "one scale per output channel of each weight")


class Int8Dynamic(Pass[Int8DynamicParams]):
    """Weights int8 ahead of time, activations quantized on the fly (ONNX Runtime dynamic quantization)."""

    name = "int8-dynamic"
    summary = "ONNX dynamic int8 (weights int8, activations quantized at run time)"
    accepts = ("onnx",)
    produces = "onnx"

    def run(self, src: Artifact, params: Int8DynamicParams, ctx: Context) -> Artifact:
        """Quantize with ``onnxruntime.quantization.quantize_dynamic``."""
        from onnxruntime.quantization import quantize_dynamic

        assert src.path is not None
        m = _refuse_quantized(src.path, ctx)
        model_in, notes = prepare_for_quantization(src.path, ctx, self.name)
        out = ctx.new_path(".onnx")
        with _quiet(ctx.work):
            try:
                quantize_dynamic(
                    model_in,
                    out,
                    op_types_to_quantize=list(params.op_types) or None,
                    weight_type=_qtype(params.weight_type),
                    per_channel=params.per_channel,
                    extra_options={"EnableSubgraph": True},  # weights used in If/Loop branches too
                )
            except Exception as exc:
                raise ModelError(
                    f"int8-dynamic failed on {label(src.path, ctx)} ({type(exc).__name__}: {metrics.one_line(exc)}): "
                    'limit op_types (e.g. ["MatMul"]) or use int8-static'
                ) from None
        q = check_output(out, self.name, "limit op_types or use int8-static")
        types = sorted({n.op_type for n in q.graph.node} - {n.op_type for n in m.graph.node})
        return src.derive("onnx", out, quantized_ops=types, notes=notes)


class _Reader:
    """Feeds calibration samples one batch at a time to ONNX Runtime's calibrator."""

    def __init__(self, names: list[str], x: Any, batch: int) -> None:
        feeds = metrics.as_feeds(names, x)
        n = metrics.n_samples(feeds)
        self.batches = [metrics.take(feeds, slice(i, i + batch)) for i in range(0, n, batch)]
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        batch: dict[str, np.ndarray] = self.batches[self.i - 1]
        return batch

    def rewind(self) -> None:
        self.i = 0


@dataclass(frozen=True)
class Int8StaticParams:
    """The parameters of `Int8Static`."""

    per_channel: bool = param(True, "one scale per output channel of each weight")
    calibrate_method: Literal["MinMax", "Entropy", "Percentile"] = param("MinMax", "how activation ranges are chosen")
    calib_samples: int = param(256, "calibration samples taken from the calibration split", lo=1)
    activation_type: Literal["qint8", "quint8"] = param("quint8", "activation integer type (quint8 suits AVX2 CPUs)")
    weight_type: Literal["qint8", "quint8"] = param("qint8", "weight integer type")
    op_types: tuple[str, ...] = param((), "op types to quantize (empty: all supported)")
    preprocess: bool = param(True, "run onnxruntime.quantization.quant_pre_process first")
    max_accuracy_drop: float | None = param(
        None,
        "largest allowed top-1 drop in points (1.0 = one percentage point) on the eval split; "
        "the most sensitive nodes are kept in float until it fits",
        lo=0.0,
        hi=100.0,
    )


class Int8Static(Pass[Int8StaticParams]):
    """Static int8 in QDQ format, calibrated on the user's data after ONNX Runtime's pre-processing."""

    name = "int8-static"
    batch = 32  # calibration batch (1 for a fixed batch axis, set per run)
    summary = "ONNX static int8 (QDQ) calibrated on your data; optional accuracy-aware fallback"
    accepts = ("onnx",)
    produces = "onnx"

    def needs_data(self, params: Int8StaticParams) -> bool:
        """Always: it calibrates."""
        return True

    def run(self, src: Artifact, params: Int8StaticParams, ctx: Context) -> Artifact:
        """Pre-process, calibrate, quantize; then fall back node by node if ``max_accuracy_drop`` is set."""
        assert src.path is not None
        min_opset = QDQ_PER_CHANNEL_OPSET if params.per_channel else 0
        model_in, notes = prepare_for_quantization(src.path, ctx, self.name, min_opset)
        if params.preprocess:
            model_in = self._preprocess(model_in, ctx)
        calib = ctx.data.x_calib
        ins = metrics.onnx_session(model_in).get_inputs()
        names = [i.name for i in ins]
        # a fixed batch axis (a streaming model's [1, N] signal) takes one sample per calibration batch
        self.batch = 1 if any(i.shape and isinstance(i.shape[0], int) for i in ins) else 32
        try:
            metrics.check_onnx_data(model_in, calib, "calibration data")
        except DataError as exc:
            raise DataError(f"{exc} (pass int8-static)") from None
        n = min(params.calib_samples, metrics.n_samples(calib))
        calib = metrics.take(calib, slice(0, n))
        out = ctx.new_path(".onnx")
        self._quantize(model_in, out, names, calib, params, [], ctx.work)
        check_output(out, self.name, "set per_channel = false or preprocess = false, or keep the model in fp32/fp16")
        facts: dict[str, Any] = {"calibration": {"method": params.calibrate_method, "samples": n}, "notes": notes}
        limit = params.max_accuracy_drop
        if limit is not None:
            out, report = self._fit_accuracy(model_in, out, names, calib, params, ctx, limit)
            facts["accuracy_fallback"] = report
        return src.derive("onnx", out, **facts)

    def _preprocess(self, path: Path, ctx: Context) -> Path:
        from onnxruntime.quantization import quant_pre_process

        pre = ctx.new_path(".pre.onnx")
        with _quiet(ctx.work):
            try:
                quant_pre_process(str(path), str(pre), skip_symbolic_shape=False)
            except Exception:
                # symbolic shape inference fails on some graphs; ONNX shape inference is enough for QDQ
                quant_pre_process(str(path), str(pre), skip_symbolic_shape=True)
        return pre

    def _quantize(
        self,
        model_in: Path,
        out: Path,
        names: list[str],
        calib: Any,
        params: Int8StaticParams,
        exclude: list[str],
        work: Path,
    ) -> None:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, quantize_static

        with _quiet(work):
            quantize_static(
                str(model_in),
                str(out),
                _Reader(names, calib, self.batch),
                quant_format=QuantFormat.QDQ,
                per_channel=params.per_channel,
                activation_type=_qtype(params.activation_type),
                weight_type=_qtype(params.weight_type),
                op_types_to_quantize=list(params.op_types) or None,
                nodes_to_exclude=exclude,
                calibrate_method=getattr(CalibrationMethod, params.calibrate_method),
            )

    def _fit_accuracy(
        self,
        model_in: Path,
        out: Path,
        names: list[str],
        calib: Any,
        params: Int8StaticParams,
        ctx: Context,
        limit: float,
    ) -> tuple[Path, dict[str, Any]]:
        y = ctx.data.y_eval
        if y is None:
            raise DataError("max_accuracy_drop needs labels (y) in the eval data: add them or drop the option")
        base = metrics.accuracy(metrics.run_onnx(model_in, ctx.data.x_eval), y)
        if base is None:
            raise DataError("max_accuracy_drop needs a classifier output (N, classes) and labels of the same length")

        def drop_of(path: Path) -> float:
            acc = metrics.accuracy(metrics.run_onnx(path, ctx.data.x_eval), y)
            assert acc is not None
            return 100.0 * (float(base["top1"]) - float(acc["top1"]))

        tried: list[dict[str, Any]] = [{"kept_float": [], "drop_points": round(drop_of(out), 3)}]
        report: dict[str, Any] = {"limit_points": limit, "fp32_top1": base["top1"], "tried": tried}
        if tried[0]["drop_points"] <= limit:
            report["result"] = "fits without fallback"
            return out, report
        ranking = node_sensitivity(model_in, out, names, ctx.data.x_eval)
        report["ranking"] = ranking[:20]
        order = [r["node"] for r in ranking]
        sizes = sorted({min(2**i, len(order)) for i in range(len(order).bit_length() + 1)})
        for k in sizes:
            keep = order[:k]
            cand = ctx.new_path(".onnx")
            self._quantize(model_in, cand, names, calib, params, keep, ctx.work)
            d = drop_of(cand)
            tried.append({"kept_float": keep, "drop_points": round(d, 3)})
            ctx.log(f"int8-static: {k} node(s) kept in float, drop {d:.2f} points")
            if d <= limit:
                report["result"] = f"fits with {k} node(s) kept in float"
                return cand, report
        raise ModelError(
            f"int8-static cannot meet max_accuracy_drop={limit} points: tried "
            + "; ".join(f"{len(t['kept_float'])} float node(s) -> {t['drop_points']:.2f}" for t in tried)
            + ". Raise the limit, use per_channel=true or calibrate_method='Entropy', or keep this model in fp32/fp16"
        )


DQ_SUFFIX = "_DequantizeLinear_Output"


def node_sensitivity(float_path: Path, qdq_path: Path, names: list[str], probe_x: Any) -> list[dict[str, Any]]:
    """Quantized nodes ranked by the error they add (worst first), the order they are kept in float.

    Every activation tensor of the float graph is compared with its dequantized value in the
    QDQ graph (relative L2 error on up to 64 samples). A node's score is the error
    of its output minus the largest error of its inputs: what quantizing *this* node added,
    not what it inherited from upstream. ``probe_x`` should be the data accuracy is judged on.
    """
    import onnx

    fm = onnx.load(str(float_path))
    qm = onnx.load(str(qdq_path))
    float_tensors = {o for n in fm.graph.node for o in n.output} | set(names)
    float_nodes = {n.name for n in fm.graph.node if n.name}
    q_tensors = {o for n in qm.graph.node for o in n.output} | set(names)
    # the QDQ value of a float tensor: its dequantized copy where there is one, else the tensor itself
    probe = {t: (t + DQ_SUFFIX if t + DQ_SUFFIX in q_tensors else t) for t in float_tensors if t in q_tensors}
    feeds = metrics.take(metrics.as_feeds(names, probe_x), slice(0, 64))

    def values(m: Any, wanted: list[str]) -> dict[str, np.ndarray]:
        m = onnx.ModelProto.FromString(m.SerializeToString())
        have = {o.name for o in m.graph.output}
        for t in wanted:
            if t not in have and t not in names:
                m.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
        path = float_path.with_suffix(".probe.onnx")
        onnx.save(m, str(path))
        try:
            sess = metrics.onnx_session(path)
            res = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
        finally:
            path.unlink()
        res.update({k: v for k, v in feeds.items() if k in wanted})
        return res

    f = values(fm, list(probe))
    q = values(qm, list(probe.values()))
    err: dict[str, float] = {}
    for t, qt in probe.items():
        if t in f and qt in q and f[t].shape == q[qt].shape:
            a, b = f[t].astype(np.float64), q[qt].astype(np.float64)
            err[t] = float(np.linalg.norm(a - b) / (np.linalg.norm(a) + 1e-12))

    def canonical(t: str) -> str:
        return t[: -len(DQ_SUFFIX)] if t.endswith(DQ_SUFFIX) else t

    ranking = []
    for n in qm.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") or n.name not in float_nodes:
            continue
        outs = [canonical(o) for o in n.output if canonical(o) in err]
        # a model input's quantization error belongs to its consumer: keeping it in float removes it
        ins = [err[canonical(i)] for i in n.input if canonical(i) in err and canonical(i) not in names]
        if outs:
            added = max(err[o] for o in outs) - (max(ins) if ins else 0.0)
            ranking.append({"node": n.name, "op": n.op_type, "added_error": round(added, 5)})
    ranking.sort(key=lambda r: -float(r["added_error"]))
    return ranking
