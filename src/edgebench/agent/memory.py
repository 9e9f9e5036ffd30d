"""Resident set size of the agent's own process: now, and the peak (``VmHWM``), which can be reset per phase.

One definition for every runtime: ``/proc/self/status`` (Linux), else psutil (optional on
the board), else ``ru_maxrss`` for the peak.
"""

import resource  # Unix only: boards (and hosts) are Linux or macOS
import sys
from typing import Optional


def _status_bytes(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_bytes() -> Optional[int]:
    """Current resident set size of this process in bytes (None if unknown)."""
    value = _status_bytes("VmRSS")
    if value is not None:
        return value
    try:
        import psutil  # type: ignore[import-untyped,unused-ignore]  # optional on the board

        return int(psutil.Process().memory_info().rss)
    except Exception:
        return None


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS; False where it cannot be (not Linux >= 4.0).

    So that each phase of a measurement has its own peak: the timed configuration
    (load, warm-up, steady state) apart from the accuracy pass over the whole eval set.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size of this process since it started, in bytes (None if unknown)."""
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    try:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024
    except Exception:
        return None
