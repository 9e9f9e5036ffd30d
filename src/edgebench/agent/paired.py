"""A paired A/B process: the baseline (A) and the candidate (B) loaded in one process and timed alternately.

A process of a paired comparison (`edgebench run --baseline`, `compare --ab`): the job's
artifact (B, the candidate) and ``paired.artifact`` (A, the baseline) are loaded in this one
process and timed alternately, one inference each (A, B, A, B, ...), on the same inputs. What
moves a fresh process's or a whole run's speed (the core, the clock, the hypervisor's
steal, neighbours) then moves A and B alike, and the ratio of their medians in this
process is what the host decides on (duet benchmarking; measured in
tests/perf/perf_process_variation.py: per-process ratios within ~1 % where the process
medians themselves spread 5-20 %). Latency only: memory, accuracy and fidelity come from the
candidate's own fresh processes.
"""

from typing import Any, Dict

from .base import AgentError
from .device import DEFAULT_DEVICE, device_state, device_warnings
from .evaldata import inputs_for, load_eval
from .jobs import error_block, new_result, open_model
from .measuring import DEFAULT_MEASURE, measure


def paired_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Time the baseline (A) and the candidate (B) alternately in this process; never raises."""
    result = new_result()
    device = dict(DEFAULT_DEVICE)  # type: Dict[str, Any]
    device.update(job.get("device") or {})
    try:
        result["device_before"] = device_state()
        paired = job["paired"]
        _np_mod, artifact_b, model_b = open_model(job, result)
        job_a = dict(job, artifact=paired["artifact"], sha256=paired.get("sha256"))
        _np_mod, artifact_a, model_a = open_model(job_a, {})
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
        arrays, result["inputs"] = inputs_for(job, sig_b, xs, batch)
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
    except Exception as exc:
        result["error"] = error_block(exc)
    result["device_after"] = device_state()
    result["warnings"].extend(device_warnings(result.get("device_before") or {}, result["device_after"], device))
    return result
