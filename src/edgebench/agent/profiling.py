"""Profiling (`edgebench profile`): the measurement's load, warm-up and steady state, then the runtime's profiler.

`edgebench profile` (host side: edgebench.bench.profile): a job with a ``profile`` block
runs `profile_job` instead of the measurement. One fresh process per variant: load, warm-up
and an unprofiled steady state (the honest latency, same as `run_job`), then the runtime's
own profiler over ``iterations`` inferences. The ONNX Runtime trace is parsed HERE, on the
board, into per-node totals and one inference's events: the raw trace holds every event of
every profiled run (megabytes for a large model), while the compact form travels back in the
"""

import bisect
import json
import os
import shutil
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

from .base import AgentError
from .clock import now_ns, ns_clock
from .device import device_state
from .evaldata import inputs_for, load_eval
from .jobs import error_block, new_result, open_model
from .measuring import DEFAULT_MEASURE, measure
from .memory import peak_rss_bytes, rss_bytes
from .runtimes import note_in_use, tflite_ops

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


def median(values: List[float]) -> Optional[float]:
    """The median of ``values`` (None for none)."""
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


def profile_ort(model: Any, artifact: str, feed: Any, iterations: int, warmup: int) -> Dict[str, Any]:
    """ONNX Runtime's profiler over ``iterations`` inferences of a second session like the measured one, parsed."""
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


def profile_tflite(model: Any) -> Dict[str, Any]:
    """What TFLite can tell without per-op timing: its operators and the delegate of each."""
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
    result = new_result()
    spec = dict(PROFILE_DEFAULTS)
    spec.update(job.get("profile") or {})
    timeline = RssTimeline(spec["rss_interval_s"], spec["max_points"])
    memory = {"rss_start": rss_bytes()}  # type: Dict[str, Any]
    result["memory"] = memory
    try:
        result["device_before"] = device_state()
        timeline.start()
        timeline.mark("import")
        _np, artifact, model = open_model(job, result)
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
        arrays, result["inputs"] = inputs_for(job, signature, xs, batch)
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
            prof = profile_ort(model, artifact, feed, int(spec["iterations"]), int(spec["warmup"]))
        else:
            prof = profile_tflite(model)
        prof["iterations"] = int(spec["iterations"]) if prof["available"] else 0
        prof["unprofiled_p50_ns"] = median([float(s) for s in samples])
        prof["profiled_p50_ns"] = median([float(s) for s in prof["profiled_samples_ns"]])
        up, pp = prof["unprofiled_p50_ns"], prof["profiled_p50_ns"]
        prof["overhead_ratio"] = pp / up if (pp and up) else None
        result["profile"] = prof
        memory["peak_rss"] = peak_rss_bytes()
        result["ok"] = True
    except MemoryError:
        result["error"] = {"kind": "out_of_memory", "message": "the agent ran out of memory: use a smaller model"}
    except Exception as exc:
        result["error"] = error_block(exc)
    points = timeline.stop()
    if result.get("profile") is not None:
        result["profile"]["memory_timeline"] = points
    memory.setdefault("peak_rss", peak_rss_bytes())
    result["device_after"] = device_state()
    return result
