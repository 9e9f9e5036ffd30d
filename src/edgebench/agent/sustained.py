"""A sustained run: the model run continuously for ``seconds``, with a timeline of windows.

Per window (``window_s``, default 1 s): the inferences it held and their p50/p99 (ms),
the CPU frequency (``scaling_cur_freq``, the highest over CPUs, MHz), the hottest thermal
zone (deg C), the throttle flags the board exposes and the power of each source found
(`power`). The sensors are read between windows, never during an inference; the time
they take is measured per window (``sensor_ms``; ``overhead_ms`` adds the window's
statistics) and stated as a fraction of the run (``overhead``).

Throttle flags (`Sensors.flags`):

- ``freq_drop``: the frequency is more than `FREQ_DROP` below window 0's;
- ``trip_<type>`` (``trip_passive``, ``trip_hot``, ``trip_critical``...): a thermal zone at
  or above one of its trip points (``/sys/class/thermal/thermal_zone*/trip_point_*``);
- ``rpi_*``: Raspberry Pi firmware flags from ``vcgencmd get_throttled`` when the command
  exists (`RPI_BITS`: under-voltage, frequency capped, throttled, soft temperature limit);
  the "has occurred" bits of the last reading go to the run's ``sustained.rpi_occurred``.

Readers take a ``root`` (``/`` on a board, a fake tree in tests).
"""

import os
import shutil
import subprocess
from typing import Any, Callable, Dict, List, Optional, Tuple

from .base import AgentError
from .clock import ns_clock
from .power import PowerMeter

