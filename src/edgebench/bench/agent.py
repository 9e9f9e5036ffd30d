"""edgebench on-board agent: one self-contained file, run once per variant.

It runs on the board with Python >= 3.8, numpy and one runtime (onnxruntime,
ai_edge_litert, tflite_runtime or tensorflow.lite); psutil is optional. No edgebench
install is needed there. Usage::

    python agent.py JOB.json        # or: python agent.py - < JOB.json

It prints exactly one JSON object on stdout (the result) and exits 0, also when the
variant failed: failures are data (``ok: false`` with ``error``). Timing happens here,
on the board, with a monotonic nanosecond clock around the runtime call alone.

Keep this file free of edgebench imports and of syntax newer than Python 3.8.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import traceback

AGENT_VERSION = "1"
RESULT_SCHEMA = 1

DEFAULT_MEASURE = {
    "warmup_min_iters": 10,
    "warmup_min_s": 0.2,
    "min_rounds": 50,
    "min_time_s": 2.0,
    "max_time_s": 30.0,
    "max_rounds": 1000000,
}


class AgentError(Exception):
    """A failure with a stable kind, reported in the result."""

    def __init__(self, kind, message):
        Exception.__init__(self, message)
        self.kind = kind


# --------------------------------------------------------------------------- memory


def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes():
    """Current resident set size of this process in bytes (None if unknown)."""
    try:
        import psutil  # optional on the board

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return _status_kb("VmRSS")


def peak_rss_bytes():
    """Peak resident set size of this process in bytes (None if unknown)."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024
    except Exception:
        return None


# ----------------------------------------------------------------------- device state


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def device_state():
    """CPU governor, current frequency (MHz) and the hottest thermal zone (deg C)."""
    state = {"governor": None, "freq_mhz": None, "temp_c": None}
    state["governor"] = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    freq = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    if freq and freq.isdigit():
        state["freq_mhz"] = int(freq) / 1000.0
    temps = []
    base = "/sys/class/thermal"
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
    return state


# --------------------------------------------------------------------------- runtimes


class OnnxRuntimeModel:
    """An ONNX model in an ONNX Runtime InferenceSession."""

    name = "onnxruntime"

    def __init__(self, path, options):
        try:
            import onnxruntime as ort
        except ImportError:
            raise AgentError("runtime_missing", "onnxruntime is not installed on this board")
        self.version = ort.__version__
        so = ort.SessionOptions()
        threads = options.get("threads")
        if threads:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        level = options.get("graph_optimization_level", "all")
        levels = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }
        if level not in levels:
            raise AgentError("bad_job", "graph_optimization_level %r: use one of %s" % (level, sorted(levels)))
        so.graph_optimization_level = levels[level]
        providers = options.get("providers") or ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(path, sess_options=so, providers=providers)
        except Exception as exc:
            raise AgentError("model_load", "onnxruntime could not load %s: %s" % (path, exc))
        self.providers = self.session.get_providers()
        self.threads = threads
        self.input_names = [i.name for i in self.session.get_inputs()]

    def signature(self):
        """[(name, shape, numpy dtype name)] of the model's inputs."""
        out = []
        for i in self.session.get_inputs():
            out.append((i.name, list(i.shape), _ORT_TYPES.get(i.type, "float32")))
        return out

    def prepare(self, arrays):
        return dict(zip(self.input_names, arrays))

    def run(self, feed):
        return self.session.run(None, feed)


