"""The runtimes a job can run on: ONNX Runtime and TFLite (ai_edge_litert, tflite_runtime or tensorflow.lite).

Each wrapper takes the job's ``runtime_options``, and offers ``load(path)`` (what the cold
start times), ``signature()``, ``prepare(arrays)`` (the feed) and ``run(feed)``; TFLite adds
``timed_run`` (what a latency sample times). `runtime_in_use` says which providers or
delegates really took ops. A runtime is imported when its wrapper is made, never before.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

from .base import AgentError, first_line, is_numpy_abi_error, np_module
from .hashing import sha256_file

Signature = List[Tuple[str, List[Any], str]]  # [(input name, shape, numpy dtype name)]

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


class OnnxRuntimeModel:
    """An ONNX model in an ONNX Runtime InferenceSession (threads, optimization level, providers)."""

    name = "onnxruntime"

    def __init__(self, options: Dict[str, Any]) -> None:
        try:
            import onnxruntime as ort
        except Exception as exc:
            raise AgentError(
                "runtime_missing",
                "onnxruntime cannot be imported on this board (%s): install onnxruntime in the board's environment"
                % first_line(exc),
            ) from None
        self.ort = ort
        self.options = options
        self.version = str(ort.__version__)
        self.threads = options.get("threads")
        self.providers = []  # type: List[str]
        self.session = None  # type: Any

    def load(self, path: str) -> None:
        """Create the session (this is what cold-start load time measures)."""
        ort, options = self.ort, self.options
        so = ort.SessionOptions()
        if self.threads:
            so.intra_op_num_threads = int(self.threads)
            so.inter_op_num_threads = 1
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        level = options.get("graph_optimization_level", "all")
        if level not in levels:
            raise AgentError("bad_job", "graph_optimization_level %r: use one of %s" % (level, sorted(levels)))
        so.graph_optimization_level = levels[level]
        providers = list(options.get("providers") or ["CPUExecutionProvider"])
        available = ort.get_available_providers()
        missing = [p for p in providers if (p[0] if isinstance(p, (list, tuple)) else p) not in available]
        if missing:
            raise AgentError(
                "runtime_missing",
                "execution providers %s are not available on this board (available: %s): fix the board's providers"
                % (missing, available),
            )
        try:
            self.session = ort.InferenceSession(path, sess_options=so, providers=providers)
        except Exception as exc:
            raise AgentError(
                "model_load",
                "onnxruntime %s could not load %s: %s: check the model's ops and opset are supported here"
                % (self.version, os.path.basename(path), first_line(exc)),
            ) from None
        self.providers = list(self.session.get_providers())
        self.input_names = [i.name for i in self.session.get_inputs()]

    def signature(self) -> Signature:
        """[(name, shape, numpy dtype name)] of the model's inputs."""
        return [(i.name, list(i.shape), _ORT_TYPES.get(i.type, "float32")) for i in self.session.get_inputs()]

    def prepare(self, arrays: List[Any]) -> Any:
        """The feed for `run`: a dict input name -> array (float data never silently cast to ints)."""
        for (name, _shape, dtype), a in zip(self.signature(), arrays):  # noqa: B905 (runs on Python 3.6: no strict=)
            if np_module().dtype(dtype).kind in "iu" and a.dtype.kind == "f":
                raise AgentError(
                    "bad_eval_data",
                    "input %r is %s but the data is %s: save the eval data as %s (already quantized)"
                    % (name, dtype, a.dtype.name, dtype),
                )
        return dict(zip(self.input_names, arrays))  # noqa: B905 (runs on Python 3.6: no strict=)

    def run(self, feed: Any) -> List[Any]:
        """One inference; returns the outputs."""
        return list(self.session.run(None, feed))


def check_sha256(path: str, expected: Optional[str]) -> str:
    """The sha256 of the file about to be loaded; an error if it is not the one the job names
    (a board cache entry changed since it was deployed)."""
    digest = sha256_file(path)
    if expected and digest != expected:
        raise AgentError(
            "artifact_changed",
            "artifact %s on the board has sha256 %s..., the job expects %s...: the board's cached copy was "
            "changed; run again to deploy it afresh" % (path, digest[:12], expected[:12]),
        )
    return digest


