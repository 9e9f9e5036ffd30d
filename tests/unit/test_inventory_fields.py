"""Each board field is declared once (`edgebench.targets.board.Board`): the ``[[boards]]`` model, the
descriptions, the copying into a `Board`, a pool's shared fields and the written file all follow it."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest

from edgebench.errors import ConfigError
from edgebench.targets.board import Board, file_field
from edgebench.targets.boards_file import board_to_toml
from edgebench.targets.inventory import FIELDS, BoardSpec, parse_board, parse_inventory
from edgebench.targets.lab import POOL_FIELDS, PoolSpec, parse_pool

BOARD_NAMES = [f.name for f in dataclasses.fields(Board)]
# every field set to a value that is not its default
FULL: dict[str, Any] = {
    "name": "pi4",
    "host": "10.0.0.2",
    "port": 2222,
    "user": "pi",
    "identity_file": "KEY",  # made in tmp_path by full()
    "python": "/usr/bin/python3",
    "workdir": "/home/pi/eb",
    "runtimes": ["onnxruntime", "tflite"],
    "tags": {"arch": "aarch64", "n": 4},
    "threads": 4,
    "cpu_affinity": [0, 1],
    "env": {"OMP_NUM_THREADS": "4"},
    "runtime_options": {"tflite": {"external_delegate": "/usr/lib/libedgetpu.so.1"}},
    "cost": 75.0,
    "power_w": 6.4,
    "jump_host": "pi@gateway:2222",
    "known_hosts": "~/kh",
    "password_env": "PI_PASSWORD",
    "passphrase_env": "PI_KEY",
    "connect_timeout": 20.0,
    "power_command": "cat /sys/class/hwmon/hwmon0/power1_input",
    "power_pattern": "(?P<value>[0-9]+)",
}


def full(tmp_path: Path) -> dict[str, Any]:
    """`FULL` with an identity file that exists."""
    key = tmp_path / "id_ed25519"
    key.write_text("key")
    return {**FULL, "identity_file": str(key)}


def test_the_model_and_the_descriptions_have_the_fields_of_board_in_its_order() -> None:
    assert [f.name for f in dataclasses.fields(BoardSpec)] == BOARD_NAMES
    assert list(FIELDS) == BOARD_NAMES and all(FIELDS.values())
    assert BoardSpec.__name__ == "BoardSpec" and BoardSpec.__module__ == "edgebench.targets.inventory"


def test_the_model_takes_its_bounds_and_file_defaults_from_the_declarations() -> None:
    hints = typing.get_type_hints(BoardSpec, include_extras=True)
    assert "ge=1" in repr(hints["port"]) and "le=65535" in repr(hints["port"])
    assert "allow_inf_nan=False" in repr(hints["connect_timeout"]) and "le=3600" in repr(hints["connect_timeout"])
    spec = {f.name: f for f in dataclasses.fields(BoardSpec)}
    assert spec["workdir"].default == "~/edgebench" and spec["python"].default is None
    assert spec["connect_timeout"].default is None and spec["port"].default is None
    assert spec["tags"].default_factory() == {}  # type: ignore[misc]


def test_not_set_takes_the_board_default(tmp_path: Path) -> None:
    board = parse_board({"name": "b", "host": "h"}, tmp_path / "boards.toml", 0)
    assert board.python == "python3" and board.connect_timeout == 10.0 and board.workdir == "~/edgebench"
    assert board.runtimes == ("onnxruntime",) and board.tags == {} and board.power_pattern is None


def test_every_field_is_copied_into_the_board(tmp_path: Path) -> None:
    table = full(tmp_path)
    board = parse_board(table, tmp_path / "boards.toml", 0)
    for name in BOARD_NAMES:
        value = getattr(board, name)
        if name == "tags":
            assert value == {"arch": "aarch64", "n": "4"}
        elif name == "known_hosts":
            assert value == str(Path("~/kh").expanduser())
        else:
            assert value == (tuple(table[name]) if isinstance(value, tuple) else table[name]), name


def test_a_written_board_reads_back_the_same(tmp_path: Path) -> None:
    board = parse_board(full(tmp_path), tmp_path / "boards.toml", 0)
    text = board_to_toml(board)
    assert parse_inventory(text, tmp_path / "boards.toml")["pi4"] == board
    keys = [line.split(" = ")[0] for line in text.splitlines()[1:]]
    assert keys == BOARD_NAMES  # in the declarations' order


POOL = {"coordinator": "lab:20408", "tags": {"board": "rpi4"}}


def test_a_pool_takes_the_board_fields_declared_for_pools() -> None:
    names = [f.name for f in dataclasses.fields(PoolSpec)]
    shared = [f.name for f in dataclasses.fields(Board) if file_field(f).pool]
    assert names == ["coordinator", "tags", *shared]
    assert not {"name", "host", "port"} & set(names)
    assert {"power_command", "power_pattern", "connect_timeout", "passphrase_env", "identity_file"} <= set(names)
    assert POOL_FIELDS["workdir"].endswith("({place} is replaced by the place's name)")


def test_a_pools_shared_fields_become_its_boards_defaults(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    pool = parse_pool(
        "rpi4",
        {**POOL, "identity_file": str(key), "known_hosts": "~/kh", "threads": 2, "power_command": "m"},
        tmp_path / "boards.toml",
        environ={},
    )
    d = pool.defaults
    assert d.name == "rpi4" and d.host is None and d.tags == {}  # the pool's tags are its filter, not a board's
    assert d.identity_file == str(key) and d.known_hosts == str(Path("~/kh").expanduser())
    assert d.python == "python3" and d.connect_timeout == 10.0 and d.workdir == "~/edgebench"
    assert d.threads == 2 and d.power_command == "m" and not pool.user_set


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"threads": 0}, "field 'threads'"),
        ({"connect_timeout": 4000}, "field 'connect_timeout'"),
        ({"workdir": "rel"}, "field 'workdir' must be absolute or start with ~/"),
        ({"runtimes": ["onnx"]}, "unknown runtime 'onnx'"),
        ({"power_pattern": "x"}, "field 'power_pattern' needs a power_command"),
        ({"identity_file": "/nonexistent/key"}, "field 'identity_file' /nonexistent/key does not exist"),
    ],
)
def test_a_pool_field_is_checked_as_a_boards_is(tmp_path: Path, extra: dict[str, Any], words: str) -> None:
    path = tmp_path / "boards.toml"
    with pytest.raises(ConfigError) as board_err:
        parse_board({"name": "b", "host": "h", **extra}, path, 0)
    with pytest.raises(ConfigError) as pool_err:
        parse_pool("p", {**POOL, **extra}, path, environ={})
    board_text = str(board_err.value).split("board 'b': ", 1)[1]
    pool_text = str(pool_err.value).split("pool 'p': ", 1)[1]
    assert words in board_text and board_text == pool_text


@pytest.mark.parametrize("key", ["name", "host", "port"])
def test_a_pool_refuses_what_its_places_give(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=f"field '{key}' does not belong in a pool"):
        parse_pool("p", {**POOL, key: 1}, tmp_path / "boards.toml", environ={})
