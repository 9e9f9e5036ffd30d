"""The edgebench pytest plugin (pytest11 entry point ``edgebench``): measurements as benchmarks.

Inert unless ``--edge-variants`` is given. Then every test that asks for the
``edge_case`` fixture is parametrised over board x model x variant (ids
``board-model-variant``); the shipped harness is `edgebench.bench.harness`::

    pytest --pyargs edgebench.bench.harness --edge-variants variants/ --edge-boards local,pi4 \\
        --edge-eval digits.npz --edge-results results/ --benchmark-json run.json

The first test measures every selected case on the boards (``--edge-repeats`` fresh
agent processes per variant, interleaved round-robin over a board's variants, samples
pooled; `edgebench.bench.repeats`); each test reports its case through the
``benchmark`` fixture (``pedantic``, one round) and then replaces the benchmark's
statistics with the board's pooled raw per-inference samples: host-side timings of the deploy and SSH calls are
never reported. ``extra_info`` carries the measurement (percentiles, cold start,
memory, accuracy, fidelity, board fingerprint). The ``pytest_benchmark_update_json``
hook adds the ``edgebench`` block, so every JSON pytest-benchmark writes
(``--benchmark-json``, ``--benchmark-save``/``autosave``) is an edgebench run file, and
``--edge-results`` stores it under ``results/runs/<run_id>.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from pytest_benchmark.stats import Stats
from pytest_benchmark.utils import get_commit_info

from edgebench.bench.session import (
    PARENT_PID_ENV,
    WRITE_FAILED,
    WRITE_FAILED_EXIT,
    Case,
    EdgeSession,
    RunInterrupted,
    load_variants,
    resolve_boards,
)
from edgebench.bench.settings import SETTINGS, RunSettings, from_options
from edgebench.errors import EdgebenchError
from edgebench.fsutil import unwritable_message
from edgebench.model import Measurement, Run
from edgebench.results import schema, store
from edgebench.results.commit import resolve as resolve_commit

SESSION_KEY = pytest.StashKey[EdgeSession]()
HANDLERS_KEY = pytest.StashKey[dict[int, Any]]()
ORPHANED_KEY = pytest.StashKey[bool]()  # the `edgebench run` that started this harness died
TIMER = "perf_counter_ns (on board)"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--edge-*`` options."""
    g = parser.getgroup("edgebench", "edgebench: measure model variants on boards")
    g.addoption(
        "--edge-variants", metavar="DIR", help="variants folder (<model>/<variant>/manifest.json); enables edgebench"
    )
    g.addoption("--edge-boards", metavar="NAMES", default="local", help="comma-separated boards (default: local)")
    g.addoption(
        "--edge-inventory", metavar="FILE", help="boards inventory (default $EDGEBENCH_BOARDS or targets/boards.toml)"
    )
    g.addoption("--edge-models", metavar="NAMES", help="comma-separated models to measure (default: all)")
    g.addoption(
        "--edge-eval", metavar="PATH", help="eval data: an .npz (x, y) for every model, or a folder of <model>.npz"
    )
    g.addoption(
        "--edge-results", metavar="DIR", help="store the run as DIR/runs/<run_id>.json (written after each variant)"
    )
    g.addoption("--edge-run-id", metavar="ID", help="run id (default: time + random suffix)")
    g.addoption("--edge-command", metavar="NAME", default="pytest", help="command recorded in the run")
    g.addoption("--edge-progress", metavar="FILE", help="append one JSON line per finished case (for progress bars)")
    g.addoption(
        "--edge-parallel",
        action="store_true",
        help="measure the boards in parallel (one connection per board); a board's processes stay sequential",
    )
    for s in SETTINGS:
        if s.option is None:
            continue
        text = s.help_with_default().replace("%", "%%")  # argparse formats help with %
        if s.repeatable:
            g.addoption(s.option, metavar=s.metavar, action="append", default=[], help=text)
        else:
            g.addoption(s.option, metavar=s.metavar, type=s.type, default=None, help=text)


def settings_from_options(config: pytest.Config) -> RunSettings:
    """`RunSettings` from the ``--edge-*`` options (unset ones keep their defaults)."""
    return from_options({s.name: config.getoption(s.dest) for s in SETTINGS if s.option is not None})


def _names(value: str | None) -> list[str]:
    return [n.strip() for n in (value or "").split(",") if n.strip()]


