"""Pools through the `edgebench` command line, over the real labgrid coordinator, exporter and sshd farm of
conftest.py: a run on ``pool:farm*2`` (two places leased, measured, released), ``boards list`` and ``boards check``
on pools, the bad inputs (one line, exit 1, nothing left behind) and SIGTERM while a run waits or measures
(exit 143, places released). ``lab_is_clean`` checks the coordinator after every test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _tiny_onnx import make_tiny_onnx
from edgebench.model import Run
from edgebench.results.store import list_runs, read_run

from .conftest import Lab, free_port, leftovers
from .test_lab import _holder, _wait_for_line

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
SHORT = ["--repeats", "2", "--min-time", "0.1", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0"]
PLACE_HOST = {"lab-1": "farm-1", "lab-2": "farm-2", "lab-3": "farm-3", "lab-4": "farm-1", "lab-solo": "farm-3"}


def _env() -> dict[str, str]:
    return {**os.environ, "EDGEBENCH_NO_SPACE_CHECK": "1", "COLUMNS": "200"}


def _cli(*args: str, timeout: float = 120, prefix: tuple[str, ...] = (EDGEBENCH,)) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout, env=_env())


def _error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one ``error:`` line of a refused command (and nothing else that looks like a traceback)."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, out.stderr
    return errors[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_onnx(tmp_path_factory.mktemp("tiny") / "tiny.onnx")


def _run_args(
    lab: Lab, tiny: Path, results: Path, boards: str, *extra: str, inventory: Path | None = None
) -> list[str]:
    return [
        "run", "--boards", boards, "--boards-file", str(inventory or lab.inventory), "--variants", str(tiny),
        "--results", str(results), *SHORT, *extra,
    ]  # fmt: skip


def _only_run(results: Path) -> Run:
    (path,) = list_runs(results)
    return read_run(path)


def test_a_run_on_two_boards_of_a_pool_and_a_named_board_measures_on_two_places_and_releases_them(
    lab: Lab, tiny: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    t0 = time.monotonic()
    out = _cli(*_run_args(lab, tiny, results, "local,pool:farm*2", "--priority", "5"))
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stderr
    assert leftovers(lab.address) == ([], [])  # released and cancelled
    acquired = [ln for ln in out.stderr.splitlines() if ln.startswith("acquired ")]
    assert len(acquired) == 1 and " from pool farm (waited " in acquired[0], out.stderr
    overhead = float(acquired[0].split("reservation overhead ")[1].split(" s")[0])
    print(f"pool run: wall {wall:.1f} s, reservation overhead {overhead:.2f} s")  # -s shows the figures
    run = _only_run(results)
    (named,) = [m for m in run.measurements if m.board == "local"]  # the named board, measured as well
    assert named.ok, named.error
    pooled = [m for m in run.measurements if m.board != "local"]
    places = sorted(m.board for m in pooled)
    assert len(places) == 2 and len(set(places)) == 2 and set(places) <= set(PLACE_HOST), places
    for m in pooled:
        assert m.ok, m.error
        fp = m.fingerprint or {}
        tags = fp.get("tags") or {}
        assert tags["lab.place"] == m.board and tags["lab.pool"] == "farm", tags
        assert tags["lab.exporter_host"] and tags["lab.coordinator"] == lab.address
        member = lab.farm.member(PLACE_HOST[m.board])
        assert fp.get("address") == member.address  # measured on the board the place's NetworkService names
    # one pool, two places on one machine: the configuration keys agree, so the figures compare
    a, b = pooled
    assert a.config_key.comparable(b.config_key), a.config_key.differences(b.config_key)
    # the report names the place of each figure (its board column)
    report = _cli("report", "--results", str(results), "--format", "markdown")
    assert report.returncode == 0, report.stderr
    for place in places:
        assert f"| {place} " in report.stdout, report.stdout
    # a board of another machine would not compare: its hardware is in the key
    other = dict(b.fingerprint or {})
    other["machine"] = "aarch64"
    moved = type(b)(**{**{f: getattr(b, f) for f in b.__dataclass_fields__}, "fingerprint": other})
    assert any(d.startswith("board:") for d in a.config_key.differences(moved.config_key))


def test_boards_list_shows_each_pool_member_and_its_state(lab: Lab) -> None:
    holder = _holder(lab, "pool:solo", 30.0)
    try:
        _wait_for_line(holder, "HOLDING ")
        out = _cli("boards", "list", "--boards-file", str(lab.inventory), "--json")
        assert out.returncode == 0, out.stderr
        pools = {p["name"]: p for p in json.loads(out.stdout)["pools"]}
        farm = {m["place"]: m for m in pools["farm"]["members"]}
        assert sorted(farm) == ["lab-1", "lab-2", "lab-3", "lab-4"]
        assert {m["state"] for m in farm.values()} == {"free"}
        assert farm["lab-2"]["address"] == f"{lab.farm.member('farm-2').address}:{lab.farm.member('farm-2').port}"
        (solo,) = pools["solo"]["members"]
        assert solo["state"] == "acquired" and f":{holder.pid}/" in solo["acquired_by"] and solo["since"]
        (bare,) = pools["bare"]["members"]
        assert bare["address"] is None and bare["problem"].startswith("has no NetworkService resource")
        assert pools["nowhere"]["error"].startswith("pool 'nowhere': no place of coordinator")
        table = _cli("boards", "list", "--boards-file", str(lab.inventory))
        assert table.returncode == 0, table.stderr
        print(table.stdout)  # -s shows the table
        assert "pools (labgrid)" in table.stdout and "lab-solo" in table.stdout
        assert f"acquired by {solo['acquired_by']} since" in " ".join(table.stdout.split())
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(10)


def test_boards_check_a_pool_checks_every_member_and_names_a_place_without_a_board(lab: Lab) -> None:
    out = _cli("boards", "check", "pool:farm", "--boards-file", str(lab.inventory), "--json")
    assert out.returncode == 0, out.stderr
    checks = {c["name"]: c for c in json.loads(out.stdout)["checks"]}
    assert sorted(checks) == ["lab-1", "lab-2", "lab-3", "lab-4"]
    assert {c["status"] for c in checks.values()} == {"ready"}
    assert all(c["fingerprint"].get("tags", {}).get("lab.pool") in (None, "farm") for c in checks.values())
    bad = _cli("boards", "check", "pool:bare", "--boards-file", str(lab.inventory))
    line = _error_line(bad)
    assert line.startswith("error: board 'lab-bare' is unreachable: pool bare: has no NetworkService resource")
    assert "add-match EXPORTER/GROUP/NetworkService" in line


# --- bad input through the CLI: one line, exit 1, nothing reserved or acquired (lab_is_clean)


def test_an_unknown_pool_suggests_the_real_ones(lab: Lab, tiny: Path, tmp_path: Path) -> None:
    line = _error_line(_cli(*_run_args(lab, tiny, tmp_path / "r", "pool:fram*2")))
    assert line == (
        "error: unknown pool 'fram' (did you mean 'farm'?): known pools are bare, farm, nowhere, solo "
        "(declare one as [pools.NAME] in the inventory)"
    )
    assert not (tmp_path / "r").exists()


def test_one_pool_named_twice_is_refused_before_any_reservation(lab: Lab, tiny: Path, tmp_path: Path) -> None:
    line = _error_line(_cli(*_run_args(lab, tiny, tmp_path / "r", "pool:farm,pool:farm*2")))
    assert line == (
        "error: --boards names pool 'farm' twice (pool:farm and pool:farm*2): "
        "write it once with the total count (pool:farm*3)"
    )


def test_more_boards_than_the_pool_has(lab: Lab, tiny: Path, tmp_path: Path) -> None:
    line = _error_line(_cli(*_run_args(lab, tiny, tmp_path / "r", "pool:farm*5")))
    assert line.startswith("error: pool 'farm' has 4 places (lab-1, lab-2, lab-3, lab-4): ask for at most 4")


def test_an_unreachable_coordinator(lab: Lab, tiny: Path, tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    inventory = tmp_path / "boards.toml"
    inventory.write_text(lab.inventory.read_text().replace(lab.address, dead))
    t = time.monotonic()
    out = _cli(*_run_args(lab, tiny, tmp_path / "r", "pool:farm", inventory=inventory))
    line = _error_line(out)
    assert time.monotonic() - t < 20
    assert line.startswith(f"error: pool 'farm': coordinator {dead} refused the connection or is down"), line


def test_labgrid_not_installed_names_the_extra(lab: Lab, tiny: Path, tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['labgrid'] = None; sys.argv[0] = 'edgebench'\nfrom edgebench.cli import main\nmain()"
    )
    out = _cli(*_run_args(lab, tiny, tmp_path / "r", "pool:farm"), prefix=(sys.executable, "-c", code))
    line = _error_line(out)
    assert "pools of boards need labgrid, which is not installed" in line
    assert line.endswith("pip install 'edgebench[lab]'"), line


# --- SIGTERM: exit 143, places released


@pytest.fixture
def held_solo(lab: Lab) -> Iterator[subprocess.Popen[str]]:
    holder = _holder(lab, "pool:solo", 60.0)
    try:
        _wait_for_line(holder, "HOLDING ")
        yield holder
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(10)


def _popen_run(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([EDGEBENCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _stderr_until(proc: subprocess.Popen[str], prefix: str, timeout: float = 60) -> list[str]:
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line.rstrip("\n"))
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"never printed {prefix!r} (exit {proc.poll()}): {seen}")


def test_sigterm_while_waiting_exits_143_and_cancels_the_reservation(
    lab: Lab, tiny: Path, tmp_path: Path, held_solo: subprocess.Popen[str]
) -> None:
    proc = _popen_run(_run_args(lab, tiny, tmp_path / "r", "pool:solo", "--wait-timeout", "60"))
    try:
        seen = _stderr_until(proc, "waiting for solo: reservation ")
        assert "lab-solo acquired by " in seen[-1] and f":{held_solo.pid}/" in seen[-1], seen
        assert len(leftovers(lab.address)[0]) == 2  # the holder's and the run's
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 143
        _out, err = proc.communicate()
    finally:
        proc.kill()
    assert "error: interrupted by SIGTERM" in err
    res, held = leftovers(lab.address)  # only the holder's reservation and place are left
    assert len(res) == 1 and len(held) == 1 and f":{held_solo.pid}/" in held[0], (res, held)


def _wait_for_a_process(results: Path, timeout: float = 60) -> None:
    """Until the harness's progress file says an agent process finished on a board."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for progress in (results / "logs").glob(".*.progress"):
            if '"process"' in progress.read_text(errors="replace"):
                return
        time.sleep(0.1)
    raise AssertionError(f"no agent process finished within {timeout} s")


def test_sigterm_while_measuring_exits_143_and_releases_the_places(lab: Lab, tiny: Path, tmp_path: Path) -> None:
    results = tmp_path / "r"
    proc = _popen_run(_run_args(lab, tiny, results, "pool:farm*2", "--repeats", "20"))
    try:
        _stderr_until(proc, "acquired ")
        _wait_for_a_process(results)  # the harness measures on a leased board
        assert len(leftovers(lab.address)[1]) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
        _out, err = proc.communicate()
    finally:
        proc.kill()
    assert "interrupted by SIGTERM" in err, err
    assert leftovers(lab.address) == ([], [])
    for path in list_runs(results):  # what finished is stored, marked incomplete
        run = read_run(path)
        assert not run.complete and run.interrupted == "interrupted by SIGTERM"
