"""One measuring session over boards x models x variants: cases, drivers, the run document.

The pytest plugin (`edgebench.bench.plugin`) drives it one case per test; anything
else can too (``for case in s.cases: s.measure(case)``). The first `EdgeSession.measure`
measures every selected case up front, per board ``repeats`` fresh agent processes per
variant interleaved round-robin (`edgebench.bench.repeats`); the tests then report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import statistics
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.bench import paired, reference
from edgebench.bench.profile import attach_profile
from edgebench.bench.repeats import Planned, Stopped, is_partial, measure_interleaved
from edgebench.bench.runner import variant_settings
from edgebench.bench.settings import RunSettings
from edgebench.compress import metrics
from edgebench.compress.variant import Variant, list_variants, variants_from_files
from edgebench.errors import DataError, EdgebenchError, ResultsPathError, UserError
from edgebench.model import JSONObject, Measurement, MeasurementError, Run
from edgebench.results import artifacts, pg, schema, store
from edgebench.targets.board import Board
from edgebench.targets.driver import RUN_ID_ENV, Driver, killed_agents_warning
from edgebench.targets.group import for_each_board
from edgebench.targets.inventory import load_inventory
from edgebench.targets.inventory import resolve_boards as resolve
from edgebench.targets.registry import driver_for

PARENT_PID_ENV = "EDGEBENCH_PARENT_PID"  # set by `edgebench run`: the harness stops if that process dies
RESULTS_URL_ENV = "EDGEBENCH_RESULTS_URL"  # set by `edgebench run`: the run is stored on this server (never in argv)
WRITE_FAILED_EXIT = 74  # the harness's exit when the results folder could not be written (EX_IOERR)
WRITE_FAILED = "edgebench: results not written: "  # the harness's line that says why (read by `edgebench run`)
ProgressFields = dict[str, str | bool | float]  # what a progress line adds to ``done, total``: case/process, ok, p50


class RunInterrupted(Exception):
    """The session was told to stop (`EdgeSession.stop`): raised where the next agent would start."""


@dataclass(frozen=True)
class Case:
    """One (board, variant) to measure."""

    board: Board
    variant: Variant

    @property
    def id(self) -> str:
        """``board-model-variant``: the pytest parameter id and the benchmark's ``param``."""
        return f"{self.board.name}-{self.variant.model}-{self.variant.name}"


def load_variants(root: Path, models: list[str] | None = None) -> list[Variant]:
    """The variants under ``root`` (``<model>/<variant>/manifest.json``), optionally some models only.

    ``root`` may also be a .onnx or .tflite file, or a folder of them: each becomes an fp32 variant
    (made on the fly, cached by sha256; see `variants_from_files`).

    Raises:
        UserError: if the folder is missing or holds no variant.
    """
    if not root.exists():
        raise UserError(
            f"variants folder {root} does not exist: give the folder `edgebench compress` wrote, "
            "a .onnx/.tflite file or a folder of them"
        )
    made = variants_from_files(root)
    variants = made if made is not None else list_variants(root)
    if models:
        unknown = sorted(set(models) - {v.model for v in variants})
        if unknown:
            raise UserError(
                f"models {unknown} have no variants in {root}: known models are {sorted({v.model for v in variants})}"
            )
        variants = [v for v in variants if v.model in models]
    if not variants:
        raise UserError(
            f"variants folder {root} holds no variants (<model>/<variant>/manifest.json): run `edgebench compress`"
        )
    return variants


def resolve_boards(names: list[str], inventory: Path | None = None) -> list[Board]:
    """Boards by name from the inventory (``local`` is always there).

    Raises:
        UserError: for an unknown board or a bad inventory.
    """
    return resolve(load_inventory(inventory), names)


