"""Editing ``boards.toml``: add and remove ``[[boards]]`` entries, keeping the user's comments.

Every write goes to a temporary file that is validated by `parse_inventory` before it
is renamed over the old one, so a failed edit never leaves a broken or half-written file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError, UserError
from edgebench.fsutil import write_text_atomic
from edgebench.targets.board import Board
from edgebench.targets.inventory import FIELDS, parse_inventory, suggest

_HEADER = re.compile(r"^\s*\[\[\s*boards\s*\]\]\s*(#.*)?$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def board_to_toml(board: Board) -> str:
    """One ``[[boards]]`` table for ``board`` (fields left at their defaults are omitted)."""
    defaults = Board(name=board.name)
    lines = ["[[boards]]"]
    for field in FIELDS:
        value = getattr(board, field)
        if field in ("host", "name") or value != getattr(defaults, field):
            if value is None or value == () or value == {}:
                continue
            lines.append(f"{field} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _segments(text: str) -> tuple[str, list[str]]:
    """Split a boards file into its head (before the first ``[[boards]]``) and one text per board."""
    head: list[str] = []
    segs: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if _HEADER.match(line):
            segs.append([line])
        elif segs:
            segs[-1].append(line)
        else:
            head.append(line)
    return "".join(head), ["".join(s) for s in segs]


def _write_validated(path: Path, text: str) -> dict[str, Board]:
    boards = parse_inventory(text, path)  # never write a file we could not load back
    write_text_atomic(path, text)
    return boards


def write_boards(path: Path, boards: Iterable[Board], header: str = "") -> None:
    """Write a whole boards file (used by the farm)."""
    text = header + "\n".join(board_to_toml(b) for b in boards)
    _write_validated(path, text)


def add_board(path: Path, board: Board) -> None:
    """Append ``board`` to the file (created if missing).

    Raises:
        UserError: if a board of that name exists.
        ConfigError: if the current file is invalid.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    current = parse_inventory(text, path)
    if board.name in current:
        raise UserError(f"{path}: board {board.name!r} already exists: remove it first or choose another name")
    if text and not text.endswith("\n"):
        text += "\n"
    _write_validated(path, text + ("\n" if text else "") + board_to_toml(board))


def remove_boards(path: Path, names: list[str]) -> None:
    """Remove the named boards (their whole ``[[boards]]`` table, comments inside it too).

    Raises:
        UserError: if a name is not in the file (suggesting close names).
    """
    if not path.exists():
        raise ConfigError(f"{path}: inventory file not found: check --boards-file")
    text = path.read_text(encoding="utf-8")
    current = parse_inventory(text, path)
    for name in names:
        if name not in current:
            raise UserError(f"{path}: no board {name!r}{suggest(name, current)}: `edgebench boards list` shows them")
    head, segs = _segments(text)
    kept = [s for s in segs if next(iter(parse_inventory(s, path))) not in names]
    _write_validated(path, head + "".join(kept))
