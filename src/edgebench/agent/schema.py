"""The job the host sends and the result the agent answers: every key, once, with its type.

Both sides read these tables: the agent checks a job against `JOB` before it runs it
(`job_problem`), the host builds its typed `AgentJob` / `AgentResult`
(`edgebench.bench.agent_result`) from the same key names (checked at import) and checks
every result against `RESULT` (`problem`) before it reads it. A key renamed here is
renamed for both; a key the agent writes that is not here fails a unit test.

A table maps a key to its kind: ``str``, ``int``, ``number`` (int or float), ``bool``,
``object``, ``list``, ``ns`` / ``bytes`` / ``count`` (an integer >= 0: nanoseconds, bytes,
a count) and ``ns_list`` (a list of nanoseconds), or to a nested table (an object whose
keys are checked too). A missing key and a ``null`` pass unless the key is in the table's
`REQUIRED` set; keys a table does not list pass unchecked (a newer writer's extras).
Plain dicts and strings: this runs on board Pythons >= 3.6 (no TypedDict, no dataclasses).
"""

import json
from typing import Any, Dict, Mapping, Optional

AGENT_VERSION = "2"
RESULT_SCHEMA = 1

Table = Dict[str, Any]  # key -> kind (a str) or a nested Table

# --------------------------------------------------------------------------- the job

EVAL = {
    "path": "str",  # the eval data (npz) on the board
    "seed": "int",  # the quick subset's seed
    "limit": "count",  # quick mode: a seeded random subset of this many samples
    "evaluate": "bool",  # false: time the eval inputs only (later processes of a variant)
    "reference": "str",  # the parent's outputs (npz with ``outputs``, ``outputs_1``...)
    "x": "str",  # the array of a single-input model (default ``x``)
    "y": "str",  # the labels (default ``y``)
    "inputs": "object",  # model input -> npz array name
    "save_outputs": "str",  # write the first output here (npz ``outputs``)
    "n_total": "count",  # set by the agent: the eval set's size before the quick cut
    "batched": "list",  # set by the agent: one flag per input
}  # type: Table

PAIRED_JOB = {
    "artifact": "str",  # the baseline (A) on the board
    "sha256": "str",
    "first": "str",  # "a" or "b": which model each pair starts with
}  # type: Table

SUSTAINED_JOB = {
    "seconds": "number",  # run the model continuously this long (`sustained`)
    "window_s": "number",  # one timeline window per this many seconds (default 1)
    "power_command": "str",  # a meter command whose output holds the power now (`power.CommandMeter`)
    "power_pattern": "str",  # its regex: groups ``value`` and ``unit`` (mW or W)
    "root": "str",  # where /sys is read from (tests: a fake tree)
}  # type: Table

JOB = {
    "artifact": "str",  # the model file on the board
    "sha256": "str",  # the agent checks the file it loads against it
    "runtime": "str",  # a key of `RUNTIMES`
    "runtime_options": "object",  # threads, providers, graph level / interpreter, xnnpack, delegates
    "measure": "object",  # `DEFAULT_MEASURE` keys, plus min_cosine, eval_batch_size
    "dims": "object",  # dynamic dimension sizes
    "device": "object",  # `DEFAULT_DEVICE` keys, plus cooldown {seconds, until_c, max_s}
    "inputs": "object",  # input name -> spec (value, range, npy, normal, batched, label)
    "seed": "int",
    "eval": EVAL,
    "paired": PAIRED_JOB,  # a paired A/B process (`paired_job`)
    "profile": "object",  # a profile process (`profile_job`): iterations, warmup, rss_interval_s, max_points
    "sustained": SUSTAINED_JOB,  # then run the model continuously and record a timeline (`sustained`)
}  # type: Table
JOB_REQUIRED = ("artifact",)

# ------------------------------------------------------------------------ the result

ERROR = {"kind": "str", "message": "str", "traceback": "str"}  # type: Table

TIMING = {
    "load_ns": "ns",  # the cold start: model load ...
    "first_inference_ns": "ns",  # ... and the first inference
    "warmup_iters": "count",
    "batch_size": "count",
    "input": "str",  # "eval" or "generated"
    "samples_ns": "ns_list",  # every steady-state sample
    "settings": "object",  # the measure settings used
}  # type: Table

MEMORY = {
    "rss_start": "bytes",  # RSS when the job starts (before the runtime is imported)
    "rss_before_load": "bytes",
    "rss_after_load": "bytes",
    "rss_after_run": "bytes",
    "peak_rss": "bytes",  # VmHWM of the timed configuration (or of the process: peak_rss_scope)
    "peak_rss_scope": "str",  # "timed" or "process"
    "peak_rss_eval": "bytes",  # the accuracy pass's own peak
}  # type: Table

