"""Farm limits on cgroup v2 and v1, against fake cgroup trees in tmp_path.

A fake tree is plain folders and files: the kernel's own behaviour that matters here
(``rmdir`` of a cgroup removes its control files, and fails while processes or child
cgroups are in it) is emulated by ``fake_rmdir``. The real v1 path runs in
tests/integration (test_targets_cgroups_real.py, test_targets_farm.py).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from edgebench.errors import FarmError
from edgebench.targets import cgroups

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _as_root_with_cgroupfs_rmdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_rmdir = os.rmdir
    fake_root = tmp_path / "cgroup"

    def fake_rmdir(path: str | os.PathLike[str], **kw: object) -> None:
        p = Path(path)
        if kw or fake_root not in p.parents:  # shutil.rmtree and everything outside the fake tree
            real_rmdir(path, **kw)  # type: ignore[arg-type]
            return
        if not p.exists():
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(p))
        if any(c.is_dir() for c in p.iterdir()):
            raise OSError(errno.EBUSY, "Device or resource busy", str(p))  # child cgroups
        procs = p / "cgroup.procs"
        if procs.exists() and procs.read_text().split():
            raise OSError(errno.EBUSY, "Device or resource busy", str(p))  # processes inside
        if p.name in ("cpu", "memory", "unified"):
            raise OSError(errno.EBUSY, "Device or resource busy", str(p))  # a hierarchy's mount point
        for c in p.iterdir():
            c.unlink()  # control files go with the cgroup
        real_rmdir(p)

    monkeypatch.setattr(os, "rmdir", fake_rmdir)
    monkeypatch.setattr(os, "geteuid", lambda: 0)


def v2_tree(tmp_path: Path, controllers: str = "cpuset cpu io memory pids") -> Path:
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("\n")
    (root / "cgroup.procs").write_text("1\n")
    return root


def v1_tree(tmp_path: Path) -> Path:
    root = tmp_path / "cgroup"
    for ctrl, knob in (("cpu", "cpu.cfs_quota_us"), ("memory", "memory.limit_in_bytes")):
        (root / ctrl).mkdir(parents=True)
        (root / ctrl / knob).write_text("-1\n")
    (root / "unified").mkdir()
    (root / "unified" / "cgroup.controllers").write_text("hugetlb\n")  # hybrid, as on this machine
    return root


def test_v2_board_gets_cpu_max_memory_max_and_controllers_enabled(tmp_path: Path) -> None:
    root = v2_tree(tmp_path)
    assert cgroups.hierarchy(root) == "v2"
    ok, note = cgroups.cgroup_support(root)
    assert ok and "cgroup v2" in note, note
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"
    folders = cgroups.make_cgroups("board-1", 0.5, 512, root=root)
    board = root / "edgebench-farm" / "board-1"
    assert folders == [str(board)]  # one folder to join on v2
    assert (board / "cpu.max").read_text() == "5000 10000"
    assert (board / "memory.max").read_text() == str(512 * MIB)
    assert not (board / "memory.swap.max").exists()  # not created where the kernel has none
    assert (root / "edgebench-farm" / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert sorted(p.name for p in board.iterdir()) == ["cpu.max", "memory.max"]


def test_v2_swap_is_switched_off_where_accounted(tmp_path: Path) -> None:
    root = v2_tree(tmp_path)
    board = root / "edgebench-farm" / "b"
    board.mkdir(parents=True)
    (board / "memory.swap.max").write_text("max\n")
    assert cgroups.make_cgroups("b", None, 64, root=root) == [str(board)]
    assert (board / "memory.swap.max").read_text() == "0"
    assert (board / "memory.max").read_text() == str(64 * MIB)
    assert not (board / "cpu.max").exists()


def test_v2_controllers_already_enabled_are_not_rewritten(tmp_path: Path) -> None:
    root = v2_tree(tmp_path)
    (root / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")  # as systemd leaves it
    cgroups.make_cgroups("b", 1.5, None, period_us=100_000, root=root)
    assert (root / "cgroup.subtree_control").read_text() == "cpuset cpu io memory pids\n"
    assert (root / "edgebench-farm" / "b" / "cpu.max").read_text() == "150000 100000"


def test_no_limits_make_no_folders(tmp_path: Path) -> None:
    assert cgroups.make_cgroups("b", None, None, root=v2_tree(tmp_path)) == []
    assert not (tmp_path / "cgroup" / "edgebench-farm").exists()


def test_v1_board_gets_two_folders(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    assert cgroups.hierarchy(root) == "v1"
    ok, note = cgroups.cgroup_support(root)
    assert ok and "cgroup v1" in note
    (root / "memory" / "b").mkdir()
    (root / "memory" / "b" / "memory.memsw.limit_in_bytes").write_text("-1\n")
    folders = cgroups.make_cgroups("b", 0.5, 256, root=root)
    assert folders == [str(root / "cpu" / "b"), str(root / "memory" / "b")]
    assert (root / "cpu" / "b" / "cpu.cfs_period_us").read_text() == "10000"
    assert (root / "cpu" / "b" / "cpu.cfs_quota_us").read_text() == "5000"
    assert (root / "memory" / "b" / "memory.limit_in_bytes").read_text() == str(256 * MIB)
    assert (root / "memory" / "b" / "memory.memsw.limit_in_bytes").read_text() == str(256 * MIB)
    assert not (root / "edgebench-farm").exists()


@pytest.mark.parametrize("tree", [v2_tree, v1_tree])
def test_set_cpu_limit_changes_a_running_board(tmp_path: Path, tree: object) -> None:
    root = tree(tmp_path)  # type: ignore[operator]
    folders = cgroups.make_cgroups("b", 0.5, 128, root=root)
    cgroups.set_cpu_limit(folders, 1.0, period_us=1000)  # a 1 ms period
    if cgroups.hierarchy(root) == "v2":
        assert (Path(folders[0]) / "cpu.max").read_text() == "1000 1000"
        cgroups.set_cpu_limit(folders, None)
        assert (Path(folders[0]) / "cpu.max").read_text() == "max 10000"
        assert (Path(folders[0]) / "memory.max").read_text() == str(128 * MIB)
    else:
        cpu, mem = map(Path, folders)
        assert (cpu / "cpu.cfs_period_us").read_text() == "1000"
        assert (cpu / "cpu.cfs_quota_us").read_text() == "1000"
        cgroups.set_cpu_limit(folders, None)
        assert (cpu / "cpu.cfs_quota_us").read_text() == "-1"
        assert sorted(p.name for p in mem.iterdir()) == ["memory.limit_in_bytes"]  # memory folder untouched


def test_set_cpu_limit_refuses_quota_below_the_kernel_minimum(tmp_path: Path) -> None:
    folders = cgroups.make_cgroups("b", 0.5, None, root=v2_tree(tmp_path))
    with pytest.raises(
        FarmError,
        match=r"0\.5 cores per 1000 µs period is a quota of 500 µs, below the kernel's 1000 µs: "
        r"use a period of at least 2000 µs",
    ):
        cgroups.set_cpu_limit(folders, 0.5, period_us=1000)
    with pytest.raises(FarmError, match=r"CPU period 2000000 µs is outside"):
        cgroups.set_cpu_limit(folders, 1.0, period_us=2_000_000)
    assert (Path(folders[0]) / "cpu.max").read_text() == "5000 10000"  # unchanged


def test_set_cpu_limit_without_a_cpu_cgroup_says_how(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    folders = cgroups.make_cgroups("b", None, 128, root=root)  # v1: memory folder only
    with pytest.raises(FarmError, match=r"no CPU cgroup among .*start the farm with limits"):
        cgroups.set_cpu_limit(folders, 1.0)
    with pytest.raises(FarmError, match=r"no CPU cgroup"):
        cgroups.set_cpu_limit([], 1.0)


def test_make_refuses_a_bad_quota_before_creating_anything(tmp_path: Path) -> None:
    root = v2_tree(tmp_path)
    with pytest.raises(ValueError, match="below the kernel's 1000 µs"):
        cgroups.make_cgroups("b", 0.5, 64, period_us=1000, root=root)
    assert not (root / "edgebench-farm").exists()


def test_a_failed_make_leaves_nothing_behind(tmp_path: Path) -> None:
    root = v2_tree(tmp_path)
    (root / "edgebench-farm" / "b").mkdir(parents=True)
    (root / "edgebench-farm" / "b" / "memory.max").symlink_to(tmp_path / "gone" / "x")  # every write fails
    with pytest.raises(FileNotFoundError):
        cgroups.make_cgroups("b", 0.5, 64, root=root)
    assert not (root / "edgebench-farm").exists()


def test_remove_takes_the_v2_parent_with_the_last_board(tmp_path: Path) -> None:
    root = v2_tree(tmp_path)
    a = cgroups.make_cgroups("a", 0.5, 64, root=root)
    b = cgroups.make_cgroups("b", 1.0, 64, root=root)
    cgroups.remove_cgroups(a)
    assert not Path(a[0]).exists() and Path(b[0]).exists()
    cgroups.remove_cgroups(b)
    assert not (root / "edgebench-farm").exists()
    assert (root / "cgroup.controllers").exists()  # the hierarchy itself stays


def test_remove_gives_up_on_a_board_that_still_has_processes(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    folders = cgroups.make_cgroups("b", 0.5, 64, root=root)
    (Path(folders[0]) / "cgroup.procs").write_text("4242\n")
    cgroups.remove_cgroups(folders, tries=2)
    assert Path(folders[0]).exists() and not Path(folders[1]).exists()
    cgroups.remove_cgroups(folders + folders, tries=1)  # already gone: no error


def test_fallback_not_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    ok, note = cgroups.cgroup_support(v2_tree(tmp_path))
    assert not ok and note == "not running as root, so CPU and memory limits cannot be set (boards run unlimited)"


def test_fallback_v2_without_the_memory_controller(tmp_path: Path) -> None:
    root = v2_tree(tmp_path, controllers="cpuset cpu io pids")
    ok, note = cgroups.cgroup_support(root)
    assert not ok
    assert (
        note
        == f"cgroup v2 at {root} offers no memory controller (available: cpu cpuset io pids) (boards run unlimited)"
    )


def test_fallback_v2_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = v2_tree(tmp_path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if "subtree_control" in str(p) else real_access(p, m))
    ok, note = cgroups.cgroup_support(root)
    assert not ok and note == f"{root / 'cgroup.subtree_control'} is not writable (boards run unlimited)"
    assert (root / "cgroup.subtree_control").read_text() == "\n"


def test_fallback_v2_controllers_cannot_be_enabled(tmp_path: Path) -> None:
    root = v2_tree(tmp_path)
    (root / "cgroup.subtree_control").unlink()
    (root / "cgroup.subtree_control").mkdir()  # every write fails, as EBUSY would in a container
    ok, note = cgroups.cgroup_support(root)
    assert not ok
    assert note.startswith(f"cannot enable the cpu and memory controllers in {root / 'cgroup.subtree_control'} (")
    assert note.endswith("(boards run unlimited)")


def test_fallback_v1_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = v1_tree(tmp_path)
    monkeypatch.setattr(os, "access", lambda p, m: Path(p).name != "memory")
    ok, note = cgroups.cgroup_support(root)
    assert not ok and note == f"{root / 'memory'} is not writable (boards run unlimited)"


def test_fallback_hybrid_without_v1_controllers(tmp_path: Path) -> None:
    root = v1_tree(tmp_path)
    shutil.rmtree(root / "memory")
    assert cgroups.hierarchy(root) is None
    ok, note = cgroups.cgroup_support(root)
    assert not ok and note.startswith(f"hybrid cgroup layout at {root}: no v1 cpu and memory controllers")
    assert "systemd.unified_cgroup_hierarchy=1" in note


def test_fallback_no_cgroups_at_all(tmp_path: Path) -> None:
    ok, note = cgroups.cgroup_support(tmp_path)
    assert not ok and note.startswith("no cgroup v2") and note.endswith("(boards run unlimited)")


def test_root_defaults_to_the_module_attribute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "CGROUP_ROOT", v2_tree(tmp_path))
    assert cgroups.hierarchy() == "v2"
    assert cgroups.make_cgroups("b", 2, None) == [str(tmp_path / "cgroup" / "edgebench-farm" / "b")]