class EdgeSession:
    """Measures cases, keeps one driver per board, and builds the run as it goes.

    Args:
        boards: where to measure.
        variants: what to measure.
        settings: how to measure.
        eval_data: an npz used for every model, or a folder of ``<model>.npz``.
        results: when given, the run is written there after every measurement; with `RESULTS_URL_ENV`
            set, the run goes to that PostgreSQL server instead (``results`` keeps the kept artifacts,
            the reference cache and pytest-benchmark's copy). A server lost mid-run: the run stops, its
            finished measurements are kept in the spool (`edgebench.results.pg.default_spool`) and
            `write_error` is the one line that says so, with the `results push` command.
        command: recorded in the run (``run``, ``pytest``...).
        run_id: the run id (a new one by default).
        reference_cache: where fp32 reference outputs are cached (default under ``results``).
        parallel: measure the boards at once (a board's processes stay sequential, interleaved).
    """

    def __init__(
        self,
        boards: list[Board],
        variants: list[Variant],
        settings: RunSettings,
        *,
        eval_data: Path | None = None,
        results: Path | None = None,
        command: str = "pytest",
        run_id: str | None = None,
        reference_cache: Path | None = None,
        parallel: bool = False,
    ) -> None:
        if eval_data is not None and not eval_data.exists():
            raise DataError(f"eval data {eval_data} does not exist: give an .npz file or a folder of <model>.npz")
        self.boards, self.variants, self.settings = boards, variants, settings
        self.eval_data, self.results = eval_data, results
        self.reference_cache = reference_cache or (results / "cache" / "reference" if results else None)
        self.cases = [Case(b, v) for b in boards for v in variants]
        self.expected = len(self.cases)
        self.run: Run = schema.new_run(
            command, run_id, boards=[(b.name, b.host or "local") for b in boards], settings=settings.as_dict()
        )
        self.selected: list[Case] = list(self.cases)
        self.parallel = parallel and len(boards) > 1
        self.processes_done = 0  # fresh agent processes finished (or skipped), for progress
        self._progress_lock = threading.Lock()
        self.measured: list[Measurement] = []
        self._drivers: dict[str, Driver | Exception] = {}
        self._prefetched: dict[str, Measurement] | None = None
        self.progress_file: Path | None = None
        self.stop_reason: str | None = None  # set by `stop` (a signal): no agent starts after it
        self.write_error: str | None = None  # the run file could not be written (a full disk): the run stopped
        self._saved: Run | None = None  # the run as last written
        self.server: pg.PgStore | None = None  # the results server the run is stored on (`RESULTS_URL_ENV`)
        self.spool: Path | None = None  # where the run is kept since its server was lost
        self._lost_why = ""  # what the server said when it was lost
        self._recorded: set[str] = set()  # case ids already in the run (each is written once)
        # re-entrant: `stop` runs in a signal handler, which may interrupt the main thread inside `record`
        self._record_lock = threading.RLock()
        self._active: set[Driver] = set()  # drivers measuring now, for `stop` to cancel their agents
        os.environ[RUN_ID_ENV] = self.run.run_id  # recorded in the board locks this process takes
        if results is not None:
            store.prepare(results)
            url = os.environ.get(RESULTS_URL_ENV)
            if url:
                self.server = pg.open_store(url)
        self.baselines = paired.resolve(settings.baseline, results) if settings.baseline else None

    @property
    def run_id(self) -> str:
        """This run's id."""
        return self.run.run_id

    def eval_for(self, model: str) -> Path | None:
        """The eval npz for a model, or None."""
        if self.eval_data is None:
            return None
        if self.eval_data.is_dir():
            p = self.eval_data / f"{model}.npz"
            if p.is_file() and not p.resolve().is_relative_to(self.eval_data.resolve()):
                raise DataError(f"eval data {p} links outside {self.eval_data}: copy the file into the folder")
            return p if p.is_file() else None
        return self.eval_data

    def driver(self, board: Board) -> Driver:
        """The board's driver, made once (a connection failure is remembered and raised again)."""
        d = self._drivers.get(board.name)
        if d is None:
            try:
                d = driver_for(board)
                d.activate()  # connect and make the workdir up front
            except EdgebenchError as exc:
                d = exc
            self._drivers[board.name] = d
        if isinstance(d, Exception):
            raise d
        return d

    def _reference(self, case: Case, eval_npz: Path | None) -> tuple[Path | None, JSONObject | None, str | None]:
        if eval_npz is None:
            return None, None, None
        parent = reference.find_parent(case.variant, self.variants)
        if parent is None or parent.sha256 == case.variant.sha256:
            return None, None, None
        vs = variant_settings(self.settings, case.variant, eval_npz)  # inputs the eval data lacks, made as on the board
        try:
            ref = reference.reference_outputs(parent, eval_npz, self.reference_cache, vs)
            return ref, reference.describe(parent), None
        except (EdgebenchError, OSError) as exc:  # recorded with the variant; the run goes on
            return None, None, str(exc)

    def _measure_board(self, driver: Driver, cases: list[Case]) -> dict[str, Measurement]:
        """Measure a board's cases, ``repeats`` processes each, interleaved; ``{case id: measurement}``."""
        planned = []
        for c in cases:
            eval_npz = self.eval_for(c.variant.model)
            ref, ref_info, ref_error = self._reference(c, eval_npz)
            base, why = (None, None)
            if self.baselines is not None:
                base, why = self.baselines.of(c.board.name, c.variant.model, c.variant.name)
            planned.append(Planned(c.variant, eval_npz, ref, ref_info, [why] if why else [], ref_error, baseline=base))
        n = self.settings.repeats

        def done(i: int, r: int, ok: bool) -> None:
            v = cases[i].variant
            self.process_progress(f"{cases[i].board.name}/{v.model}/{v.name} #{r + 1}/{n}", ok)

        def finished(i: int, m: Measurement) -> None:
            if m.ok or self.stop_reason is None:  # after a stop, a failure may be the stop's: not recorded
                if m.ok and self.results is not None:
                    m = self._keep_artifact(cases[i].variant, m)
                self.record(m, cases[i].id)

        def guard() -> list[str]:
            if self.stop_reason is not None:
                raise RunInterrupted(self.stop_reason)
            killed = driver.kill_agents()  # we hold the host's lock: any agent running is an orphan
            return [killed_agents_warning(driver.board.name, killed)] if killed else []

        with self._record_lock:
            self._active.add(driver)
        if self.stop_reason is not None:
            raise RunInterrupted(self.stop_reason)
        try:
            try:
                ms = measure_interleaved(
                    driver, planned, self.settings, on_process=done, on_done=finished, guard=guard,
                    stopped=lambda: self.stop_reason is not None,
                )  # fmt: skip
            except Stopped:
                raise RunInterrupted(self.stop_reason or "stopped") from None
            if self.settings.profile:  # `run --profile`: after the measurement, never inside it
                ms = [self._profiled(driver, c, m) for c, m in zip(cases, ms, strict=True)]
        finally:
            with self._record_lock:
                self._active.discard(driver)
        return {c.id: m for c, m in zip(cases, ms, strict=True)}

    def _keep_artifact(self, variant: Variant, m: Measurement) -> Measurement:
        """Keep the measured artifact by sha256 under the results folder (a later --baseline re-measures it)."""
        assert self.results is not None
        try:
            artifacts.keep(self.results, variant.artifact, variant.sha256)
        except OSError as exc:  # never lose a measurement for it: say it
            why = f"{exc.strerror or exc}"
            note = f"artifact not kept under {self.results / artifacts.ARTIFACTS} ({why}): it cannot be a baseline"
            return dataclasses.replace(m, warnings=(*m.warnings, note))
        return m

    def _profiled(self, driver: Driver, case: Case, m: Measurement) -> Measurement:
        """``m`` with its profile from one more fresh agent process (`attach_profile`), updated in the run."""
        what = f"{case.board.name}/{case.variant.model}/{case.variant.name} profile"
        if self.stop_reason is not None or not m.ok:
            self.process_progress(what, False)
            return m
        eval_npz = self.eval_for(case.variant.model)
        p = attach_profile(driver, case.variant, m, self.settings, eval_data=eval_npz)
        self.process_progress(what, p.profile is not None)
        with self._record_lock:  # the measurement was recorded as it finished: add the profile to it
            benchmarks = tuple(
                dataclasses.replace(b, measurement=dataclasses.replace(b.measurement, profile=p.profile,
                                                                       profile_error=p.profile_error))
                if b.measurement.key == p.key else b
                for b in self.run.benchmarks
            )  # fmt: skip
            self.run = dataclasses.replace(self.run, benchmarks=benchmarks)
            self._write()
        return p

    def stop(self, reason: str) -> None:
        """Stop measuring (a signal): no agent starts after this, and the running ones are killed.

        Safe to call from a signal handler: the agents are killed from a thread. What finished
        is already in the run file; the plugin stores the run with ``interrupted`` = ``reason``.
        """
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        with self._record_lock:
            active = list(self._active)
        for d in active:
            threading.Thread(target=d.cancel, name="edgebench-cancel", daemon=True).start()

    @staticmethod
    def _failed(case: Case, exc: Exception) -> Measurement:
        message = str(exc) or f"{type(exc).__name__} without a message"  # a failure always says something
        error = MeasurementError(type(exc).__name__, message, output=getattr(exc, "output", ""))
        return Measurement(
            board=case.board.name, model=case.variant.model, variant=case.variant.name, ok=False, error=error,
            null_keys=frozenset(),  # what was measured is unknown past the board: no format, sha256, bytes
        )  # fmt: skip

    def _prefetch(self) -> dict[str, Measurement]:
        """Measure every selected case: per board interleaved, boards one by one or in parallel."""
        by_board: dict[str, list[Case]] = {}
        for c in self.selected:
            by_board.setdefault(c.board.name, []).append(c)
        boards = [b for b in self.boards if b.name in by_board]
        if not boards:
            return {}
        for c in self.selected:  # reference outputs are made on the host once, before the threads start
            self._reference(c, self.eval_for(c.variant.model))

        def work(driver: Driver) -> dict[str, Measurement]:
            return self._measure_board(driver, by_board[driver.board.name])

        out: dict[str, Measurement] = {}
        results = for_each_board(
            boards, work, lock_timeout=self.settings.lock_timeout_s, max_workers=None if self.parallel else 1
        )
        finished = {m.key: m for m in self.measured}  # recorded before their board failed: they stand
        for name, res in results.items():
            if isinstance(res, Exception) and self.stop_reason is not None:
                continue  # stopped: the board's unfinished cases are not measurements
            for c in by_board[name]:
                if not isinstance(res, Exception):
                    out[c.id] = res[c.id]
                elif (name, c.variant.model, c.variant.name) in finished:
                    out[c.id] = finished[(name, c.variant.model, c.variant.name)]
                else:  # the board was unreachable, busy or went dark: its processes count as done
                    for r in range(self.settings.repeats):
                        self.process_progress(f"{name}/{c.variant.model}/{c.variant.name} #{r + 1}", False)
                    out[c.id] = self.record(self._failed(c, res), c.id)
        return out

    def measure(self, case: Case) -> Measurement:
        """Hand out one case's measurement and record it; failures are data.

        The first call measures every selected case (see `_prefetch`); a case that was
        not selected is measured alone (its ``repeats`` processes, holding the board's lock).

        Raises:
            RunInterrupted: the session was stopped before this case finished.
        """
        if self._prefetched is None:
            self._prefetched = self._prefetch()
        m = self._prefetched.pop(case.id, None)
        if m is None:
            if self.stop_reason is not None:
                raise RunInterrupted(self.stop_reason)
            try:
                driver = self.driver(case.board)
                with driver.lock(self.settings.lock_timeout_s):
                    m = self._measure_board(driver, [case])[case.id]
            except (EdgebenchError, OSError) as exc:  # one board's or variant's failure is data; the run goes on
                m = self._failed(case, exc)
            if self.stop_reason is not None and case.id not in self._recorded:
                raise RunInterrupted(self.stop_reason)
        return self.record(m, case.id)

    def record(self, m: Measurement, case_id: str | None = None) -> Measurement:
        """Add a measurement to the run and write the run file (atomically) at once, ``complete: false``.

        Each case is recorded once (``case_id``): a run file interrupted at any moment holds
        exactly the measurements that finished. Thread-safe (boards measured in parallel).
        """
        v = next((v for v in self.variants if (v.model, v.name) == (m.model, m.variant)), None)
        if m.ok and v is not None and "flops" not in m.extra:  # FLOPs at the shape measured, not the file's
            m = dataclasses.replace(m, extra={**m.extra, **metrics.measured_flops(v.format, v.artifact, m.inputs)})
        with self._record_lock:
            if case_id is not None:
                if case_id in self._recorded:
                    return m
                self._recorded.add(case_id)
            self.measured.append(m)
            self.run = dataclasses.replace(schema.add_measurement(self.run, m), complete=False)
            self._write()
        if self.write_error is None or self.spool is not None:  # one that could not be written is not said to be
            self.report_progress(m)
        return m  # as stored (with the FLOPs at the measured shape)

    def _write(self) -> None:
        """Write the run file (holding `_record_lock`), with a reserve for its last write; a write
        that fails (a full disk) stops the run at once: what was written before stays as it was."""
        if self.spool is not None:  # the server was lost: what still finishes is kept in the spool
            with contextlib.suppress(ResultsPathError):
                store.save_run(self.spool, self.run)
            return
        if self.results is None or self.write_error is not None:
            return
        if self.server is not None:
            try:
                pg.save_run(self.server, self.run)
                self._saved = self.run
            except pg.ResultsServerError as exc:
                self._lose_server(self.run, exc)
            return
        try:
            store.save_run(self.results, self.run, reserve=True)
            self._saved = self.run
        except ResultsPathError as exc:
            self.write_error = str(exc)
            self.stop(f"stopped: {exc}")

    def _lose_server(self, run: Run, exc: Exception) -> None:
        """The server was lost (holding `_record_lock`): keep ``run`` in the spool, say so, stop the run."""
        assert self.server is not None
        lost = f"stopped: lost the results server {self.server}"
        if self.stop_reason is None and not run.complete:
            run = schema.finish(run, complete=False, interrupted=lost)
        spool = pg.default_spool()
        self._lost_why = " ".join(str(exc).split()).removeprefix(f"{self.server}: ")
        try:
            self.write_error = pg.spool_run(spool, run, self.server, self._lost_why)
            self.spool = spool
        except ResultsPathError as exc2:
            self.write_error = f"{exc}; and the spool {spool} cannot be written either ({exc2}): nothing more kept"
        self.stop(lost)

    def store_final(self, run: Run) -> Path | str | None:
        """Write the final run into its reserve's room; if it does not fit, the run as last written,
        closed with why it stopped. Returns its file (on a server: the server and run id; a server
        lost: the run's file in the spool), None if nothing could be stored."""
        assert self.results is not None
        if self.server is not None:
            return self._store_final_server(run)
        store.release_reserve(self.results, self.run_id)
        try:
            return store.save_run(self.results, run)
        except ResultsPathError as exc:
            self.write_error = self.write_error or str(exc)
        if self._saved is None:
            return None
        why = self.stop_reason or f"stopped: {self.write_error}"
        with contextlib.suppress(ResultsPathError):  # else the file as last written stays
            return store.save_run(self.results, schema.finish(self._saved, complete=False, interrupted=why))
        return None

    def _store_final_server(self, run: Run) -> Path | str | None:
        assert self.server is not None
        with self._record_lock:
            if self.spool is None:
                try:
                    pg.save_run(self.server, run)
                    return f"{self.server} run {run.run_id}"
                except pg.ResultsServerError as exc:
                    self._lose_server(run, exc)
                    return store.run_path(self.spool, run.run_id) if self.spool is not None else None
            # lost earlier: the final state goes to the spool, and the line counts what it holds
            try:
                self.write_error = pg.spool_run(self.spool, run, self.server, self._lost_why)
            except ResultsPathError:
                return None
            return store.run_path(self.spool, run.run_id)

    def report_progress(self, m: Measurement | None = None) -> None:
        """Append one JSON line to ``progress_file`` for a progress bar.

        ``done, total`` count fresh agent processes (``repeats`` per case); ``case`` names
        the measurement just recorded.
        """
        line: ProgressFields = {}
        if m is not None:
            line.update(case=f"{m.board}/{m.model}/{m.variant}", ok=m.ok)
            if m.samples_ns:  # for the plain progress line in CI logs
                line["p50_ms"] = statistics.median(m.samples_ns) / 1e6
        self._progress_line(line)

    def process_progress(self, what: str, ok: bool) -> None:
        """Count one finished (or skipped) agent process and report it (``what`` names it)."""
        with self._progress_lock:
            self.processes_done += 1
        self._progress_line({"process": what, "ok": ok})

    def _progress_line(self, extra: ProgressFields) -> None:
        if self.progress_file is None:
            return
        with self._progress_lock:
            total = self.expected * (self.settings.repeats + (self.settings.profile > 0))  # + a profiling process
            line = {"done": min(self.processes_done, total), "total": total, **extra}
            with contextlib.suppress(OSError), open(self.progress_file, "a") as f:  # a bar is not worth a run
                f.write(json.dumps(line) + "\n")

    @property
    def complete(self) -> bool:
        """True once every case has a measurement (successful or not) from all its processes."""
        return len([m for m in self.measured if not is_partial(m)]) >= self.expected

    def final_run(self) -> Run:
        """The run as it stands, finished now: complete once every case has a measurement, else
        ``interrupted`` says why it stopped (`stop`)."""
        complete = self.complete and self.write_error is None
        return schema.finish(self.run, complete=complete, interrupted=None if complete else self.stop_reason)

    def edgebench_block(self) -> dict[str, Any]:
        """The ``edgebench`` block of `final_run`, for pytest-benchmark's JSON (its boundary)."""
        eb: dict[str, Any] = self.final_run().to_json()["edgebench"]
        return eb

    def close(self) -> None:
        """Close every driver."""
        for d in self._drivers.values():
            if not isinstance(d, Exception):
                with contextlib.suppress(Exception):
                    d.deactivate()
        self._drivers.clear()
