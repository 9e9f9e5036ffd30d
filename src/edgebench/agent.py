"""edgebench on-board agent: one self-contained file, run once per variant.

It runs on the board with Python >= 3.6, numpy and one runtime (onnxruntime,
ai_edge_litert, tflite_runtime or tensorflow.lite); psutil is optional. No edgebench
install is needed there. Usage::

    python agent.py JOB.json        # or: python agent.py - < JOB.json
    python agent.py --probe '["onnxruntime"]'   # the board's fingerprint (boards check)

It prints exactly one JSON object on stdout (the result) and exits 0, also when the
variant failed: failures are data (``ok: false`` with ``error``). Timing happens here,
on the board, with a monotonic nanosecond clock around the runtime call alone.

Method (every default can be overridden in the job's ``measure`` block):

1. cold start: the model load (session / interpreter creation) and the first inference
   are timed separately;
2. warm-up: at least ``warmup_min_iters`` inferences and ``warmup_min_s`` seconds;
3. steady state: one inference per sample, timed with ``time.perf_counter_ns`` (3.6: ``perf_counter``
   in ns), until
   at least ``min_rounds`` samples and ``min_time_s`` seconds, stopping at
   ``max_time_s`` or ``max_rounds`` whatever comes first; every raw sample is returned;
4. memory: resident set size (RSS) of this fresh process: before the runtime is
   imported, before the load, after the load, after the steady state, and the peak
   (``VmHWM``, or ``ru_maxrss``) at the end, the same definition for every runtime;
5. accuracy on the deployed eval set (top-1, Wilson 95% interval) and fidelity against
   the parent's reference outputs (top-1 agreement, max / mean abs difference, cosine);
6. device state (governor, frequency, temperature) before and after, with warnings.

Keep this file free of edgebench imports and of syntax or library calls newer than
Python 3.6 and numpy 1.19 (JetPack 4 boards): no ``from __future__ import annotations``
(annotations are evaluated at def time, so use ``typing`` generics), no dataclasses, no
walrus, no ``subprocess.run(capture_output=)``. ``tests/unit/test_bench_agent.py`` checks
it with vermin and with ``ast.parse(feature_version=(3, 6))``.
"""

import bisect
import difflib
import hashlib
import json
import math
import os
import platform
import resource  # Unix only: boards (and hosts) are Linux or macOS
import shutil
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

AGENT_VERSION = "2"
RESULT_SCHEMA = 1

DEFAULT_MEASURE = {
    "warmup_min_iters": 10,
    "warmup_min_s": 0.2,
    "min_rounds": 50,
    "min_time_s": 2.0,
    "max_time_s": 30.0,
    "max_rounds": 1000000,
    "batch_size": 1,
}  # type: Dict[str, float]

DEFAULT_DEVICE = {
    "temp_limit_c": 80.0,  # warn when the hottest zone reaches this
    "freq_drop": 0.10,  # warn when the frequency fell by more than this fraction
    "steal_limit": 0.05,  # warn when the hypervisor took more than this share of the CPU time
}  # type: Dict[str, float]

COOLDOWN_MAX_S = 300.0  # longest wait for the cool-down temperature
DEFAULT_MIN_COSINE = 0.99  # a variant is degraded when an output's cosine to its parent's falls below this

Signature = List[Tuple[str, List[Any], str]]


def _perf_counter_ns_36() -> int:
    """``time.perf_counter`` in ns, for Python 3.6 (``perf_counter_ns`` came in 3.7)."""
    return round(time.perf_counter() * 1e9)


def ns_clock() -> Callable[[], int]:
    """The monotonic nanosecond clock: ``time.perf_counter_ns``, or its 3.6 fallback.

    Looked up at call time (not bound at import) so tests can replace ``time.perf_counter_ns``.
    """
    clock = getattr(time, "perf_counter_ns", None)  # type: Optional[Callable[[], int]]
    return clock if clock is not None else _perf_counter_ns_36


def now_ns() -> int:
    """One reading of :func:`ns_clock` (for single timings; loops bind ``ns_clock()`` once)."""
    return ns_clock()()


# Messages an extension module built for NumPy 1.x raises when imported beside NumPy 2.
NUMPY_ABI_MARKERS = (
    "compiled using NumPy 1.x",
    "numpy.core.multiarray failed to import",
    "_ARRAY_API not found",
    "numpy.core._multiarray_umath",
)


class AgentError(Exception):
    """A failure with a stable kind, reported in the result."""

    def __init__(self, kind: str, message: str) -> None:
        Exception.__init__(self, message)
        self.kind = kind


def _np() -> Any:
    import numpy

    return numpy


# --------------------------------------------------------------------------- memory


def _status_bytes(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes() -> Optional[int]:
    """Current resident set size of this process in bytes (None if unknown)."""
    value = _status_bytes("VmRSS")
    if value is not None:
        return value
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]  # optional on the board

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return None


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where it cannot be (not Linux >= 4.0).

    So that each phase of a measurement has its own peak: the timed configuration
    (load, warm-up, steady state) apart from the accuracy pass over the whole eval set.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size of this process since it started, in bytes (None if unknown)."""
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024
    except Exception:
        return None


# ----------------------------------------------------------------------- device state

SYSFS = os.environ.get("EDGEBENCH_SYSFS", "/sys")  # tests point this at a fake tree
PROCFS = os.environ.get("EDGEBENCH_PROCFS", "/proc")


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def device_state() -> Dict[str, Any]:
    """CPU governor, mean current / max frequency over CPUs (MHz), hottest thermal zone (deg C)."""
    state = {"governor": None, "freq_mhz": None, "max_freq_mhz": None, "temp_c": None}  # type: Dict[str, Any]
    cpu_base = os.path.join(SYSFS, "devices/system/cpu")
    state["governor"] = _read(os.path.join(cpu_base, "cpu0/cpufreq/scaling_governor"))
    cur, top = [], []  # type: List[float], List[float]
    try:
        cpus = sorted(c for c in os.listdir(cpu_base) if c.startswith("cpu") and c[3:].isdigit())
    except OSError:
        cpus = []
    for cpu in cpus:
        f = _read(os.path.join(cpu_base, cpu, "cpufreq/scaling_cur_freq"))
        m = _read(os.path.join(cpu_base, cpu, "cpufreq/scaling_max_freq"))
        if f and f.isdigit():
            cur.append(int(f) / 1000.0)
        if m and m.isdigit():
            top.append(int(m) / 1000.0)
    if cur:
        state["freq_mhz"] = sum(cur) / len(cur)
    if top:
        state["max_freq_mhz"] = max(top)
    temps = []
    base = os.path.join(SYSFS, "class/thermal")
    try:
        zones = [z for z in os.listdir(base) if z.startswith("thermal_zone")]
    except OSError:
        zones = []
    for zone in zones:
        raw = _read(os.path.join(base, zone, "temp"))
        if raw and raw.lstrip("-").isdigit():
            temps.append(int(raw) / 1000.0)
    if temps:
        state["temp_c"] = max(temps)
    state["cpu_ticks"] = cpu_ticks()
    return state


def cpu_ticks() -> Optional[List[int]]:
    """``[steal, total]`` jiffies of all CPUs from /proc/stat (None off Linux).

    Steal is time the hypervisor gave this VM's CPUs to someone else: on a shared cloud
    runner it moves latency and no setting on the board can stop it, so it is measured
    and reported (`device_warnings`) rather than controlled.
    """
    line = (_read(os.path.join(PROCFS, "stat")) or "").split("\n", 1)[0].split()
    if len(line) < 9 or line[0] != "cpu":
        return None
    vals = [int(v) for v in line[1:] if v.isdigit()]
    return [vals[7], sum(vals[:8])]


def steal_fraction(before: Dict[str, Any], after: Dict[str, Any]) -> Optional[float]:
    """The share of CPU time stolen by the hypervisor between two `device_state` readings."""
    a, b = before.get("cpu_ticks"), after.get("cpu_ticks")
    if not a or not b or b[1] <= a[1]:
        return None
    return float(b[0] - a[0]) / float(b[1] - a[1])


def device_warnings(before: Dict[str, Any], after: Dict[str, Any], limits: Dict[str, Any]) -> List[str]:
    """Warnings about the device state: frequency dropped, temperature at the limit, governor."""
    out = []
    drop = float(limits.get("freq_drop", DEFAULT_DEVICE["freq_drop"]))
    limit = float(limits.get("temp_limit_c", DEFAULT_DEVICE["temp_limit_c"]))
    fb, fa = before.get("freq_mhz"), after.get("freq_mhz")
    if fb and fa and fa < fb * (1.0 - drop):
        out.append("CPU frequency dropped from %.0f to %.0f MHz during the run: results may be throttled" % (fb, fa))
    for when, st in (("before", before), ("after", after)):
        t = st.get("temp_c")
        if t is not None and t >= limit:
            out.append(
                "temperature %.1f C %s the run reached the limit %.1f C: let the board cool down" % (t, when, limit)
            )
    steal = steal_fraction(before, after)
    if steal is not None and steal > float(limits.get("steal_limit", DEFAULT_DEVICE["steal_limit"])):
        out.append(
            "the hypervisor took %.0f%% of the CPU time (steal) during the run: a shared VM moves latency; "
            "compare runs paired (--baseline) or use a dedicated runner" % (steal * 100)
        )
    gov = after.get("governor")
    if gov and gov not in ("performance",):
        out.append("CPU governor is %r, not 'performance': latency may vary with frequency scaling" % gov)
    return out


def cool_down(spec: Dict[str, Any], sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Wait before loading: ``seconds`` flat, or until ``until_c`` (at most ``max_s`` seconds)."""
    t0 = time.monotonic()
    if spec.get("seconds"):
        sleep(float(spec["seconds"]))
    until = spec.get("until_c")
    reached = None  # type: Optional[bool]
    if until is not None:
        deadline = t0 + float(spec.get("max_s", COOLDOWN_MAX_S))
        reached = False
        while True:
            temp = device_state()["temp_c"]
            if temp is None or temp <= float(until):
                reached = True
                break
            if time.monotonic() >= deadline:
                break
            sleep(1.0)
    return {"waited_s": time.monotonic() - t0, "reached": reached}