_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def _tflite_interpreter_class(preferred):
    """Find a TFLite interpreter: ai_edge_litert, tflite_runtime or tensorflow.lite."""
    order = ["ai_edge_litert", "tflite_runtime", "tensorflow"]
    if preferred:
        order = [preferred]
    errors = []
    for mod in order:
        try:
            if mod == "ai_edge_litert":
                from ai_edge_litert.interpreter import Interpreter, load_delegate
            elif mod == "tflite_runtime":
                from tflite_runtime.interpreter import Interpreter, load_delegate
            else:
                import tensorflow as tf

                Interpreter, load_delegate = tf.lite.Interpreter, tf.lite.experimental.load_delegate
            return mod, Interpreter, load_delegate
        except Exception as exc:  # an import can fail with more than ImportError (numpy ABI)
            errors.append("%s: %s" % (mod, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    raise AgentError("runtime_missing", "no TFLite interpreter usable on this board (%s)" % "; ".join(errors))


class TFLiteModel:
    """A .tflite model in a TFLite interpreter."""

    name = "tflite"

    def __init__(self, path, options):
        mod, Interpreter, load_delegate = _tflite_interpreter_class(options.get("interpreter"))
        self.name = "tflite:" + mod
        try:
            if mod == "ai_edge_litert":
                import ai_edge_litert

                self.version = getattr(ai_edge_litert, "__version__", "unknown")
            elif mod == "tflite_runtime":
                import tflite_runtime

                self.version = getattr(tflite_runtime, "__version__", "unknown")
            else:
                import tensorflow as tf

                self.version = tf.__version__
        except Exception:
            self.version = "unknown"
        kwargs = {"model_path": path}
        if options.get("threads"):
            kwargs["num_threads"] = int(options["threads"])
        delegates = []
        for lib in options.get("delegates") or []:
            try:
                delegates.append(load_delegate(lib))
            except Exception as exc:
                raise AgentError("model_load", "delegate %s could not be loaded: %s" % (lib, exc))
        if delegates:
            kwargs["experimental_delegates"] = delegates
        if options.get("xnnpack") is False:
            try:
                from ai_edge_litert.interpreter import OpResolverType  # noqa: F401

                kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            except Exception:
                pass
        self.threads = options.get("threads")
        self.providers = []
        try:
            self.interp = Interpreter(**kwargs)
            self.interp.allocate_tensors()
        except Exception as exc:
            raise AgentError("model_load", "TFLite could not load %s: %s" % (path, exc))
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()

    def signature(self):
        return [(d["name"], [int(x) for x in d["shape"]], _np().dtype(d["dtype"]).name) for d in self.inputs]

    def prepare(self, arrays):
        np = _np()
        prepared = []
        for d, a in zip(self.inputs, arrays):
            scale, zero = d.get("quantization", (0.0, 0))
            if np.dtype(d["dtype"]).kind in "iu" and a.dtype.kind == "f" and scale:
                info = np.iinfo(d["dtype"])
                a = np.clip(np.round(a / scale + zero), info.min, info.max)
            prepared.append((d["index"], np.ascontiguousarray(a.astype(d["dtype"]))))
        return prepared

    def run(self, feed):
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


RUNTIMES = {"onnxruntime": OnnxRuntimeModel, "tflite": TFLiteModel}


def _np():
    import numpy

    return numpy


# ----------------------------------------------------------------------------- inputs


def generated_inputs(signature, dims, batch_size, seed=0):
    """Inputs generated from the model's signature, dynamic dims from ``dims``."""
    np = _np()
    rng = np.random.default_rng(seed)
    arrays = []
    for name, shape, dtype in signature:
        concrete = []
        for i, d in enumerate(shape):
            if isinstance(d, int) and d > 0:
                concrete.append(d)
            elif i == 0:
                concrete.append(int(batch_size))
            elif isinstance(d, str) and d in dims:
                concrete.append(int(dims[d]))
            else:
                raise AgentError(
                    "bad_input",
                    "input %r has dynamic dimension %r: give its size in the run settings (dims)" % (name, d),
                )
        kind = np.dtype(dtype).kind
        if kind == "f":
            a = rng.standard_normal(concrete).astype(dtype)
        elif kind in "iu":
            info = np.iinfo(dtype)
            a = rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=concrete).astype(dtype)
        else:
            a = rng.integers(0, 2, size=concrete).astype(dtype)
        arrays.append(a)
    return arrays


def _check_batch(signature, x, path):
    """Check that eval data fits the model's only input (shape after the batch axis)."""
    if len(signature) != 1:
        raise AgentError("bad_eval_data", "eval data %s has one array but the model has %d inputs" % (path, len(signature)))
    name, shape, dtype = signature[0]
    want = shape[1:]
    got = list(x.shape[1:])
    if len(want) != len(got) or any(isinstance(w, int) and w > 0 and w != g for w, g in zip(want, got)):
        raise AgentError(
            "bad_eval_data",
            "eval data %s has samples of shape %s but input %r expects %s" % (path, got, name, want),
        )


def load_eval(job, signature):
    """Load the eval arrays (x, y) from the job's npz, or (None, None)."""
    spec = job.get("eval") or {}
    path = spec.get("path")
    if not path:
        return None, None
    np = _np()
    try:
        data = np.load(path)
        x = data[spec.get("x", "x")]
        y = data[spec.get("y", "y")] if spec.get("y", "y") in data.files else None
    except Exception as exc:
        raise AgentError("bad_eval_data", "eval data %s could not be read: %s" % (path, exc))
    limit = spec.get("limit")
    if limit:
        idx = np.random.default_rng(spec.get("seed", 0)).permutation(len(x))[: int(limit)]
        idx.sort()
        x = x[idx]
        y = y[idx] if y is not None else None
    _check_batch(signature, x, path)
    return x, y


# --------------------------------------------------------------------------- measuring


def measure(model, feed, settings):
    """Warm up, then time single inferences until the round and time floors are met."""
    s = dict(DEFAULT_MEASURE)
    s.update(settings or {})
    clock = time.perf_counter_ns
    run = model.run
    t0 = clock()
    warm = 0
    while warm < s["warmup_min_iters"] or clock() - t0 < s["warmup_min_s"] * 1e9:
        run(feed)
        warm += 1
        if clock() - t0 > s["max_time_s"] * 1e9:
            break
    samples = []
    start = clock()
    min_ns, max_ns = s["min_time_s"] * 1e9, s["max_time_s"] * 1e9
    while True:
        a = clock()
        run(feed)
        b = clock()
        samples.append(b - a)
        elapsed = b - start
        if len(samples) >= s["max_rounds"] or elapsed >= max_ns:
            break
        if len(samples) >= s["min_rounds"] and elapsed >= min_ns:
            break
    return warm, samples, s


def evaluate(model, x, y, batch_size):
    """Run the eval set; returns (logits of the first output, top-1 accuracy or None)."""
    np = _np()
    outs = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        if len(chunk) < batch_size:  # static batch models: pad the last chunk
            pad = np.repeat(chunk[-1:], batch_size - len(chunk), axis=0)
            o = model.run(model.prepare([np.concatenate([chunk, pad])]))[0][: len(chunk)]
        else:
            o = model.run(model.prepare([chunk]))[0]
        outs.append(np.asarray(o, dtype=np.float32).reshape(len(chunk), -1))
    logits = np.concatenate(outs)
    acc = None
    if y is not None:
        acc = float((logits.argmax(axis=1) == np.asarray(y).reshape(-1)).mean())
    return logits, acc


# ------------------------------------------------------------------------------- main


def host_info():
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
    }


