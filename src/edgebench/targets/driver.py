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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

from edgebench.errors import BoardBusy, JobTimeout
from edgebench.fsutil import atomic_write, file_lock, sha256_file
from edgebench.targets.board import Board

LOCK_FILE = "board.lock"


@dataclass(frozen=True)
class CommandResult:
    """What a command on a board returned."""

    command: str
    exit_code: int
    stdout: str
    stderr: str


def lock_owner() -> str:
    """Who holds a board lock, for the message of a run that finds the board busy."""
    return f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}"


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
        """Hold the board's lock; raise `BoardBusy` after ``timeout`` seconds."""

    def __enter__(self) -> Driver:
        self.activate()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.deactivate()


class LocalDriver(Driver):
    """The embedded default: the board is this machine, reached by subprocess."""

    def __init__(self, board: Board, *, connect_retries: int = 1, backoff_s: float = 0.0) -> None:
        del connect_retries, backoff_s  # a subprocess needs no connection: accepted like every driver's
        self.board = board

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
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            raise JobTimeout(self.board.name, command, err or out, f"killed after {timeout:g} s") from None
        return CommandResult(command, proc.returncode, out, err)

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
        """The host lock on ``<workdir>/board.lock``, tried until ``timeout``."""

        def busy(holder: str) -> BoardBusy:
            return BoardBusy(self.board.name, "flock board.lock", "", f"board busy: held by {holder or 'another run'}")

        return file_lock(Path(self.board.workdir) / LOCK_FILE, busy, timeout=timeout, owner=lock_owner())