# --------------------------------------------------------------------------- runtimes

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
                % _first_line(exc),
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
                % (self.version, os.path.basename(path), _first_line(exc)),
            ) from None
        self.providers = list(self.session.get_providers())
        self.input_names = [i.name for i in self.session.get_inputs()]

    def signature(self) -> Signature:
        """[(name, shape, numpy dtype name)] of the model's inputs."""
        return [(i.name, list(i.shape), _ORT_TYPES.get(i.type, "float32")) for i in self.session.get_inputs()]

    def prepare(self, arrays: List[Any]) -> Any:
        """The feed for `run`: a dict input name -> array (float data never silently cast to ints)."""
        for (name, _shape, dtype), a in zip(self.signature(), arrays):  # noqa: B905 (runs on Python 3.6: no strict=)
            if _np().dtype(dtype).kind in "iu" and a.dtype.kind == "f":
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
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    if expected and digest != expected:
        raise AgentError(
            "artifact_changed",
            "artifact %s on the board has sha256 %s..., the job expects %s...: the board's cached copy was "
            "changed; run again to deploy it afresh" % (path, digest[:12], expected[:12]),
        )
    return digest


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_numpy_abi_error(exc: BaseException) -> bool:
    text = str(exc)
    return any(marker in text for marker in NUMPY_ABI_MARKERS)


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
            if _is_numpy_abi_error(exc):
                np = _np()
                raise AgentError(
                    "runtime_numpy_abi",
                    "%s cannot be imported beside numpy %s (it was built for NumPy 1.x: %s): "
                    "install numpy<2 in the board's environment" % (mod, np.__version__, _first_line(exc)),
                ) from None
            errors.append("%s: %s" % (mod, _first_line(exc)))
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
                    "delegate %s could not be loaded: %s: check its path on the board" % (lib, _first_line(exc)),
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
                % (self.name, self.version, os.path.basename(path), _first_line(exc)),
            ) from None
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()

    def signature(self) -> Signature:
        """[(name, shape, numpy dtype name)] of the model's inputs (dynamic dims from shape_signature)."""
        np = _np()
        out = []  # type: Signature
        for d in self.inputs:
            shape = [int(x) if int(x) > 0 else "?" for x in d.get("shape_signature", d["shape"])]
            out.append((d["name"], shape, np.dtype(d["dtype"]).name))
        return out

    def prepare(self, arrays: List[Any]) -> Any:
        """Quantize float data into int8/uint8 inputs with the input's scale and zero point."""
        np = _np()
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
        np = _np()
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


# ----------------------------------------------------------------------------- inputs
# The job's ``inputs`` block holds one spec per input name (host side: edgebench.bench.inputs):
# ``{"value": 16000}`` (a constant, broadcast), ``{"range": [lo, hi]}`` (uniform; integers
# inclusive), ``{"npy": path}`` (a file shipped with the job), ``{"normal": true}``, and
# ``"batched": false`` for an input that is not split into samples (a scalar, a state tensor
# whose batch axis is not 0). Hand-written with numpy only: this runs on the board.

UNNAMED = (None, "", "?", -1)  # how runtimes show a dynamic axis with no name


