"""TFLite passes: Keras → TFLite through TensorFlow's converter, and ai-edge-quantizer on a .tflite.

``tflite-quantize`` needs no TensorFlow (ai-edge-quantizer works on the flatbuffer);
``tflite-convert`` does, and says which extra to install when it is missing.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgebench.compress import metrics
from edgebench.compress.passes import Artifact, Context, Pass, label, param
from edgebench.errors import DataError, MissingDependency, ModelError

EXTRA = "pip install 'edgebench[tflite]'"


def import_tensorflow() -> Any:
    """TensorFlow, or a `MissingDependency` naming the extra to install."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for our users
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependency(f"a Keras model needs TensorFlow, which is not installed: {EXTRA}") from None
    return tf


def load_keras(path: Path) -> Any:
    """Load a .keras/.h5 model (without compiling it).

    Raises:
        MissingDependency: without TensorFlow.
        ModelError: if the file is not a readable Keras model.
    """
    tf = import_tensorflow()
    try:
        return tf.keras.models.load_model(str(path), compile=False)
    except Exception as exc:
        raise ModelError(f"{path} is not a readable Keras model ({type(exc).__name__}): check the file") from None


def check_keras_data(model: Any, x: Any, what: str) -> None:
    """Raise a `DataError` if ``x`` does not fit the Keras model's (single) input."""
    if isinstance(x, dict):
        raise DataError(f"{what}: Keras models take one input array x")
    want = list(model.inputs[0].shape)
    if x.ndim != len(want) or any(w is not None and w != a for w, a in zip(want[1:], x.shape[1:], strict=False)):
        raise DataError(
            f"{what} has shape {list(x.shape)} but the Keras model takes {want} (first axis = samples): "
            "reshape the data (Keras models are usually channels-last)"
        )
    if x.dtype != np.float32:
        raise DataError(f"{what} is {x.dtype.name} but the Keras model takes float32: convert it (x.astype)")


@dataclass(frozen=True)
class KerasConvertParams:
    """The parameters of `KerasConvert`."""

    mode: Literal["float32", "dynamic", "float16", "int8"] = param("float32", "what the converter does")
    int8_io: bool = param(False, "int8 model inputs and outputs (mode int8 only)")
    calib_samples: int = param(200, "representative samples for mode int8", lo=1)


class KerasConvert(Pass[KerasConvertParams]):
    """Convert a Keras model with TensorFlow's TFLite converter."""

    name = "tflite-convert"
    summary = "Keras → TFLite: float32, dynamic range, float16 or full int8 (representative data)"
    accepts = ("keras",)
    produces = "tflite"

    def needs_data(self, params: KerasConvertParams) -> bool:
        """Mode int8 only: it takes representative data."""
        return params.mode == "int8"

    def run(self, src: Artifact, params: KerasConvertParams, ctx: Context) -> Artifact:
        """Convert; int8 uses the calibration split as representative data."""
        assert src.path is not None
        tf = import_tensorflow()
        model = load_keras(src.path)
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        mode = params.mode
        if mode != "float32":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if mode == "int8":
            calib = ctx.data.x_calib
            check_keras_data(model, calib, "calibration data")
            n = min(params.calib_samples, len(calib))

            def representative() -> Iterator[list[np.ndarray]]:
                for i in range(n):
                    yield [calib[i : i + 1]]

            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if params.int8_io:
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        elif params.int8_io:
            raise ModelError("tflite-convert: int8_io needs mode = 'int8'")
        out = ctx.new_path(".tflite")
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its export notes to stdout (breaks --json)
            out.write_bytes(conv.convert())
        return src.derive("tflite", out, tflite_mode=mode)


ADDED_SIGNATURE = "serving_default"  # the key a SignatureDef gets when edgebench adds one for calibration
DEQUANTIZE, FLOAT16 = 6, 1  # TFLite schema: BuiltinOperator.DEQUANTIZE, TensorType.FLOAT16


def _dequantize_fp16(model: Any) -> int:
    """Rewrite float16 constant weights behind DEQUANTIZE ops as float32 constants (the ops removed)."""
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    count = 0
    for sg in model.subgraphs:
        kept, dropped = [], set()
        for op in sg.operators:
            code = model.operatorCodes[op.opcodeIndex]
            src = sg.tensors[op.inputs[0]] if op.inputs is not None and len(op.inputs) == 1 else None
            data = model.buffers[src.buffer].data if src is not None else None
            is_dq = max(code.builtinCode, code.deprecatedBuiltinCode) == DEQUANTIZE
            if not is_dq or src is None or src.type != FLOAT16 or data is None or len(data) == 0:
                kept.append(op)  # not a float16 weight (a float16 activation has no buffer data)
                continue
            buf = fbu.schema_fb.BufferT()
            buf.data = np.frombuffer(bytes(data), np.float16).astype(np.float32).view(np.uint8)
            model.buffers.append(buf)
            sg.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
            model.buffers[src.buffer].data = None
            dropped.add(op.inputs[0])
            count += 1
        sg.operators = kept
        if dropped:
            _drop_tensors(sg, dropped)
    return count


