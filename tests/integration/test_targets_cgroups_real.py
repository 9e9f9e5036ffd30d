"""Board limits on this machine's real cgroup hierarchy (v1 here; the same test runs the v2
path on a unified-hierarchy host): a real process joins, the kernel reports the limits,
the CPU limit changes while it runs, and everything is removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgebench.agent.build import agent_path
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
        _joined(board_cgroups, [sys.executable, str(agent_path()), "--probe", "[]"]),
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


def _real_v2_root() -> Path:
    for root in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):  # unified, or hybrid's v2 part
        if (root / "cgroup.controllers").exists() and os.access(root / "cgroup.procs", os.W_OK):
            return root
    pytest.skip("no writable cgroup v2 hierarchy here")


def test_v2_folders_behave_on_the_real_kernel_as_the_fake_tree_assumes() -> None:
    # This machine's v2 hierarchy may lack the cpu and memory controllers (hybrid layout: they
    # sit in v1), so no limits here: it checks the kernel behaviour the unit tests' fake tree
    # emulates — a board folder is removed with its control files, not while a process is
    # inside, and the shared parent goes with its last board — and the support message.
    root = _real_v2_root()
    ok, note = cgroups.cgroup_support(root)
    have = set((root / "cgroup.controllers").read_text().split())
    if not {"cpu", "memory"} <= have:
        assert not ok and note.startswith(f"cgroup v2 at {root} offers no ") and "(available: " in note
    parent = root / cgroups.V2_PARENT
    board = parent / f"edgebench-test-{uuid.uuid4().hex[:8]}"
    board.mkdir(parents=True)
    assert (board / "cgroup.procs").exists()  # the kernel made its control files
    proc = subprocess.Popen(_joined([str(board)], ["sleep", "60"]))
    try:
        for _ in range(100):
            if str(proc.pid) in (board / "cgroup.procs").read_text().split():
                break
            time.sleep(0.05)
        assert f"0::/{board.relative_to(root)}" in Path(f"/proc/{proc.pid}/cgroup").read_text()
        cgroups.remove_cgroups([str(board)], tries=2)
        assert board.exists()  # busy: a process is inside
    finally:
        proc.kill()
        proc.wait()
    cgroups.remove_cgroups([str(board)])
    assert not board.exists()
    assert not parent.exists() or any(p.is_dir() for p in parent.iterdir())  # gone unless another farm uses it
