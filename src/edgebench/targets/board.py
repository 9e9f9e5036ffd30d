"""`Board`: one entry of the inventory. Data only; a `Driver` does the work."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL = "local"


def default_local_workdir() -> Path:
    """Where the built-in local board keeps its cache and jobs: ``$XDG_CACHE_HOME/edgebench/boards/local``.

    By default ``~/.cache/edgebench/boards/local``. The machine's board lock sits next to it
    (`edgebench.targets.driver.host_lock_path`), and a run holding that lock kills agents left
    in this folder, so a test suite that takes a lock of its own takes a folder of its own too.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgebench" / "boards" / LOCAL


@dataclass(frozen=True)
class Board:
    """A board edgebench can run on.

    Attributes:
        name: unique name, used on the command line and in results.
        host: host name or address (``None`` for the built-in local board).
        port: SSH port.
        user: SSH user.
        python: the Python interpreter on the board that runs the agent.
        workdir: folder on the board for the artifact cache, jobs and locks.
        runtimes: runtimes installed on the board (``onnxruntime``, ``tflite``).
        tags: free-form labels such as ``arch``, ``accelerator``, ``cpu``.
        identity_file: SSH private key, or ``None`` to use the agent or ssh config.
        threads: inference threads; ``None`` leaves the runtime's default.
        env: environment variables for the agent.
        runtime_options: per-runtime settings (providers, delegates).
        cost: price of the board, for choosing hardware.
        power_w: typical power draw in watts.
        jump_host: an SSH jump host (``user@host:port``).
        known_hosts: the known_hosts file that verifies the board's host key
            (``None``: ``~/.ssh/known_hosts``).
        password_env: name of an environment variable holding the SSH password
            (the value itself is never stored, logged or written to results).
        passphrase_env: name of an environment variable holding the key's passphrase.
        connect_timeout: seconds to wait for the SSH connection.
        power_command: a command on the board that prints its power now (an external meter or a
            board tool), read once per window of a sustained run (``run --sustained``).
        power_pattern: the regex that finds the figure in ``power_command``'s output (groups
            ``value`` and ``unit``, mW or W); ``None``: a number followed by mW or W.
    """

    name: str
    host: str | None = None
    port: int = 22
    user: str | None = None
    python: str = "python3"
    workdir: str = ""
    runtimes: tuple[str, ...] = ("onnxruntime",)
    tags: dict[str, str] = field(default_factory=dict)
    identity_file: str | None = None
    threads: int | None = None
    cpu_affinity: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    runtime_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost: float | None = None
    power_w: float | None = None
    jump_host: str | None = None
    known_hosts: str | None = None
    password_env: str | None = None
    passphrase_env: str | None = None
    connect_timeout: float = 10.0
    power_command: str | None = None
    power_pattern: str | None = None

    @property
    def is_local(self) -> bool:
        """True for a board reached by subprocess on this machine."""
        return self.host is None


def local_board() -> Board:
    """The built-in board: this machine, this Python, reached by subprocess.

    It runs inference on one thread: on a shared machine the runtime's default thread
    pool made per-process figures bimodal (about 18 vs 33 us for the demo CNN), one thread
    keeps them stable. Set ``threads`` for a board in boards.toml to measure otherwise.
    """
    return Board(
        name=LOCAL,
        threads=1,
        python=sys.executable,
        workdir=str(default_local_workdir()),
        runtimes=("onnxruntime", "tflite"),
        tags={"kind": "local"},
    )