def _drop_tensors(sg: Any, dropped: set[int]) -> None:
    """Remove tensors from a subgraph and renumber every reference (the calibrator reads every tensor,
    and an orphaned float16 weight without data would fail it; sharing its buffer instead breaks the
    quantizer, which rewrites the buffer for one tensor type)."""
    new_index = {}
    tensors: list[Any] = []
    for i, t in enumerate(sg.tensors):
        if i not in dropped:
            new_index[i] = len(tensors)
            tensors.append(t)
    sg.tensors = tensors

    def remap(indices: Any) -> Any:
        return None if indices is None else [new_index[int(i)] if i >= 0 else int(i) for i in indices]

    for op in sg.operators:
        op.inputs, op.outputs, op.intermediates = remap(op.inputs), remap(op.outputs), remap(op.intermediates)
    sg.inputs, sg.outputs = remap(sg.inputs), remap(sg.outputs)


def _add_signature(model: Any) -> bool:
    """Give a model without SignatureDef one for its main subgraph (ai-edge-quantizer calibrates through it)."""
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    if model.signatureDefs:
        return False
    sg = model.subgraphs[0]

    def tensor_map(index: int) -> Any:
        t = fbu.schema_fb.TensorMapT()
        name = sg.tensors[index].name
        t.name = name.decode() if isinstance(name, bytes) else name
        t.tensorIndex = index
        return t

    sig = fbu.schema_fb.SignatureDefT()
    sig.signatureKey = ADDED_SIGNATURE
    sig.subgraphIndex = 0
    sig.inputs = [tensor_map(i) for i in sg.inputs]
    sig.outputs = [tensor_map(i) for i in sg.outputs]
    model.signatureDefs = [sig]
    return True


def prepare_tflite(path: Path, out: Path) -> tuple[Path, list[str]]:
    """A copy of ``path`` ai-edge-quantizer can work on, and notes for the manifest.

    Float16 weights behind DEQUANTIZE are restored to float32: the quantizer leaves them alone, so
    its "quantized" file would be the parent itself. A file without SignatureDef gets one built from
    the interpreter's input and output tensors. Returns ``path`` itself when neither applies.
    """
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model(str(path))
    notes = []
    count = _dequantize_fp16(model)
    if count:
        notes.append(f"{count} float16 weight(s) behind DEQUANTIZE restored to float32 before quantizing")
    if _add_signature(model):
        notes.append(f"no SignatureDef: one ({ADDED_SIGNATURE!r}) made from the model's input and output tensors")
    if not notes:
        return path, notes
    fbu.write_model(model, str(out))
    return out, notes


AIQ_RECIPES = {  # edgebench's name -> ai-edge-quantizer's recipe function
    "dynamic_int8": "dynamic_wi8_afp32",
    "weight_only_int8": "weight_only_wi8_afp32",
    "static_int8": "static_wi8_ai8",
}


@dataclass(frozen=True)
class TfliteQuantizeParams:
    """The parameters of `TfliteQuantize`."""

    recipe: Literal["dynamic_int8", "weight_only_int8", "static_int8"] = param(
        "dynamic_int8", "ai-edge-quantizer recipe"
    )
    calib_samples: int = param(100, "calibration samples for static_int8", lo=1)


class TfliteQuantize(Pass[TfliteQuantizeParams]):
    """Quantize an existing .tflite with ai-edge-quantizer (no TensorFlow needed)."""

    name = "tflite-quantize"
    summary = "ai-edge-quantizer on a .tflite: dynamic int8, weight-only int8 or static int8"
    accepts = ("tflite",)
    produces = "tflite"

    def needs_data(self, params: TfliteQuantizeParams) -> bool:
        """Recipe static_int8 only: it calibrates."""
        return params.recipe == "static_int8"

    def run(self, src: Artifact, params: TfliteQuantizeParams, ctx: Context) -> Artifact:
        """Refuse already-quantized models; calibrate (static) and quantize."""
        from ai_edge_quantizer import quantizer, recipe

        assert src.path is not None
        already = metrics.tflite_quantized_tensors(src.path)
        if already:
            raise ModelError(
                f"{label(src.path, ctx)} is already quantized ({len(already)} quantized tensors, e.g. {already[0]!r}): "
                "use it as is instead of quantizing twice"
            )
        model_in, notes = prepare_tflite(src.path, ctx.new_path(".prepared.tflite"))
        qt = quantizer.Quantizer(str(model_in), getattr(recipe, AIQ_RECIPES[params.recipe])())
        calib_result = None
        if qt.need_calibration:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # LiteRT's "preserve all tensors is for debugging" notice
                calib_result = qt.calibrate(self._calibration(model_in, ctx, params.calib_samples))
        out = ctx.new_path(".tflite")
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = qt.quantize(calib_result, enable_progress_report=False)
        res.export_model(str(out), overwrite=True)
        return src.derive("tflite", out, aiq_recipe=params.recipe, notes=notes)

    def _calibration(self, path: Path, ctx: Context, n: int) -> dict[str, list[dict[str, np.ndarray]]]:
        it = metrics.tflite_interpreter(path)
        sigs = it.get_signature_list()  # prepare_tflite gave every model one
        key = next(iter(sigs))
        names = sigs[key]["inputs"]
        x = ctx.data.x_calib
        if isinstance(x, dict):
            batches = [{k: x[k][i : i + 1] for k in names} for i in range(min(n, metrics.n_samples(x)))]
        else:
            if len(names) != 1:
                raise DataError(f"{path} has inputs {names}: give one calibration array per input")
            want = list(it.get_input_details()[0]["shape"])
            if x.ndim != len(want) or list(x.shape[1:]) != want[1:]:
                raise DataError(f"calibration data has shape {list(x.shape)} but {path.name} takes {want}")
            batches = [{names[0]: x[i : i + 1]} for i in range(min(n, len(x)))]
        return {key: batches}