def tflite_interpreter(preferred: Optional[str]) -> Tuple[str, Any, Any, Any, str]:
    """Find a TFLite interpreter: ai_edge_litert, tflite_runtime or tensorflow.lite.

    Returns:
        (module name, Interpreter class, load_delegate, OpResolverType or None, version).
    """
    order = [preferred] if preferred else ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    errors = []
    for mod in order:
        try:
            if mod == "ai_edge_litert":
                import ai_edge_litert
                from ai_edge_litert import interpreter as itp

                version = getattr(ai_edge_litert, "__version__", "unknown")
                return mod, itp.Interpreter, itp.load_delegate, getattr(itp, "OpResolverType", None), version
            if mod == "tflite_runtime":
                import tflite_runtime
                from tflite_runtime import interpreter as itp

                version = getattr(tflite_runtime, "__version__", "unknown")
                return mod, itp.Interpreter, itp.load_delegate, getattr(itp, "OpResolverType", None), version
            if mod == "tensorflow":
                import tensorflow as tf

                resolver = getattr(tf.lite.experimental, "OpResolverType", None)
                return mod, tf.lite.Interpreter, tf.lite.experimental.load_delegate, resolver, str(tf.__version__)
            raise AgentError("bad_job", "TFLite interpreter %r: use ai_edge_litert, tflite_runtime or tensorflow" % mod)
        except AgentError:
            raise
        except Exception as exc:  # an import can fail with more than ImportError (numpy ABI)
            if is_numpy_abi_error(exc):
                np = np_module()
                raise AgentError(
                    "runtime_numpy_abi",
                    "%s cannot be imported beside numpy %s (it was built for NumPy 1.x: %s): "
                    "install numpy<2 in the board's environment" % (mod, np.__version__, first_line(exc)),
                ) from None
            errors.append("%s: %s" % (mod, first_line(exc)))
    raise AgentError(
        "runtime_missing",
        "no TFLite interpreter can be imported on this board (%s): install ai-edge-litert (or tflite-runtime with "
        "numpy<2) in the board's environment" % "; ".join(errors),
    )


class TFLiteModel:
    """A .tflite model in a TFLite interpreter (threads, XNNPACK on or off, external delegates)."""

    name = "tflite"

    def __init__(self, options: Dict[str, Any]) -> None:
        mod, self.Interpreter, self.load_delegate, self.resolver, self.version = tflite_interpreter(
            options.get("interpreter")
        )
        self.name = "tflite:" + mod
        self.options = options
        self.threads = options.get("threads")
        self.providers = []  # type: List[str]
        self.interp = None  # type: Any

    def load(self, path: str) -> None:
        """Create the interpreter and allocate its tensors."""
        options = self.options
        kwargs = {"model_path": path}  # type: Dict[str, Any]
        if self.threads:
            kwargs["num_threads"] = int(self.threads)
        delegates = []
        for spec in options.get("delegates") or []:
            lib = spec if isinstance(spec, str) else spec["library"]
            opts = None if isinstance(spec, str) else spec.get("options")
            try:
                delegates.append(self.load_delegate(lib, opts))
            except Exception as exc:
                raise AgentError(
                    "model_load",
                    "delegate %s could not be loaded: %s: check its path on the board" % (lib, first_line(exc)),
                ) from None
            self.providers.append("delegate:" + os.path.basename(lib))
        if delegates:
            kwargs["experimental_delegates"] = delegates
        if options.get("xnnpack") is False:
            if self.resolver is None:
                raise AgentError(
                    "bad_job", "xnnpack=false needs an interpreter with OpResolverType: update the runtime"
                )
            kwargs["experimental_op_resolver_type"] = self.resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        else:
            self.providers.append("xnnpack")
        try:
            self.interp = self.Interpreter(**kwargs)
            self.interp.allocate_tensors()
        except Exception as exc:
            raise AgentError(
                "model_load",
                "%s %s could not load %s: %s: check that the model's ops are supported by this runtime"
                % (self.name, self.version, os.path.basename(path), first_line(exc)),
            ) from None
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()

    def signature(self) -> Signature:
        """[(name, shape, numpy dtype name)] of the model's inputs (dynamic dims from shape_signature)."""
        np = np_module()
        out = []  # type: Signature
        for d in self.inputs:
            shape = [int(x) if int(x) > 0 else "?" for x in d.get("shape_signature", d["shape"])]
            out.append((d["name"], shape, np.dtype(d["dtype"]).name))
        return out

    def prepare(self, arrays: List[Any]) -> Any:
        """Quantize float data into int8/uint8 inputs with the input's scale and zero point."""
        np = np_module()
        prepared = []
        resized = False
        for d, a in zip(self.inputs, arrays):  # noqa: B905 (runs on Python 3.6: no strict=)
            scale, zero = d.get("quantization", (0.0, 0))
            if np.dtype(d["dtype"]).kind in "iu" and a.dtype.kind == "f" and scale:
                info = np.iinfo(d["dtype"])
                a = np.clip(np.round(a / scale + zero), info.min, info.max)
            if list(a.shape) != [int(x) for x in d["shape"]]:
                self.interp.resize_tensor_input(d["index"], list(a.shape))
                resized = True
            prepared.append((d["index"], np.asarray(a.astype(d["dtype"]), order="C")))  # 0-d stays 0-d
        if resized:
            self.interp.allocate_tensors()
            self.inputs = self.interp.get_input_details()
            self.outputs = self.interp.get_output_details()
        return prepared

    def timed_run(self, feed: Any) -> List[Any]:
        """What a latency sample times: set the inputs, invoke, read the raw outputs (no dequantizing)."""
        interp = self.interp
        for index, array in feed:
            interp.set_tensor(index, array)
        interp.invoke()
        return [interp.get_tensor(d["index"]) for d in self.outputs]

    def run(self, feed: Any) -> List[Any]:
        """One inference; int outputs are dequantized with their scale and zero point."""
        for index, array in feed:
            self.interp.set_tensor(index, array)
        self.interp.invoke()
        np = np_module()
        outs = []
        for d in self.outputs:
            o = self.interp.get_tensor(d["index"])
            scale, zero = d.get("quantization", (0.0, 0))
            if np.dtype(d["dtype"]).kind in "iu" and scale:
                o = (o.astype(np.float32) - zero) * scale
            outs.append(o)
        return outs


