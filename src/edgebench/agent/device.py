"""The board's state around a measurement: CPU governor, frequency, temperature, steal time; the cool-down.

``EDGEBENCH_SYSFS`` / ``EDGEBENCH_PROCFS`` point the readings at a fake tree (tests).
"""

import os
import time
from typing import Any, Callable, Dict, List, Optional

DEFAULT_DEVICE = {
    "temp_limit_c": 80.0,  # warn when the hottest zone reaches this
    "freq_drop": 0.10,  # warn when the frequency fell by more than this fraction
    "steal_limit": 0.05,  # warn when the hypervisor took more than this share of the CPU time
}  # type: Dict[str, float]

COOLDOWN_MAX_S = 300.0  # longest wait for the cool-down temperature

SYSFS = os.environ.get("EDGEBENCH_SYSFS", "/sys")  # tests point this at a fake tree
PROCFS = os.environ.get("EDGEBENCH_PROCFS", "/proc")


def read_file(path: str) -> Optional[str]:
    """The stripped text of a small file (sysfs, procfs), None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def device_state() -> Dict[str, Any]:
    """CPU governor, mean current / max frequency over CPUs (MHz), hottest thermal zone (deg C)."""
    state = {"governor": None, "freq_mhz": None, "max_freq_mhz": None, "temp_c": None}  # type: Dict[str, Any]
    cpu_base = os.path.join(SYSFS, "devices/system/cpu")
    state["governor"] = read_file(os.path.join(cpu_base, "cpu0/cpufreq/scaling_governor"))
    cur, top = [], []  # type: List[float], List[float]
    try:
        cpus = sorted(c for c in os.listdir(cpu_base) if c.startswith("cpu") and c[3:].isdigit())
    except OSError:
        cpus = []
    for cpu in cpus:
        f = read_file(os.path.join(cpu_base, cpu, "cpufreq/scaling_cur_freq"))
        m = read_file(os.path.join(cpu_base, cpu, "cpufreq/scaling_max_freq"))
        if f and f.isdigit():
            cur.append(int(f) / 1000.0)
        if m and m.isdigit():
            top.append(int(m) / 1000.0)
    if cur:
        state["freq_mhz"] = sum(cur) / len(cur)
    if top:
        state["max_freq_mhz"] = max(top)
    temps = []
    base = os.path.join(SYSFS, "class/thermal")
    try:
        zones = [z for z in os.listdir(base) if z.startswith("thermal_zone")]
    except OSError:
        zones = []
    for zone in zones:
        raw = read_file(os.path.join(base, zone, "temp"))
        if raw and raw.lstrip("-").isdigit():
            temps.append(int(raw) / 1000.0)
    if temps:
        state["temp_c"] = max(temps)
    state["cpu_ticks"] = cpu_ticks()
    return state


def cpu_ticks() -> Optional[List[int]]:
    """``[steal, total]`` jiffies of all CPUs from /proc/stat (None off Linux).

    Steal is time the hypervisor gave this VM's CPUs to someone else: on a shared cloud
    runner it moves latency and no setting on the board can stop it, so it is measured
    and reported (`device_warnings`) rather than controlled.
    """
    line = (read_file(os.path.join(PROCFS, "stat")) or "").split("\n", 1)[0].split()
    if len(line) < 9 or line[0] != "cpu":
        return None
    vals = [int(v) for v in line[1:] if v.isdigit()]
    return [vals[7], sum(vals[:8])]


def steal_fraction(before: Dict[str, Any], after: Dict[str, Any]) -> Optional[float]:
    """The share of CPU time stolen by the hypervisor between two `device_state` readings."""
    a, b = before.get("cpu_ticks"), after.get("cpu_ticks")
    if not a or not b or b[1] <= a[1]:
        return None
    return float(b[0] - a[0]) / float(b[1] - a[1])


def device_warnings(before: Dict[str, Any], after: Dict[str, Any], limits: Dict[str, Any]) -> List[str]:
    """Warnings about the device state: frequency dropped, temperature at the limit, governor."""
    out = []
    drop = float(limits.get("freq_drop", DEFAULT_DEVICE["freq_drop"]))
    limit = float(limits.get("temp_limit_c", DEFAULT_DEVICE["temp_limit_c"]))
    fb, fa = before.get("freq_mhz"), after.get("freq_mhz")
    if fb and fa and fa < fb * (1.0 - drop):
        out.append("CPU frequency dropped from %.0f to %.0f MHz during the run: results may be throttled" % (fb, fa))
    for when, st in (("before", before), ("after", after)):
        t = st.get("temp_c")
        if t is not None and t >= limit:
            out.append(
                "temperature %.1f C %s the run reached the limit %.1f C: let the board cool down" % (t, when, limit)
            )
    steal = steal_fraction(before, after)
    if steal is not None and steal > float(limits.get("steal_limit", DEFAULT_DEVICE["steal_limit"])):
        out.append(
            "the hypervisor took %.0f%% of the CPU time (steal) during the run: a shared VM moves latency; "
            "compare runs paired (--baseline) or use a dedicated runner" % (steal * 100)
        )
    gov = after.get("governor")
    if gov and gov not in ("performance",):
        out.append("CPU governor is %r, not 'performance': latency may vary with frequency scaling" % gov)
    return out


def cool_down(spec: Dict[str, Any], sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Wait before loading: ``seconds`` flat, or until ``until_c`` (at most ``max_s`` seconds)."""
    t0 = time.monotonic()
    if spec.get("seconds"):
        sleep(float(spec["seconds"]))
    until = spec.get("until_c")
    reached = None  # type: Optional[bool]
    if until is not None:
        deadline = t0 + float(spec.get("max_s", COOLDOWN_MAX_S))
        reached = False
        while True:
            temp = device_state()["temp_c"]
            if temp is None or temp <= float(until):
                reached = True
                break
            if time.monotonic() >= deadline:
                break
            sleep(1.0)
    return {"waited_s": time.monotonic() - t0, "reached": reached}
