"""Pools of boards through a real labgrid coordinator and exporter (see conftest.py): reserve, wait,
acquire, read the NetworkService, measure, release in every case; the bad inputs, each one line
and nothing left behind (``lab_is_clean`` checks the coordinator after every test)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _targets_models import mlp_variant

from edgebench.bench.repeats import Planned, measure_interleaved
from edgebench.bench.settings import RunSettings
from edgebench.errors import MissingDependency, UserError
from edgebench.targets.lab import (
    LabClient,
    LabError,
    LabWaitTimeout,
    Pool,
    connected,
    lease,
    parse_pool_ref,
    pool_status,
    resolve_pool,
)
from edgebench.targets.registry import driver_for

from .conftest import Lab, labgrid_tool, leftovers

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
HOLDER = Path(__file__).with_name("holder.py")
REPO = Path(__file__).resolve().parents[3]


def _pools(lab: Lab) -> dict[str, Pool]:
    return lab.pools()  # type: ignore[return-value]


def _holder(lab: Lab, ref: str, hold: float, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, str(HOLDER), str(lab.inventory), ref, str(hold), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 30) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    err = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"holder never printed {prefix!r} (exit {proc.poll()}): {err[-2000:]}")


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


def test_lease_reserves_waits_acquires_reads_the_resource_and_releases(lab: Lab) -> None:
    pool = _pools(lab)["farm"]
    lines: list[str] = []
    with lease(pool, 2, progress=lines.append) as held:
        assert len(held.boards) == 2 and len(set(held.places)) == 2
        res, acquired = leftovers(lab.address)
        assert sorted(a.split(" by ")[0] for a in acquired) == sorted(held.places)
        assert all(f":{os.getpid()}/" in a for a in acquired), acquired  # HOST:PID/USER
        assert sorted(r.split()[0] for r in res) == sorted(held.tokens) and all(r.endswith("acquired") for r in res)
        for board in held.boards:
            member = lab.farm.member(
                {"lab-1": "farm-1", "lab-2": "farm-2", "lab-3": "farm-3", "lab-4": "farm-1"}[board.name]
            )
            assert (board.host, board.port) == (member.address, member.port)  # read from the NetworkService
            assert board.identity_file == str(lab.root / "id_lab") and board.python == lab.farm.python
            assert board.workdir == str(lab.root / "work" / board.name)
            assert board.tags["lab.place"] == board.name and board.tags["lab.exporter"] == "lab-exporter"
            assert board.tags["lab.pool"] == "farm" and board.tags["board"] == "farm"
            assert board.tags["lab.coordinator"] == lab.address
    assert lines and lines[-1].startswith("acquired ")
    assert leftovers(lab.address) == ([], [])


def test_measuring_on_a_board_of_the_pool_through_the_runner(lab: Lab, tmp_path: Path) -> None:
    """The Board built from labgrid's NetworkService measures like any board (the runner under `edgebench run`)."""
    variant = mlp_variant(tmp_path / "variants", width=64)
    settings = RunSettings(repeats=2, warmup_min_iters=3, warmup_min_s=0.0, min_rounds=20, min_time_s=0.05)
    with lease(_pools(lab)["farm"]) as held:
        (board,) = held.boards
        driver = driver_for(board)
        driver.activate()
        try:
            with driver.lock(60):
                (m,) = measure_interleaved(driver, [Planned(variant)], settings)
        finally:
            driver.deactivate()
    assert m.ok, m.error
    assert m.board == board.name and len(m.samples_ns or []) >= 20
    assert m.fingerprint is not None and m.fingerprint["tags"]["lab.place"] == board.name
    assert m.fingerprint["address"] == board.host