def _suggest(name: str, choices: List[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return " (did you mean %r?)" % close[0] if close else ""


def unnamed_dim(d: Any) -> bool:
    """True for a dynamic axis with no name (None, '', '?', or a size <= 0)."""
    return d in UNNAMED or (isinstance(d, int) and d <= 0)


def check_dims(signature: Signature, dims: Dict[str, Any]) -> None:
    """Refuse ``?=SIZE`` when the model has unnamed dynamic axes on several axes (it would set them all)."""
    if "?" not in dims:
        return
    axes = ["%s:%d" % (n, i) for n, shape, _ in signature for i, d in enumerate(shape) if unnamed_dim(d)]
    axes = [a for a in axes if a not in dims]
    if len(axes) > 1:
        raise AgentError(
            "bad_input",
            "dim '?' is ambiguous: this model has unnamed dynamic axes %s: give each one as input:axis=SIZE, %s"
            % (", ".join(axes), " ".join("--dim %s=%s" % (a, dims["?"]) for a in axes)),
        )


def concrete_shape(
    name: str, shape: List[Any], dims: Dict[str, Any], batch: int, batched: bool, missing: List[str]
) -> List[int]:
    """The input's shape with every dynamic axis sized; the flags for unsized ones go to ``missing``.

    An axis is sized by ``input:axis`` in ``dims``, then by its name (``?`` for an unnamed one),
    then, for axis 0 of a batched input, by ``batch``.
    """
    out = []
    for i, d in enumerate(shape):
        key = "%s:%d" % (name, i)
        if isinstance(d, int) and d > 0:
            out.append(d)
        elif key in dims:
            out.append(int(dims[key]))
        elif isinstance(d, str) and not unnamed_dim(d) and d in dims:
            out.append(int(dims[d]))
        elif unnamed_dim(d) and "?" in dims:
            out.append(int(dims["?"]))
        elif i == 0 and batched:
            out.append(int(batch))
        else:
            flag = "--dim %s=SIZE" % (key if unnamed_dim(d) else d)
            if flag not in missing:
                missing.append(flag)
            out.append(1)
    return out


def _cast_value(name: str, value: Any, dtype: str) -> Any:
    """``value`` as a ``dtype`` scalar; a value the dtype cannot hold is an error naming the input."""
    np = _np()
    dt = np.dtype(dtype)
    ok = True
    if dt.kind in "iu":
        ok = not isinstance(value, bool) and float(value) == int(float(value))
        if ok:
            info = np.iinfo(dt)
            ok = int(info.min) <= int(float(value)) <= int(info.max)
    elif dt.kind == "b":
        ok = value in (0, 1, True, False)
    elif dt.kind == "f":
        ok = not isinstance(value, bool) and abs(float(value)) <= float(np.finfo(dt).max)
    if not ok:
        raise AgentError(
            "bad_input",
            "input %r is %s: the value %r cannot be cast to it: give a %s value" % (name, dtype, value, dtype),
        )
    return dt.type(value)


def make_input(
    name: str, shape: List[int], dtype: str, spec: Dict[str, Any], batched: bool, seed: int
) -> Tuple[Any, str]:
    """One input array and how it was made (for the record), from its spec or generated.

    Raises:
        AgentError: a value the dtype cannot hold, a .npy of another shape, or an integer input
            with no spec (its values select behaviour: they are never guessed).
    """
    np = _np()
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if "value" in spec:
        v = spec["value"]
        return np.full(shape, _cast_value(name, v, dtype), dtype=dt), "constant %s" % v
    if "range" in spec:
        lo, hi = spec["range"]
        lo_c, hi_c = _cast_value(name, lo, dtype), _cast_value(name, hi, dtype)
        if dt.kind in "iu":
            a = rng.integers(int(lo_c), int(hi_c) + 1, size=shape).astype(dt)
        else:
            a = rng.uniform(float(lo_c), float(hi_c), size=shape).astype(dt)
        return a, "uniform %s..%s, seed %d" % (lo, hi, seed)
    if "npy" in spec:
        path = spec["npy"]
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise AgentError(
                "bad_input", "input %r: %s could not be read: %s" % (name, path, _first_line(exc))
            ) from None
        label = spec.get("label") or os.path.basename(path)
        if dt.kind in "iub" and a.dtype.kind == "f":
            raise AgentError(
                "bad_input", "input %r is %s but %s holds %s: save it as %s" % (name, dtype, label, a.dtype.name, dtype)
            )
        if list(a.shape) != list(shape):
            if not (batched and list(a.shape) == list(shape[1:])):
                want = "%s or one sample %s" % (shape, shape[1:]) if batched else str(shape)
                raise AgentError(
                    "bad_input",
                    "input %r: %s has shape %s but the input takes %s: save an array of that shape"
                    % (name, label, list(a.shape), want),
                )
            a = np.broadcast_to(a, shape)
        return np.asarray(a.astype(dt), order="C"), "file %s" % label
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt), "generated: normal(0, 1), seed %d" % seed
    if dt.kind in "iu" and dt.itemsize == 1 and shape:  # 8-bit tensors are quantized data (an image), not settings
        info = np.iinfo(dt)
        a = rng.integers(int(info.min), int(info.max) + 1, size=shape).astype(dt)
        return a, "generated: uniform %d..%d, seed %d" % (info.min, info.max, seed)
    raise AgentError(
        "missing_input",
        "input %r is %s %s and has no value: integer values (a setting, an id, a length) select what the model "
        "does, so they are not guessed: "
        "give one with --input %s=VALUE (a constant, LO..HI or a .npy file)" % (name, dtype, shape, name),
    )


def build_inputs(
    signature: Signature,
    specs: Dict[str, Any],
    dims: Dict[str, Any],
    batch_size: int,
    seed: int = 0,
    given: Optional[Dict[str, Any]] = None,
) -> Tuple[List[Any], List[Dict[str, Any]]]:
    """The inputs of one inference and their records (name, shape, dtype, how made, batched).

    ``specs`` are the job's input specs (names the model lacks are ignored: a run's specs
    apply to every model that has the input); ``given`` are arrays from the eval data, used
    as they are. Every unsized dynamic dimension is reported at once.

    Raises:
        AgentError: missing dims (all of them, as ready-to-paste flags), an ambiguous ``?``,
            or a bad spec (see `make_input`).
    """
    check_dims(signature, dims)
    given = given or {}
    missing = []  # type: List[str]
    shapes = []
    for name, shape, _dtype in signature:
        batched = bool((specs.get(name) or {}).get("batched", True)) and len(shape) > 0
        if name in given:  # its shape is the data's
            shapes.append((batched, list(given[name].shape)))
            continue
        shapes.append((batched, concrete_shape(name, shape, dims, batch_size, batched, missing)))
    if missing:
        names = [n for n, _, _ in signature]
        raise AgentError(
            "missing_dims", "dynamic dimensions of %s have no size: add %s" % (", ".join(names), " ".join(missing))
        )
    arrays, records = [], []
    for (name, _shape, dtype), (batched, shape) in zip(signature, shapes):  # noqa: B905 (runs on Python 3.6)
        if name in given:
            a, how = given[name], "eval data"
        else:
            a, how = make_input(name, shape, dtype, specs.get(name) or {}, batched, seed)
        arrays.append(a)
        records.append({"name": name, "shape": list(a.shape), "dtype": str(a.dtype), "made": how, "batched": batched})
    return arrays, records


def _fit_array(name: str, want_shape: List[Any], want_dtype: str, a: Any, path: str) -> Any:
    """Check one eval array against one model input (shape after the batch axis, dtype kind)."""
    np = _np()
    want = want_shape[1:]
    got = list(a.shape[1:])
    if len(want) != len(got) or any(isinstance(w, int) and w > 0 and w != g for w, g in zip(want, got)):  # noqa: B905 (runs on Python 3.6: no strict=)
        raise AgentError(
            "bad_eval_data",
            "eval data %s has samples of shape %s but input %r expects %s: give eval data shaped [N, %s]"
            % (os.path.basename(path), got, name, want, ", ".join(str(w) for w in want)),
        )
    wk, gk = np.dtype(want_dtype).kind, a.dtype.kind
    if wk in "iu" and gk == "f":
        return a  # float data into a quantized input: the runtime adapter quantizes (TFLite) or refuses below
    if wk == "f" and gk in "iub":
        raise AgentError(
            "bad_eval_data",
            "eval data for input %r is %s but the model wants %s: save the eval data as %s"
            % (name, a.dtype.name, want_dtype, want_dtype),
        )
    return a.astype(want_dtype) if a.dtype.name != want_dtype else a


VALUE_KEYS = ("value", "range", "npy", "normal")  # a spec with one of these makes the input's values


def _has_value(spec: Optional[Dict[str, Any]]) -> bool:
    return any(k in (spec or {}) for k in VALUE_KEYS)


def load_eval(job: Dict[str, Any], signature: Signature) -> Tuple[Optional[List[Any]], Any, Any]:
    """Load the eval inputs (one array per model input), labels and reference outputs.

    A single-input model reads ``x``; a multi-input model reads one array per input,
    named after the input. An input whose job spec gives its values (``--input``) is not
    read: it is made here, one row per sample (or once when not batched). An input is not
    split into samples (batchless) when its spec says ``batched: false``, when the npz
    lists it in a ``batchless`` string array, or when it is 0-d for a 0-d input (a scalar).
    ``limit`` (quick mode) keeps a seeded random subset; the reference outputs (``reference``
    npz with ``outputs``) are cut the same way.

    Returns:
        (inputs or None, labels or None, reference outputs or None); also sets
        ``job["eval"]["n_total"]`` and ``job["eval"]["batched"]`` (one flag per input).
    """
    spec = job.get("eval") or {}
    path = spec.get("path")
    if not path:
        return None, None, None
    np = _np()
    specs = job.get("inputs") or {}
    names = [s[0] for s in signature]
    base = os.path.basename(path)
    try:
        with np.load(path) as data:
            if len(signature) == 1:
                key = spec.get("x", "x") if spec.get("x", "x") in data.files else names[0]
                keys = [key]
            else:
                keys = [(spec.get("inputs") or {}).get(n, n) for n in names]
            keys = [None if _has_value(specs.get(n)) else k for n, k in zip(names, keys)]  # noqa: B905 (Python 3.6)
            absent = [k for k in keys if k is not None and k not in data.files]
            if absent:
                raise AgentError(
                    "bad_eval_data",
                    "eval data %s has no arrays %s (it has %s): save one array per model input %s, or give the "
                    "missing ones with --input NAME=VALUE" % (base, absent, sorted(data.files), names),
                )
            found = dict((k, data[k]) for k in keys if k is not None)
            listed = [str(b) for b in data["batchless"].reshape(-1)] if "batchless" in data.files else []
            ykey = spec.get("y", "y")
            y = data[ykey] if ykey in data.files else None
    except AgentError:
        raise
    except Exception as exc:
        raise AgentError("bad_eval_data", "eval data %s could not be read: %s" % (base, _first_line(exc))) from None
    batched = []
    for (name, shape, _dtype), key in zip(signature, keys):  # noqa: B905 (runs on Python 3.6: no strict=)
        flag = (specs.get(name) or {}).get("batched")
        a = found.get(key) if key is not None else None
        if flag is None or len(shape) == 0:  # a 0-d input is one value, never split
            flag = len(shape) > 0 and not (name in listed or key in listed)
        if flag and a is not None and a.ndim == 0:
            raise AgentError(
                "bad_eval_data",
                "eval data %s: array %r is 0-d (one value) but input %r takes %s with a sample axis: save it with one "
                "row per sample (np.full(N, value)), or declare it batchless (--input %s=batchless, or list it in "
                "the npz as batchless=[%r])" % (base, key, name, shape, name, name),
            )
        batched.append(bool(flag))
    rows = [len(found[k]) for k, b in zip(keys, batched) if b and k is not None]  # noqa: B905 (Python 3.6)
    n = rows[0] if rows else (len(y) if y is not None else 1)
    if any(r != n for r in rows) or (y is not None and len(y) != n):
        raise AgentError("bad_eval_data", "eval data %s: arrays have different lengths" % base)
    ref = None
    if spec.get("reference"):
        try:
            with np.load(spec["reference"]) as r:  # ``outputs``, then ``outputs_1``... for a model's later outputs
                ref = [r["outputs"]] + [r["outputs_%d" % k] for k in range(1, len(r.files)) if "outputs_%d" % k in r]
        except Exception as exc:
            raise AgentError("bad_eval_data", "reference outputs could not be read: %s" % _first_line(exc)) from None
        if len(ref[0]) != n:
            raise AgentError("bad_eval_data", "reference outputs have %d rows, eval data %d" % (len(ref[0]), n))
    spec["n_total"] = n
    spec["batched"] = batched
    limit = spec.get("limit")
    idx = None
    if limit and int(limit) < n:
        idx = np.sort(np.random.default_rng(int(spec.get("seed", 0))).permutation(n)[: int(limit)])
        y = y[idx] if y is not None else None
        ref = [r[idx] if len(r) == len(ref[0]) else r for r in ref] if ref is not None else None
        n = len(idx)
    if ref is not None and len(ref) == 1:
        ref = ref[0]  # one output: the array itself (several: a list, one per output)
    dims = job.get("dims") or {}
    seed = int(job.get("seed", 0))
    xs = []
    for (name, shape, dtype), key, b in zip(signature, keys, batched):  # noqa: B905 (runs on Python 3.6)
        if key is None:  # made from its spec, n rows
            missing = []  # type: List[str]
            cshape = concrete_shape(name, shape, dims, n, b, missing)
            if missing:
                raise AgentError(
                    "missing_dims", "input %r has dynamic dimensions with no size: add %s" % (name, " ".join(missing))
                )
            xs.append(make_input(name, cshape, dtype, specs[name], b, seed)[0])
            continue
        x = found[key]
        if b:
            x = x[idx] if idx is not None else x
            x = _fit_array(name, shape, dtype, x, path)
        xs.append(x)
    return xs, y, ref


# --------------------------------------------------------------------------- measuring


def measure(
    run: Callable[[Any], Any], feed: Any, settings: Optional[Dict[str, Any]]
) -> Tuple[int, List[int], Dict[str, Any]]:
    """Warm up, then time single inferences until the round and time floors are met.

    Returns:
        (warm-up iterations, raw samples in ns, the settings used).
    """
    s = dict(DEFAULT_MEASURE)  # type: Dict[str, Any]
    s.update(settings or {})
    clock = ns_clock()
    max_ns = float(s["max_time_s"]) * 1e9
    min_ns = float(s["min_time_s"]) * 1e9
    warm_ns = float(s["warmup_min_s"]) * 1e9
    warm_iters, min_rounds, max_rounds = int(s["warmup_min_iters"]), int(s["min_rounds"]), int(s["max_rounds"])
    t0 = clock()
    warm = 0
    while (warm < warm_iters or clock() - t0 < warm_ns) and clock() - t0 < max_ns:
        run(feed)
        warm += 1
    samples = []  # type: List[int]
    start = clock()
    elapsed = 0
    while len(samples) < max_rounds and elapsed < max_ns:
        a = clock()
        run(feed)
        b = clock()
        samples.append(b - a)
        elapsed = b - start
        if len(samples) >= min_rounds and elapsed >= min_ns:
            break
    return warm, samples, s


def wilson(k: float, n: int, z: float = 1.96) -> List[float]:
    """Wilson score interval for a proportion k/n (95% by default)."""
    if n <= 0:
        return [0.0, 1.0]
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, centre - half), min(1.0, centre + half)]


