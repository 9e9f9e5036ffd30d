"""`Board`: one entry of the inventory, each field declared once. Data only; a `Driver` does the work.

Every field of `Board` is declared here with `declare`: its type and default on a `Board`,
its description, and how a ``[[boards]]`` table writes it (`FileField`: bounds, the default
when the file leaves it out, whether a ``[pools.NAME]`` table may set it for its boards).
The rest is derived from these declarations: `edgebench.targets.inventory` makes the
``[[boards]]`` model `BoardSpec`, the descriptions `FIELDS` (which ``docs/formats.md`` and
``boards.toml`` writing use) and the copying from a table to a `Board`;
`edgebench.targets.lab` makes a pool's shared fields (``PoolSpec``) from the same list.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL = "local"
DEFAULT_WORKDIR = "~/edgebench"
MAX_THREADS = 1024
MAX_CPU = 8191  # the kernel's largest CPU number (NR_CPUS is at most 8192)
MAX_CONNECT_TIMEOUT_S = 3600
METADATA_KEY = "board"  # where a field's `FileField` is in its dataclass metadata


class _Same:
    """`FileField.file_default` when the file's default is the `Board`'s."""

    def __repr__(self) -> str:
        return "SAME"


SAME: Any = _Same()


@dataclass(frozen=True)
class FileField:
    """How a `Board` field is written in ``boards.toml`` (its declaration's metadata).

    Attributes:
        description: one line for ``docs/formats.md`` and ``edgebench boards`` (`FIELDS`).
        ge: lowest value (of each item, for an array); ``None``: no bound.
        le: highest value (of each item, for an array).
        finite: a number that may not be nan or inf.
        file_type: the type in the file when it is not the `Board`'s (``None``: the `Board`'s,
            without ``None`` unless the file's default is ``None``).
        file_default: the default when the file leaves the field out; `SAME`: the `Board`'s.
            ``None`` where the `Board` has another: "not set", filled by
            `edgebench.targets.inventory.board_values` (the ssh config's, else the `Board`'s).
        pool: a ``[pools.NAME]`` table may set it, as the default of the pool's boards.
        pool_description: the description in a pool where it differs from a board's.
    """

    description: str
    ge: float | None = None
    le: float | None = None
    finite: bool = False
    file_type: Any = None
    file_default: Any = SAME
    pool: bool = True
    pool_description: str | None = None


def about(description: str, **how: Any) -> dict[str, FileField]:
    """A `Board` field's metadata: its `FileField` (``how`` are its other arguments)."""
    return {METADATA_KEY: FileField(description, **how)}


def declare(default: Any, description: str, **how: Any) -> Any:
    """A `Board` field with an immutable default and its `FileField` (a dict: ``field(metadata=about(...))``)."""
    return field(default=default, metadata=about(description, **how))


def file_field(f: dataclasses.Field[Any]) -> FileField:
    """The declaration of a `Board` field."""
    spec: FileField = f.metadata[METADATA_KEY]
    return spec


@dataclass(frozen=True)
class Board:
    """A board edgebench can run on: each field's description is its declaration's (`FIELDS`).

    The fields are in the order ``boards.toml`` writes them. ``host`` is ``None`` only for the
    built-in local board.
    """

    # required (BoardSpec says so): used on the command line and in results
    name: str = field(metadata=about("unique board name", file_default=None, pool=False))
    host: str | None = declare(None, "host name, address or ~/.ssh/config alias", pool=False)
    port: int = declare(
        22, "SSH port (default 22 or the ssh config's Port)", ge=1, le=65535, file_default=None, pool=False
    )
    user: str | None = declare(
        None, "SSH user", pool_description="SSH user (default: the place's NetworkService username)"
    )
    # ~ expanded; it must exist when the file is read
    identity_file: str | None = declare(None, "SSH private key file (omit to use ssh-agent or the ssh config)")
    python: str = declare("python3", "Python interpreter on the board", file_default=None)  # it runs the agent
    workdir: str = declare(
        "",
        "folder on the board for cache, jobs and the lock (absolute or ~/...)",
        file_default=DEFAULT_WORKDIR,
        pool_description="folder on the boards for cache and jobs ({place} is replaced by the place's name)",
    )
    runtimes: tuple[str, ...] = declare(("onnxruntime",), "runtimes installed on the board: onnxruntime, tflite")
    # in a file, a value is a string, a number or a boolean, kept as a string
    tags: dict[str, str] = field(
        default_factory=dict,
        metadata=about("labels such as arch, accelerator, cpu", file_type=dict[str, Any], pool=False),
    )
    # None: the runtime's default
    threads: int | None = declare(None, f"inference threads (1 to {MAX_THREADS})", ge=1, le=MAX_THREADS)
    cpu_affinity: tuple[int, ...] = declare(
        (), f"CPU numbers the agent is pinned to (0 to {MAX_CPU})", ge=0, le=MAX_CPU
    )
    env: dict[str, str] = field(default_factory=dict, metadata=about("environment variables for the agent"))
    runtime_options: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata=about("per-runtime settings (providers, external delegate)")
    )
    cost: float | None = declare(None, "price of the board", ge=0, finite=True)  # for choosing hardware
    power_w: float | None = declare(None, "typical power draw in watts", ge=0, finite=True)
    jump_host: str | None = declare(None, "SSH jump host, user@host:port")  # else the ssh config's ProxyJump
    known_hosts: str | None = declare(None, "known_hosts file verifying the host key")  # None: ~/.ssh/known_hosts
    # the variable's value itself is never stored, logged or written to results
    password_env: str | None = declare(None, "environment variable holding the SSH password")
    passphrase_env: str | None = declare(None, "environment variable holding the key's passphrase")
    connect_timeout: float = declare(
        10.0,
        f"seconds to wait for the SSH connection (1 to {MAX_CONNECT_TIMEOUT_S})",
        ge=1,
        le=MAX_CONNECT_TIMEOUT_S,
        finite=True,
        file_default=None,
    )
    # an external meter or a board tool
    power_command: str | None = declare(
        None, "a command on the board printing its power now, read per window of `run --sustained`"
    )
    # None: a number followed by mW or W
    power_pattern: str | None = declare(
        None, "regex finding the figure in power_command's output (groups value and unit: mW or W)"
    )

    @property
    def is_local(self) -> bool:
        """True for a board reached by subprocess on this machine."""
        return self.host is None


def board_fields() -> tuple[dataclasses.Field[Any], ...]:
    """The fields of `Board` in declaration order (each with its `FileField`, see `file_field`)."""
    return dataclasses.fields(Board)


def default_local_workdir() -> Path:
    """Where the built-in local board keeps its cache and jobs: ``$XDG_CACHE_HOME/edgebench/boards/local``.

    By default ``~/.cache/edgebench/boards/local``. The machine's board lock sits next to it
    (`edgebench.targets.driver.host_lock_path`), and a run holding that lock kills agents left
    in this folder, so a test suite that takes a lock of its own takes a folder of its own too.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgebench" / "boards" / LOCAL


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
