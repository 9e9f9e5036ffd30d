"""Targets benchmarks (run with `pytest tests/perf/perf_targets.py -s`); they print figures.

- wall time of one run on 4 farm boards vs the slowest board alone (goal <= 1.25x, not the sum);
- bytes sent on a repeated run (goal 0 payload bytes);
- upload throughput of a 20 MB artifact over the SSH driver.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edgebench.targets.deploy import deploy
from edgebench.targets.farm import farm_up, find_sshd
from edgebench.targets.group import for_each_board
from edgebench.testing import CountingSSHDriver
from edgebench.testing.runs import measure_variant

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from _targets_models import mlp_variant

SETTINGS = {"min_time_s": 1.0, "min_rounds": 50, "warmup_min_s": 0.1}


@pytest.fixture(scope="module")
def farm4(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if find_sshd() is None:
        pytest.skip("OpenSSH sshd is not installed: apt-get install -y openssh-server")
    f = farm_up(tmp_path_factory.mktemp("perf-farm"), 4)
    yield f
    f.down()


def test_parallel_run_vs_slowest_board(farm4: Any, tmp_path: Path) -> None:
    v = mlp_variant(tmp_path / "v")
    boards = farm4.boards

    def one(d: Any) -> dict[str, Any]:
        return measure_variant(d, v, settings=SETTINGS, timeout=300)

    for_each_board(boards, one)  # warm the caches: measure the runs, not the first upload
    singles = {}
    for b in boards:
        t = time.monotonic()
        r = for_each_board([b], one)
        singles[b.name] = time.monotonic() - t
        assert isinstance(r[b.name], dict) and r[b.name]["ok"]
    t = time.monotonic()
    res = for_each_board(boards, one)
    together = time.monotonic() - t
    assert all(isinstance(m, dict) and m["ok"] for m in res.values())
    slowest = max(singles, key=lambda k: singles[k])
    print(f"\n[targets perf] limits: {farm4.limits_note}")
    for name, s in singles.items():
        print(f"[targets perf]   {name:8s} ({farm4.member(name).profile:8s}) alone {s:6.2f} s")
    print(
        f"[targets perf] 4 boards in parallel: {together:.2f} s; slowest alone ({slowest}): {singles[slowest]:.2f} s; "
        f"ratio {together / singles[slowest]:.2f}x (goal <= 1.25x); sum of singles {sum(singles.values()):.2f} s"
    )


def test_repeated_run_sends_nothing(farm4: Any, tmp_path: Path) -> None:
    v = mlp_variant(tmp_path / "v", name="repeat", seed=3)

    def one(d: Any) -> Any:
        measure_variant(d, v, settings={"min_time_s": 0.2, "min_rounds": 20}, timeout=120)
        return dataclasses.replace(d.stats)

    first = for_each_board(farm4.boards, one, driver_factory=CountingSSHDriver)
    second = for_each_board(farm4.boards, one, driver_factory=CountingSSHDriver)
    up1 = sum(s.bytes_uploaded for s in first.values())
    up2 = sum(s.bytes_uploaded for s in second.values())
    wire1 = sum(s.wire_sent for s in first.values())
    wire2 = sum(s.wire_sent for s in second.values())
    print(
        f"\n[targets perf] first run: {up1:,} payload bytes ({wire1:,} on the wire); "
        f"repeated run: {up2:,} payload bytes (goal 0), {wire2:,} on the wire (commands only)"
    )


def test_upload_throughput_20mb(farm4: Any, tmp_path: Path) -> None:
    art = tmp_path / "big.bin"
    art.write_bytes(os.urandom(20 * 1024 * 1024))
    board = farm4.board("farm-1")
    d = CountingSSHDriver(board)
    try:
        d.activate()
        t = time.monotonic()
        deploy(d, art)
        dt = time.monotonic() - t
        t = time.monotonic()
        deploy(CountingSSHDriver(board), art)  # new connection: verified on the board, not resent
        dt2 = time.monotonic() - t
    finally:
        d.deactivate()
    print(
        f"\n[targets perf] 20 MB artifact: uploaded+verified+renamed in {dt:.2f} s = {20 / dt:.1f} MB/s; "
        f"already-present check on a new connection {dt2:.2f} s"
    )