def pytest_configure(config: pytest.Config) -> None:
    """Build the session when ``--edge-variants`` is given; bad options are usage errors."""
    variants = config.getoption("edge_variants")
    if variants is None:
        return
    try:
        inv = config.getoption("edge_inventory")
        eval_data, results = config.getoption("edge_eval"), config.getoption("edge_results")
        session = EdgeSession(
            resolve_boards(_names(config.getoption("edge_boards")) or ["local"], Path(inv) if inv else None),
            load_variants(Path(variants), _names(config.getoption("edge_models")) or None),
            settings_from_options(config),
            eval_data=Path(eval_data) if eval_data else None,
            results=Path(results) if results else None,
            command=config.getoption("edge_command"),
            run_id=config.getoption("edge_run_id"),
            parallel=bool(config.getoption("edge_parallel")),
        )
    except EdgebenchError as exc:
        raise pytest.UsageError(f"edgebench: {exc}") from None
    progress = config.getoption("edge_progress")
    session.progress_file = Path(progress) if progress else None
    config.stash[SESSION_KEY] = session
    _stop_on_signals(config, session)


def _stop_on_signals(config: pytest.Config, session: EdgeSession) -> None:
    """SIGINT/SIGTERM stop the session (agents killed, finished measurements kept); so does the
    death of the `edgebench run` process that started this harness (a SIGKILLed host CLI)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if session.stop_reason is not None:  # a second signal: stop now, as pytest would
            raise KeyboardInterrupt
        session.stop(f"interrupted by {signal.Signals(signum).name}")

    old: dict[int, Any] = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    config.stash[HANDLERS_KEY] = old
    parent = os.environ.get(PARENT_PID_ENV)
    if parent and parent.isdigit():

        def watch() -> None:
            while session.stop_reason is None:
                if os.getppid() != int(parent):
                    _output_to_null()  # it went to the dead parent (a pipe): a write there would fail
                    config.stash[ORPHANED_KEY] = True
                    session.stop("interrupted: the edgebench process that started the run died")
                    return
                time.sleep(0.1)

        threading.Thread(target=watch, name="edgebench-parent-watch", daemon=True).start()


def _output_to_null() -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give the signal handlers back."""
    for sig, old in config.stash.get(HANDLERS_KEY, {}).items():
        signal.signal(sig, old)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``edge_case`` over board x model x variant."""
    if "edge_case" not in metafunc.fixturenames:
        return
    session = metafunc.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.fail("edgebench: the edge_case tests need --edge-variants DIR (and --edge-boards)", pytrace=False)
    metafunc.parametrize("edge_case", session.cases, ids=[c.id for c in session.cases])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Count the cases that will run (after ``-k`` / ``-m`` deselection): the run is complete at that count."""
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        specs = [getattr(it, "callspec", None) for it in items if "edge_case" in getattr(it, "fixturenames", ())]
        cases = [spec.params["edge_case"] for spec in specs if spec is not None]
        session.selected = [c for c in cases if isinstance(c, Case)]
        session.expected = len(session.selected)
        session.report_progress()


@pytest.fixture(scope="session")
def edge_session(request: pytest.FixtureRequest) -> EdgeSession:
    """The measuring session built from the ``--edge-*`` options."""
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip("edgebench is not enabled (give --edge-variants DIR)")
    return session


def run_case(benchmark: Any, session: EdgeSession, case: Case) -> Measurement:
    """Measure ``case`` through the pytest-benchmark fixture; its stats become the board's samples.

    A failed measurement is recorded in the run and fails the test with its message.
    """
    v = case.variant
    benchmark.name = f"test_variant[{case.id}]"
    benchmark.fullname = f"edgebench::test_variant[{case.id}]"
    benchmark.group = v.model
    benchmark.param = case.id
    benchmark.params = {"board": case.board.name, "model": v.model, "variant": v.name}
    if session.stop_reason is not None:
        pytest.exit(session.stop_reason, returncode=pytest.ExitCode.INTERRUPTED)
    try:
        m: Measurement = benchmark.pedantic(session.measure, args=(case,), rounds=1, iterations=1, warmup_rounds=0)
    except RunInterrupted as exc:
        pytest.exit(str(exc), returncode=pytest.ExitCode.INTERRUPTED)
    meta = benchmark.stats  # None when pytest-benchmark is disabled
    # a success is stored with its summary, exactly as the run file's benchmark carries it
    stored = schema.measurement_to_benchmark(m).measurement if m.ok else m
    benchmark.extra_info.update(stored.to_json(samples=False))
    if meta is not None:
        stats = Stats()  # type: ignore[no-untyped-call]  # drop the host's one timing of the whole deploy + run
        if m.ok:
            for ns in m.samples_ns:
                stats.update(ns / 1e9)  # type: ignore[no-untyped-call]
            meta.options.update(
                timer=TIMER,
                min_rounds=m.min_rounds,
                max_time=m.max_time_s,
                min_time=m.min_time_s,
                warmup=True,
            )
        else:
            benchmark.has_error = True
        meta.stats = stats
    if not m.ok:
        err = m.error
        what = f"{err.kind or 'error'}: {err.message}" if err is not None else "error: no error message"
        pytest.fail(f"{case.id}: {what}", pytrace=False)
    for w in m.warnings:
        warnings.warn(f"{case.id}: {w}", EdgebenchWarning, stacklevel=2)
    return m


