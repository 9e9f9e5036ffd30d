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

Versions: 1 is the layout above and the only one so far. `upgrade_run` brings an
older file to `RUN_SCHEMA` through `UPGRADES` (``{version: function to version + 1}``)
when a later edgebench changes the layout. Inside the program a run is a `Run`
(`edgebench.model`); this module is where the JSON document is built and checked.

A file with a schema newer than `RUN_SCHEMA` cannot be read by this edgebench; readers
skip it with a warning that says to upgrade edgebench.
"""

from __future__ import annotations

import datetime as dt
import platform
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import pytest_benchmark

from edgebench import __version__
from edgebench.model import RUN_SCHEMA, Run
from edgebench.results.stats import pytest_benchmark_stats, summarize


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


class SchemaError(ValueError):
    """A run file that cannot be read or upgraded; the message says why."""


def schema_of(doc: Any) -> int:
    """The schema version of a parsed run file.

    Raises:
        SchemaError: if the document is not a run file of any known layout.
    """
    if not isinstance(doc, dict):
        raise SchemaError("not a JSON object")
    eb = doc.get("edgebench")
    if isinstance(eb, dict):
        version = eb.get("schema")
        if not isinstance(version, int) or isinstance(version, bool):
            raise SchemaError("edgebench.schema is missing or not an integer")
        return version
    raise SchemaError("no edgebench block (not an edgebench run file)")


# version -> the function that turns a document of that version into the next one
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _check_v1(run: dict[str, Any]) -> dict[str, Any]:
    """Validate the parts readers rely on; drop (and list) malformed benchmarks."""
    eb = run["edgebench"]
    if not isinstance(eb.get("run_id"), str):
        raise SchemaError("edgebench.run_id is missing")
    if not isinstance(run.get("benchmarks"), list):
        raise SchemaError("benchmarks is not a list")
    good: list[Any] = []
    bad: list[int] = []
    for i, b in enumerate(run["benchmarks"]):
        try:
            e = b["extra_info"]
            ok = all(isinstance(e[k], str) for k in ("board", "model", "variant"))
            ok = ok and isinstance(e["summary"]["p50_ms"], (int, float)) and isinstance(b["stats"]["data"], list)
        except (KeyError, TypeError):
            ok = False
        (good if ok else bad).append(b if ok else i)
    run["benchmarks"] = good
    if bad:
        eb.setdefault("dropped", []).extend(f"benchmark #{i}: malformed" for i in bad)
    eb.setdefault("failures", [])
    eb.setdefault("boards", {})
    eb.setdefault("complete", False)
    return run


def upgrade_run(doc: Any) -> dict[str, Any]:
    """A parsed run file of any known schema, as a current (`RUN_SCHEMA`) run.

    Malformed benchmarks are dropped and listed in ``edgebench.dropped``.

    Raises:
        SchemaError: if it is not a run file, or one written by a newer edgebench.
    """
    version = schema_of(doc)
    if version > RUN_SCHEMA:
        raise SchemaError(f"run schema {version} is newer than this edgebench reads ({RUN_SCHEMA}): upgrade edgebench")
    if version < RUN_SCHEMA and version not in UPGRADES:
        raise SchemaError(f"run schema {version} is unknown")
    try:
        while version < RUN_SCHEMA:
            doc = UPGRADES[version](doc)
            version += 1
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"cannot upgrade from schema {version}: {type(exc).__name__}: {exc}") from None
    return _check_v1(doc)


def as_run(run: Run | Mapping[str, Any]) -> Run:
    """A `Run` from a run document at `RUN_SCHEMA` (a `Run` is returned as it is).

    The JSON boundary for callers that still build the document as a dict.
    """
    return run if isinstance(run, Run) else Run.from_json(run)
