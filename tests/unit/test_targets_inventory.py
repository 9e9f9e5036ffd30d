"""The board inventory: validation messages, editing, name resolution, path confinement (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.errors import ConfigError, RemoteError, UserError
from edgebench.targets.board import Board
from edgebench.targets.boards_file import add_board, board_to_toml, remove_boards
from edgebench.targets.inventory import load_inventory, parse_inventory, resolve_boards
from edgebench.targets.lab import load_lab_inventory
from edgebench.targets.ssh import SSHDriver, free_bytes, megabytes

GOOD = """\
# my boards
version = 1

[[boards]]
name = "pi4"
host = "10.0.0.2"
user = "pi"
python = "/usr/bin/python3"
workdir = "/home/pi/eb"
runtimes = ["onnxruntime", "tflite"]
tags = { arch = "aarch64", cpu = "cortex-a72" }
threads = 4
cpu_affinity = [0, 1]
env = { OMP_NUM_THREADS = "4" }
cost = 75.0
power_w = 6.4
[boards.runtime_options.tflite]
external_delegate = "/usr/lib/libedgetpu.so.1"

[[boards]]
# the jetson
name = "jetson"
host = "10.0.0.3"
port = 2222
runtimes = ["onnxruntime"]
[boards.runtime_options.onnxruntime]
providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "boards.toml"
    p.write_text(text)
    return p


def test_good_inventory_loads_with_local(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD))
    assert list(inv) == ["local", "pi4", "jetson"]
    pi = inv["pi4"]
    assert pi.tags == {"arch": "aarch64", "cpu": "cortex-a72"} and pi.cpu_affinity == (0, 1) and pi.threads == 4
    assert pi.runtime_options["tflite"]["external_delegate"].endswith("libedgetpu.so.1")
    assert inv["jetson"].port == 2222 and inv["jetson"].workdir == "~/edgebench"
    assert inv["local"].is_local


def test_missing_default_file_is_just_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEBENCH_BOARDS", raising=False)
    assert list(load_inventory()) == ["local"]
    with pytest.raises(ConfigError, match="not found"):
        load_inventory(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[[boards]\nname = 'x'", ["not valid TOML", "fix the syntax"]),
        ('[[boards]]\nname = "pi"\nhots = "1.2.3.4"\n', ["board 'pi'", "field 'hots'", "did you mean 'host'"]),
        (
            '[[boards]]\nname = "pi"\nhost = "a"\n[[boards]]\nname = "pi"\nhost = "b"\n',
            ["board 'pi'", "entries #1 and #2"],
        ),
        ('[[boards]]\nhost = "a"\n', ["board '#1'", "field 'name'", "is missing"]),
        ('[[boards]]\nname = "pi"\n', ["field 'host'", "is missing"]),
        ('[[boards]]\nname = "pi"\nhost = "a"\nport = "22"\n', ["field 'port'", "integer"]),
        ('[[boards]]\nname = "pi"\nhost = "a"\nruntimes = ["onnx"]\n', ["field 'runtimes'", "'onnx'", "onnxruntime"]),
        ('[[boards]]\nname = "pi"\nhost = "a"\nworkdir = "rel/dir"\n', ["field 'workdir'", "absolute"]),
        ('[[boards]]\nname = "local"\nhost = "a"\n', ["built-in board"]),
        ('[[boards]]\nname = "pi"\nhost = "a"\nenv = { "1X" = "y" }\n', ["field 'env'"]),
        ('[[boards]]\nname = "pi"\nhost = "a"\npassword_env = "my pw"\n', ["field 'password_env'"]),
        ("boardz = 1\n", ["unknown top-level key 'boardz'", "did you mean 'boards'"]),
        ('[[boards]]\nname = "pi"\nhost = "a"\nport = 70000\n', ["field 'port'", "<= 65535"]),
        ('[[boards]]\nname = "pi"\nhost = "a"\ntags = { a = [1] }\n', ["field 'tags'", "'a'", "string or number"]),
    ],
    ids=[
        "malformed",
        "unknown-field",
        "duplicate",
        "no-name",
        "no-host",
        "bad-port",
        "bad-runtime",
        "rel-workdir",
        "local-reserved",
        "bad-env",
        "bad-secret-env",
        "top-level",
        "port-range",
        "bad-tag",
    ],
)
def test_bad_inventory_names_file_board_field(tmp_path: Path, text: str, needles: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    msg = str(info.value)
    assert msg.startswith(str(path))
    for n in needles:
        assert n in msg, msg


def test_missing_identity_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[[boards]]\nname = "pi"\nhost = "a"\nidentity_file = "~/no/such/key"\n')
    with pytest.raises(ConfigError, match=r"board 'pi': field 'identity_file' .*no/such/key does not exist.*ssh-agent"):
        load_inventory(path)


def test_resolve_unknown_board_suggests_close_names(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, GOOD))
    assert [b.name for b in resolve_boards(inv, ["jetson", "pi4", "jetson"])] == ["jetson", "pi4"]
    with pytest.raises(UserError, match=r"unknown board 'pi5' \(did you mean 'pi4'\?\)"):
        resolve_boards(inv, ["pi5"])


