"""The `Driver` protocol: how edgebench reaches a board, and the local driver.

A `Board` holds data; a driver does things with it (labgrid style). Every driver has
the same lifecycle: ``activate()`` connects and prepares the board's workdir,
``deactivate()`` releases the connection; ``with driver:`` does both. Reading an
attribute never does I/O. Drivers are made by name from `edgebench.targets.registry`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from edgebench.errors import BoardBusy, EdgebenchError, JobTimeout, RemoteError
from edgebench.fsutil import atomic_write, file_lock, sha256_file
from edgebench.targets.board import Board, default_local_workdir
from edgebench.targets.remote import PY_KILL_AGENTS

LOCK_FILE = "board.lock"
# the folder of this machine's board lock instead of ~/.cache/edgebench/boards (tests: their own lock)
LOCK_DIR_ENV = "EDGEBENCH_LOCK_DIR"
RUN_ID_ENV = "EDGEBENCH_RUN_ID"  # the run a process measures for, recorded in the board locks it holds
# the oldest board Python the agent runs on (the vermin test of agent.py checks this floor)
MIN_PYTHON = (3, 6)
# prints the board Python's version; itself runs on any Python, 2.x included
PY_VERSION = "import sys; print('%d.%d.%d' % tuple(sys.version_info[:3]))"


@dataclass(frozen=True)
class CommandResult:
    """What a command on a board returned."""

    command: str
    exit_code: int
    stdout: str
    stderr: str


def lock_owner() -> str:
    """Who holds a board lock (host, pid, start time, run id), for the next run that finds it busy."""
    run = os.environ.get(RUN_ID_ENV)
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{socket.gethostname()} pid {os.getpid()} since {since}" + (f" run {run}" if run else "")


def killed_agents_warning(board: str, killed: Sequence[str]) -> str:
    """The warning a run records when it killed agents another (dead) run left on a board."""
    pids = ", ".join(k.split(" ", 1)[0] for k in killed)
    return (
        f"board {board}: killed {len(killed)} agent process(es) left running by an earlier run "
        f"(pid {pids}) before measuring: nothing was measured next to them"
    )


class Driver(Protocol):
    """Reach a board: copy files to it, run commands there, copy files back, lock it.

    ``board`` is the board with its workdir as an absolute path once the driver is
    active (an SSH board's ``~/`` workdir is resolved by ``activate``). A driver used
    without ``activate`` activates itself on its first remote operation.
    """

    board: Board

    def activate(self) -> None:
        """Connect (no-op when connected) and make the workdir; idempotent.

        Raises:
            BoardUnreachable: the board cannot be reached.
            RemoteError: the workdir cannot be made or written.
        """

    def deactivate(self) -> None:
        """Release the connection (safe to call more than once)."""

    def put(self, local: Path, remote: str, sha256: str | None = None) -> None:
        """Copy ``local`` to ``remote`` (a path on the board) atomically; ``sha256`` saves hashing it again."""

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run ``argv`` on the board; kill it after ``timeout`` seconds."""

    def get(self, remote: str, local: Path) -> None:
        """Copy ``remote`` from the board to ``local`` atomically."""

    def exists(self, remote: str) -> bool:
        """True if ``remote`` is a file on the board."""

    def has(self, remote: str, sha256: str) -> bool:
        """True if ``remote`` is a file on the board whose content has this sha256."""

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Hold the board host's lock (one per host, whatever the workdir); raise `BoardBusy` after
        ``timeout`` seconds."""

    def kill_agents(self) -> list[str]:
        """Kill edgebench agents running from this board's workdir; ``"pid command"`` of each killed one.

        Called with the lock held, so any agent found was left by a run that is gone.
        """
        return []

    def cancel(self) -> None:
        """Kill the commands this driver is running now (from another thread, on an interrupt)."""

    def __enter__(self) -> Driver:
        self.activate()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.deactivate()


class PythonTooOld(RemoteError):
    """The board's Python is older than the agent supports."""


def check_python(driver: Driver) -> None:
    """Explain a failure of a board-side Python (probe, lock, agent) by a Python older than the agent's minimum.

    Called only after something failed, so a working board pays nothing for it.

    Raises:
        PythonTooOld: naming the version found and the minimum.
    """
    board = driver.board
    try:
        res = driver.run([board.python, "-c", PY_VERSION], 30)
    except EdgebenchError:  # the board went away: the caller's own error says more than this one could
        return
    try:
        found = tuple(int(x) for x in res.stdout.strip().split("."))
    except ValueError:
        return
    if res.exit_code == 0 and found < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        raise PythonTooOld(
            board.name,
            f"{board.python} -c <version>",
            res.stdout,
            f"python {board.python!r} is {'.'.join(map(str, found))}, older than the agent's minimum {need}: "
            f"set python in boards.toml to a Python >= {need} on the board",
        )


class LocalDriver(Driver):
    """The embedded default: the board is this machine, reached by subprocess."""

    def __init__(self, board: Board, *, connect_retries: int = 1, backoff_s: float = 0.0) -> None:
        del connect_retries, backoff_s  # a subprocess needs no connection: accepted like every driver's
        self.board = board
        self._running: set[subprocess.Popen[str]] = set()
        self._guard = threading.Lock()

    def activate(self) -> None:
        """Make the workdir."""
        Path(self.board.workdir).mkdir(parents=True, exist_ok=True)

    def deactivate(self) -> None:
        """Nothing to release."""

    def put(self, local: Path, remote: str, sha256: str | None = None) -> None:
        """Copy under a temporary name, then rename, so readers never see half a file."""
        with atomic_write(Path(remote)) as tmp:
            shutil.copyfile(local, tmp)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run in a new session, so a timeout kills the agent and all it started."""
        self.activate()
        env = {**os.environ, **self.board.env}
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=self.board.workdir,
            start_new_session=True,
        )
        command = shlex.join(argv)
        with self._guard:
            self._running.add(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            raise JobTimeout(self.board.name, command, err or out, f"killed after {timeout:g} s") from None
        finally:
            with self._guard:
                self._running.discard(proc)
        return CommandResult(command, proc.returncode, out, err)

    def cancel(self) -> None:
        """Kill the process group of every command running now."""
        with self._guard:
            running = list(self._running)
        for proc in running:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, 9)

    def kill_agents(self) -> list[str]:
        """Kill agents left running from the workdir (the same /proc scan as on an SSH board)."""
        if not Path("/proc/self/cmdline").exists():  # no /proc (macOS): nothing to scan
            return []
        res = subprocess.run(
            [sys.executable, "-c", PY_KILL_AGENTS, self.board.workdir], capture_output=True, text=True, timeout=60
        )
        return res.stdout.splitlines()

    def get(self, remote: str, local: Path) -> None:
        """Copy a file from the board's workdir."""
        with atomic_write(local) as tmp:
            shutil.copyfile(remote, tmp)

    def exists(self, remote: str) -> bool:
        """True if the file is present."""
        return Path(remote).is_file()

    def has(self, remote: str, sha256: str) -> bool:
        """True if the file is present with this content hash."""
        return Path(remote).is_file() and sha256_file(Path(remote)) == sha256

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        """The lock of this machine (one for every local board, whatever its workdir), tried until ``timeout``."""

        def busy(holder: str) -> BoardBusy:
            return BoardBusy(self.board.name, "flock board.lock", "", f"board busy: held by {holder or 'another run'}")

        return file_lock(host_lock_path(), busy, timeout=timeout, owner=lock_owner())


def host_lock_path() -> Path:
    """This machine's board lock: two local inventory entries never measure at the same time.

    ``$EDGEBENCH_LOCK_DIR`` moves it (a test suite keeps its own lock, off the machine-wide one
    a real run on this machine holds); every process that shares the variable shares the lock.
    """
    folder = os.environ.get(LOCK_DIR_ENV)
    return (Path(folder) if folder else default_local_workdir().parent) / LOCK_FILE
