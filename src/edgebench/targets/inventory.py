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
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from edgebench.config import parse_toml
from edgebench.errors import ConfigError, UserError
from edgebench.targets.board import LOCAL, Board, local_board

DEFAULT_PATH = Path("targets") / "boards.toml"
ENV_PATH = "EDGEBENCH_BOARDS"
RUNTIMES = ("onnxruntime", "tflite")
DEFAULT_WORKDIR = "~/edgebench"
TOP_LEVEL = ("version", "boards")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

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
    "threads": "inference threads",
    "cpu_affinity": "CPU numbers the agent is pinned to",
    "env": "environment variables for the agent",
    "runtime_options": "per-runtime settings (providers, external delegate)",
    "cost": "price of the board",
    "power_w": "typical power draw in watts",
    "jump_host": "SSH jump host, user@host:port",
    "known_hosts": "known_hosts file verifying the host key",
    "password_env": "environment variable holding the SSH password",
    "passphrase_env": "environment variable holding the key's passphrase",
    "connect_timeout": "seconds to wait for the SSH connection",
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


class _Field:
    """Validation context: names the file, the board and the field in each error."""

    def __init__(self, path: Path, board: str) -> None:
        self.path = path
        self.board = board

    def error(self, field: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: board {self.board!r}: field {field!r} {message}")

    def string(self, raw: Mapping[str, Any], field: str) -> str | None:
        value = raw.get(field)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(field, f"must be a non-empty string, not {value!r}")
        return value

    def number(self, raw: Mapping[str, Any], field: str, *, minimum: float, integer: bool) -> Any:
        value = raw.get(field)
        if value is None:
            return None
        wrong_kind = not isinstance(value, int | float) or (integer and not isinstance(value, int))
        if isinstance(value, bool) or wrong_kind or value < minimum:
            kind = "an integer" if integer else "a number"
            raise self.error(field, f"must be {kind} >= {minimum:g}, not {value!r}")
        return value

    def table(self, raw: Mapping[str, Any], field: str) -> dict[str, Any]:
        value = raw.get(field, {})
        if not isinstance(value, dict):
            raise self.error(field, f'must be a table, such as {field} = {{ key = "value" }}')
        return value

    def env_name(self, raw: Mapping[str, Any], field: str) -> str | None:
        value = self.string(raw, field)
        if value is not None and not _ENV_NAME.match(value):
            raise self.error(field, f"must name an environment variable, not {value!r}")
        return value


def _ssh_config_lookup(host: str) -> dict[str, Any]:
    """What ``~/.ssh/config`` says about ``host`` (empty when there is no config)."""
    cfg = Path.home() / ".ssh" / "config"
    if not cfg.is_file():
        return {}
    import paramiko

    try:
        conf = paramiko.SSHConfig.from_path(str(cfg))
        return dict(conf.lookup(host))
    except Exception:  # a broken ssh config is ssh's problem, not ours; connect will say so
        return {}


def parse_board(raw: Mapping[str, Any], path: Path, index: int) -> Board:
    """Validate one ``[[boards]]`` table.

    Raises:
        ConfigError: naming the file, the board and the field.
    """
    name = raw.get("name")
    label = name if isinstance(name, str) and name else f"#{index + 1}"
    f = _Field(path, label)
    if not isinstance(name, str) or not name.strip():
        raise f.error("name", "is missing: give every [[boards]] entry a name")
    if "/" in name or any(ord(c) < 32 for c in name):
        raise f.error("name", "must not contain '/' or control characters")
    if name == LOCAL:
        raise f.error("name", f"{LOCAL!r} is the built-in board: choose another name")
    for key in raw:
        if key not in FIELDS:
            raise f.error(key, f"is unknown{suggest(key, FIELDS)}; valid fields: {', '.join(FIELDS)}")
    host = f.string(raw, "host")
    if host is None:
        raise f.error("host", "is missing: set host to the board's address or ssh config alias")
    ssh = _ssh_config_lookup(host)
    port = f.number(raw, "port", minimum=1, integer=True)
    if port is None:
        port = int(ssh.get("port", 22))
    if port > 65535:
        raise f.error("port", f"must be at most 65535, not {port}")
    identity = f.string(raw, "identity_file")
    if identity is not None:
        ident_path = Path(identity).expanduser()
        if not ident_path.is_file():
            raise f.error(
                "identity_file",
                f"{ident_path} does not exist: fix the path, or remove the field to use ssh-agent",
            )
        identity = str(ident_path)
    known_hosts = f.string(raw, "known_hosts")
    if known_hosts is not None:
        known_hosts = str(Path(known_hosts).expanduser())
    workdir = f.string(raw, "workdir") or DEFAULT_WORKDIR
    if not (workdir.startswith("/") or workdir == "~" or workdir.startswith("~/")):
        raise f.error("workdir", f"must be absolute or start with ~/, not {workdir!r}")
    runtimes_raw = raw.get("runtimes", ["onnxruntime"])
    if not isinstance(runtimes_raw, list) or not runtimes_raw:
        raise f.error("runtimes", f"must be a non-empty list drawn from {list(RUNTIMES)}")
    for rt in runtimes_raw:
        if rt not in RUNTIMES:
            raise f.error("runtimes", f"has unknown runtime {rt!r}{suggest(str(rt), RUNTIMES)}; use {list(RUNTIMES)}")
    tags = f.table(raw, "tags")
    for k, v in tags.items():
        if not isinstance(v, str | int | float | bool):
            raise f.error("tags", f"value of {k!r} must be a string or number")
    env = f.table(raw, "env")
    for k, v in env.items():
        if not _ENV_NAME.match(k) or not isinstance(v, str):
            raise f.error("env", f'entry {k!r} must be NAME = "string value"')
    runtime_options = f.table(raw, "runtime_options")
    for k, v in runtime_options.items():
        if k not in RUNTIMES or not isinstance(v, dict):
            raise f.error("runtime_options", f"key {k!r} must be a runtime from {list(RUNTIMES)} holding a table")
    affinity = raw.get("cpu_affinity", [])
    if not isinstance(affinity, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in affinity
    ):
        raise f.error("cpu_affinity", "must be a list of CPU numbers such as [0, 1]")
    jump = f.string(raw, "jump_host")
    if jump is None and ssh.get("proxyjump"):
        jump = str(ssh["proxyjump"])
    timeout = f.number(raw, "connect_timeout", minimum=1, integer=False)
    return Board(
        name=name,
        host=host,
        port=int(port),
        user=f.string(raw, "user") or (str(ssh["user"]) if ssh.get("user") else None),
        python=f.string(raw, "python") or "python3",
        workdir=workdir,
        runtimes=tuple(runtimes_raw),
        tags={str(k): str(v) for k, v in tags.items()},
        identity_file=identity,
        threads=f.number(raw, "threads", minimum=1, integer=True),
        cpu_affinity=tuple(affinity),
        env=dict(env),
        runtime_options={k: dict(v) for k, v in runtime_options.items()},
        cost=f.number(raw, "cost", minimum=0, integer=False),
        power_w=f.number(raw, "power_w", minimum=0, integer=False),
        jump_host=jump,
        known_hosts=known_hosts,
        password_env=f.env_name(raw, "password_env"),
        passphrase_env=f.env_name(raw, "passphrase_env"),
        connect_timeout=float(timeout) if timeout is not None else 10.0,
    )


def parse_inventory(text: str, path: Path) -> dict[str, Board]:
    """Parse and validate an inventory's text (``path`` is only used in messages).

    Raises:
        ConfigError: naming the file, the board and the field.
    """
    doc = parse_toml(text, path)
    for key in doc:
        if key not in TOP_LEVEL:
            raise ConfigError(
                f"{path}: unknown top-level key {key!r}{suggest(key, TOP_LEVEL)}: boards go in [[boards]] tables"
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
    return boards


def load_inventory(path: Path | None = None) -> dict[str, Board]:
    """Load and validate the inventory; the built-in ``local`` board is always included.

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
        return boards
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}): fix the file or its permissions") from None
    boards.update(parse_inventory(text, path))
    return boards


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