RUNTIMES = {"onnxruntime": OnnxRuntimeModel, "tflite": TFLiteModel}  # type: Dict[str, Any]
RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "tflite": "tflite"}  # artifact format -> key of RUNTIMES


def _delegate_label(model: Any) -> str:
    """What a DELEGATE node of this interpreter runs on.

    External delegates are applied at construction, before the default XNNPACK delegate;
    the node carries no delegate name, so with an external delegate configured the label
    names it (the interpreter cannot tell the two apart from Python).
    """
    external = [p for p in model.providers if p.startswith("delegate:")]
    return "+".join(external) if external else "xnnpack"


def tflite_ops(model: Any) -> List[Dict[str, Any]]:
    """The operators of a loaded TFLite model and what each runs on.

    ``delegate`` is the delegate that replaced the op (``xnnpack`` or ``delegate:<lib>``),
    else ``builtin`` (the interpreter's own kernels; ``builtin-ref`` with the reference resolver).
    A delegate's partition is found by walking back from its node's outputs to its inputs.
    """
    itp = model.interp._interpreter
    n = int(itp.NumNodes())
    names = [str(itp.NodeName(i)) for i in range(n)]
    ins = [[int(t) for t in itp.NodeInputs(i)] for i in range(n)]
    outs = [[int(t) for t in itp.NodeOutputs(i)] for i in range(n)]
    producer = {}  # type: Dict[int, int]
    for i in range(n):
        if names[i] != "DELEGATE":
            for t in outs[i]:
                producer[t] = i
    owner = {}  # type: Dict[int, str]
    label = _delegate_label(model)
    for d in range(n):
        if names[d] != "DELEGATE":
            continue
        boundary = set(ins[d])
        todo = [producer[t] for t in outs[d] if t in producer]
        while todo:
            i = todo.pop()
            if i in owner:
                continue
            owner[i] = label
            todo.extend(producer[t] for t in ins[i] if t not in boundary and t in producer)
    builtin = "builtin-ref" if model.options.get("op_resolver") == "builtin_ref" else "builtin"
    return [
        {"index": i, "name": "%s#%d" % (names[i], i), "op_type": names[i], "delegate": owner.get(i, builtin)}
        for i in range(n)
        if names[i] != "DELEGATE"
    ]


def runtime_in_use(model: Any) -> List[str]:
    """The providers or delegates really in use (cheap: session and interpreter metadata).

    ONNX Runtime: the session's providers. TFLite: the delegates that took ops (XNNPACK only
    when a DELEGATE node exists) and ``builtin`` when some ops stayed on the interpreter's kernels.
    """
    try:
        if model.name == "onnxruntime":
            return [str(p) for p in model.session.get_providers()]
        used = []  # type: List[str]
        for op in tflite_ops(model):
            if op["delegate"] not in used:
                used.append(op["delegate"])
        return used
    except Exception as exc:  # never fail a measurement for a label
        return ["unknown (%s)" % first_line(exc)]


def note_in_use(model: Any, result: Dict[str, Any]) -> None:
    """Record what is really in use in ``result["runtime"]["in_use"]``; warn when XNNPACK was not applied."""
    in_use = runtime_in_use(model)
    result["runtime"]["in_use"] = in_use
    if "xnnpack" in model.providers and "xnnpack" not in in_use and any(u.startswith("builtin") for u in in_use):
        result["warnings"].append("the XNNPACK delegate was requested but took no op: every op ran on builtin kernels")
