"""Board limits on this machine's real cgroup hierarchy (v1 here; the same test runs the v2
path on a unified-hierarchy host): a real process joins, the kernel reports the limits,
the CPU limit changes while it runs, and everything is removed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebench.bench.runner import AGENT
from edgebench.targets import cgroups

MIB = 1024 * 1024


@pytest.fixture
def board_cgroups() -> Iterator[list[str]]:
    ok, note = cgroups.cgroup_support()
    if not ok:
        pytest.skip(note)
    folders = cgroups.make_cgroups(f"edgebench-test-{uuid.uuid4().hex[:8]}", 0.5, 512)
    yield folders
    cgroups.remove_cgroups(folders)
    assert not any(Path(f).exists() for f in folders)


def _joined(folders: list[str], argv: list[str]) -> list[str]:
    """``argv`` run by a shell that first joins every folder (as the farm's sshd does)."""
    joins = " && ".join(f'echo $$ > "{Path(f) / "cgroup.procs"}"' for f in folders)
    return ["sh", "-c", f'{joins} && exec "$@"', "sh", *argv]


def test_a_process_in_the_board_cgroup_sees_its_limits(board_cgroups: list[str]) -> None:
    out = subprocess.run(
        _joined(board_cgroups, [sys.executable, str(AGENT), "--probe", "[]"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    fp = json.loads(out.stdout)
    # the agent reads the limits back from the kernel's own files (v1 or v2)
    assert fp["cpu_quota_cores"] == 0.5 and fp["memory_limit_bytes"] == 512 * MIB


def test_cpu_limit_changes_while_the_board_runs(board_cgroups: list[str]) -> None:
    proc = subprocess.Popen(_joined(board_cgroups, ["sleep", "60"]))
    try:
        for _ in range(100):  # wait for the shell to join before checking
            if all(str(proc.pid) in (Path(f) / "cgroup.procs").read_text().split() for f in board_cgroups):
                break
            time.sleep(0.05)
        cgroups.set_cpu_limit(board_cgroups, 1.0, period_us=1000)
        if cgroups.hierarchy() == "v2":
            assert (Path(board_cgroups[0]) / "cpu.max").read_text().split() == ["1000", "1000"]
        else:
            cpu = Path(board_cgroups[0])
            assert (cpu / "cpu.cfs_period_us").read_text().strip() == "1000"
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "1000"
        assert all(str(proc.pid) in (Path(f) / "cgroup.procs").read_text().split() for f in board_cgroups)
    finally:
        proc.kill()
        proc.wait()
