"""The board's fingerprint (``agent.pyz --probe``, ``edgebench boards check``): what the board is and what stops it."""

import os
import platform
from typing import Any, Dict, List, Optional

from .base import AgentError, first_line, np_module
from .device import device_state, read_file
from .runtimes import RUNTIMES


def _cpu_model() -> Optional[str]:
    text = read_file("/proc/cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        for line in text.splitlines():
            if ":" in line and line.split(":")[0].strip() == key:
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _memory_bytes() -> Optional[int]:
    for line in (read_file("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _os_name() -> str:
    for line in (read_file("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.platform()


def _cgroup_limits() -> Dict[str, Any]:
    """The CPU quota (cores) and memory limit (bytes) of this process's cgroup, v1 or v2."""
    out = {"cpu_quota_cores": None, "memory_limit_bytes": None}  # type: Dict[str, Any]
    for line in (read_file("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ctrls, path = parts[1].split(","), parts[2]
        if "cpu" in ctrls:
            base = "/sys/fs/cgroup/cpu" + path
            q, p = read_file(base + "/cpu.cfs_quota_us"), read_file(base + "/cpu.cfs_period_us")
            if q and p and int(q) > 0:
                out["cpu_quota_cores"] = int(q) / float(p)
        if "memory" in ctrls:
            m = read_file("/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes")
            if m and int(m) < (1 << 60):  # v1 writes "no limit" as a huge number
                out["memory_limit_bytes"] = int(m)
        if parts[0] == "0" and parts[1] == "":
            cm = read_file("/sys/fs/cgroup" + path + "/cpu.max")
            if cm and not cm.startswith("max"):
                q, p = cm.split()
                out["cpu_quota_cores"] = int(q) / float(p)
            mm = read_file("/sys/fs/cgroup" + path + "/memory.max")
            if mm and mm != "max":
                out["memory_limit_bytes"] = int(mm)
    return out


def probe(runtimes: List[str]) -> Dict[str, Any]:
    """What this board is, and what stops it from running jobs (``problems``).

    The board fingerprint that ``edgebench boards check`` records: arch, CPU model, cores,
    memory, OS, Python, numpy, each runtime's version (ONNX Runtime's providers, the TFLite
    interpreter's module), the device state, the cgroup CPU quota / memory limit. Runtimes
    are imported through the same adapters that run jobs.
    """
    fp = {
        "arch": platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "cpus_allowed": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": None,
        "runtimes": {},
        "problems": [],
    }  # type: Dict[str, Any]
    fp.update(device_state())
    fp.update(_cgroup_limits())
    try:
        fp["numpy"] = np_module().__version__
    except Exception as exc:
        fp["problems"].append("numpy is not importable (%s): install numpy on the board" % type(exc).__name__)
    for rt in runtimes:
        if rt not in RUNTIMES:
            fp["problems"].append("unknown runtime %r" % rt)
            continue
        try:
            model = RUNTIMES[rt]({})
        except Exception as exc:
            detail = str(exc) if isinstance(exc, AgentError) else "%s: %s" % (type(exc).__name__, first_line(exc))
            fp["problems"].append("runtime %s is not installed or not importable (%s)" % (rt, detail))
            continue
        if rt == "onnxruntime":
            fp["runtimes"][rt] = {"version": model.version, "providers": list(model.ort.get_available_providers())}
        else:
            fp["runtimes"][rt] = {"module": model.name.split(":", 1)[-1], "version": model.version}
    return fp
