"""Test drivers: a `FakeDriver` that records what it is asked to do, and an SSH driver
that counts what it sends (payload bytes, files, bytes on the wire)."""

from __future__ import annotations

import contextlib
import shlex
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.errors import BoardBusy
from edgebench.fsutil import sha256_file
from edgebench.targets.board import Board
from edgebench.targets.driver import CommandResult, Driver
from edgebench.targets.ssh import SSHDriver


class FakeDriver(Driver):
    """A driver that touches nothing: it records calls and answers commands from a script.

    Args:
        board: the board it pretends to reach.
        reply: builds the result of ``run(argv)``; default exit 0 with empty output.
        busy: ``lock`` raises `BoardBusy`, as when another run holds the board.
        unreachable: ``activate`` raises this error, as when the board cannot be reached.

    Attributes:
        calls: one line per call, in order (``activate``, ``put <remote>``, ``run <command>``,
            ``lock``, ``unlock``, ``deactivate``...).
        files: what was put on the board: remote path -> sha256.
        runs: the argv of every ``run``.
    """

    def __init__(
        self,
        board: Board,
        *,
        reply: Callable[[list[str]], CommandResult] | None = None,
        busy: bool = False,
        unreachable: Exception | None = None,
        connect_retries: int = 1,
        backoff_s: float = 0.0,
    ) -> None:
        del connect_retries, backoff_s
        self.board = board
        self.reply = reply
        self.busy = busy
        self.unreachable = unreachable
        self.calls: list[str] = []
        self.files: dict[str, str] = {}
        self.runs: list[list[str]] = []
        self.active = False

    def activate(self) -> None:
        """Record it; raise ``unreachable`` if one was given."""
        self.calls.append("activate")
        if self.unreachable is not None:
            raise self.unreachable
        self.active = True

    def deactivate(self) -> None:
        """Record it."""
        self.calls.append("deactivate")
        self.active = False

    def put(self, local: Path, remote: str, sha256: str | None = None) -> None:
        """Record the file as present on the board."""
        self.calls.append(f"put {remote}")
        self.files[remote] = sha256 or sha256_file(local)

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Record the command and answer with ``reply``."""
        args = list(argv)
        self.calls.append(f"run {shlex.join(args)}")
        self.runs.append(args)
        if self.reply is not None:
            return self.reply(args)
        return CommandResult(shlex.join(args), 0, "", "")

    def get(self, remote: str, local: Path) -> None:
        """Not supported: nothing was really copied to the board."""
        raise NotImplementedError("FakeDriver keeps no file contents")

    def exists(self, remote: str) -> bool:
        """True if the file was put."""
        return remote in self.files

    def has(self, remote: str, sha256: str) -> bool:
        """True if the file was put with this content."""
        return self.files.get(remote) == sha256

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """Record lock and unlock; raise `BoardBusy` when ``busy``."""
        if self.busy:
            raise BoardBusy(self.board.name, "flock board.lock", "", "board busy: held by another run")
        self.calls.append("lock")
        try:
            yield
        finally:
            self.calls.append("unlock")


@dataclass
class TransferStats:
    """What a driver sent: payload bytes uploaded, files uploaded, bytes on the wire."""

    uploads: int = 0
    bytes_uploaded: int = 0
    skipped: int = 0
    wire_sent: int = 0
    wire_received: int = 0


class CountingSocket:
    """A socket that counts the bytes paramiko sends and receives through it."""

    def __init__(self, sock: socket.socket, stats: TransferStats) -> None:
        self._sock = sock
        self._stats = stats

    def send(self, data: bytes) -> int:
        n = self._sock.send(data)
        self._stats.wire_sent += n
        return n

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self._stats.wire_sent += len(data)

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        self._stats.wire_received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class CountingSSHDriver(SSHDriver):
    """An `SSHDriver` that counts uploads, skipped uploads and the bytes on its socket in ``stats``.

    Use it as the ``driver_factory`` of `edgebench.targets.group.for_each_board`.
    """

    def __init__(self, board: Board, *, connect_retries: int = 3, backoff_s: float = 0.5) -> None:
        super().__init__(board, connect_retries=connect_retries, backoff_s=backoff_s)
        self.stats = TransferStats()

    def _new_connection(self) -> Any:
        conn = super()._new_connection()
        first = conn.gateway or conn  # through a jump host, the board's bytes ride the hop's socket
        sock = socket.create_connection((first.host, first.port), timeout=self.board.connect_timeout)
        first.connect_kwargs["sock"] = CountingSocket(sock, self.stats)
        return conn

    def put(self, local: Path, remote: str, sha256: str | None = None) -> None:
        """Upload (see `SSHDriver.put`) and count it."""
        super().put(local, remote, sha256)
        self.stats.uploads += 1
        self.stats.bytes_uploaded += local.stat().st_size

    def has(self, remote: str, sha256: str) -> bool:
        """Check (see `SSHDriver.has`) and count a skipped upload."""
        ok = super().has(remote, sha256)
        if ok:
            self.stats.skipped += 1
        return ok
