"""`edgebench run`: check the inputs, run the pytest harness in a child pytest, read back the run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgebench.bench import paired
from edgebench.bench.inputs import check_run
from edgebench.bench.session import (
    PARENT_PID_ENV,
    RESULTS_URL_ENV,
    WRITE_FAILED,
    WRITE_FAILED_EXIT,
    load_variants,
    resolve_boards,
)
from edgebench.bench.settings import SETTINGS, RunSettings, dims_argv
from edgebench.compress.variant import Variant
from edgebench.errors import DataError, EdgebenchError, ResultsPathError, RunNotFound, UserError
from edgebench.fsutil import unwritable_message
from edgebench.model import Measurement, Run
from edgebench.results import artifacts, backend, pg, schema, store
from edgebench.results import commit as commit_env

LOGS = "logs"  # results/logs/<run_id>.log: the child pytest's output
STOP_GRACE_S = 30.0  # after a signal, how long the harness gets to kill its agents and store the run
BENCHMARKS = ".benchmarks"  # results/.benchmarks/: pytest-benchmark's storage (--benchmark-compare reads it)
SAMPLE_BYTES = 16  # a stored latency sample: seconds as JSON text in an indented list (~20 measured)
MEASUREMENT_BYTES = 8 * 1024  # a measurement's other fields (settings, device, processes, summary...)
RUN_BYTES = 4 * 1024  # a run file's own fields (machine, commit, edgebench block)
NO_SPACE_CHECK_ENV = "EDGEBENCH_NO_SPACE_CHECK"  # "1": start a run whatever `space_needed` says


@dataclass
class RunOutcome:
    """What `run_harness` did: the stored run, its file, and pytest's exit status."""

    run: Run | None
    run_file: Path | None  # None on a server store (see `stored`)
    pytest_exit: int
    log: Path | None = None
    signal: int | None = None  # SIGINT/SIGTERM that interrupted the run (exit 128 + it)
    compared: bool = False  # a --benchmark-compare-fail check was asked for
    stored_on: str | None = None  # a server store: where the run is (the URL without its password and the run id)

    @property
    def stored(self) -> str | None:
        """Where the run is stored, for the user: its file, or the server and run id; None when nothing was."""
        return self.stored_on or (str(self.run_file) if self.run_file is not None else None)

    @property
    def exit_code(self) -> int | None:
        """128 + the signal for an interrupted run (130 for SIGINT, 143 for SIGTERM), else None."""
        return None if self.signal is None else 128 + self.signal

    @property
    def failures(self) -> tuple[Measurement, ...]:
        """The measurements that failed."""
        return self.run.failures if self.run else ()

    @property
    def regressed(self) -> bool:
        """True when a ``--benchmark-compare-fail`` check was asked for and failed (pytest failed while
        every measurement worked)."""
        return self.compared and self.run is not None and not self.failures and self.pytest_exit == 1


def regression_lines(log_text: str) -> list[str]:
    """pytest-benchmark's ``--benchmark-compare-fail`` findings from a harness log, without the traceback.

    Returns one line per regressed benchmark (``test_variant[...] - Field 'median' has failed ...``).
    """
    lines = log_text.splitlines()
    start = next((i for i, ln in enumerate(lines) if "Performance has regressed:" in ln), None)
    if start is None:
        return []
    out = []
    for ln in lines[start + 1 :]:
        if not ln[:1].isspace():  # the block ends where pytest's INTERNALERROR traceback starts
            break
        out.append(printable(" ".join(ln.split())))
    return out


