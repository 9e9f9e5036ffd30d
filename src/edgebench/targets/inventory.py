"""The board inventory: ``targets/boards.toml``, validated on load.

Each board is one ``[[boards]]`` table::

    [[boards]]
    name = "pi4"
    host = "192.168.1.20"          # or a Host alias from ~/.ssh/config
    user = "pi"
    identity_file = "~/.ssh/id_ed25519"
    python = "/usr/bin/python3"
    workdir = "/home/pi/edgebench"
    runtimes = ["onnxruntime", "tflite"]
    tags = { arch = "aarch64", cpu = "cortex-a72" }

Errors name the file, the board and the field. The built-in ``local`` board is always
present and needs no entry.

A file may also declare pools of boards behind a labgrid coordinator, one ``[pools.NAME]``
table each (`edgebench.targets.lab`). Here they are only checked to be tables whose names
are not board names; `edgebench.targets.lab.load_lab_inventory` parses them (lab builds on
this module, so the parsing lives there).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from edgebench.config import name_problem, parse_toml, shown_name, validate
from edgebench.errors import ConfigError, UserError
from edgebench.targets.board import LOCAL, Board, local_board

DEFAULT_PATH = Path("targets") / "boards.toml"
ENV_PATH = "EDGEBENCH_BOARDS"
RUNTIMES = ("onnxruntime", "tflite")
DEFAULT_WORKDIR = "~/edgebench"
TOP_LEVEL = ("version", "boards", "pools")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# board names are selected on the command line (comma lists, shell words) and used in file names
BOARD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# one hop of a jump host: [user@]host[:port], host a name, an address or [an IPv6 address]
_JUMP_HOP = re.compile(r"^(?:[^@\s]+@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s\[\]]+)(?::(\d+))?$")
MAX_THREADS = 1024
MAX_CPU = 8191  # the kernel's largest CPU number (NR_CPUS is at most 8192)
MAX_CONNECT_TIMEOUT_S = 3600
Finite = Annotated[float, Field(ge=0, allow_inf_nan=False)]

FIELDS: dict[str, str] = {
    "name": "unique board name",
    "host": "host name, address or ~/.ssh/config alias",
    "port": "SSH port (default 22 or the ssh config's Port)",
    "user": "SSH user",
    "identity_file": "SSH private key file (omit to use ssh-agent or the ssh config)",
    "python": "Python interpreter on the board",
    "workdir": "folder on the board for cache, jobs and the lock (absolute or ~/...)",
    "runtimes": "runtimes installed on the board: onnxruntime, tflite",
    "tags": "labels such as arch, accelerator, cpu",
    "threads": f"inference threads (1 to {MAX_THREADS})",
    "cpu_affinity": f"CPU numbers the agent is pinned to (0 to {MAX_CPU})",
    "env": "environment variables for the agent",
    "runtime_options": "per-runtime settings (providers, external delegate)",
    "cost": "price of the board",
    "power_w": "typical power draw in watts",
    "jump_host": "SSH jump host, user@host:port",
    "known_hosts": "known_hosts file verifying the host key",
    "password_env": "environment variable holding the SSH password",
    "passphrase_env": "environment variable holding the key's passphrase",
    "connect_timeout": f"seconds to wait for the SSH connection (1 to {MAX_CONNECT_TIMEOUT_S})",
    "power_command": "a command on the board printing its power now, read per window of `run --sustained`",
    "power_pattern": "regex finding the figure in power_command's output (groups value and unit: mW or W)",
}


def default_path() -> Path:
    """The inventory file: ``$EDGEBENCH_BOARDS`` or ``targets/boards.toml``."""
    env = os.environ.get(ENV_PATH)
    return Path(env) if env else DEFAULT_PATH


def suggest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


@dataclass(frozen=True)
class BoardSpec:
    """One ``[[boards]]`` table as written, checked by `edgebench.config.validate`.

    Types and bounds are declared here; the rules that need the whole table (names,
    workdir form, runtime names, environment variable names) are in ``__post_init__``.
    The ssh config and defaults are applied afterwards by `parse_board`.
    """

    name: str | None = None
    host: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    user: str | None = None
    identity_file: str | None = None
    python: str | None = None
    workdir: str = DEFAULT_WORKDIR
    runtimes: tuple[str, ...] = ("onnxruntime",)
    tags: dict[str, Any] = field(default_factory=dict)  # values: string, number or boolean (checked below)
    threads: Annotated[int, Field(ge=1, le=MAX_THREADS)] | None = None
    cpu_affinity: tuple[Annotated[int, Field(ge=0, le=MAX_CPU)], ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    runtime_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    cost: Finite | None = None
    power_w: Finite | None = None
    jump_host: str | None = None
    known_hosts: str | None = None
    password_env: str | None = None
    passphrase_env: str | None = None
    connect_timeout: Annotated[float, Field(ge=1, le=MAX_CONNECT_TIMEOUT_S, allow_inf_nan=False)] | None = None
    power_command: str | None = None
    power_pattern: str | None = None

    def __post_init__(self) -> None:
        name = self.name
        if name is None or not name.strip():
            raise ValueError("field 'name' is missing: give every [[boards]] entry a name")
        if not BOARD_NAME.match(name) or name in (".", ".."):
            raise ValueError(f"field 'name' may hold only letters, digits, '-', '_' and '.', not {name!r}: rename it")
        if name == LOCAL:
            raise ValueError(f"field 'name' {LOCAL!r} is the built-in board: choose another name")
        if self.host is None:
            raise ValueError("field 'host' is missing: set host to the board's address or ssh config alias")
        for key in ("host", "user", "identity_file", "python", "workdir", "jump_host", "known_hosts"):
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise ValueError(f"field {key!r} must be a non-empty string, not {value!r}")
            problem = None if value is None else name_problem(value)
            if problem is not None:  # a NUL in python, a newline in host: it would run or print something else
                raise ValueError(f"field {key!r} {shown_name(value)} {problem}")
        for table in ("tags", "env"):
            for k, v in getattr(self, table).items():
                problem = name_problem(str(v)) if str(v) else None
                if problem is not None:
                    raise ValueError(f"field {table!r} value of {k!r} {shown_name(str(v))} {problem}")
        self._check_jump_host()
        wd = self.workdir
        if not (wd.startswith("/") or wd == "~" or wd.startswith("~/")):
            raise ValueError(f"field 'workdir' must be absolute or start with ~/, not {wd!r}")
        if not self.runtimes:
            raise ValueError(f"field 'runtimes' must be a non-empty list drawn from {list(RUNTIMES)}")
        for rt in self.runtimes:
            if rt not in RUNTIMES:
                raise ValueError(
                    f"field 'runtimes' has unknown runtime {rt!r}{suggest(rt, RUNTIMES)}; use {list(RUNTIMES)}"
                )
        for k, v in self.tags.items():
            if not isinstance(v, str | int | float | bool):
                raise ValueError(f"field 'tags' value of {k!r} must be a string or number")
        for k in self.env:
            if not _ENV_NAME.match(k):
                raise ValueError(f"field 'env' entry {k!r} must be NAME = \"string value\"")
        for k in self.runtime_options:
            if k not in RUNTIMES:
                raise ValueError(
                    f"field 'runtime_options' key {k!r} must be a runtime from {list(RUNTIMES)} holding a table"
                )
        for key in ("password_env", "passphrase_env"):
            value = getattr(self, key)
            if value is not None and not _ENV_NAME.match(value):
                raise ValueError(f"field {key!r} must name an environment variable, not {value!r}")
        self._check_power()

    def _check_power(self) -> None:
        if self.power_command is not None and not self.power_command.strip():
            raise ValueError("field 'power_command' must be a non-empty command, or leave it out")
        if self.power_pattern is None:
            return
        if self.power_command is None:
            raise ValueError("field 'power_pattern' needs a power_command whose output it reads: add one")
        try:
            rx = re.compile(self.power_pattern)
        except re.error as exc:
            raise ValueError(f"field 'power_pattern' is not a regular expression ({exc}): fix it") from None
        if "value" not in rx.groupindex:
            raise ValueError(
                "field 'power_pattern' needs a group named value (and unit, mW or W): "
                "e.g. '(?P<value>[0-9.]+) ?(?P<unit>mW|W)'"
            )

    def _check_jump_host(self) -> None:
        for hop in (self.jump_host or "").split(",") if self.jump_host else ():
            m = _JUMP_HOP.match(hop.strip())
            if m is None:
                raise ValueError(f"field 'jump_host' hop {hop!r} must be [user@]host[:port], e.g. pi@gateway:2222")
            if m.group(2) is not None and not 1 <= int(m.group(2)) <= 65535:
                raise ValueError(f"field 'jump_host' port {m.group(2)} in {hop!r} must be from 1 to 65535")


@dataclass(frozen=True)
class SSHConfigEntry:
    """What ``~/.ssh/config`` says about a host, for the fields a board may leave out."""

    port: int | None = None
    user: str | None = None
    proxyjump: str | None = None


def _ssh_config_lookup(host: str) -> SSHConfigEntry:
    """What ``~/.ssh/config`` says about ``host`` (empty when there is no config)."""
    cfg = Path.home() / ".ssh" / "config"
    if not cfg.is_file():
        return SSHConfigEntry()
    import paramiko

    try:
        found = paramiko.SSHConfig.from_path(str(cfg)).lookup(host)
        port, user, jump = found.get("port"), found.get("user"), found.get("proxyjump")
        return SSHConfigEntry(int(port) if port else None, str(user) if user else None, str(jump) if jump else None)
    except Exception:  # a broken ssh config is ssh's problem, not ours; connect will say so
        return SSHConfigEntry()


def parse_board(raw: Mapping[str, Any], path: Path, index: int) -> Board:
    """Validate one ``[[boards]]`` table and apply the ssh config and defaults.

    Raises:
        ConfigError: naming the file, the board and the field.
    """
    name = raw.get("name")
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    where = f"{path}: board {label!r}:"
    spec = validate(BoardSpec, raw, where)
    assert spec.name is not None and spec.host is not None  # checked by BoardSpec
    ssh = _ssh_config_lookup(spec.host)
    identity = spec.identity_file
    if identity is not None:
        ident_path = Path(identity).expanduser()
        if not ident_path.is_file():
            raise ConfigError(
                f"{where} field 'identity_file' {ident_path} does not exist: fix the path, "
                "or remove the field to use ssh-agent"
            )
        identity = str(ident_path)
    jump = spec.jump_host
    if jump is None:
        jump = ssh.proxyjump
    return Board(
        name=spec.name,
        host=spec.host,
        port=spec.port or ssh.port or 22,
        user=spec.user or ssh.user,
        python=spec.python or "python3",
        workdir=spec.workdir,
        runtimes=spec.runtimes,
        tags={k: str(v) for k, v in spec.tags.items()},
        identity_file=identity,
        threads=spec.threads,
        cpu_affinity=spec.cpu_affinity,
        env=dict(spec.env),
        runtime_options={k: dict(v) for k, v in spec.runtime_options.items()},
        cost=spec.cost,
        power_w=spec.power_w,
        jump_host=jump,
        known_hosts=str(Path(spec.known_hosts).expanduser()) if spec.known_hosts is not None else None,
        password_env=spec.password_env,
        passphrase_env=spec.passphrase_env,
        connect_timeout=spec.connect_timeout if spec.connect_timeout is not None else 10.0,
        power_command=spec.power_command,
        power_pattern=spec.power_pattern,
    )


def parse_inventory_parts(text: str, path: Path) -> tuple[dict[str, Board], dict[str, Any]]:
    """Parse an inventory's text: its boards, and its ``[pools]`` tables as written (``path`` is only
    used in messages).

    The pools are checked here to be tables named like boards and unlike any board (``local``
    included); `edgebench.targets.lab.parse_pools` checks their fields.

    Raises:
        ConfigError: naming the file, the board or pool and the field.
    """
    doc = parse_toml(text, path)
    for key in doc:
        if key not in TOP_LEVEL:
            raise ConfigError(
                f"{path}: unknown top-level key {key!r}{suggest(key, TOP_LEVEL)}: boards go in [[boards]] tables, "
                "pools in [pools.NAME] tables"
            )
    entries = doc.get("boards", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{path}: 'boards' must be an array of tables: write each board as [[boards]]")
    boards: dict[str, Board] = {}
    first: dict[str, int] = {}
    for i, raw in enumerate(entries):
        board = parse_board(raw, path, i)
        if board.name in boards:
            raise ConfigError(
                f"{path}: board {board.name!r}: field 'name' is used by entries #{first[board.name] + 1} and #{i + 1}: "
                "rename or remove one"
            )
        first[board.name] = i
        boards[board.name] = board
    pools = doc.get("pools", {})
    if not isinstance(pools, dict) or not all(isinstance(t, dict) for t in pools.values()):
        raise ConfigError(f"{path}: 'pools' must be a table of tables: write each pool as [pools.NAME]")
    for name in pools:
        if name in boards or name == LOCAL:
            what = "the built-in board" if name == LOCAL else "a board of this file"
            raise ConfigError(
                f"{path}: pool {name!r}: the name is {what} too: rename the pool or the board "
                "(a run names boards and pools in one --boards list)"
            )
    return boards, dict(pools)


def parse_inventory(text: str, path: Path) -> dict[str, Board]:
    """Parse and validate an inventory's text (``path`` is only used in messages): its boards.

    Raises:
        ConfigError: naming the file, the board and the field.
    """
    return parse_inventory_parts(text, path)[0]


def load_inventory_parts(path: Path | None = None) -> tuple[dict[str, Board], dict[str, Any], Path]:
    """Load the inventory: its boards (``local`` included), its ``[pools]`` tables as written, and the file.

    Args:
        path: the inventory file; ``None`` means `default_path` (a missing default file
            is an empty inventory, a missing explicit file is an error).

    Raises:
        ConfigError: naming the file, the board and the field.
    """
    explicit = path is not None or ENV_PATH in os.environ
    path = path if path is not None else default_path()
    boards: dict[str, Board] = {LOCAL: local_board()}
    if not path.exists():
        if explicit:
            raise ConfigError(
                f"{path}: inventory file not found: check the path, or add a board with `edgebench boards add`"
            )
        return boards, {}, path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}): fix the file or its permissions") from None
    found, pools = parse_inventory_parts(text, path)
    boards.update(found)
    return boards, pools, path


def load_inventory(path: Path | None = None) -> dict[str, Board]:
    """Load and validate the inventory; the built-in ``local`` board is always included.

    Pools are not parsed here: `edgebench.targets.lab.load_lab_inventory` returns boards and pools.

    Args:
        path: the inventory file; ``None`` means `default_path` (a missing default file
            is an empty inventory, a missing explicit file is an error).

    Raises:
        ConfigError: naming the file, the board and the field.
    """
    return load_inventory_parts(path)[0]


def resolve_boards(inventory: Mapping[str, Board], names: list[str]) -> list[Board]:
    """The boards named on the command line, in order, without duplicates.

    Raises:
        UserError: for an unknown name, suggesting close names.
    """
    out: list[Board] = []
    for name in names:
        if name not in inventory:
            raise UserError(
                f"unknown board {name!r}{suggest(name, inventory)}: known boards are {', '.join(sorted(inventory))} "
                "(add one with `edgebench boards add`)"
            )
        if inventory[name] not in out:
            out.append(inventory[name])
    return out
