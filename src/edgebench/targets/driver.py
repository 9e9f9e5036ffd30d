"""The `Driver` protocol: how edgebench reaches a board, and the local driver."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgebench.errors import BoardBusy, JobTimeout
from edgebench.fsutil import sha256_file
from edgebench.targets.board import Board


@dataclass(frozen=True)
class CommandResult:
    """What a command on a board returned."""

    command: str
    exit_code: int
    stdout: str
    stderr: str


class Driver(Protocol):
    """Reach a board: copy files to it, run commands there, copy files back, lock it."""

    @property
    def board(self) -> Board:
        """The board this driver reaches."""

    def put(self, local: Path, remote: str) -> None:
        """Copy ``local`` to ``remote`` (a path on the board) atomically."""

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run ``argv`` on the board; kill it after ``timeout`` seconds."""

    def get(self, remote: str, local: Path) -> None:
        """Copy ``remote`` from the board to ``local``."""

    def exists(self, remote: str) -> bool:
        """True if ``remote`` is a file on the board."""

    def has(self, remote: str, sha256: str) -> bool:
        """True if ``remote`` is a file on the board whose content has this sha256."""

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Hold the board's lock; raise `BoardBusy` after ``timeout`` seconds."""

    def close(self) -> None:
        """Release the connection."""


class LocalDriver:
    """The embedded default: the board is this machine, reached by subprocess."""

    def __init__(self, board: Board) -> None:
        self.board = board
        Path(board.workdir).mkdir(parents=True, exist_ok=True)

    def put(self, local: Path, remote: str) -> None:
        """Copy under a temporary name, then rename, so readers never see half a file."""
        dest = Path(remote)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(local, tmp)
        os.replace(tmp, dest)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run in a new session, so a timeout kills the agent and all it started."""
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
        shutil.copyfile(remote, local)

    def exists(self, remote: str) -> bool:
        """True if the file is present."""
        return Path(remote).is_file()

    def has(self, remote: str, sha256: str) -> bool:
        """True if the file is present with this content hash."""
        return Path(remote).is_file() and sha256_file(Path(remote)) == sha256

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """An flock on ``<workdir>/board.lock``, polled until ``timeout``."""
        path = Path(self.board.workdir) / "board.lock"
        with open(path, "a+") as fh:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise BoardBusy(
                            self.board.name, "flock board.lock", "", "board busy: another run holds it"
                        ) from None
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def close(self) -> None:
        """Nothing to release."""


def driver_for(board: Board, *, connect_retries: int = 3, backoff_s: float = 0.5) -> Driver:
    """The driver that reaches ``board`` (SSH connections open lazily, on first use).

    Args:
        board: the board.
        connect_retries: SSH connection attempts (connection-level failures only).
        backoff_s: first wait between attempts; doubles each time.
    """
    if board.is_local:
        return LocalDriver(board)
    from edgebench.targets.ssh import SSHDriver  # imports fabric only when needed

    return SSHDriver(board, connect_retries=connect_retries, backoff_s=backoff_s)