def test_two_clients_contend_for_one_place_the_second_waits_and_gets_it(lab: Lab) -> None:
    first = _holder(lab, "pool:solo", 4.0)
    try:
        acquired = _wait_for_line(first, "HOLDING ")
        lines: list[tuple[float, str]] = []
        t0 = time.time()
        with lease(_pools(lab)["solo"], progress=lambda s: lines.append((time.time(), s)), poll_s=0.3) as held:
            got = time.time()
            assert held.places == ["lab-solo"]
        released = _wait_for_line(first, "RELEASED ")
        assert first.wait(10) == 0
    finally:
        first.kill()
    waiting = [s for _, s in lines if s.startswith("waiting for solo: reservation ")]
    assert waiting, lines
    assert re.search(rf"0 ahead, \d+ s; lab-solo acquired by \S+:{first.pid}/\S+ since \d\d:\d\d:\d\d", waiting[0])
    assert float(released.split()[1]) <= got  # it had released before we got it
    assert got - t0 >= 4.0 - (t0 - float(acquired.split()[2])) - 0.5
    assert held.waited_s > 1


def test_places_are_released_when_the_block_raises(lab: Lab) -> None:
    with pytest.raises(RuntimeError, match="boom"), lease(_pools(lab)["farm"], 3) as held:
        assert len(held.places) == 3
        raise RuntimeError("boom")
    assert held.places == [] and held.tokens == []
    assert leftovers(lab.address) == ([], [])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_a_holder_releases_its_places(lab: Lab, sig: signal.Signals) -> None:
    proc = _holder(lab, "pool:farm*2", 60.0)
    try:
        _wait_for_line(proc, "HOLDING ")
        assert len(leftovers(lab.address)[1]) == 2
        proc.send_signal(sig)
        line = _wait_for_line(proc, "INTERRUPTED ")
        assert proc.wait(10) == 128 + sig
    finally:
        proc.kill()
    assert line.split()[1] == str(int(sig))
    assert leftovers(lab.address) == ([], [])


def test_a_signal_while_waiting_cancels_the_reservation(lab: Lab) -> None:
    first = _holder(lab, "pool:solo", 30.0)
    second = None
    try:
        _wait_for_line(first, "HOLDING ")
        second = _holder(lab, "pool:solo", 1.0)
        _wait_for_line(second, "waiting for solo")
        assert len(leftovers(lab.address)[0]) == 2  # the first's (acquired) and the second's (waiting)
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 143
        assert len(leftovers(lab.address)[0]) == 1
        first.send_signal(signal.SIGTERM)
        assert first.wait(10) == 143
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_a_sigkilled_holder_keeps_its_place_and_the_waiting_line_says_who_and_how_to_free_it(lab: Lab) -> None:
    proc = _holder(lab, "pool:solo", 60.0)
    _wait_for_line(proc, "HOLDING ")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    res, held = leftovers(lab.address)
    assert len(held) == 1 and held[0].startswith("lab-solo by ") and f":{proc.pid}/" in held[0]  # labgrid keeps it
    lines: list[str] = []
    with (
        pytest.raises(LabWaitTimeout) as err,
        lease(_pools(lab)["solo"], progress=lines.append, wait_timeout=2, poll_s=0.3),
    ):
        pass
    line = next(s for s in lines if s.startswith("waiting for solo"))
    holder = held[0].split(" by ")[1]
    assert f"lab-solo acquired by {holder} since " in line
    assert f"its process {proc.pid} is gone: a dead run" in line
    message = _one_line(err.value)
    assert "pool 'solo': no place allocated within the wait timeout of 2 s" in message
    command = re.search(r"if \S+ is a dead run: (labgrid-client .*?)\)$", message)
    assert command is not None, message
    assert f"-p lab-solo release-from {holder}" in command.group(1) and "cancel-reservation" in command.group(1)
    assert leftovers(lab.address)[0] == [r for r in res]  # ours was cancelled; the dead run's is still there
    # the commands the message names free the place: run them as written
    tool = labgrid_tool("labgrid-client")
    assert tool is not None
    for part in command.group(1).split(" && "):
        argv = shlex.split(part)
        subprocess.run([tool, *argv[1:]], check=True, capture_output=True, timeout=30)
    t = time.monotonic()
    with lease(_pools(lab)["solo"], wait_timeout=5, poll_s=0.2) as again:
        assert again.places == ["lab-solo"]
    assert time.monotonic() - t < 5


