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
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.compress import metrics
from edgebench.compress.passes import Artifact, Context, Param, Pass, label
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


class KerasConvert(Pass):
    """Convert a Keras model with TensorFlow's TFLite converter."""

    name = "tflite-convert"
    summary = "Keras → TFLite: float32, dynamic range, float16 or full int8 (representative data)"
    accepts = ("keras",)
    produces = "tflite"
    params = (
        Param("mode", str, "float32", "what the converter does", choices=("float32", "dynamic", "float16", "int8")),
        Param("int8_io", bool, False, "int8 model inputs and outputs (mode int8 only)"),
        Param("calib_samples", int, 200, "representative samples for mode int8", lo=1),
    )

    def run(self, src: Artifact, params: dict[str, Any], ctx: Context) -> Artifact:
        """Convert; int8 uses the calibration split as representative data."""
        assert src.path is not None
        tf = import_tensorflow()
        model = load_keras(src.path)
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        mode = params["mode"]
        if mode != "float32":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            conv.target_spec.supported_types = [tf.float16]
        if mode == "int8":
            calib = ctx.data.x_calib
            check_keras_data(model, calib, "calibration data")
            n = min(params["calib_samples"], len(calib))

            def representative() -> Iterator[list[np.ndarray]]:
                for i in range(n):
                    yield [calib[i : i + 1]]

            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if params["int8_io"]:
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        elif params["int8_io"]:
            raise ModelError("tflite-convert: int8_io needs mode = 'int8'")
        out = ctx.new_path(".tflite")
        with contextlib.redirect_stdout(io.StringIO()):  # Keras prints its export notes to stdout (breaks --json)
            out.write_bytes(conv.convert())
        return src.derive("tflite", out, tflite_mode=mode)


AIQ_RECIPES = {
    "dynamic_int8": "dynamic_wi8_afp32",
    "weight_only_int8": "weight_only_wi8_afp32",
    "static_int8": "static_wi8_ai8",
}


class TfliteQuantize(Pass):
    """Quantize an existing .tflite with ai-edge-quantizer (no TensorFlow needed)."""

    name = "tflite-quantize"
    summary = "ai-edge-quantizer on a .tflite: dynamic int8, weight-only int8 or static int8"
    accepts = ("tflite",)
    produces = "tflite"
    params = (
        Param("recipe", str, "dynamic_int8", "ai-edge-quantizer recipe", choices=tuple(AIQ_RECIPES)),
        Param("calib_samples", int, 100, "calibration samples for static_int8", lo=1),
    )

    def run(self, src: Artifact, params: dict[str, Any], ctx: Context) -> Artifact:
        """Refuse already-quantized models; calibrate (static) and quantize."""
        from ai_edge_quantizer import quantizer, recipe

        assert src.path is not None
        already = metrics.tflite_quantized_tensors(src.path)
        if already:
            raise ModelError(
                f"{label(src.path, ctx)} is already quantized ({len(already)} quantized tensors, e.g. {already[0]!r}): "
                "use it as is instead of quantizing twice"
            )
        qt = quantizer.Quantizer(str(src.path), getattr(recipe, AIQ_RECIPES[params["recipe"]])())
        calib_result = None
        if qt.need_calibration:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # LiteRT's "preserve all tensors is for debugging" notice
                calib_result = qt.calibrate(self._calibration(src.path, ctx, params["calib_samples"]))
        out = ctx.new_path(".tflite")
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = qt.quantize(calib_result, enable_progress_report=False)
        res.export_model(str(out), overwrite=True)
        return src.derive("tflite", out, aiq_recipe=params["recipe"])

    def _calibration(self, path: Path, ctx: Context, n: int) -> dict[str, list[dict[str, np.ndarray]]]:
        it = metrics.tflite_interpreter(path)
        sigs = it.get_signature_list()
        if not sigs:
            raise ModelError(f"{path} has no signature, which static_int8 calibration needs: re-export with one")
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