DEFAULT_SUSTAINED = {"window_s": 1.0}  # type: Dict[str, float]
FREQ_DROP = 0.10  # a window's frequency this far below window 0's is flagged
RPI_BITS = {
    0: "rpi_under_voltage",
    1: "rpi_freq_capped",
    2: "rpi_throttled",
    3: "rpi_soft_temp_limit",
}  # type: Dict[int, str]
RPI_OCCURRED = {16: "under-voltage", 17: "frequency capped", 18: "throttled", 19: "soft temperature limit"}


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _int(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def decode_throttled(text: str) -> Optional[int]:
    """The bits of ``vcgencmd get_throttled``'s answer (``throttled=0x50005``), None when it is not one."""
    _, sep, value = text.strip().partition("=")
    try:
        return int(value.strip(), 16) if sep else None
    except ValueError:
        return None


def rpi_flags(bits: int) -> List[str]:
    """The flags of the bits that hold now (0-3)."""
    return [name for bit, name in sorted(RPI_BITS.items()) if bits & (1 << bit)]


class Sensors(object):
    """The board's frequency, temperature and throttle sensors, found once and read per window."""

    def __init__(self, root: str = "/", vcgencmd: Optional[str] = None) -> None:
        cpu_base = os.path.join(root, "sys/devices/system/cpu")
        try:
            cpus = sorted(c for c in os.listdir(cpu_base) if c.startswith("cpu") and c[3:].isdigit())
        except OSError:
            cpus = []
        self.freq_files = [
            p for p in (os.path.join(cpu_base, c, "cpufreq/scaling_cur_freq") for c in cpus) if os.path.exists(p)
        ]
        base = os.path.join(root, "sys/class/thermal")
        try:
            zones = sorted(z for z in os.listdir(base) if z.startswith("thermal_zone"))
        except OSError:
            zones = []
        self.zones = [os.path.join(base, z) for z in zones if os.path.exists(os.path.join(base, z, "temp"))]
        self.trips = []  # type: List[Tuple[str, str, float]]
        for zone in self.zones:
            try:
                names = sorted(os.listdir(zone))
            except OSError:
                continue
            for f in names:
                if f.startswith("trip_point_") and f.endswith("_temp"):
                    temp = _int(_read(os.path.join(zone, f)))
                    kind = _read(os.path.join(zone, f[: -len("_temp")] + "_type")) or "trip"
                    if temp is not None and temp > 0:
                        self.trips.append((os.path.basename(zone), kind, temp / 1000.0))
        self.vcgencmd = shutil.which("vcgencmd") if vcgencmd is None else (vcgencmd or None)
        self.start_freq = None  # type: Optional[float]
        self.occurred = 0

    def describe(self) -> Dict[str, Any]:
        """What was found: frequency files, thermal zones, trip points, vcgencmd."""
        return {
            "freq_cpus": len(self.freq_files),
            "thermal_zones": len(self.zones),
            "trip_points": [{"zone": z, "type": k, "temp_c": t} for z, k, t in self.trips],
            "vcgencmd": self.vcgencmd,
        }

    def freq_mhz(self) -> Optional[float]:
        """The highest current CPU frequency (MHz), None without cpufreq."""
        vals = [v for v in (_int(_read(p)) for p in self.freq_files) if v is not None]
        return max(vals) / 1000.0 if vals else None

    def temps(self) -> Dict[str, float]:
        """Each thermal zone's temperature (deg C)."""
        out = {}  # type: Dict[str, float]
        for zone in self.zones:
            v = _int(_read(os.path.join(zone, "temp")))
            if v is not None:
                out[os.path.basename(zone)] = v / 1000.0
        return out

    def throttled_bits(self) -> Optional[int]:
        """``vcgencmd get_throttled`` as bits, None when the command is missing or fails."""
        if not self.vcgencmd:
            return None
        try:
            proc = subprocess.Popen(
                [self.vcgencmd, "get_throttled"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                universal_newlines=True,
            )
            out, _ = proc.communicate(timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return decode_throttled(out) if proc.returncode == 0 else None

    def read(self) -> Dict[str, Any]:
        """One window's reading: ``freq_mhz``, ``temp_c`` (hottest zone), ``flags``."""
        freq = self.freq_mhz()
        temps = self.temps()
        if self.start_freq is None:
            self.start_freq = freq
        flags = []  # type: List[str]
        if freq is not None and self.start_freq and freq < self.start_freq * (1.0 - FREQ_DROP):
            flags.append("freq_drop")
        for zone, kind, limit in self.trips:
            name = "trip_%s" % kind
            if temps.get(zone, -1e9) >= limit and name not in flags:
                flags.append(name)
        bits = self.throttled_bits()
        if bits is not None:
            flags.extend(rpi_flags(bits))
            self.occurred = bits
        return {"freq_mhz": freq, "temp_c": max(temps.values()) if temps else None, "flags": flags}


def percentile(sorted_ns: List[int], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted samples, linearly interpolated (numpy's default), in ns."""
    if not sorted_ns:
        return 0.0
    pos = q * (len(sorted_ns) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_ns) - 1)
    return sorted_ns[lo] + (sorted_ns[hi] - sorted_ns[lo]) * (pos - lo)


def window_stats(samples_ns: List[int]) -> Dict[str, Any]:
    """A window's ``count``, ``p50_ms`` and ``p99_ms`` (linear interpolation; None for an empty window).

    numpy's partition-based percentile (a 1 s window of a 10 µs model holds 100 000 samples:
    about 3 ms, against 20 ms to sort them in Python); `percentile` is the same rule without it.
    """
    if not samples_ns:
        return {"count": 0, "p50_ms": None, "p99_ms": None}
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - the agent needs numpy anyway
        s = sorted(samples_ns)
        return {"count": len(s), "p50_ms": percentile(s, 0.5) / 1e6, "p99_ms": percentile(s, 0.99) / 1e6}
    arr = np.fromiter(samples_ns, dtype=np.int64, count=len(samples_ns))
    p50, p99 = np.percentile(arr, [50.0, 99.0])
    return {"count": len(samples_ns), "p50_ms": float(p50) / 1e6, "p99_ms": float(p99) / 1e6}


def sustained_problem(spec: Any) -> Optional[str]:
    """Why a ``sustained`` block cannot run (seconds <= 0, a window longer than the run), None if it can."""
    try:
        seconds = float(spec.get("seconds"))
        window = float(spec.get("window_s", DEFAULT_SUSTAINED["window_s"]))
    except (TypeError, ValueError, AttributeError):
        return "sustained needs a number of seconds (and window_s), got %r" % (spec,)
    if not seconds > 0:
        return "sustained.seconds must be above 0, not %g" % seconds
    if not window > 0 or window > seconds:
        return "sustained.window_s must be above 0 and at most the run (%g s), not %g" % (seconds, window)
    return None


def run_sustained(
    run: Callable[[Any], Any],
    feed: Any,
    spec: Dict[str, Any],
    sensors: Optional[Sensors] = None,
    meter: Optional[PowerMeter] = None,
) -> Tuple[Dict[str, Any], List[Dict[str, Any]], Dict[str, Any]]:
    """Run ``run(feed)`` continuously for ``spec["seconds"]`` and record a window every ``window_s``.

    Returns:
        (the ``sustained`` block, the ``timeline`` windows, the ``power`` block).

    Raises:
        AgentError: the spec cannot run (`sustained_problem`).
    """
    problem = sustained_problem(spec)
    if problem is not None:
        raise AgentError("bad_job", problem)
    seconds = float(spec["seconds"])
    window_s = float(spec.get("window_s") or DEFAULT_SUSTAINED["window_s"])
    root = str(spec.get("root") or "/")
    sensors = sensors if sensors is not None else Sensors(root)
    meter = meter if meter is not None else PowerMeter(root, spec.get("power_command"), spec.get("power_pattern"))
    clock = ns_clock()
    window_ns, end_offset = int(window_s * 1e9), int(seconds * 1e9)
    windows = []  # type: List[Dict[str, Any]]
    window_stats([0])  # numpy imported before the clock starts, not in window 0's overhead
    meter.prime()
    t0 = clock()
    end = t0 + end_offset
    start = t0
    total, sensor_total, overhead_total = 0, 0, 0
    while start < end:
        w_end = min(start + window_ns, end)
        samples = []  # type: List[int]
        b = start
        while b < w_end:
            a = clock()
            run(feed)
            b = clock()
            samples.append(b - a)
        s0 = clock()
        reading = sensors.read()
        power = meter.sample((s0 - start) / 1e9) if meter.available() else None
        s1 = clock()
        window = {"t_s": (start - t0) / 1e9, "duration_s": (s0 - start) / 1e9}  # type: Dict[str, Any]
        window.update(window_stats(samples))
        window.update(reading)
        window["power_w"] = power
        window["sensor_ms"] = (s1 - s0) / 1e6
        total += len(samples)
        nxt = clock()
        window["overhead_ms"] = (nxt - s0) / 1e6
        sensor_total += s1 - s0
        overhead_total += nxt - s0
        windows.append(window)
        start = nxt
    elapsed = max(start - t0, 1)
    occurred = [text for bit, text in sorted(RPI_OCCURRED.items()) if sensors.occurred & (1 << bit)]
    block = {
        "seconds": seconds,
        "window_s": window_s,
        "elapsed_s": elapsed / 1e9,
        "windows": len(windows),
        "inferences": total,
        "sensor_overhead": sensor_total / float(elapsed),
        "overhead": overhead_total / float(elapsed),
        "sensors": sensors.describe(),
        "rpi_occurred": occurred,
    }  # type: Dict[str, Any]
    return block, windows, meter.summary(total, window_s)