def evaluate(model: Any, xs: List[Any], batch_size: int, batched: Optional[List[bool]] = None) -> Any:
    """Run the eval set in batches; returns the first output as float32 (N, -1) (see `evaluate_outputs`)."""
    first = evaluate_outputs(model, xs, batch_size, batched)[0]
    return first.reshape(len(first), -1)


def evaluate_outputs(model: Any, xs: List[Any], batch_size: int, batched: Optional[List[bool]] = None) -> List[Any]:
    """Run the eval set in batches; returns every output as float32, one row per sample (N, ...).

    ``batched`` says which inputs are split into samples (default: all but 0-d arrays);
    the others (scalars, state tensors) go whole into every batch. An output whose first
    axis is not the batch (a state) is kept whole per batch, stacked along its first axis.
    """
    np = _np()
    outs = []  # type: List[List[Any]]
    flags = batched if batched is not None else [x.ndim > 0 for x in xs]
    n = next((len(x) for x, b in zip(xs, flags) if b), 1)  # noqa: B905 (runs on Python 3.6: no strict=)
    for i in range(0, n, batch_size):
        chunk = [x[i : i + batch_size] if b else x for x, b in zip(xs, flags)]  # noqa: B905 (Python 3.6)
        size = min(batch_size, n - i)
        if size < batch_size:  # static batch models: pad the last chunk
            chunk = [
                np.concatenate([c, np.repeat(c[-1:], batch_size - size, axis=0)]) if b else c
                for c, b in zip(chunk, flags)  # noqa: B905 (runs on Python 3.6: no strict=)
            ]
        res = model.run(model.prepare(chunk))
        for k, o in enumerate(res):
            o = np.asarray(o, dtype=np.float32)
            o = o[:size] if o.ndim and len(o) == batch_size else o.reshape((1, *o.shape))
            if k == len(outs):
                outs.append([])
            outs[k].append(o)
    return [np.concatenate(o) for o in outs]


def output_names(model: Any) -> List[str]:
    """The names of a loaded model's outputs, in order (ONNX Runtime session or TFLite details)."""
    session = getattr(model, "session", None)
    if session is not None:
        return [o.name for o in session.get_outputs()]
    return [str(d.get("name", "output%d" % i)) for i, d in enumerate(getattr(model, "outputs", None) or [])]


def eval_batch_size(
    signature: Signature, batch: int, spec: Dict[str, Any], batched: Optional[List[bool]] = None
) -> int:
    """The batch for the accuracy pass: the model's static batch, else ``eval_batch_size`` (default 32).

    Only batched inputs count (``batched``: one flag per input; 0-d inputs never are).
    """
    flags = batched if batched is not None else [True] * len(signature)
    first = [s[1][0] for s, b in zip(signature, flags) if b and s[1]]  # noqa: B905 (runs on Python 3.6)
    if all(isinstance(d, int) and d > 0 for d in first):
        return batch  # static batch: the timed batch size is the only one the model takes
    return max(batch, int(spec.get("eval_batch_size", 32)))


def is_classifier(shape: Any) -> bool:
    """An output of class scores, ``(N, classes)`` with more than one class: the only kind top-1 fits.

    A dense output (a segmentation or detection map, ``(N, C, H, W)``) never gets a top-1.
    """
    return len(shape) == 2 and int(shape[1]) > 1


def accuracy(logits: Any, y: Any, n_total: int) -> Dict[str, Any]:
    """Top-1 accuracy with its Wilson 95% interval; ``logits`` must be classifier-shaped (`is_classifier`)."""
    np = _np()
    logits = logits.reshape(len(logits), -1)
    hits = int((logits.argmax(axis=1) == np.asarray(y).reshape(-1)).sum())
    n = len(logits)
    return {
        "top1": hits / n if n else None,
        "top1_ci95": wilson(hits, n),
        "n": n,
        "n_total": n_total,
        "quick": n < n_total,
    }


def accuracy_unknown(name: str, shape: Any, n_total: int) -> Dict[str, Any]:
    """The accuracy block when labels were given but the output is not class scores: unknown, not 0 %."""
    why = "labels were given but output %r is %s, not class scores (N, classes): accuracy is unknown" % (
        name,
        ["N"] + [int(d) for d in list(shape)[1:]],
    )
    return {"top1": None, "unknown": why, "n_total": n_total}


