"""cgroup v1 limits for farm boards: a CPU quota and a memory limit per board."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 10_000  # short periods spread throttling evenly over a measurement (100 ms made it bursty)


def cgroup_support() -> tuple[bool, str]:
    """Whether boards can get CPU and memory limits here, and why not."""
    if os.geteuid() != 0:
        return False, "not running as root, so CPU and memory limits cannot be set (boards run unlimited)"
    for ctrl, knob in (("cpu", "cpu.cfs_quota_us"), ("memory", "memory.limit_in_bytes")):
        base = CGROUP_ROOT / ctrl
        if not (base / knob).exists():
            return False, f"cgroup v1 {ctrl} controller not found at {base} (boards run unlimited)"
        if not os.access(base, os.W_OK):
            return False, f"{base} is not writable (boards run unlimited)"
    return True, "CPU quota and memory limit set per board with cgroup v1"


def _write(path: Path, knob: str, value: str) -> None:
    (path / knob).write_text(value)


def make_cgroups(name: str, cpu_cores: float | None, memory_mb: int | None) -> list[str]:
    """Create the cgroups of one board: a CPU quota and a memory limit (each only when given).

    Returns:
        The cgroup folders; a process joins by writing its pid to ``<folder>/cgroup.procs``.
    """
    made: list[str] = []
    try:
        _fill(made, name, cpu_cores, memory_mb)
    except BaseException:
        remove_cgroups(made)  # never leave half a board's limits behind
        raise
    return made


def _fill(made: list[str], name: str, cpu_cores: float | None, memory_mb: int | None) -> None:
    if cpu_cores is not None:
        cpu = CGROUP_ROOT / "cpu" / name
        cpu.mkdir(exist_ok=True)
        made.append(str(cpu))
        _write(cpu, "cpu.cfs_period_us", str(CPU_PERIOD_US))
        _write(cpu, "cpu.cfs_quota_us", str(int(cpu_cores * CPU_PERIOD_US)))
    if memory_mb is not None:
        mem = CGROUP_ROOT / "memory" / name
        mem.mkdir(exist_ok=True)
        made.append(str(mem))
        limit = str(memory_mb * 1024 * 1024)
        _write(mem, "memory.limit_in_bytes", limit)
        if (mem / "memory.memsw.limit_in_bytes").exists():
            with contextlib.suppress(OSError):  # no swap accounting: the plain limit is enough
                _write(mem, "memory.memsw.limit_in_bytes", limit)


def remove_cgroups(folders: list[str]) -> None:
    """Remove cgroup folders once their processes are gone (retrying while they exit)."""
    for cg in folders:
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
