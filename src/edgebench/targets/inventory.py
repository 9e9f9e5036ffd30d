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
present and needs no entry. The fields are declared once, in `edgebench.targets.board.Board`:
the table's model `BoardSpec`, the descriptions `FIELDS` and the copying (`board_values`) are
made from those declarations.

A file may also declare pools of boards behind a labgrid coordinator, one ``[pools.NAME]``
table each (`edgebench.targets.lab`). Here they are only checked to be tables whose names
are not board names; `edgebench.targets.pools.load_lab_inventory` parses them (lab builds on
this module, so the parsing lives there).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from edgebench.config import name_problem, parse_toml, shown_name, validate
from edgebench.errors import ConfigError, UserError
from edgebench.targets.board import LOCAL, SAME, Board, board_fields, file_field, local_board

DEFAULT_PATH = Path("targets") / "boards.toml"
ENV_PATH = "EDGEBENCH_BOARDS"
RUNTIMES = ("onnxruntime", "tflite")
TOP_LEVEL = ("version", "boards", "pools")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# board names are selected on the command line (comma lists, shell words) and used in file names
BOARD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# one hop of a jump host: [user@]host[:port], host a name, an address or [an IPv6 address]
_JUMP_HOP = re.compile(r"^(?:[^@\s]+@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s\[\]]+)(?::(\d+))?$")

# each board field's description, from its declaration in `edgebench.targets.board.Board`
FIELDS: dict[str, str] = {f.name: file_field(f).description for f in board_fields()}


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


def _without_none(tp: Any) -> Any:
    """``tp`` without ``None`` (``str | None`` -> ``str``)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        kept = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(kept) == 1:
            return kept[0]
    return tp


def file_fields(*, pool: bool = False) -> list[tuple[str, Any, Any]]:
    """The `Board` fields as a ``[[boards]]`` table writes them, for `dataclasses.make_dataclass`.

    Each is ``(name, type, field)``: the type carries the declaration's bounds as pydantic
    ``Field`` metadata (on each item of an array), and takes ``None`` where the file's default
    is "not set"; the default is the file's (`edgebench.targets.board.FileField`).

    Args:
        pool: only the fields a ``[pools.NAME]`` table may set.
    """
    hints = typing.get_type_hints(Board)
    out: list[tuple[str, Any, Any]] = []
    for f in board_fields():
        how = file_field(f)
        if pool and not how.pool:
            continue
        tp = how.file_type if how.file_type is not None else _without_none(hints[f.name])
        bounds: dict[str, Any] = {k: v for k, v in (("ge", how.ge), ("le", how.le)) if v is not None}
        if how.finite:
            bounds["allow_inf_nan"] = False
        if bounds and typing.get_origin(tp) is tuple:
            tp = tuple[Annotated[typing.get_args(tp)[0], Field(**bounds)], ...]  # type: ignore[misc]
        elif bounds:
            tp = Annotated[tp, Field(**bounds)]
        if how.file_default is not SAME:
            default = dataclasses.field(default=how.file_default)
        elif f.default_factory is not dataclasses.MISSING:
            default = dataclasses.field(default_factory=f.default_factory)
        else:
            default = dataclasses.field(default=f.default)
        if default.default is None:
            tp = tp | None
        out.append((f.name, tp, default))
    return out


class BoardChecks:
    """One ``[[boards]]`` table as written, checked by `edgebench.config.validate`.

    `BoardSpec` is this class with the fields of `edgebench.targets.board.Board` as a file
    writes them (`file_fields`: types, bounds and defaults come from the declarations); the
    rules that need the whole table (names, workdir form, runtime names, environment variable
    names) are here, in ``__post_init__``. The ssh config and defaults are applied afterwards
    by `parse_board`.
    """

    if TYPE_CHECKING:  # the fields are made from Board's declarations
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

        def __init__(self, **fields: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

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


BoardSpec: type[BoardChecks] = dataclasses.make_dataclass(
    "BoardSpec",
    file_fields(),
    bases=(BoardChecks,),
    frozen=True,
    namespace={"__module__": __name__, "__doc__": BoardChecks.__doc__},
)


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
    ssh = _ssh_config_lookup(spec.host)
    written = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    return Board(**board_values(written, where, {"port": ssh.port, "user": ssh.user, "jump_host": ssh.proxyjump}))


def board_values(written: Mapping[str, Any], where: str, found: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `Board` fields of a validated table (a `BoardSpec`'s fields, or a pool's shared ones).

    Each is the value written, else ``found``'s (what the ssh config says), else the `Board`'s
    default; ``identity_file`` and ``known_hosts`` are expanded (``~``) and the key must exist,
    tag values become strings, tables are copied. A `Board` field not in ``written`` is left out.

    Raises:
        ConfigError: ``identity_file`` does not exist (``where`` starts the message).
    """
    values: dict[str, Any] = {}
    for f in board_fields():
        if f.name not in written:
            continue
        value = written[f.name]
        if value is None and found is not None:
            value = found.get(f.name)
        if value is None and f.default is not dataclasses.MISSING:
            value = f.default
        values[f.name] = copy.deepcopy(value)
    identity = values.get("identity_file")
    if identity is not None:
        ident_path = Path(identity).expanduser()
        if not ident_path.is_file():
            raise ConfigError(
                f"{where} field 'identity_file' {ident_path} does not exist: fix the path, "
                "or remove the field to use ssh-agent"
            )
        values["identity_file"] = str(ident_path)
    if values.get("known_hosts") is not None:
        values["known_hosts"] = str(Path(values["known_hosts"]).expanduser())
    if "tags" in values:
        values["tags"] = {k: str(v) for k, v in values["tags"].items()}
    return values


def parse_inventory_parts(text: str, path: Path) -> tuple[dict[str, Board], dict[str, Any]]:
    """Parse an inventory's text: its boards, and its ``[pools]`` tables as written (``path`` is only
    used in messages).

    The pools are checked here to be tables named like boards and unlike any board (``local``
    included); `edgebench.targets.pools.parse_pools` checks their fields.

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