def pytest_argv(
    *,
    variants: Path,
    boards: list[str],
    results: Path,
    run_id: str,
    settings: RunSettings,
    eval_data: Path | None = None,
    inventory: Path | None = None,
    models: list[str] | None = None,
    extra: tuple[str, ...] = (),
    parallel: bool = False,
) -> list[str]:
    """The child pytest's command line."""
    # labgrid's pytest plugin (edgebench[lab]) is 0.8 s of imports and has nothing to do in the harness
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:labgrid", "-c", os.devnull,
        "--rootdir", str(results),
        "-v", "-W", "ignore::DeprecationWarning", "--pyargs", "edgebench.bench.harness",
        "--edge-variants", str(variants), "--edge-boards", ",".join(boards), "--edge-results", str(results),
        "--edge-run-id", run_id, "--edge-command", "run",
    ]  # fmt: skip
    if eval_data is not None:
        argv += ["--edge-eval", str(eval_data)]
    if inventory is not None:
        argv += ["--edge-inventory", str(inventory)]
    if models:
        argv += ["--edge-models", ",".join(models)]
    if parallel:
        argv.append("--edge-parallel")
    # pytest-benchmark's own storage inside the results folder, each run saved as
    # <machine>/NNNN_<run_id>.json, so `-- --benchmark-compare=0001` finds earlier runs and
    # `pytest-benchmark --storage RESULTS/.benchmarks compare` tells runs apart by their id
    if not any(a == "--benchmark-storage" or a.startswith("--benchmark-storage=") for a in extra):
        argv.append(f"--benchmark-storage=file://{results / BENCHMARKS}")
    if not any(a in ("--benchmark-save", "--benchmark-autosave") or a.startswith("--benchmark-save=") for a in extra):
        argv.append(f"--benchmark-save={run_id}")
    for s in SETTINGS:  # a default stays the plugin's default
        value = getattr(settings, s.name)
        if s.option is None or value is None or value == s.default:
            continue
        for one in dims_argv(value) if s.repeatable else [value]:
            argv += [s.option, str(one)]
    return argv + list(extra)


def printable(text: object) -> str:
    """``text`` with every non-printable character escaped as Python would (``\\n``, ``\\x1b``...), so a
    name printed in a log line can never start a line of its own (a forged CI ``::error::``).

    Names are refused where they enter (manifests, recipes, inventory); this is the second guard,
    where lines are printed.
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def progress_line(event: dict[str, Any]) -> str | None:
    """The plain log line of a finished measurement (None for other progress events), names escaped
    (`printable`).

    Example: ``measured local/digits/int8: ok, p50 1.23 ms (processes 6/24)``.
    """
    case = event.get("case")
    if not case:
        return None
    case = printable(case)
    p50 = event.get("p50_ms")
    what = "ok" if event.get("ok") else "FAILED"
    p50_text = f", p50 {p50:.4g} ms" if isinstance(p50, int | float) else ""
    done, total = printable(event.get("done")), printable(event.get("total"))
    return f"measured {case}: {what}{p50_text} (processes {done}/{total})"


def space_needed(results: Path, boards: int, variants: list[Variant], settings: RunSettings) -> int:
    """Estimate of the bytes a run writes under ``results`` at its fullest; kept low, so it refuses
    only runs that cannot fit (a disk that fills anyway stops the run keeping what finished).

    Its parts:

    - the run file: `RUN_BYTES` + per measurement (boards x variants, twice with a paired
      ``baseline``) `MEASUREMENT_BYTES` + `SAMPLE_BYTES` x ``min_rounds`` (the least samples a
      measurement stores: more when ``min_time_s`` allows);
    - twice more: its reserve under ``runs/`` (as big as the run file, plus
      `store.RESERVE_MARGIN`) and pytest-benchmark's copy under `BENCHMARKS`;
    - the artifacts kept under ``RESULTS/artifacts``: each variant's file size, once per sha256,
      unless one is kept there already (`artifacts.kept`).
    """
    measurements = boards * len(variants) * (2 if settings.baseline else 1)
    run_file = RUN_BYTES + measurements * (MEASUREMENT_BYTES + SAMPLE_BYTES * settings.min_rounds)
    sizes: dict[str, int] = {}
    for v in variants:
        if v.sha256 in sizes or artifacts.kept(results, v.sha256) is not None:
            continue
        try:
            sizes[v.sha256] = v.artifact.stat().st_size
        except OSError:
            sizes[v.sha256] = 0
    return 3 * run_file + store.RESERVE_MARGIN + sum(sizes.values())


def _free_bytes(folder: Path) -> int | None:
    """Free space for ``folder`` (its nearest existing parent when it is not made yet); None when unknown."""
    for at in (folder, *folder.absolute().parents):
        if at.exists():
            try:
                return shutil.disk_usage(at).free
            except OSError:
                return None
    return None


def _kib(n: int) -> str:
    return f"{-(-n // 1024)} KiB"


def check_space(results: Path, boards: int, variants: list[Variant], settings: RunSettings) -> None:
    """Refuse a run that cannot fit in ``results``'s free space (`space_needed`), before anything is
    written; never when the free space is unknown or ``EDGEBENCH_NO_SPACE_CHECK=1``.

    Raises:
        ResultsPathError: naming the folder, the free space, the estimate and the fix.
    """
    if os.environ.get(NO_SPACE_CHECK_ENV) == "1":
        return
    free = _free_bytes(results)
    if free is None:
        return
    need = space_needed(results, boards, variants, settings)
    if free < need:
        raise ResultsPathError(
            f"results folder {results} has {_kib(free)} free, and this run needs about {_kib(need)} (the run file "
            f"with {settings.min_rounds} samples per measurement, its reserve, pytest-benchmark's copy and the "
            "kept artifacts): free space there, use --results with a folder on a disk with room or lower "
            f"--min-rounds; {NO_SPACE_CHECK_ENV}=1 starts it anyway"
        )


class _Forward:
    """While the harness runs, SIGINT/SIGTERM to `edgebench` go to the harness (its own session, so a
    Ctrl-C to the terminal's group reaches it once, through here): it kills the agents, releases
    the boards and stores what finished. After `STOP_GRACE_S` it is killed."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.deadline = proc, float("inf")
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal, self.deadline = signum, time.monotonic() + STOP_GRACE_S
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signum)

    def check(self) -> None:
        """Kill the harness when it outlived its grace period."""
        if time.monotonic() > self.deadline and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self) -> int:
        """Wait for the harness, killing it past the grace period."""
        while self.proc.poll() is None:
            self.check()
            time.sleep(0.1)
        return self.proc.returncode