def output_fidelity(out: Any, ref: Any) -> Dict[str, Any]:
    """How close one output is to the parent's: cosine, max / mean abs error, SNR (dB), top-1 agreement.

    Hand-written with numpy only (this runs on the board). Per sample, the cosine of the
    flattened output against the reference (1 when both are all zeros, 0 when one is);
    ``cosine`` is its mean over samples, ``cosine_min`` the worst sample. SNR is
    ``10 log10(sum ref^2 / sum (out - ref)^2)`` over the whole output, None when the two
    are identical (infinite). ``top1_agreement`` only for classifier-shaped outputs.
    """
    np = _np()
    ref = np.asarray(ref, dtype=np.float32)
    out = np.asarray(out, dtype=np.float32)
    if ref.shape != out.shape:
        raise AgentError(
            "bad_eval_data", "reference outputs are %s but the model gives %s" % (list(ref.shape), list(out.shape))
        )
    n = len(ref)
    a = out.reshape(n, -1).astype(np.float64)
    b = ref.reshape(n, -1).astype(np.float64)
    diff = a - b
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    den = na * nb
    cos = np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.where(na + nb > 0, 0.0, 1.0))
    noise, signal = float((diff * diff).sum()), float((b * b).sum())
    if noise == 0:
        snr = None  # type: Optional[float]
    elif signal == 0:
        snr = -math.inf
    else:
        snr = 10.0 * math.log10(signal / noise)
    result = {
        "shape": ["N"] + [int(d) for d in ref.shape[1:]],
        "cosine": float(cos.mean()) if n else None,
        "cosine_min": float(cos.min()) if n else None,
        "max_abs_diff": float(np.abs(diff).max()) if diff.size else None,
        "mean_abs_diff": float(np.abs(diff).mean()) if diff.size else None,
        "snr_db": None if snr is None or math.isinf(snr) else round(snr, 3),
        "identical": noise == 0,
        "n": n,
    }  # type: Dict[str, Any]
    if is_classifier(ref.shape):
        agree = int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
        result["top1_agreement"] = agree / n if n else None
        result["top1_agreement_ci95"] = wilson(agree, n)
    return result


def fidelity(
    outs: Any, refs: Any, names: Optional[List[str]] = None, min_cosine: Optional[float] = None
) -> Dict[str, Any]:
    """Agreement of these outputs with the parent's reference outputs, per output and worst of all.

    Args:
        outs: the variant's outputs (one array, or a list, one per output, rows = samples).
        refs: the parent's outputs, the same way (a list may be shorter: older references
            hold the first output only).
        names: the outputs' names.
        min_cosine: the variant is ``degraded`` when an output's cosine falls below this
            (default `DEFAULT_MIN_COSINE`).

    Returns:
        ``outputs`` (one `output_fidelity` block each, with its name), the worst figures
        over the outputs (``cosine``, ``cosine_min``, ``snr_db``, ``max_abs_diff``; ``mean_abs_diff``
        and ``top1_agreement`` of the first output), ``min_cosine`` and ``degraded``.
    """
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    refs = refs if isinstance(refs, (list, tuple)) else [refs]
    threshold = DEFAULT_MIN_COSINE if min_cosine is None else float(min_cosine)
    per = []
    for i, (o, r) in enumerate(zip(outs, refs)):  # noqa: B905 (runs on Python 3.6: no strict=)
        block = output_fidelity(o, r)
        block["name"] = names[i] if names and i < len(names) else "output%d" % i
        per.append(block)
    if not per:
        raise AgentError("bad_eval_data", "reference outputs hold no output to compare")
    cosines = [p["cosine"] for p in per if p["cosine"] is not None]
    snrs = [p["snr_db"] for p in per if p["snr_db"] is not None]
    maxes = [p["max_abs_diff"] for p in per if p["max_abs_diff"] is not None]
    mins = [p["cosine_min"] for p in per if p["cosine_min"] is not None]
    worst = min(cosines) if cosines else None
    result = {
        "cosine": worst,
        "cosine_mean": per[0]["cosine"],
        "cosine_min": min(mins) if mins else None,
        "snr_db": min(snrs) if snrs else None,
        "max_abs_diff": max(maxes) if maxes else None,
        "mean_abs_diff": per[0]["mean_abs_diff"],
        "n": per[0]["n"],
        "outputs": per,
        "min_cosine": threshold,
        "degraded": worst is not None and worst < threshold,
    }  # type: Dict[str, Any]
    if "top1_agreement" in per[0]:
        result["top1_agreement"] = per[0]["top1_agreement"]
        result["top1_agreement_ci95"] = per[0]["top1_agreement_ci95"]
    return result


# ------------------------------------------------------------------------------- main


