"""The driver protocol without sockets: the registry, lifecycle, deploy's cache, the local lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.errors import BoardBusy
from edgebench.fsutil import sha256_file
from edgebench.targets.board import Board, default_local_workdir
from edgebench.targets.deploy import deploy
from edgebench.targets.driver import LOCK_DIR_ENV, CommandResult, Driver, LocalDriver, host_lock_path
from edgebench.targets.registry import DRIVERS, driver_for, driver_kind, register_driver
from edgebench.targets.ssh import SSHDriver
from edgebench.testing import FakeDriver


def test_registry_picks_the_driver_and_nothing_connects() -> None:
    local = driver_for(Board(name="here", workdir="/tmp/eb-unused"))
    assert isinstance(local, LocalDriver) and driver_kind(local.board) == "local"
    remote = driver_for(Board(name="pi", host="192.0.2.1", workdir="~/eb"), connect_retries=1)
    assert isinstance(remote, SSHDriver)
    # reading the board does no I/O: the ~/ workdir stays as written until activate()
    assert remote.board.workdir == "~/eb" and not remote.connected


def test_a_registered_driver_is_used_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(DRIVERS, "ssh", DRIVERS["ssh"])  # restored after the test
    register_driver("ssh", FakeDriver)
    d = driver_for(Board(name="pi", host="h", workdir="/w"))
    assert isinstance(d, FakeDriver)
    with d as active:
        assert active is d and d.active
    assert d.calls == ["activate", "deactivate"]


def test_deploy_uploads_once_with_the_hash(tmp_path: Path) -> None:
    art = tmp_path / "m.onnx"
    art.write_bytes(b"model bytes")
    d = FakeDriver(Board(name="pi", host="h", workdir="/w"))
    first = deploy(d, art)
    digest = sha256_file(art)
    assert first == f"/w/cache/{digest}/m.onnx" and d.files == {first: digest}
    assert deploy(d, art, digest) == first
    assert [c for c in d.calls if c.startswith("put")] == [f"put {first}"]  # the second deploy found it


def test_local_driver_copies_atomically_and_locks_the_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the test's own lock: a real run holding this machine's lock (~/.cache/edgebench) must not matter
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "lock"))
    board = Board(name="here", workdir=str(tmp_path / "wd"))
    d: Driver = LocalDriver(board)
    src = tmp_path / "a.bin"
    src.write_bytes(b"abc")
    with d:
        dest = deploy(d, src)
        assert Path(dest).read_bytes() == b"abc" and d.has(dest, sha256_file(src))
        d.get(dest, tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == b"abc"
        other = LocalDriver(board)
        with d.lock(1.0), pytest.raises(BoardBusy, match=r"board busy: held by .* pid \d+"), other.lock(0.2):
            pass
        with other.lock(0.2):  # released
            pass
    assert host_lock_path() == tmp_path / "lock" / "board.lock" and host_lock_path().is_file()
    assert not [p for p in (tmp_path / "wd").rglob("*.tmp")]


def test_the_lock_folder_defaults_to_the_machine_wide_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOCK_DIR_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert host_lock_path() == default_local_workdir().parent / "board.lock"  # ~/.cache/edgebench/boards: not taken
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")  # the board's folder and its lock move together
    assert host_lock_path() == Path("/x/cache/edgebench/boards/board.lock")


def test_unit_tests_never_take_the_machine_wide_lock(tmp_path: Path) -> None:
    # tests/unit/conftest.py gives every unit test its own lock folder
    assert host_lock_path() != Path.home() / ".cache" / "edgebench" / "boards" / "board.lock"
    with LocalDriver(Board(name="here", workdir=str(tmp_path / "wd"))).lock(0.2):
        assert not host_lock_path().is_relative_to(Path.home() / ".cache")


def test_fake_driver_answers_from_its_script() -> None:
    d = FakeDriver(Board(name="b"), reply=lambda argv: CommandResult(" ".join(argv), 3, "out", "err"))
    res = d.run(["python3", "agent.py", "job.json"], timeout=5)
    assert (res.exit_code, res.stdout) == (3, "out") and d.runs == [["python3", "agent.py", "job.json"]]
    with pytest.raises(BoardBusy), FakeDriver(Board(name="b"), busy=True).lock(1):
        pass