@contextlib.contextmanager
def _forwarding(proc: subprocess.Popen[bytes]) -> Iterator[_Forward]:
    fwd = _Forward(proc)
    main = threading.current_thread() is threading.main_thread()
    old = {sig: signal.signal(sig, fwd) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        yield fwd
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _events(proc: subprocess.Popen[bytes], progress_file: Path) -> Iterator[dict[str, Any]]:
    """The plugin's progress events as the child writes them, until it exits (a half-written line waits)."""
    seen = 0
    while True:
        finished = proc.poll() is not None
        lines = progress_file.read_text().splitlines() if progress_file.is_file() else []
        for line in lines[seen:]:
            try:
                event = json.loads(line)
            except ValueError:
                break  # half a line: read it on the next pass
            seen += 1
            yield event
        if finished:
            return
        time.sleep(0.2)


def _follow(proc: subprocess.Popen[bytes], progress_file: Path, console: Console, total_hint: int) -> None:
    """Drive a rich progress bar from the plugin's progress lines until the child exits.

    When the console is not a terminal (CI logs), each finished measurement prints one
    plain line as it finishes instead, so a long farm run is never silent.
    """
    if not console.is_terminal:
        for event in _events(proc, progress_file):
            text = progress_line(event)
            if text is not None:
                console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("measuring", total=total_hint)
        for event in _events(proc, progress_file):
            desc = event.get("case") or event.get("process")
            if desc:
                desc = f"{'[green]ok[/green]' if event.get('ok') else '[red]failed[/red]'} {escape(printable(desc))}"
            bar.update(task, completed=event["done"], total=event["total"], description=desc or "measuring")


def run_harness(
    *,
    variants: Path,
    boards: list[str],
    results: backend.Results,
    settings: RunSettings,
    eval_data: Path | None = None,
    inventory: Path | None = None,
    models: list[str] | None = None,
    extra: tuple[str, ...] = (),
    console: Console | None = None,
    show_output: bool = False,
    parallel: bool = False,
    commit: str | None = None,
    branch: str | None = None,
) -> RunOutcome:
    """Check the inputs (user errors before any work), run the harness, load the stored run.

    The child pytest's output goes to ``results/logs/<run_id>.log`` (and also to the
    console with ``show_output``); ``console`` shows a progress bar per finished case.

    ``results`` may be a server store (`edgebench.results.pg.PgStore`, opened for writing):
    the harness gets its URL in its environment (`RESULTS_URL_ENV`, never on its command
    line) and stores the run there; logs, kept artifacts and pytest-benchmark's copy go to
    the local folder `server_folder` names. A baseline run on the server is copied into
    that folder first.

    Args:
        console: where the progress bar goes (None: no bar).
        show_output: stream the child pytest's output (pytest-benchmark's table...) to stderr.
        parallel: measure the boards in parallel (processes on one board stay sequential, interleaved).
        commit: the benchmarked project's commit for ``commit_info`` (`edgebench.results.commit`).
        branch: its branch.

    Raises:
        UserError: unknown board, missing variants or eval data, unwritable results folder, a results
            folder without room for the run (`check_space`), or a child pytest that stopped before
            storing a run.
    """
    board_list = resolve_boards(boards, inventory)
    variant_list = load_variants(variants, models)
    if eval_data is not None and not eval_data.exists():
        raise DataError(f"eval data {eval_data} does not exist: give an .npz file (x, y) or a folder of <model>.npz")
    eval_given = eval_data is not None
    check_run(settings.inputs, settings.dims, settings.batch_size, settings.seed, variant_list, eval_given=eval_given)
    server = results if isinstance(results, pg.PgStore) else None
    folder = backend.local_folder(results, server_folder())
    if settings.baseline:  # named once, here: "latest" in the harness would be the new run itself
        ref = settings.baseline
        is_file = Path(ref).exists() and not ref.endswith(".json")  # a model or variants, else a run
        if server is not None and not is_file:  # the harness reads the baseline run from the local folder
            base = pg.open_run(server, ref, "pick another baseline run")
            store.prepare(folder)
            store.save_run(folder, base)
            ref = base.run_id
        baselines = paired.resolve(ref, folder)
        paired.check_inputs(baselines, [b.name for b in board_list], variant_list)
        settings = settings.replace(baseline=str(Path(ref).resolve()) if is_file else baselines.ref)
    check_space(folder, len(board_list), variant_list, settings)
    store.prepare(folder)
    results = folder  # below: the local folder (logs, artifacts, pytest-benchmark's copy)
    logs = results / LOGS
    logs.mkdir(exist_ok=True)
    run_id = schema.new_run_id()
    log, progress_file = logs / f"{run_id}.log", logs / f".{run_id}.progress"
    argv = pytest_argv(
        variants=variants, boards=boards, results=results.resolve(), run_id=run_id, settings=settings,
        eval_data=eval_data, inventory=inventory, models=models, extra=extra, parallel=parallel,
    )  # fmt: skip
    argv[-len(extra) if extra else len(argv) : -len(extra) if extra else len(argv)] = [
        "--edge-progress",
        str(progress_file),
    ]
    # The harness is a pytest session of its own: called from a pytest-xdist worker (a user's CI, our tests),
    # the worker's PYTEST_XDIST_* variables would make pytest-benchmark disable itself and save nothing.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env.update({"PYTHONWARNINGS": "ignore::DeprecationWarning", PARENT_PID_ENV: str(os.getpid())})
    env.update({k: v for k, v in ((commit_env.ENV_COMMIT, commit), (commit_env.ENV_BRANCH, branch)) if v})
    env.pop(RESULTS_URL_ENV, None)
    if server is not None:
        env[RESULTS_URL_ENV] = server.url  # the environment, not argv: a password never shows in `ps`
    fwd: _Forward | None = None
    try:
        out = open(log, "wb")  # noqa: SIM115  # closed by the thread that copies the harness's output into it
    except OSError as exc:
        raise ResultsPathError(unwritable_message(results, exc)) from None
    try:
        # its own session: a signal reaches the harness once, forwarded by `_Forward`
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        said: list[str] = []  # the harness's WRITE_FAILED line
        copier = threading.Thread(target=_copy_output, args=(proc, out, show_output, said), daemon=True)
        copier.start()
        with _forwarding(proc) as fwd:
            if console is not None and not show_output:
                _follow(proc, progress_file, console, len(board_list) * len(variant_list) * settings.repeats)
            fwd.wait()
        copier.join(timeout=10)
    finally:
        progress_file.unlink(missing_ok=True)
        store.release_reserve(results, run_id)  # a killed harness leaves it
    sig = fwd.signal if fwd is not None else None
    if server is not None:
        return _from_server(server, run_id, proc.returncode, log, sig, said, extra)
    path = store.run_path(results, run_id)
    if sig is not None:
        return _interrupted(path, proc.returncode, log, sig)
    if proc.returncode == WRITE_FAILED_EXIT:
        raise ResultsPathError(_write_failed(results, path, said))
    if not path.is_file():
        raise _harness_stopped(proc.returncode, log)
    try:
        run = store.read_run(path)
    except (EdgebenchError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"the stored run {path} cannot be read ({exc}): run again") from None
    compared = any(a.startswith("--benchmark-compare-fail") for a in extra)
    return RunOutcome(run, path, proc.returncode, log, compared=compared)


def server_folder() -> Path:
    """Where runs stored on a server keep their local files (logs, kept artifacts, pytest-benchmark's
    copy, a copied baseline run): ``$XDG_CACHE_HOME/edgebench/server`` (``~/.cache/edgebench/server``),
    one folder per server and database (`edgebench.results.backend.local_folder`)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "edgebench" / "server"


def _harness_stopped(proc_exit: int, log: Path) -> UserError:
    tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
    return UserError(
        f"the measurement harness stopped before storing a run (pytest exit {proc_exit}); the end of "
        f"its log {log}:\n{tail}\nfix the problem it names, or run it alone with "
        "`pytest --pyargs edgebench.bench.harness --edge-variants ...`"
    )


def _from_server(
    server: pg.PgStore, run_id: str, proc_exit: int, log: Path, sig: int | None, said: list[str], extra: tuple[str, ...]
) -> RunOutcome:
    """The outcome of a run the harness stored on a server: read back from it.

    A harness that lost the server kept the run in the spool and said so (`WRITE_FAILED`): that
    line is the error (it names the spool and the `results push` command).

    Raises:
        ResultsServerError: the server was lost mid-run (the run is in the spool), or cannot be read now.
    """
    if proc_exit == WRITE_FAILED_EXIT:
        raise pg.ServerUnreachable(said[-1] if said else f"lost the results server {server}: see the harness log {log}")
    try:
        run = pg.read_run(server, run_id)
    except RunNotFound:
        if sig is not None:
            return RunOutcome(None, None, proc_exit, log, sig)
        raise _harness_stopped(proc_exit, log) from None
    except schema.SchemaError as exc:
        raise UserError(f"the stored run {server} run {run_id} cannot be read ({exc}): run again") from None
    if sig is not None and not run.complete and run.interrupted is None:  # killed before it closed the run
        run = schema.finish(run, complete=False, interrupted=f"interrupted by {signal.Signals(sig).name}")
        pg.save_run(server, run)
    compared = any(a.startswith("--benchmark-compare-fail") for a in extra)
    return RunOutcome(
        run, None, proc_exit, log, sig, compared=compared and sig is None, stored_on=f"{server} run {run_id}"
    )


def _copy_output(proc: subprocess.Popen[bytes], out: BinaryIO, echo: bool, said: list[str]) -> None:
    """Copy the harness's output into its log (and to stderr with ``echo``) until it exits; a
    `WRITE_FAILED` line goes to ``said``.

    Through a pipe, so a log that cannot be written (a full disk) never stops the harness:
    the log just ends there.
    """
    assert proc.stdout is not None
    with out:
        for chunk in iter(proc.stdout.readline, b""):
            if chunk.startswith(WRITE_FAILED.encode()):
                said.append(chunk.decode(errors="replace")[len(WRITE_FAILED) :].strip())
            if not out.closed:
                try:
                    out.write(chunk)
                    out.flush()
                except OSError:
                    with contextlib.suppress(OSError):
                        out.close()
            if echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()


def _write_failed(results: Path, path: Path, said: list[str]) -> str:
    """The one line for a run stopped because the results folder could not be written (a full disk):
    the harness's reason (it names the folder, the free space and the fix), then what was kept."""
    why = said[-1] if said else f"results folder {results} could not be written: see the harness log"
    try:
        run = store.read_run(path) if path.is_file() else None
    except EdgebenchError:
        run = None
    if run is None:
        return f"{why}; nothing stored"
    if run.complete:
        return f"{why}; run {run.run_id} stored complete in {path}, without pytest-benchmark's copy"
    n = len(run.measurements)
    return f"{why}; run {run.run_id} stopped: {n} finished measurement(s) kept in {path} (complete: false)"


def _interrupted(path: Path, pytest_exit: int, log: Path, signum: int) -> RunOutcome:
    """The outcome of a run stopped by a signal: what finished, marked incomplete with the reason.

    The harness stores that itself; if it was killed first, the file it wrote after its last
    measurement is closed here. Nothing finished: no run file.
    """
    reason = f"interrupted by {signal.Signals(signum).name}"
    if not path.is_file():
        return RunOutcome(None, None, pytest_exit, log, signum)
    try:
        run = store.read_run(path)
    except (EdgebenchError, ValueError) as exc:
        raise UserError(f"the interrupted run {path} cannot be read ({exc}): run again") from None
    if not run.complete and run.interrupted is None:  # the harness was killed before it closed the run
        run = schema.finish(run, complete=False, interrupted=reason)
        store.save_run(path.parent.parent, run)
    return RunOutcome(run, path, pytest_exit, log, signum)
