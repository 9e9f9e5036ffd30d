"""Farm decisions that need no sshd: cgroup support, missing sshd, the group helper's bookkeeping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.errors import BoardBusy
from edgebench.targets import farm as farm_mod
from edgebench.targets.board import Board
from edgebench.targets.group import for_each_board
from edgebench.testing import FakeDriver


def test_cgroup_support_says_why_not_as_a_normal_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(farm_mod.os, "geteuid", lambda: 1000)
    ok, why = farm_mod.cgroup_support()
    assert not ok and "not running as root" in why and "unlimited" in why


def test_farm_up_without_sshd_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(farm_mod, "find_sshd", lambda: None)
    r = CliRunner().invoke(main, ["farm", "up", "--dir", str(tmp_path / "f")])
    assert r.exit_code == 1 and r.output.startswith("error: ") and "apt-get install openssh-server" in r.output
    assert not (tmp_path / "f").exists()


def test_farm_unknown_profile_and_down_without_farm(tmp_path: Path) -> None:
    with pytest.raises(farm_mod.FarmError, match="unknown farm profile 'rpi'"):
        farm_mod.farm_up(tmp_path / "f", profiles=["rpi"])
    r = CliRunner().invoke(main, ["farm", "down", "--dir", str(tmp_path / "none")])
    assert r.exit_code == 1 and "no farm is recorded" in r.output


def test_for_each_board_keeps_failures_as_data_and_always_closes() -> None:
    drivers: dict[str, FakeDriver] = {}
    boards = [Board(name=n, host="h", workdir="/w") for n in ("a", "b", "c")]

    def factory(b: Board) -> FakeDriver:
        drivers[b.name] = FakeDriver(b, busy=b.name == "c")
        return drivers[b.name]

    def work(d: Any) -> str:
        if d.board.name == "b":
            raise RuntimeError("boom on b")
        return f"ok {d.board.name}"

    done: list[str] = []
    out = for_each_board(boards, work, driver_factory=factory, on_done=lambda n, _r: done.append(n))
    assert list(out) == ["a", "b", "c"] and out["a"] == "ok a"
    assert isinstance(out["b"], RuntimeError) and isinstance(out["c"], BoardBusy)
    assert sorted(done) == ["a", "b", "c"]
    for n in "abc":
        assert drivers[n].calls[0] == "activate" and drivers[n].calls[-1] == "deactivate"
    assert drivers["b"].calls == ["activate", "lock", "unlock", "deactivate"]  # released even when the work raised
    assert "lock" not in drivers["c"].calls
    with pytest.raises(ValueError, match="duplicate"):
        for_each_board([boards[0], boards[0]], work, driver_factory=factory)


def test_check_table_renders_status_reason_and_limits() -> None:
    import io

    from rich.console import Console

    from edgebench.render.boards import checks_table
    from edgebench.targets.fingerprint import BoardCheck

    fp = {
        "arch": "aarch64",
        "cpu_model": "Cortex-A72",
        "cores": 4,
        "memory_bytes": 4 << 30,
        "cpu_quota_cores": 0.5,
        "memory_limit_bytes": 512 << 20,
        "os": "Raspbian",
        "python": "3.9.2",
        "numpy": "1.26.4",
        "runtimes": {"onnxruntime": {"version": "1.17.0", "providers": ["CPUExecutionProvider"]}},
        "governor": "ondemand",
        "freq_mhz": 1500.0,
        "temp_c": 48.5,
    }
    checks = [BoardCheck("pi", "ready", "", fp), BoardCheck("gone", "unreachable", "cannot connect to 10.0.0.9:22")]
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(checks_table(checks))
    text = buf.getvalue()
    for needle in (
        "aarch64 Cortex-A72",
        "quota 0.5",
        "limit 512 MiB",
        "onnxruntime 1.17.0 [CPU]",
        "ondemand",
        "1500 MHz",
        "48.5 °C",
        "unreachable",
        "cannot connect to 10.0.0.9:22",
    ):
        assert needle in text, needle
