"""The run file: a pytest-benchmark JSON document with an ``edgebench`` block.

A run file is what ``pytest --benchmark-json`` writes (``machine_info``,
``commit_info``, ``benchmarks``, ``datetime``, ``version``), so ``pytest-benchmark
compare`` loads it, plus::

    "edgebench": {
        "schema": 1,             # RUN_SCHEMA; readers upgrade older files
        "run_id": "...",
        "command": "demo",
        "complete": true,        # false when the run was interrupted
        "started": "...", "finished": "...",
        "versions": {...},       # edgebench, python, runtimes on the host
        "boards": {name: fingerprint},
        "failures": [measurement, ...]   # measurements with ok == false
    }

Each benchmark is one successful measurement: ``stats`` holds the board's raw samples
(seconds, in ``data``) and ``extra_info`` the measurement (see `measurement_to_benchmark`).
"""

from __future__ import annotations

import datetime as dt
import platform
import secrets
from typing import Any

from edgebench import __version__
from edgebench.results.stats import pytest_benchmark_stats, summarize

RUN_SCHEMA = 1


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def utc_now() -> str:
    """The time now, ISO 8601 in UTC."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def measurement_to_benchmark(m: dict[str, Any]) -> dict[str, Any]:
    """A pytest-benchmark ``benchmarks`` entry from a successful measurement.

    ``m`` has ``board, model, variant, samples_ns, batch_size`` and whatever else the
    measurement carries (memory, accuracy, fidelity, device, runtime, artifact...).
    """
    board, model, variant = m["board"], m["model"], m["variant"]
    param = f"{board}-{model}-{variant}"
    extra = {k: v for k, v in m.items() if k != "samples_ns"}
    extra["summary"] = summarize(m["samples_ns"], int(m.get("batch_size", 1)))
    return {
        "group": model,
        "name": f"test_variant[{param}]",
        "fullname": f"edgebench::test_variant[{param}]",
        "params": {"board": board, "model": model, "variant": variant},
        "param": param,
        "extra_info": extra,
        "options": {
            "disable_gc": False,
            "timer": "perf_counter_ns (on board)",
            "min_rounds": int(m.get("settings", {}).get("min_rounds", 0)),
            "max_time": float(m.get("settings", {}).get("max_time_s", 0.0)),
            "min_time": 0.0,
            "warmup": True,
        },
        "stats": pytest_benchmark_stats(m["samples_ns"]),
    }


def new_run(command: str, machine_info: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
    """An empty run document, to be filled with benchmarks and failures."""
    import pytest_benchmark

    return {
        "machine_info": machine_info,
        "commit_info": {},
        "benchmarks": [],
        "datetime": utc_now(),
        "version": pytest_benchmark.__version__,
        "edgebench": {
            "schema": RUN_SCHEMA,
            "run_id": run_id or new_run_id(),
            "command": command,
            "complete": False,
            "started": utc_now(),
            "finished": None,
            "versions": {"edgebench": __version__, "python": platform.python_version()},
            "boards": {},
            "failures": [],
        },
    }


def add_measurement(run: dict[str, Any], m: dict[str, Any]) -> None:
    """Add one measurement: a benchmark when it succeeded, a failure otherwise."""
    if m.get("ok"):
        run["benchmarks"].append(measurement_to_benchmark(m))
    else:
        run["edgebench"]["failures"].append({k: v for k, v in m.items() if k != "samples_ns"})


def measurements(run: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measurement of a run (successful ones first), as stored in extra_info."""
    return [b["extra_info"] for b in run["benchmarks"]] + list(run["edgebench"]["failures"])
