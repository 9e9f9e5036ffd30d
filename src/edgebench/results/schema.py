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
(seconds, in ``data``) and ``extra_info`` the measurement with its summary (see
`measurement_to_benchmark`).

Versions: 1 is the layout above and the only one so far. `upgrade_run` brings an
older file to `RUN_SCHEMA` through `UPGRADES` (``{version: function to version + 1}``)
when a later edgebench changes the layout. Inside the program a run is a `Run`
(`edgebench.model`) from start to end: `new_run`, `add_measurement` and `finish` build it,
`Run.to_json` writes the document and `upgrade_run` checks a read one before
`Run.from_json`; dicts exist only at that boundary.

A file with a schema newer than `RUN_SCHEMA` cannot be read by this edgebench; readers
skip it with a warning that says to upgrade edgebench.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import platform
import secrets
from collections.abc import Callable, Iterable
from typing import Any

import pytest_benchmark

from edgebench import __version__
from edgebench.model import RUN_SCHEMA, Benchmark, JSONObject, Measurement, Run
from edgebench.results.stats import pytest_benchmark_stats, summarize


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def utc_now() -> str:
    """The time now, ISO 8601 in UTC."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def measurement_to_benchmark(m: Measurement) -> Benchmark:
    """The pytest-benchmark ``benchmarks`` entry of a successful measurement.

    Its summary and ``stats`` block (seconds) are computed from ``m.samples_ns``.
    """
    m = dataclasses.replace(m, summary=summarize(m.samples_ns, m.batch_size))
    options = {
        "disable_gc": False,
        "timer": "perf_counter_ns (on board)",
        "min_rounds": m.min_rounds,
        "max_time": m.max_time_s,
        "min_time": 0.0,
        "warmup": True,
    }
    return Benchmark(measurement=m, stats=pytest_benchmark_stats(m.samples_ns), options=options)


def new_run(
    command: str,
    run_id: str | None = None,
    *,
    boards: Iterable[tuple[str, str]] = (),
    settings: JSONObject | None = None,
) -> Run:
    """An empty, incomplete run, to be filled with `add_measurement` and closed with `finish`.

    Args:
        command: what made the run (``run``, ``pytest``, ``profile``...).
        run_id: the run id (a new one by default).
        boards: ``(name, address)`` of each board; a measurement replaces it with the board's fingerprint.
        settings: the measurement settings, stored as the block's ``settings``.
    """
    now = utc_now()
    return Run(
        run_id=run_id or new_run_id(),
        command=command,
        started=now,
        datetime=now,
        version=pytest_benchmark.__version__,
        versions={"edgebench": __version__, "python": platform.python_version()},
        boards={name: {"name": name, "address": address} for name, address in boards},
        extra={} if settings is None else {"settings": dict(settings)},
    )


def add_measurement(run: Run, m: Measurement) -> Run:
    """``run`` with one more measurement: a benchmark when it succeeded, a failure otherwise.

    A successful measurement's fingerprint becomes its board's entry in ``boards``.
    """
    if not m.ok:
        return dataclasses.replace(run, failures=(*run.failures, m))
    boards = {**run.boards, m.board: dict(m.fingerprint)} if m.fingerprint else run.boards
    return dataclasses.replace(run, benchmarks=(*run.benchmarks, measurement_to_benchmark(m)), boards=boards)


def finish(run: Run, *, complete: bool = True, interrupted: str | None = None) -> Run:
    """``run`` closed now: ``finished`` set (once), ``complete`` and why it stopped early, if it did."""
    return dataclasses.replace(
        run,
        complete=complete,
        finished=run.finished or utc_now(),
        interrupted=interrupted if interrupted is not None else run.interrupted,
    )


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


def _numbers(data: list[Any], *, empty_ok: bool) -> bool:
    """True if ``data`` holds finite numbers only (and some, unless ``empty_ok``)."""
    if not data:
        return empty_ok
    return all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in data)


def _check_v1(run: dict[str, Any]) -> dict[str, Any]:
    """Validate the parts readers rely on; drop (and list) malformed benchmarks."""
    eb = run["edgebench"]
    if not isinstance(eb.get("run_id"), str):
        raise SchemaError("edgebench.run_id is missing")
    if not isinstance(run.get("benchmarks"), list):
        raise SchemaError("benchmarks is not a list")
    good: list[Any] = []
    bad: list[str] = []
    for i, b in enumerate(run["benchmarks"]):
        why = "malformed"
        try:
            e = b["extra_info"]
            ok = all(isinstance(e[k], str) for k in ("board", "model", "variant"))
            ok = ok and isinstance(e["summary"]["p50_ms"], (int, float)) and isinstance(b["stats"]["data"], list)
            if ok and not _numbers(b["stats"]["data"], empty_ok=e.get("ok") is False):
                ok, why = False, f"{e['board']}/{e['model']}/{e['variant']}: samples empty or not numbers"
        except (KeyError, TypeError):
            ok = False
        if ok:
            good.append(b)
        else:
            bad.append(f"benchmark #{i}: {why}")
    run["benchmarks"] = good
    if bad:
        eb.setdefault("dropped", []).extend(bad)
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