def host_info() -> Dict[str, Any]:
    """What the board is: Python, OS, machine, CPU count, host name."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "hostname": platform.node(),
    }


def _inputs_for(
    job: Dict[str, Any], signature: Signature, xs: Optional[List[Any]], batch: int
) -> Tuple[List[Any], List[Dict[str, Any]]]:
    """The timed inputs and their records: eval data (first ``batch`` samples) or made from the specs."""
    specs, dims, seed = job.get("inputs") or {}, job.get("dims") or {}, int(job.get("seed", 0))
    if xs is None:
        return build_inputs(signature, specs, dims, batch, seed)
    flags = (job.get("eval") or {}).get("batched") or [True] * len(xs)
    specs = dict(specs)
    given = {}
    for (name, _shape, _dtype), x, b in zip(signature, xs, flags):  # noqa: B905 (runs on Python 3.6: no strict=)
        if _has_value(specs.get(name)):
            continue  # made again at the timed batch size, and recorded as made
        if b and len(x) < batch:
            raise AgentError(
                "bad_eval_data",
                "eval data has %d samples, fewer than the batch size %d: lower batch_size" % (len(x), batch),
            )
        given[name] = _np().asarray(x[:batch] if b else x, order="C")  # (ascontiguousarray makes 0-d 1-d)
        if not b:  # batchless in the eval data: recorded as such
            specs[name] = dict(specs.get(name) or {}, batched=False)
    return build_inputs(signature, specs, dims, batch, seed, given)


def _open_model(job: Dict[str, Any], result: Dict[str, Any]) -> Tuple[Any, str, Any]:
    """numpy, the checked artifact path and the (unloaded) runtime wrapper of a job; records numpy and sha256."""
    try:
        import numpy as np
    except Exception as exc:
        raise AgentError(
            "runtime_missing", "numpy cannot be imported (%s): install numpy on the board" % _first_line(exc)
        ) from None
    result["numpy"] = np.__version__
    runtime = job.get("runtime", "onnxruntime")
    if runtime not in RUNTIMES:
        raise AgentError("bad_job", "unknown runtime %r: use one of %s" % (runtime, sorted(RUNTIMES)))
    artifact = job["artifact"]
    if not os.path.isfile(artifact):
        raise AgentError("missing_artifact", "artifact %s is not on the board: deploy it again" % artifact)
    result["artifact_sha256"] = check_sha256(artifact, job.get("sha256"))
    return np, artifact, RUNTIMES[runtime](job.get("runtime_options") or {})


def new_result() -> Dict[str, Any]:
    """The head of every job's result: schema, agent version, not ok yet, host, pid."""
    return {
        "schema": RESULT_SCHEMA,
        "agent_version": AGENT_VERSION,
        "ok": False,
        "error": None,
        "warnings": [],
        "host": host_info(),
        "pid": os.getpid(),
    }


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run one job and return the result dict (never raises)."""
    if job.get("profile"):  # `edgebench profile`: see the profiling section
        return profile_job(job)
    if job.get("paired"):  # a paired A/B process: see `paired_job`
        return paired_job(job)
    result = new_result()
    memory = {"rss_start": rss_bytes()}  # type: Dict[str, Any]
    result["memory"] = memory
    device = dict(DEFAULT_DEVICE)  # type: Dict[str, Any]
    device.update(job.get("device") or {})
    try:
        if device.get("cooldown"):
            result["cooldown"] = cool_down(device["cooldown"])
        result["device_before"] = device_state()
        np, artifact, model = _open_model(job, result)
        memory["rss_before_load"] = rss_bytes()
        t = now_ns()
        model.load(artifact)
        load_ns = now_ns() - t
        memory["rss_after_load"] = rss_bytes()
        load_peak = peak_rss_bytes()  # the timed configuration's peak includes the load's
        result["runtime"] = {
            "name": model.name,
            "version": model.version,
            "providers": model.providers,
            "threads": model.threads,
        }
        note_in_use(model, result)
        signature = model.signature()
        result["signature"] = [{"name": n, "shape": s, "dtype": d} for n, s, d in signature]
        measure_spec = job.get("measure") or {}
        batch = int(measure_spec.get("batch_size", DEFAULT_MEASURE["batch_size"]))
        xs, y, ref = load_eval(job, signature)
        arrays, result["inputs"] = _inputs_for(job, signature, xs, batch)
        # The timed configuration holds its own batch only: the eval set is let go (and read
        # again for the accuracy pass), so that its memory is not counted as the model's.
        arrays = [np.array(a) for a in arrays]
        evaluating = xs is not None and (job.get("eval") or {}).get("evaluate", True)  # later repeats only time
        timed_input = "eval" if xs is not None else "generated"
        xs = y = ref = None
        per_phase = reset_peak_rss()
        feed = model.prepare(arrays)
        t = now_ns()
        model.run(feed)
        first_ns = now_ns() - t
        warm, samples, settings = measure(getattr(model, "timed_run", model.run), feed, measure_spec)
        memory["rss_after_run"] = rss_bytes()
        timed_peak = peak_rss_bytes()
        if per_phase and timed_peak is not None and load_peak is not None:
            timed_peak = max(timed_peak, load_peak)
        if timed_peak is not None:
            # the kernel's RSS counters are per-thread and approximate (up to 64 pages each), so VmHWM can read
            # a little below an RSS read earlier: a peak is never below what was seen
            seen = [memory.get(k) for k in ("rss_before_load", "rss_after_load", "rss_after_run")]
            timed_peak = max([timed_peak] + [v for v in seen if v is not None])
        memory["peak_rss"] = timed_peak  # load + warm-up + steady state at the measured batch
        memory["peak_rss_scope"] = "timed" if per_phase else "process"
        if not samples:
            raise AgentError(
                "no_samples",
                "no latency samples were collected (max_time_s=%s, max_rounds=%s): raise max_time_s and max_rounds"
                % (settings["max_time_s"], settings["max_rounds"]),
            )
        result["timing"] = {
            "load_ns": load_ns,
            "first_inference_ns": first_ns,
            "warmup_iters": warm,
            "batch_size": batch,
            "input": timed_input,
            "samples_ns": samples,
            "settings": settings,
        }
        if evaluating:
            per_phase = reset_peak_rss() and per_phase
            t = now_ns()
            xs, y, ref = load_eval(job, signature)
            assert xs is not None  # read a first time above
            flags = (job.get("eval") or {}).get("batched")
            outs = evaluate_outputs(model, xs, eval_batch_size(signature, batch, measure_spec, flags), flags)
            logits = outs[0].reshape(len(outs[0]), -1)
            n_total = int((job.get("eval") or {}).get("n_total", len(logits)))
            names = output_names(model)
            if y is not None and is_classifier(outs[0].shape):
                result["accuracy"] = accuracy(logits, y, n_total)
                result["accuracy"]["eval_ns"] = now_ns() - t
            elif y is not None:
                result["accuracy"] = accuracy_unknown(names[0] if names else "output0", outs[0].shape, n_total)
                result["warnings"].append(result["accuracy"]["unknown"])
            if ref is not None:
                result["fidelity"] = fidelity(outs, ref, names, measure_spec.get("min_cosine"))
            out_path = (job.get("eval") or {}).get("save_outputs")
            if out_path:
                with open(out_path, "wb") as f:
                    np.savez(f, outputs=logits)
            if per_phase:  # the accuracy pass's own peak (the whole eval set, batched)
                memory["peak_rss_eval"] = peak_rss_bytes()
        result["ok"] = True
    except AgentError as exc:
        result["error"] = {"kind": exc.kind, "message": str(exc)}
    except MemoryError:
        result["error"] = {
            "kind": "out_of_memory",
            "message": "the agent ran out of memory: use a smaller batch or model",
        }
    except Exception as exc:
        result["error"] = {
            "kind": "exception",
            "message": "%s: %s" % (type(exc).__name__, exc),
            "traceback": traceback.format_exc()[-2000:],
        }
    memory.setdefault("peak_rss", peak_rss_bytes())
    result["device_after"] = device_state()
    result["warnings"].extend(device_warnings(result.get("device_before") or {}, result["device_after"], device))
    return result


# ---- paired A/B ----
# A process of a paired comparison (`edgebench run --baseline`, `compare --ab`): the job's
# artifact (B, the candidate) and ``paired.artifact`` (A, the baseline) are loaded in this one
# process and timed alternately, one inference each (A, B, A, B, ...), on the same inputs. What
# moves a fresh process's or a whole run's speed (the core, the clock, the hypervisor's
# steal, neighbours) then moves A and B alike, and the ratio of their medians in this
# process is what the host decides on (duet benchmarking; measured in
# tests/perf/perf_process_variation.py: per-process ratios within ~1 % where the process
# medians themselves spread 5-20 %). Latency only: memory, accuracy and fidelity come from the
# candidate's own fresh processes.


def paired_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Time the baseline (A) and the candidate (B) alternately in this process; never raises."""
    result = new_result()
    device = dict(DEFAULT_DEVICE)  # type: Dict[str, Any]
    device.update(job.get("device") or {})
    try:
        result["device_before"] = device_state()
        paired = job["paired"]
        _np_mod, artifact_b, model_b = _open_model(job, result)
        job_a = dict(job, artifact=paired["artifact"], sha256=paired.get("sha256"))
        _np_mod, artifact_a, model_a = _open_model(job_a, {})
        model_a.load(artifact_a)
        model_b.load(artifact_b)
        sig_a, sig_b = model_a.signature(), model_b.signature()
        if [(n, d) for n, _s, d in sig_a] != [(n, d) for n, _s, d in sig_b] or any(
            isinstance(x, int) and isinstance(y, int) and x != y
            for (_n, sa, _d), (_m, sb, _e) in zip(sig_a, sig_b)  # noqa: B905 (runs on Python 3.6: no strict=)
            for x, y in zip(sa, sb)  # noqa: B905
        ):
            raise AgentError(
                "bad_job",
                "the two models take different inputs (%s vs %s): a paired comparison needs the same inputs"
                % (
                    ", ".join("%s:%s%s" % (n, d, list(sh)) for n, sh, d in sig_a),
                    ", ".join("%s:%s%s" % (n, d, list(sh)) for n, sh, d in sig_b),
                ),
            )
        measure_spec = job.get("measure") or {}
        batch = int(measure_spec.get("batch_size", DEFAULT_MEASURE["batch_size"]))
        xs, _y, _ref = load_eval(job, sig_b)
        arrays, result["inputs"] = _inputs_for(job, sig_b, xs, batch)
        feed_a, feed_b = model_a.prepare(arrays), model_b.prepare(arrays)
        runs = [getattr(model_a, "timed_run", model_a.run), getattr(model_b, "timed_run", model_b.run)]
        feeds = [feed_a, feed_b]
        if paired.get("first") == "b":  # processes alternate which model goes first
            runs.reverse()
            feeds.reverse()
        step = [0]

        def both(_feed: Any) -> None:
            # one call of `measure` times A then B: their samples are taken apart below
            i = step[0] % 2
            step[0] += 1
            runs[i](feeds[i])

        s = dict(DEFAULT_MEASURE)  # type: Dict[str, Any]
        s.update(measure_spec)
        # the floors are per model: twice the samples and twice the time in all
        s["min_rounds"], s["min_time_s"] = 2 * int(s["min_rounds"]), 2 * float(s["min_time_s"])
        s["warmup_min_iters"] = 2 * int(s["warmup_min_iters"])
        warm, samples, _settings = measure(both, None, s)
        # sample k ran runs[(warm + k) % 2]; runs[0] is A unless B goes first
        on_first = samples[warm % 2 :: 2]  # samples of runs[0]
        on_second = samples[1 - warm % 2 :: 2]
        n = min(len(on_first), len(on_second))
        if n == 0:
            raise AgentError("no_samples", "no paired samples were collected: raise min_time_s and max_time_s")
        a_ns, b_ns = (on_second, on_first) if paired.get("first") == "b" else (on_first, on_second)
        result["paired"] = {
            "a_samples_ns": a_ns[:n],
            "b_samples_ns": b_ns[:n],
            "a_sha256": paired.get("sha256"),
            "warmup_iters": warm,
            "first": paired.get("first", "a"),
        }
        result["runtime"] = {
            "name": model_b.name,
            "version": model_b.version,
            "providers": model_b.providers,
            "threads": model_b.threads,
        }
        result["ok"] = True
    except AgentError as exc:
        result["error"] = {"kind": exc.kind, "message": str(exc)}
    except Exception as exc:
        result["error"] = {
            "kind": "exception",
            "message": "%s: %s" % (type(exc).__name__, exc),
            "traceback": traceback.format_exc()[-2000:],
        }
    result["device_after"] = device_state()
    result["warnings"].extend(device_warnings(result.get("device_before") or {}, result["device_after"], device))
    return result