# --- bad input: one line naming the pool or place and the fix, nothing left behind


def test_unreachable_coordinator(lab: Lab) -> None:
    from .conftest import free_port

    pool = _pools(lab)["farm"]
    dead = Pool("farm", f"127.0.0.1:{free_port()}", pool.tags, pool.defaults)
    t = time.monotonic()
    with pytest.raises(LabError) as err, lease(dead):
        pass
    message = _one_line(err.value)
    assert time.monotonic() - t < 5
    assert message.startswith(f"pool 'farm': coordinator {dead.coordinator} refused the connection or is down")
    assert "labgrid-coordinator runs there" in message


def test_a_tag_filter_that_matches_no_place(lab: Lab) -> None:
    with pytest.raises(LabError) as err, lease(_pools(lab)["nowhere"]):
        pass
    message = _one_line(err.value)
    assert message.startswith(f"pool 'nowhere': no place of coordinator {lab.address} has the tags board=none-such")
    assert "board=farm" in message and "set-tags board=none-such" in message
    assert leftovers(lab.address) == ([], [])


def test_a_place_without_a_network_resource(lab: Lab) -> None:
    with pytest.raises(LabError) as err, lease(_pools(lab)["bare"]):
        pass
    message = _one_line(err.value)
    assert message.startswith("pool 'bare': 0 of its 1 places can be used and 1 are needed; lab-bare: has no ")
    assert "add-match EXPORTER/GROUP/NetworkService" in message
    with connected(_pools(lab)["bare"]) as client, pytest.raises(LabError, match="place 'lab-bare' has no Network"):
        client.endpoint("lab-bare")
    assert leftovers(lab.address) == ([], [])


def test_a_pool_that_does_not_exist_suggests_the_real_ones(lab: Lab) -> None:
    with pytest.raises(UserError) as err:
        resolve_pool(_pools(lab), parse_pool_ref("pool:fram*2"))
    message = _one_line(err.value)
    assert message.startswith("unknown pool 'fram' (did you mean 'farm'?): known pools are bare, farm, nowhere, solo")


def test_more_boards_than_the_pool_has(lab: Lab) -> None:
    pool = _pools(lab)["farm"]
    with connected(pool) as client:
        assert [p.name for p in pool_status(client, pool)] == ["lab-1", "lab-2", "lab-3", "lab-4"]
    with pytest.raises(LabError) as err, lease(pool, parse_pool_ref("pool:farm*5").count):
        pass
    message = _one_line(err.value)
    assert message.startswith("pool 'farm' has 4 places (lab-1, lab-2, lab-3, lab-4): ask for at most 4 (pool:farm*4)")
    assert leftovers(lab.address) == ([], [])


def test_labgrid_not_installed_names_the_extra(lab: Lab) -> None:
    code = (
        "import sys; sys.modules['labgrid'] = None\n"
        "from edgebench.targets.lab import LabClient\n"
        "try:\n    LabClient(sys.argv[1])\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, lab.address], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(MissingDependency.__name__)
    assert "pools of boards need labgrid, which is not installed" in out.stdout
    assert "pip install 'edgebench[lab]'" in out.stdout and out.stdout.count("\n") == 1


def test_pool_status_shows_each_place_state(lab: Lab) -> None:
    pool = _pools(lab)["farm"]
    with lease(pool) as held, LabClient(lab.address) as client:
        states = {p.name: p for p in pool_status(client, pool)}
        (mine,) = held.places
        assert states[mine].state == "acquired" and states[mine].describe().startswith("acquired by ")
        assert {p.state for n, p in states.items() if n != mine} == {"free"}