def test_add_and_remove_keep_comments_and_validate(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    add_board(path, Board(name="nano", host="10.0.0.9", workdir="/opt/eb", tags={"arch": "aarch64"}))
    inv = load_inventory(path)
    assert inv["nano"].workdir == "/opt/eb" and inv["nano"].tags == {"arch": "aarch64"}
    before = path.read_text()
    with pytest.raises(UserError, match="already exists"):
        add_board(path, Board(name="nano", host="x", workdir="/x"))
    assert path.read_text() == before
    remove_boards(path, ["pi4"])
    text = path.read_text()
    assert "# my boards" in text and "# the jetson" in text and "pi4" not in text
    assert list(load_inventory(path)) == ["local", "jetson", "nano"]
    with pytest.raises(UserError, match="did you mean 'nano'"):
        remove_boards(path, ["nan"])
    assert not list(tmp_path.glob(".*.tmp"))


def test_board_toml_round_trip_with_awkward_strings(tmp_path: Path) -> None:
    b = Board(name="odd-name_1.x", host="h", workdir="/w d", env={"A": 'quote " and \\ slash'}, runtimes=("tflite",))
    inv = parse_inventory(board_to_toml(b), tmp_path / "b.toml")
    assert inv[b.name].env == b.env and inv[b.name].workdir == "/w d"


@pytest.mark.parametrize("name", ['odd "name" $(x)', "pi4,nano", "a b", "..", "é", "a/b"])
def test_board_names_are_letters_digits_dash_underscore_dot(tmp_path: Path, name: str) -> None:
    path = tmp_path / "boards.toml"
    path.write_text("# mine\n")
    with pytest.raises(ConfigError, match=r"may hold only letters, digits, '-', '_' and '\.'") as info:
        add_board(path, Board(name=name, host="h", workdir="/w"))
    assert "\n" not in str(info.value) and path.read_text() == "# mine\n"
    text = board_to_toml(Board(name=name, host="h", workdir="/w"))  # an inventory edited by hand is checked too
    with pytest.raises(ConfigError, match="rename it"):
        parse_inventory(text, path)


def test_remote_paths_are_confined_to_the_workdir() -> None:
    d = SSHDriver(Board(name="b", host="127.0.0.1", workdir="/srv/eb"))
    assert d.confine("cache/x") == "/srv/eb/cache/x"
    assert d.confine("/srv/eb/run/a b") == "/srv/eb/run/a b"
    for bad in ("../etc/passwd", "/etc/passwd", "/srv/ebx/y", "cache/../../z"):
        with pytest.raises(RemoteError, match="outside the workdir"):
            d.confine(bad)


def test_secrets_never_in_repr_or_board_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EB_SECRET_PW", "hunter2-secret")
    path = write(tmp_path, '[[boards]]\nname = "pi"\nhost = "a"\nworkdir = "/w"\npassword_env = "EB_SECRET_PW"\n')
    r = CliRunner().invoke(main, ["boards", "list", "--boards-file", str(path), "--json"])
    assert r.exit_code == 0 and "EB_SECRET_PW" in r.output and "hunter2" not in r.output
    assert "hunter2" not in repr(SSHDriver(load_inventory(path)["pi"]))


# --------------------------------------------------------------------------- CLI bad input


def run_cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_cli_malformed_boards_file_is_one_line_exit_1(tmp_path: Path) -> None:
    path = write(tmp_path, '[[boards]]\nname = "pi"\nhots = "x"\n')
    code, out = run_cli("boards", "list", "--boards-file", str(path))
    assert code == 1 and out.startswith("error: ") and "did you mean 'host'" in out and "Traceback" not in out


def test_cli_unknown_board_on_check_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    code, out = run_cli("boards", "check", "jetsn", "--boards-file", str(path))
    assert code == 1 and "unknown board 'jetsn'" in out and "did you mean 'jetson'" in out
    assert not (tmp_path / "fingerprints.json").exists()


def test_cli_add_duplicate_and_missing_identity_leave_file_untouched(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    before = path.read_text()
    code, out = run_cli("boards", "add", "pi4", "--host", "x", "--boards-file", str(path))
    assert code == 1 and "already exists" in out
    code, out = run_cli(
        "boards", "add", "new", "--host", "x", "--identity-file", str(tmp_path / "nokey"), "--boards-file", str(path)
    )
    assert code == 1 and "identity_file" in out and "does not exist" in out
    code, out = run_cli("boards", "add", "new", "--host", "x", "--tag", "noequals", "--boards-file", str(path))
    assert code == 1 and "KEY=VALUE" in out
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boards.toml"]


def test_cli_add_list_remove(tmp_path: Path) -> None:
    path = tmp_path / "targets" / "boards.toml"
    code, out = run_cli(
        "boards",
        "add",
        "nano",
        "--host",
        "10.1.1.1",
        "--workdir",
        "/opt/eb",
        "--runtime",
        "tflite",
        "--tag",
        "arch=aarch64",
        "--boards-file",
        str(path),
    )
    assert code == 0, out
    code, out = run_cli("boards", "list", "--boards-file", str(path), "--json")
    import json

    rows = {r["name"]: r for r in json.loads(out)["boards"]}
    assert rows["nano"]["runtimes"] == ["tflite"] and rows["nano"]["tags"] == {"arch": "aarch64"} and "local" in rows
    code, out = run_cli("boards", "remove", "nano", "--boards-file", str(path))
    assert code == 0 and list(load_inventory(path)) == ["local"]


def test_free_space_is_read_from_posix_df_output() -> None:
    line = "tmpfs                 256      244        12      96% /home/pi/.edgebench"
    assert free_bytes(line) == 12 * 1024
    assert free_bytes("") is None and free_bytes("df: /x: No such file or directory") is None
    assert megabytes(12 * 1024 * 1024) == "13 MB" and megabytes(48_000_000) == "48 MB"
    assert megabytes(300_000) == "0.3 MB"


def test_a_boards_power_meter_is_read_and_a_bad_pattern_is_one_line(tmp_path: Path) -> None:

    base = '[[boards]]\nname = "pi"\nhost = "10.0.0.2"\n'
    good = tmp_path / "good.toml"
    good.write_text(
        base + "power_command = \"vcgencmd pmic_read_adc\"\npower_pattern = '(?P<value>[0-9.]+)(?P<unit>W)'\n"
    )
    pi = load_inventory(good)["pi"]
    assert (pi.power_command, pi.power_pattern) == ("vcgencmd pmic_read_adc", "(?P<value>[0-9.]+)(?P<unit>W)")
    for extra, words in (
        ("power_pattern = '(?P<value>[0-9.]+'\n", "needs a power_command"),
        ("power_command = \"m\"\npower_pattern = '(?P<value>[0-9.]+'\n", "not a regular expression"),
        ("power_command = \"m\"\npower_pattern = '([0-9.]+) W'\n", "group named value"),
        ('power_command = " "\n', "non-empty command"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(base + extra)
        with pytest.raises(ConfigError, match=words) as err:
            load_inventory(bad)
        assert "\n" not in str(err.value)


POOLS = """\
[[boards]]
name = "pi4"
host = "10.0.0.2"

[pools.rpi4]
coordinator = "lab.example.com:20408"
tags = { board = "rpi4" }
user = "pi"
workdir = "/home/pi/eb/{place}"
"""


def test_pools_are_a_top_level_table_that_load_inventory_leaves_to_lab(tmp_path: Path) -> None:
    path = write(tmp_path, POOLS)
    assert list(load_inventory(path)) == ["local", "pi4"]  # the existing callers see the boards only
    boards, pools = load_lab_inventory(path)
    assert list(boards) == ["local", "pi4"] and list(pools) == ["rpi4"]
    pool = pools["rpi4"]
    assert pool.coordinator == "lab.example.com:20408" and pool.tags == {"board": "rpi4"}
    assert pool.defaults.user == "pi" and pool.user_set and pool.defaults.workdir == "/home/pi/eb/{place}"
    assert load_lab_inventory(write(tmp_path, GOOD))[1] == {}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (POOLS.replace("[pools.rpi4]", "[pools.pi4]"), "pool 'pi4': the name is a board of this file too"),
        (POOLS.replace("[pools.rpi4]", "[pools.local]"), "pool 'local': the name is the built-in board too"),
        ('pools = ["rpi4"]\n', "'pools' must be a table of tables: write each pool as [pools.NAME]"),
        ("[pools]\nrpi4 = 1\n", "'pools' must be a table of tables"),
    ],
)
def test_bad_pool_tables_are_one_line(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_inventory(write(tmp_path, text))
    message = str(err.value)
    assert needle in message and "\n" not in message, message
    assert message.startswith(str(tmp_path / "boards.toml"))


def test_a_bad_pool_field_names_the_pool_through_the_lab_loader(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_lab_inventory(write(tmp_path, POOLS.replace('tags = { board = "rpi4" }', "tags = {}")))
    assert "pool 'rpi4'" in str(err.value) and "field 'tags' is missing or empty" in str(err.value)