# ---- profiling ----
# `edgebench profile` (host side: edgebench.bench.profile): a job with a ``profile`` block
# runs `profile_job` instead of the measurement. One fresh process per variant: load, warm-up
# and an unprofiled steady state (the honest latency, same as `run_job`), then the runtime's
# own profiler over ``iterations`` inferences. The ONNX Runtime trace is parsed HERE, on the
# board, into per-node totals and one inference's events: the raw trace holds every event of
# every profiled run (megabytes for a large model), while the compact form travels back in the
# one result line over SSH with no file to fetch, and the parsing is plain Python (no numpy).

PROFILE_DEFAULTS = {"iterations": 50, "warmup": 5, "rss_interval_s": 0.005, "max_points": 2000}  # type: Dict[str, Any]
TFLITE_NO_TIMING = "per-operator timing not available in the LiteRT Python API"


class RssTimeline(object):
    """RSS of this process over the model's life: (phase, seconds since start, bytes).

    A daemon thread samples every ``interval`` seconds under the current phase; `mark`
    starts a phase and samples at once, so short phases (a load) still get a point.
    """

    def __init__(self, interval: float, max_points: int) -> None:
        self.interval, self.max_points = float(interval), int(max_points)
        self.phase = "start"
        self.points = []  # type: List[List[Any]]
        self.t0 = time.perf_counter()
        self._stop = None  # type: Any
        self._thread = None  # type: Any

    def sample(self) -> None:
        """Record one point under the current phase."""
        rss = rss_bytes()
        if rss is not None:
            self.points.append([self.phase, round(time.perf_counter() - self.t0, 6), rss])
        if len(self.points) > self.max_points:  # a long run: keep every other point, sample half as often
            self.points = self.points[::2]
            self.interval *= 2

    def mark(self, phase: str) -> None:
        """Start a phase (and sample now)."""
        self.phase = phase
        self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        """Start the sampling thread."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="edgebench-rss")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> List[List[Any]]:
        """Stop sampling (one last point) and return the timeline."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5.0)
        self.mark("end")
        return self.points


def _median(values: List[float]) -> Optional[float]:
    s = sorted(values)
    if not s:
        return None
    mid = len(s) // 2
    return float(s[mid]) if len(s) % 2 else (s[mid - 1] + s[mid]) / 2.0