class EdgebenchWarning(UserWarning):
    """A measurement warning (throttling, temperature, high variation)."""


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """Make pytest-benchmark's JSON an edgebench run file: add the ``edgebench`` block."""
    session = config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    output_json["edgebench"] = session.edgebench_block()
    # `--benchmark-save` leaves the raw samples out unless --benchmark-save-data; a run file keeps them
    data = {b.fullname: list(b.stats.data) for b in benchmarks if getattr(b, "stats", None) is not None}
    for entry in output_json.get("benchmarks", []):
        stats = entry.get("stats")
        if isinstance(stats, dict) and "data" not in stats and entry.get("fullname") in data:
            stats["data"] = data[entry["fullname"]]


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_commit_info(config: pytest.Config, commit_info: dict[str, Any]) -> None:
    """Record the benchmarked project's commit: git's, else the CI's, else ``--commit``/``--branch``."""
    commit_info.update(resolve_commit(commit_info, os.environ))


def final_run(config: pytest.Config, session: EdgeSession) -> Run:
    """The run: read from pytest-benchmark's own JSON (with the edgebench block) when it is active."""
    bs = getattr(config, "_benchmarksession", None)
    if bs is None or bs.disabled or not bs.benchmarks:
        return session.final_run()
    commit_info = config.hook.pytest_benchmark_generate_commit_info(config=config)
    config.hook.pytest_benchmark_update_commit_info(config=config, commit_info=commit_info)
    doc: dict[str, Any] = config.hook.pytest_benchmark_generate_json(
        config=config,
        benchmarks=bs.benchmarks,
        include_data=True,
        machine_info=bs.get_machine_info(),
        commit_info=commit_info,
    )
    config.hook.pytest_benchmark_update_json(config=config, benchmarks=bs.benchmarks, output_json=doc)
    return Run.from_json(doc)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Any:
    """Store the final run under ``--edge-results``, then let pytest-benchmark save its copy; close
    the board connections.

    Around pytest-benchmark's own hook: its copy is written after the run file and is not
    written at all after a failed write (a full disk); a copy it leaves half-written is removed.
    The harness then exits `WRITE_FAILED_EXIT`.
    """
    es = session.config.stash.get(SESSION_KEY, None)
    if es is None:
        return (yield)
    bs = getattr(session.config, "_benchmarksession", None)
    storage = getattr(getattr(bs, "storage", None), "path", None)
    before = set(Path(storage).rglob("*.json")) if isinstance(storage, Path) else set()
    try:
        _store(session, es)
        if es.write_error is not None and bs is not None:
            bs.save = bs.autosave = None  # no room: the run file is the record
        try:
            return (yield)
        except OSError as exc:  # pytest-benchmark writes its copy in place
            if not isinstance(storage, Path) or es.results is None:
                raise
            for p in set(Path(storage).rglob("*.json")) - before:
                p.unlink(missing_ok=True)
            es.write_error = unwritable_message(Path(storage), exc)
            return None
    finally:
        es.close()
        if es.results is not None:
            store.release_reserve(es.results, es.run_id)
        if es.write_error is not None:
            session.exitstatus = WRITE_FAILED_EXIT
            tr = session.config.pluginmanager.get_plugin("terminalreporter")
            if tr is not None:
                with contextlib.suppress(OSError):
                    tr.write_line(f"{WRITE_FAILED}{es.write_error}")
        if session.config.stash.get(ORPHANED_KEY, False) and es.progress_file is not None:
            es.progress_file.unlink(missing_ok=True)  # its reader died and cannot remove it


def _store(session: pytest.Session, es: EdgeSession) -> None:
    if es.results is None or not es.measured:
        return
    # an interrupted run keeps the session's own record (what finished, each once)
    run = es.final_run() if es.stop_reason is not None else final_run(session.config, es)
    if not run.commit_info:  # interrupted, or nothing measured: still say which commit it was
        git = get_commit_info()  # type: ignore[no-untyped-call]
        run = dataclasses.replace(run, commit_info=resolve_commit(git, os.environ))
    path = es.store_final(run)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and path is not None:
        with contextlib.suppress(OSError):  # the log may sit on the full disk
            tr.write_line(f"edgebench: run {es.run_id} stored in {path}")