RUNTIME = {
    "name": "str",
    "version": "str",
    "providers": "list",
    "threads": "int",
    "in_use": "list",  # the providers or delegates that really took ops
}  # type: Table

PAIRED_RESULT = {
    "a_samples_ns": "ns_list",
    "b_samples_ns": "ns_list",
    "a_sha256": "str",
    "warmup_iters": "count",
    "first": "str",
}  # type: Table

RESULT = {
    "ok": "bool",
    "schema": "int",
    "agent_version": "str",
    "error": ERROR,
    "warnings": "list",
    "host": "object",  # python, platform, machine, processor, cpu_count, affinity, hostname
    "pid": "int",
    "numpy": "str",
    "artifact_sha256": "str",
    "memory": MEMORY,
    "cooldown": "object",  # waited_s, reached
    "device_before": "object",  # governor, freq_mhz, max_freq_mhz, temp_c, cpu_ticks
    "device_after": "object",
    "runtime": RUNTIME,
    "signature": "list",  # [{name, shape, dtype}]
    "inputs": "list",  # [{name, shape, dtype, made, batched}]
    "timing": TIMING,
    "accuracy": "object",
    "fidelity": "object",
    "paired": PAIRED_RESULT,
    "profile": "object",
    "sustained": "object",  # seconds, window_s, elapsed_s, windows, inferences, sensor_overhead, overhead, sensors
    "timeline": "list",  # one window each: t_s, duration_s, count, p50_ms, p99_ms, freq_mhz, temp_c, flags, power_w
    "power": "object",  # available, problems, none | domains [{name, covers, kind, sampling, energy_j, mean_w, ...}]
}  # type: Table
RESULT_REQUIRED = ("ok",)

_WANT = {
    "str": "a string",
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "object": "an object",
    "list": "a list",
    "count": "an integer >= 0",
    "ns": "an integer >= 0, in ns",
    "bytes": "an integer >= 0, in bytes",
    "ns_list": "a list of integers >= 0, in ns",
}


def is_count(value: Any) -> bool:
    """An integer >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def fits(value: Any, kind: str) -> bool:
    """Whether ``value`` (not None) is of ``kind``."""
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "list":
        return isinstance(value, list)
    if kind in ("count", "ns", "bytes"):
        return is_count(value)
    if kind == "ns_list":
        return isinstance(value, list) and all(is_count(v) for v in value)
    raise ValueError("unknown kind %r" % kind)


def bad(field: str, value: Any, want: str) -> str:
    """The one wording of a bad field, on both sides: ``field F is V (expected W)``."""
    shown = "missing" if value is None else json.dumps(value, default=str)[:40]
    return "field %s is %s (expected %s)" % (field, shown, want)


def want(kind: Any) -> str:
    """What a value of ``kind`` (or of a nested table) is, in words."""
    return "an object" if isinstance(kind, dict) else _WANT[kind]


def problem(doc: Any, table: Table, required: Any = (), prefix: str = "") -> Optional[str]:
    """The first field of ``doc`` that does not fit ``table`` (named, with what was expected); None if all fit."""
    if not isinstance(doc, Mapping):
        return bad(prefix.rstrip(".") or "document", doc, "an object")
    for key in required:
        if doc.get(key) is None:
            return bad(prefix + key, None, want(table[key]))
    for key, kind in table.items():
        value = doc.get(key)
        if value is None:
            continue
        if isinstance(kind, dict):
            nested = problem(value, kind, (), prefix + key + ".")
            if nested is not None:
                return nested
        elif not fits(value, kind):
            return bad(prefix + key, value, want(kind))
    return None


def job_problem(job: Any) -> Optional[str]:
    """What makes ``job`` something the agent cannot run, naming the field; None if it is a job.

    Stricter than a result: a key the table does not list is refused (a misspelt or renamed
    key would otherwise be ignored and the job run with a default).
    """
    found = problem(job, JOB, JOB_REQUIRED)
    if found is not None:
        return found
    unknown = sorted(k for k in job if k not in JOB)
    if unknown:
        return "unknown key %s (known: %s)" % (", ".join(repr(k) for k in unknown), ", ".join(sorted(JOB)))
    return None


def result_problem(result: Any) -> Optional[str]:
    """What makes ``result`` something other than an agent result (types only), naming the field; None if it is one."""
    return problem(result, RESULT, RESULT_REQUIRED)
