"""The measurement: cold start, warm-up and the timed steady state, memory by phase, then accuracy and fidelity.

Timing happens here, on the board, with a monotonic nanosecond clock around the runtime
call alone; every raw sample is returned. Memory is the RSS of this fresh process before
the load, after it and after the run, and the peak of the timed configuration apart from
the accuracy pass's.
"""

from typing import Any, Callable, Dict, List, Optional, Tuple

from .base import AgentError
from .clock import now_ns, ns_clock
from .device import DEFAULT_DEVICE, cool_down, device_state, device_warnings
from .evaldata import inputs_for, load_eval
from .evaluation import (
    accuracy,
    accuracy_unknown,
    eval_batch_size,
    evaluate_outputs,
    fidelity,
    is_classifier,
    output_names,
)
from .jobs import error_block, new_result, open_model
from .memory import peak_rss_bytes, reset_peak_rss, rss_bytes
from .runtimes import note_in_use
from .sustained import run_sustained

DEFAULT_MEASURE = {
    "warmup_min_iters": 10,
    "warmup_min_s": 0.2,
    "min_rounds": 50,
    "min_time_s": 2.0,
    "max_time_s": 30.0,
    "max_rounds": 1000000,
    "batch_size": 1,
}  # type: Dict[str, float]


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


def measure_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Measure one variant in this fresh process and return the result dict (never raises)."""
    result = new_result()
    memory = {"rss_start": rss_bytes()}  # type: Dict[str, Any]
    result["memory"] = memory
    device = dict(DEFAULT_DEVICE)  # type: Dict[str, Any]
    device.update(job.get("device") or {})
    try:
        if device.get("cooldown"):
            result["cooldown"] = cool_down(device["cooldown"])
        result["device_before"] = device_state()
        np, artifact, model = open_model(job, result)
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
        arrays, result["inputs"] = inputs_for(job, signature, xs, batch)
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
        if job.get("sustained"):  # then the model runs on, with a timeline (`sustained`)
            result["sustained"], result["timeline"], result["power"] = run_sustained(
                getattr(model, "timed_run", model.run), feed, job["sustained"]
            )
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
    except MemoryError:
        result["error"] = {
            "kind": "out_of_memory",
            "message": "the agent ran out of memory: use a smaller batch or model",
        }
    except Exception as exc:
        result["error"] = error_block(exc)
    memory.setdefault("peak_rss", peak_rss_bytes())
    result["device_after"] = device_state()
    result["warnings"].extend(device_warnings(result.get("device_before") or {}, result["device_after"], device))
    return result