def parse_ort_trace(events: List[Dict[str, Any]], iterations: int) -> Dict[str, Any]:
    """Per-node times of the last ``iterations`` runs of an ONNX Runtime profiling trace.

    Runs are the ``model_run`` session events; a node event (``<node>_kernel_time``; the
    fences older versions write are skipped) belongs to the run whose span holds its start.

    Returns:
        ``nodes`` ([{name, op_type, provider, total_us, count, order}] in run order),
        ``runs`` ([{model_run_us, node_us}] per profiled run) and ``trace`` (the events of
        the run with the median ``model_run`` time, timestamps from its start).
    """
    runs = sorted(
        [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"], key=lambda e: e["ts"]
    )
    if iterations > 0:
        runs = runs[-iterations:]
    nodes = sorted(
        [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")],
        key=lambda e: e["ts"],
    )
    starts = [e["ts"] for e in nodes]
    table = {}  # type: Dict[str, Dict[str, Any]]
    out_runs = []  # type: List[Dict[str, Any]]
    per_run = []  # type: List[List[Dict[str, Any]]]
    for r in runs:
        lo, hi = bisect.bisect_left(starts, r["ts"]), bisect.bisect_right(starts, r["ts"] + r["dur"])
        inside = nodes[lo:hi]
        per_run.append(inside)
        out_runs.append({"model_run_us": r["dur"], "node_us": sum(e["dur"] for e in inside)})
        for e in inside:
            name = e["name"][: -len("_kernel_time")]
            args = e.get("args") or {}
            entry = table.get(name)
            if entry is None:
                entry = table[name] = {
                    "name": name,
                    "op_type": args.get("op_name", "?"),
                    "provider": args.get("provider", "?"),
                    "total_us": 0,
                    "count": 0,
                    "order": len(table),
                }
            entry["total_us"] += e["dur"]
            entry["count"] += 1
    trace = []  # type: List[Dict[str, Any]]
    if runs:
        durs = [r["dur"] for r in runs]
        pick = durs.index(sorted(durs)[len(durs) // 2])
        t0 = runs[pick]["ts"]
        trace.append({"name": "model_run", "cat": "Session", "ts": 0, "dur": runs[pick]["dur"]})
        for e in per_run[pick]:
            args = e.get("args") or {}
            trace.append({
                "name": e["name"][: -len("_kernel_time")], "cat": args.get("op_name", "?"),
                "provider": args.get("provider", "?"), "ts": e["ts"] - t0, "dur": e["dur"], "tid": e.get("tid", 0),
            })  # fmt: skip
    return {"nodes": sorted(table.values(), key=lambda n: n["order"]), "runs": out_runs, "trace": trace}


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
        return ["unknown (%s)" % _first_line(exc)]


def note_in_use(model: Any, result: Dict[str, Any]) -> None:
    """Record what is really in use in ``result["runtime"]["in_use"]``; warn when XNNPACK was not applied."""
    in_use = runtime_in_use(model)
    result["runtime"]["in_use"] = in_use
    if "xnnpack" in model.providers and "xnnpack" not in in_use and any(u.startswith("builtin") for u in in_use):
        result["warnings"].append("the XNNPACK delegate was requested but took no op: every op ran on builtin kernels")


def _profile_ort(model: Any, artifact: str, feed: Any, iterations: int, warmup: int) -> Dict[str, Any]:
    ort = model.ort
    if not hasattr(ort.SessionOptions(), "enable_profiling") or not hasattr(ort.InferenceSession, "end_profiling"):
        raise AgentError(
            "profiler_missing",
            "not available on this board: onnxruntime %s has no profiler (SessionOptions.enable_profiling, "
            "InferenceSession.end_profiling): install onnxruntime >= 1.2 on the board" % model.version,
        )
    tmp = tempfile.mkdtemp(prefix="edgebench-profile-")
    try:
        so = model.session.get_session_options()  # the measured session's threads and optimization level
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        providers = model.session.get_providers()
        popts = model.session.get_provider_options()
        sess = ort.InferenceSession(
            artifact, sess_options=so, providers=providers, provider_options=[popts.get(p, {}) for p in providers]
        )
        for _ in range(warmup):
            sess.run(None, feed)
        samples = []  # type: List[int]
        clock = ns_clock()
        for _ in range(iterations):
            a = clock()
            sess.run(None, feed)
            samples.append(clock() - a)
        path = sess.end_profiling()
        with open(path) as f:
            events = json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    parsed = parse_ort_trace(events, iterations)
    requested = list(model.options.get("providers") or ["CPUExecutionProvider"])
    first = requested[0]
    parsed.update(
        available=True,
        profiler="onnxruntime SessionOptions.enable_profiling",
        requested_provider=first[0] if isinstance(first, (list, tuple)) else first,
        profiled_samples_ns=samples,
    )
    return parsed


def _profile_tflite(model: Any) -> Dict[str, Any]:
    if not hasattr(model.interp, "_interpreter") or not hasattr(model.interp._interpreter, "NodeName"):
        raise AgentError(
            "profiler_missing",
            "not available on this board: %s %s exposes no operator details: update the TFLite runtime"
            % (model.name, model.version),
        )
    external = [p for p in model.providers if p.startswith("delegate:")]
    return {
        "available": False,
        "note": TFLITE_NO_TIMING,
        "profiler": None,
        "requested_provider": external[0] if external else ("xnnpack" if "xnnpack" in model.providers else "builtin"),
        "ops": tflite_ops(model),
        "profiled_samples_ns": [],
    }


def profile_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run a profile job: the measurement's load, warm-up and steady state, then the profiler.

    The result has the shape of `run_job`'s (``timing.samples_ns`` are the UNprofiled
    samples, the only latency reported) plus ``profile``: the profiler's per-node data,
    ``unprofiled_p50_ns``, ``profiled_p50_ns``, ``overhead_ratio`` and ``memory_timeline``.
    """
    result = {
        "schema": RESULT_SCHEMA, "agent_version": AGENT_VERSION, "ok": False, "error": None, "warnings": [],
        "host": host_info(), "pid": os.getpid(),
    }  # type: Dict[str, Any]  # fmt: skip
    spec = dict(PROFILE_DEFAULTS)
    spec.update(job.get("profile") or {})
    timeline = RssTimeline(spec["rss_interval_s"], spec["max_points"])
    memory = {"rss_start": rss_bytes()}  # type: Dict[str, Any]
    result["memory"] = memory
    try:
        result["device_before"] = device_state()
        timeline.start()
        timeline.mark("import")
        _np, artifact, model = _open_model(job, result)
        memory["rss_before_load"] = rss_bytes()
        timeline.mark("load")
        t = now_ns()
        model.load(artifact)
        load_ns = now_ns() - t
        memory["rss_after_load"] = rss_bytes()
        result["runtime"] = {
            "name": model.name, "version": model.version, "providers": model.providers, "threads": model.threads,
        }  # fmt: skip
        note_in_use(model, result)
        signature = model.signature()
        result["signature"] = [{"name": n, "shape": s, "dtype": d} for n, s, d in signature]
        mspec = dict(job.get("measure") or {})
        batch = int(mspec.get("batch_size", DEFAULT_MEASURE["batch_size"]))
        xs, _y, _ref = load_eval(job, signature)
        arrays, result["inputs"] = _inputs_for(job, signature, xs, batch)
        feed = model.prepare(arrays)
        timed = getattr(model, "timed_run", model.run)
        timeline.mark("first_inference")
        t = now_ns()
        model.run(feed)
        first_ns = now_ns() - t
        timeline.mark("warmup")
        settings = dict(DEFAULT_MEASURE)  # type: Dict[str, Any]
        settings.update(mspec)
        warm, t0 = 0, now_ns()
        while warm < int(settings["warmup_min_iters"]) or now_ns() - t0 < settings["warmup_min_s"] * 1e9:
            timed(feed)
            warm += 1
            if now_ns() - t0 > settings["max_time_s"] * 1e9:
                break
        timeline.mark("steady")
        steady = dict(settings)
        steady.update(warmup_min_iters=0, warmup_min_s=0.0)
        _, samples, _ = measure(timed, feed, steady)
        memory["rss_after_run"] = rss_bytes()
        if not samples:
            raise AgentError("no_samples", "no latency samples were collected: raise max_time_s and max_rounds")
        result["timing"] = {
            "load_ns": load_ns, "first_inference_ns": first_ns, "warmup_iters": warm, "batch_size": batch,
            "input": "eval" if xs is not None else "generated", "samples_ns": samples, "settings": settings,
        }  # fmt: skip
        timeline.mark("profile")
        if job.get("runtime", "onnxruntime") == "onnxruntime":
            prof = _profile_ort(model, artifact, feed, int(spec["iterations"]), int(spec["warmup"]))
        else:
            prof = _profile_tflite(model)
        prof["iterations"] = int(spec["iterations"]) if prof["available"] else 0
        prof["unprofiled_p50_ns"] = _median([float(s) for s in samples])
        prof["profiled_p50_ns"] = _median([float(s) for s in prof["profiled_samples_ns"]])
        up, pp = prof["unprofiled_p50_ns"], prof["profiled_p50_ns"]
        prof["overhead_ratio"] = pp / up if (pp and up) else None
        result["profile"] = prof
        memory["peak_rss"] = peak_rss_bytes()
        result["ok"] = True
    except AgentError as exc:
        result["error"] = {"kind": exc.kind, "message": str(exc)}
    except MemoryError:
        result["error"] = {"kind": "out_of_memory", "message": "the agent ran out of memory: use a smaller model"}
    except Exception as exc:
        result["error"] = {
            "kind": "exception",
            "message": "%s: %s" % (type(exc).__name__, exc),
            "traceback": traceback.format_exc()[-2000:],
        }
    points = timeline.stop()
    if result.get("profile") is not None:
        result["profile"]["memory_timeline"] = points
    memory.setdefault("peak_rss", peak_rss_bytes())
    result["device_after"] = device_state()
    return result


# ------------------------------------------------------------------------------ probe


def _cpu_model() -> Optional[str]:
    text = _read("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        for line in text.splitlines():
            if ":" in line and line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _memory_bytes() -> Optional[int]:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _os_name() -> str:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()


def _cgroup_limits() -> Dict[str, Any]:
    """The CPU quota (cores) and memory limit (bytes) of this process's cgroup, v1 or v2."""
    out = {"cpu_quota_cores": None, "memory_limit_bytes": None}  # type: Dict[str, Any]
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ctrls, path = parts[1].split(","), parts[2]
        if "cpu" in ctrls:
            base = "/sys/fs/cgroup/cpu" + path
            q, p = _read(base + "/cpu.cfs_quota_us"), _read(base + "/cpu.cfs_period_us")
            if q and p and int(q) > 0:
                out["cpu_quota_cores"] = int(q) / float(p)
        if "memory" in ctrls:
            m = _read("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes")
            if m and int(m) < (1 << 60):  # v1 writes "no limit" as a huge number
                out["memory_limit_bytes"] = int(m)
        if parts[0] == "0" and parts[1] == "":
            cm = _read("/sys/fs/cgroup" + path + "/cpu.max")
            if cm and not cm.startswith("max"):
                q, p = cm.split()
                out["cpu_quota_cores"] = int(q) / float(p)
            mm = _read("/sys/fs/cgroup" + path + "/memory.max")
            if mm and mm != "max":
                out["memory_limit_bytes"] = int(mm)
    return out


def probe(runtimes: List[str]) -> Dict[str, Any]:
    """What this board is, and what stops it from running jobs (``problems``).

    The board fingerprint that ``edgebench boards check`` records: arch, CPU model, cores,
    memory, OS, Python, numpy, each runtime's version (ONNX Runtime's providers, the TFLite
    interpreter's module), the device state, the cgroup CPU quota / memory limit. Runtimes
    are imported through the same adapters that run jobs.
    """
    fp = {
        "arch": platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": None,
        "runtimes": {},
        "problems": [],
    }  # type: Dict[str, Any]
    fp.update(device_state())
    fp.update(_cgroup_limits())
    try:
        fp["numpy"] = _np().__version__
    except Exception as exc:
        fp["problems"].append("numpy is not importable (%s): install numpy on the board" % type(exc).__name__)
    for rt in runtimes:
        if rt not in RUNTIMES:
            fp["problems"].append("unknown runtime %r" % rt)
            continue
        try:
            model = RUNTIMES[rt]({})
        except Exception as exc:
            detail = str(exc) if isinstance(exc, AgentError) else "%s: %s" % (type(exc).__name__, _first_line(exc))
            fp["problems"].append("runtime %s is not installed or not importable (%s)" % (rt, detail))
            continue
        if rt == "onnxruntime":
            fp["runtimes"][rt] = {"version": model.version, "providers": list(model.ort.get_available_providers())}
        else:
            fp["runtimes"][rt] = {"module": model.name.split(":", 1)[-1], "version": model.version}
    return fp


def main(argv: List[str]) -> int:
    """Read the job (file or ``-`` for stdin), run it, print one JSON line; exit 0 unless misused.

    ``agent.py --probe [RUNTIMES_JSON]`` prints the board's fingerprint (see `probe`) instead.
    """
    if len(argv) in (2, 3) and argv[1] == "--probe":
        wanted = json.loads(argv[2]) if len(argv) == 3 else sorted(RUNTIMES)
        sys.stdout.write(json.dumps(probe(wanted)) + "\n")
        sys.stdout.flush()
        return 0
    if len(argv) != 2:
        sys.stderr.write("usage: agent.py JOB.json | - | --probe [RUNTIMES_JSON]\n")
        return 2
    try:
        if argv[1] == "-":
            job = json.load(sys.stdin)
        else:
            with open(argv[1]) as f:
                job = json.load(f)
    except (OSError, ValueError) as exc:
        result = {
            "schema": RESULT_SCHEMA,
            "agent_version": AGENT_VERSION,
            "ok": False,
            "error": {"kind": "bad_job", "message": "job could not be read: %s" % exc},
        }  # type: Dict[str, Any]
    else:
        result = run_job(job)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