def run_job(job):
    """Run one job and return the result dict (never raises)."""
    result = {
        "schema": RESULT_SCHEMA,
        "agent_version": AGENT_VERSION,
        "ok": False,
        "error": None,
        "warnings": [],
        "host": host_info(),
        "pid": os.getpid(),
        "device_before": device_state(),
    }
    try:
        import numpy as np

        result["numpy"] = np.__version__
        result["memory"] = {"rss_before_load": rss_bytes()}
        runtime = job.get("runtime", "onnxruntime")
        if runtime not in RUNTIMES:
            raise AgentError("bad_job", "unknown runtime %r: use one of %s" % (runtime, sorted(RUNTIMES)))
        artifact = job["artifact"]
        if not os.path.isfile(artifact):
            raise AgentError("missing_artifact", "artifact %s is not on the board" % artifact)
        options = job.get("runtime_options") or {}
        t = time.perf_counter_ns()
        model = RUNTIMES[runtime](artifact, options)
        load_ns = time.perf_counter_ns() - t
        result["runtime"] = {
            "name": model.name,
            "version": model.version,
            "providers": model.providers,
            "threads": model.threads,
        }
        result["memory"]["rss_after_load"] = rss_bytes()
        signature = model.signature()
        result["signature"] = [{"name": n, "shape": s, "dtype": d} for n, s, d in signature]
        batch = int((job.get("measure") or {}).get("batch_size", 1))
        x, y = load_eval(job, signature)
        if x is not None:
            arrays = [np.ascontiguousarray(x[:batch])]
            if len(arrays[0]) < batch:
                raise AgentError("bad_eval_data", "eval data has %d samples, fewer than the batch size %d" % (len(x), batch))
        else:
            arrays = generated_inputs(signature, job.get("dims") or {}, batch)
        feed = model.prepare(arrays)
        t = time.perf_counter_ns()
        model.run(feed)
        first_ns = time.perf_counter_ns() - t
        warm, samples, settings = measure(model, feed, job.get("measure"))
        if not samples:
            raise AgentError("no_samples", "no latency samples were collected")
        result["timing"] = {
            "load_ns": load_ns,
            "first_inference_ns": first_ns,
            "warmup_iters": warm,
            "batch_size": batch,
            "samples_ns": samples,
            "settings": settings,
        }
        result["memory"]["rss_after_run"] = rss_bytes()
        if x is not None:
            t = time.perf_counter_ns()
            logits, acc = evaluate(model, x, y, batch)
            result["accuracy"] = {"top1": acc, "n": int(len(x)), "eval_ns": time.perf_counter_ns() - t}
            out_path = (job.get("eval") or {}).get("save_outputs")
            if out_path:
                np.save(out_path, logits)
        result["memory"]["peak_rss"] = peak_rss_bytes()
        result["ok"] = True
    except AgentError as exc:
        result["error"] = {"kind": exc.kind, "message": str(exc)}
    except MemoryError:
        result["error"] = {"kind": "out_of_memory", "message": "the agent ran out of memory"}
    except Exception as exc:
        result["error"] = {
            "kind": "exception",
            "message": "%s: %s" % (type(exc).__name__, exc),
            "traceback": traceback.format_exc()[-2000:],
        }
    result["device_after"] = device_state()
    return result


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: agent.py JOB.json | -\n")
        return 2
    try:
        if argv[1] == "-":
            job = json.load(sys.stdin)
        else:
            with open(argv[1]) as f:
                job = json.load(f)
    except (OSError, ValueError) as exc:
        job = None
        result = {"schema": RESULT_SCHEMA, "agent_version": AGENT_VERSION, "ok": False,
                  "error": {"kind": "bad_job", "message": "job could not be read: %s" % exc}}
    if job is not None:
        result = run_job(job)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
