"""CPU and memory limits for farm boards, with cgroup v2 (unified) or cgroup v1.

v2 (``/sys/fs/cgroup/cgroup.controllers`` exists, today's distributions): one folder per
board under ``/sys/fs/cgroup/edgebench-farm/``, with ``cpu.max`` ("<quota> <period>" in µs),
``memory.max`` (bytes) and ``memory.swap.max`` 0; the ``cpu`` and ``memory`` controllers are
enabled in the root's and the parent's ``cgroup.subtree_control``. v1 (``/sys/fs/cgroup/cpu``
and ``/memory`` mounted): one folder per board in each, with ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us`` and ``memory.limit_in_bytes``. Either way a process joins a board by
writing its pid to ``<folder>/cgroup.procs`` of each folder `make_cgroups` returns.

Every function takes ``root`` (default: the module's ``CGROUP_ROOT``, read at call time) so
tests can point it at a fake tree.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

from edgebench.errors import FarmError

CGROUP_ROOT = Path("/sys/fs/cgroup")
V2_PARENT = "edgebench-farm"  # the v2 folder holding every board's folder
CPU_PERIOD_US = 10_000  # short periods spread throttling evenly over a measurement (100 ms made it bursty)
# The kernel's bounds for a CFS period and quota (both hierarchies): 1 ms .. 1 s, quota >= 1 ms.
MIN_US, MAX_PERIOD_US = 1_000, 1_000_000
CONTROLLERS = ("cpu", "memory")
UNLIMITED = "boards run unlimited"
_V1_KNOBS = (("cpu", "cpu.cfs_quota_us"), ("memory", "memory.limit_in_bytes"))


def _root(root: Path | None) -> Path:
    return CGROUP_ROOT if root is None else Path(root)


def hierarchy(root: Path | None = None) -> str | None:
    """Which cgroup hierarchy limits boards here: ``"v2"``, ``"v1"`` or None (neither usable)."""
    base = _root(root)
    if (base / "cgroup.controllers").exists():
        return "v2"
    if all((base / c / knob).exists() for c, knob in _V1_KNOBS):
        return "v1"
    return None


def _controllers(path: Path, name: str) -> set[str]:
    try:
        return {c.lstrip("+") for c in (path / name).read_text().split()}
    except OSError:
        return set()


def _enable_v2(folder: Path) -> None:
    """Enable cpu and memory for ``folder``'s children (a no-op when they already are).

    Raises:
        OSError: the kernel refused (read-only, or processes in a non-root folder).
    """
    missing = [c for c in CONTROLLERS if c not in _controllers(folder, "cgroup.subtree_control")]
    if missing:
        (folder / "cgroup.subtree_control").write_text(" ".join("+" + c for c in missing))


def cgroup_support(root: Path | None = None) -> tuple[bool, str]:
    """Whether boards can get CPU and memory limits here, and why not.

    On v2 this enables the cpu and memory controllers in the root's
    ``cgroup.subtree_control`` when they are not yet (the check is that the kernel allows it).

    Returns:
        (usable, a one-line note naming the hierarchy, or the reason boards run unlimited).
    """
    base = _root(root)
    if os.geteuid() != 0:
        return False, f"not running as root, so CPU and memory limits cannot be set ({UNLIMITED})"
    kind = hierarchy(base)
    if kind == "v2":
        have = _controllers(base, "cgroup.controllers")
        lacking = [c for c in CONTROLLERS if c not in have]
        if lacking:
            return False, (
                f"cgroup v2 at {base} offers no {' and '.join(lacking)} controller "
                f"(available: {' '.join(sorted(have)) or 'none'}) ({UNLIMITED})"
            )
        if not os.access(base / "cgroup.subtree_control", os.W_OK):
            return False, f"{base / 'cgroup.subtree_control'} is not writable ({UNLIMITED})"
        try:
            _enable_v2(base)
        except OSError as exc:
            return False, (
                f"cannot enable the cpu and memory controllers in {base / 'cgroup.subtree_control'} "
                f"({exc.strerror or exc}) ({UNLIMITED})"
            )
        return True, f"CPU quota and memory limit set per board with cgroup v2 ({base / V2_PARENT})"
    if kind == "v1":
        for ctrl, _knob in _V1_KNOBS:
            if not os.access(base / ctrl, os.W_OK):
                return False, f"{base / ctrl} is not writable ({UNLIMITED})"
        return True, "CPU quota and memory limit set per board with cgroup v1"
    if (base / "unified" / "cgroup.controllers").exists():
        return False, (
            f"hybrid cgroup layout at {base}: no v1 cpu and memory controllers, and the unified hierarchy "
            f"at {base / 'unified'} does not hold them (boot with systemd.unified_cgroup_hierarchy=1) ({UNLIMITED})"
        )
    return (
        False,
        f"no cgroup v2 ({base / 'cgroup.controllers'}) nor v1 cpu and memory controllers at {base} ({UNLIMITED})",
    )


def _quota_us(cores: float, period_us: int) -> int:
    """The CFS quota for ``cores`` per ``period_us``, within the kernel's bounds.

    Raises:
        ValueError: a period outside 1 ms .. 1 s, or a quota below 1 ms.
    """
    if not MIN_US <= period_us <= MAX_PERIOD_US:
        raise ValueError(f"CPU period {period_us} µs is outside the kernel's {MIN_US}..{MAX_PERIOD_US} µs")
    quota = round(cores * period_us)
    if quota < MIN_US:
        raise ValueError(
            f"{cores} cores per {period_us} µs period is a quota of {quota} µs, below the kernel's {MIN_US} µs: "
            f"use a period of at least {math.ceil(MIN_US / cores)} µs"
        )
    return quota


def make_cgroups(
    name: str,
    cpu_cores: float | None,
    memory_mb: int | None,
    *,
    period_us: int = CPU_PERIOD_US,
    root: Path | None = None,
) -> list[str]:
    """Create the cgroups of one board: a CPU quota and a memory limit (each only when given).

    Args:
        name: the board's folder name (unique per farm and board).
        cpu_cores: CPU quota in cores (0.5 = half a core), or None for no CPU limit.
        memory_mb: memory limit in MiB (swap included where the kernel accounts it), or None.
        period_us: the CFS period the quota is spread over.
        root: the cgroup mount; default ``CGROUP_ROOT``.

    Returns:
        The folders to join (v2: one, v1: one per limit, none without limits); a process joins
        by writing its pid to ``<folder>/cgroup.procs`` of each.

    Raises:
        ValueError: a CPU quota or period outside the kernel's bounds.
        OSError: the kernel refused a write (nothing of the board is left behind).
    """
    if cpu_cores is not None:
        _quota_us(cpu_cores, period_us)  # refuse before creating anything
    made: list[str] = []
    try:
        if hierarchy(root) == "v2":
            _fill_v2(made, _root(root), name, cpu_cores, memory_mb, period_us)
        else:
            _fill_v1(made, _root(root), name, cpu_cores, memory_mb, period_us)
    except BaseException:
        remove_cgroups(made, tries=1)  # never leave half a board's limits behind
        raise
    return made


def _fill_v2(made: list[str], base: Path, name: str, cores: float | None, mb: int | None, period_us: int) -> None:
    if cores is None and mb is None:
        return
    parent = base / V2_PARENT
    _enable_v2(base)
    parent.mkdir(exist_ok=True)
    _enable_v2(parent)  # the parent holds no process, so the kernel allows it
    board = parent / name
    board.mkdir(exist_ok=True)
    made.append(str(board))
    if cores is not None:
        _write_cpu([str(board)], cores, period_us)
    if mb is not None:
        (board / "memory.max").write_text(str(mb * 1024 * 1024))
        if (board / "memory.swap.max").exists():  # absent without swap accounting
            (board / "memory.swap.max").write_text("0")


def _fill_v1(made: list[str], base: Path, name: str, cores: float | None, mb: int | None, period_us: int) -> None:
    if cores is not None:
        cpu = base / "cpu" / name
        cpu.mkdir(exist_ok=True)
        made.append(str(cpu))
        _write_cpu([str(cpu)], cores, period_us)
    if mb is not None:
        mem = base / "memory" / name
        mem.mkdir(exist_ok=True)
        made.append(str(mem))
        limit = str(mb * 1024 * 1024)
        (mem / "memory.limit_in_bytes").write_text(limit)
        if (mem / "memory.memsw.limit_in_bytes").exists():
            with contextlib.suppress(OSError):  # no swap accounting: the plain limit is enough
                (mem / "memory.memsw.limit_in_bytes").write_text(limit)


def _write_cpu(folders: list[str], cores: float | None, period_us: int) -> int:
    quota = None if cores is None else _quota_us(cores, period_us)
    written = 0
    for f in map(Path, folders):
        if f.parent.name == V2_PARENT:
            (f / "cpu.max").write_text(f"{'max' if quota is None else quota} {period_us}")
            written += 1
        elif (f / "cpu.cfs_quota_us").exists() or f.parent.name == "cpu":
            # v1 checks quota against period on each write: lift the quota first, then set both
            (f / "cpu.cfs_quota_us").write_text("-1")
            (f / "cpu.cfs_period_us").write_text(str(period_us))
            (f / "cpu.cfs_quota_us").write_text(str(-1 if quota is None else quota))
            written += 1
    return written


def set_cpu_limit(folders: list[str], cores: float | None, period_us: int = CPU_PERIOD_US) -> None:
    """Change the CPU quota of a running board (its processes stay where they are).

    Args:
        folders: the board's folders, as `make_cgroups` returned them.
        cores: the new quota in cores, or None to lift it.
        period_us: the CFS period (1000 = 1 ms spreads the quota most evenly).

    Raises:
        FarmError: the board has no CPU cgroup (it was made without a CPU limit on v1, or
            without limits), or the quota or period is outside the kernel's bounds.
    """
    try:
        written = _write_cpu(folders, cores, period_us)
    except ValueError as exc:
        raise FarmError(f"cannot set the CPU limit: {exc}") from exc
    if not written:
        raise FarmError(
            f"no CPU cgroup among {folders or 'the board folders (none)'}: start the farm with limits "
            "(as root, without --no-limits) to change a board's CPU limit"
        )


def remove_cgroups(folders: list[str], tries: int = 50) -> None:
    """Remove cgroup folders once their processes are gone (retrying while they exit).

    The shared v2 parent folder is removed too once its last board is gone.
    """
    for cg in folders:
        for i in range(tries):
            try:
                os.rmdir(cg)
                break
            except FileNotFoundError:
                break
            except OSError:
                if i + 1 < tries:
                    time.sleep(0.1)
        parent = Path(cg).parent
        if parent.name == V2_PARENT:
            with contextlib.suppress(OSError):  # other boards (or another farm) still use it
                os.rmdir(parent)
