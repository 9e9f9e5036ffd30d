"""Power sources read on the board: RAPL energy counters, INA3221-style hwmon rails, a meter command.

Each source answers what it covers (a RAPL domain, a hwmon rail, the meter's name) and is
read once per window of a sustained run (`sustained`); the sampling rate is that of the
windows and is stated with every figure. A source that exists but cannot be read says why
(``unavailable``: permission denied, a counter without its range, a command that fails,
hangs or prints no number); where no source exists the answer is `NO_SENSOR`, never a
number.

Readers take a ``root`` (``/`` on a board; a fake tree in tests), so that
``ROOT/sys/class/powercap`` and ``ROOT/sys/class/hwmon`` can be built in a temporary folder.

- RAPL (x86, Linux powercap): ``/sys/class/powercap/intel-rapl:N[:M]/energy_uj`` is a
  cumulative counter in µJ that wraps at ``max_energy_range_uj``: a reading below the
  previous one is a wrap and the range is added. Since Linux 5.10 (CVE-2020-8694,
  "PLATYPUS") ``energy_uj`` is readable by root only: that is named, not guessed around.
  ``package-N`` covers the cores, caches and uncore of that socket, not DRAM; ``dram``
  the memory; ``psys`` the platform where the firmware exposes it.
- hwmon (Jetson's INA3221, other power monitors): ``/sys/class/hwmon/hwmon*/`` with
  ``power*_input`` (µW), or ``in*_input`` (mV) and ``curr*_input`` (mA) of the same
  channel; the rail's name from ``in*_label`` / ``power*_label``. Instantaneous power,
  integrated over the windows (trapezoid).
- a command (an external meter, a board-specific tool): its output is searched for
  `DEFAULT_PATTERN` (or the board's pattern): a number and a unit, ``mW`` or ``W``.
"""

import os
import re
import shlex
import subprocess
from typing import Any, Dict, List, Optional, Tuple

NO_SENSOR = "no power sensor on this board"
DEFAULT_PATTERN = r"(?P<value>[-+]?[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>mW|W)\b"
COMMAND_TIMEOUT_S = 2.0
UJ = 1e-6  # J per µJ

RAPL_COVERS = {
    "package": "CPU package (cores, caches, uncore), not DRAM",
    "core": "CPU cores only",
    "uncore": "uncore (integrated GPU, caches outside the cores)",
    "dram": "DRAM only",
    "psys": "platform (SoC and what the firmware adds)",
}


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _read_or_none(path: str) -> Optional[str]:
    try:
        return _read(path)
    except OSError:
        return None


def _covers(name: str) -> str:
    for key, text in sorted(RAPL_COVERS.items()):
        if name.startswith(key):
            return text
    return "RAPL domain %s" % name


class RaplDomain(object):
    """One RAPL domain's energy counter, with wrap-around (`read_j` returns the energy since `start`)."""

    def __init__(self, path: str, name: str, max_uj: int) -> None:
        self.path, self.name, self.max_uj = path, name, max_uj
        self.covers = _covers(name)
        self.last = None  # type: Optional[int]
        self.total_uj = 0
        self.wraps = 0

    def start(self) -> None:
        """Take the first reading (the zero of the energy)."""
        self.last = int(_read(os.path.join(self.path, "energy_uj")))
        self.total_uj, self.wraps = 0, 0

    def read_j(self) -> float:
        """Energy since `start` in J; a counter below its last reading wrapped at ``max_energy_range_uj``."""
        now = int(_read(os.path.join(self.path, "energy_uj")))
        last = now if self.last is None else self.last
        delta = now - last
        if delta < 0:  # wrapped
            delta += self.max_uj
            self.wraps += 1
        self.total_uj += delta
        self.last = now
        return self.total_uj * UJ


def rapl_domains(root: str = "/") -> Tuple[List[RaplDomain], List[str]]:
    """The readable RAPL domains under ``ROOT/sys/class/powercap`` and why others are not.

    Returns:
        (domains, problems): a problem names the domain and the cause (permission denied:
        root only on recent kernels; no ``max_energy_range_uj``).
    """
    base = os.path.join(root, "sys/class/powercap")
    domains, problems = [], []  # type: List[RaplDomain], List[str]
    try:
        zones = sorted(z for z in os.listdir(base) if z.startswith("intel-rapl:"))
    except OSError:
        return domains, problems
    for zone in zones:
        path = os.path.join(base, zone)
        try:
            name = _read(os.path.join(path, "name"))
        except OSError:
            name = zone
        try:
            max_uj = int(_read(os.path.join(path, "max_energy_range_uj")))
            domain = RaplDomain(path, name, max_uj)
            domain.start()
        except PermissionError:
            problems.append(
                "RAPL %s (%s): permission denied reading energy_uj: root only on Linux >= 5.10 (CVE-2020-8694); "
                "run the agent as root or make energy_uj readable (chmod o+r)" % (zone, name)
            )
            continue
        except (OSError, ValueError) as exc:
            problems.append("RAPL %s (%s): unreadable: %s" % (zone, name, exc))
            continue
        domains.append(domain)
    names = [d.name for d in domains]
    for d in domains:  # two sockets: each has its own "core", "dram"
        if names.count(d.name) > 1:
            d.name = "%s (%s)" % (d.name, os.path.basename(d.path))
    return domains, problems


class HwmonRail(object):
    """One hwmon power channel: ``power<N>_input`` (µW) or ``in<N>_input`` (mV) x ``curr<N>_input`` (mA)."""

    def __init__(self, path: str, channel: str, name: str, power_file: Optional[str]) -> None:
        self.path, self.channel, self.name, self.power_file = path, channel, name, power_file
        self.covers = "rail %s" % name

    def read_w(self) -> float:
        """The rail's power now (W)."""
        if self.power_file is not None:
            return int(_read(os.path.join(self.path, self.power_file))) * 1e-6
        mv = int(_read(os.path.join(self.path, "in%s_input" % self.channel)))
        ma = int(_read(os.path.join(self.path, "curr%s_input" % self.channel)))
        return mv * ma * 1e-6


def hwmon_rails(root: str = "/") -> Tuple[List[HwmonRail], List[str]]:
    """The power rails under ``ROOT/sys/class/hwmon`` (INA3221-style monitors) and why others are not read."""
    base = os.path.join(root, "sys/class/hwmon")
    rails, problems = [], []  # type: List[HwmonRail], List[str]
    try:
        mons = sorted(os.listdir(base))
    except OSError:
        return rails, problems
    for mon in mons:
        path = os.path.join(base, mon)
        try:
            files = set(os.listdir(path))
            chip = _read(os.path.join(path, "name")) if "name" in files else mon
        except OSError:
            continue
        channels = {}  # type: Dict[str, Optional[str]]
        for f in sorted(files):
            m = re.match(r"power(\d+)_input$", f)
            if m:
                channels[m.group(1)] = f
        for f in sorted(files):
            m = re.match(r"in(\d+)_input$", f)
            if m and m.group(1) not in channels and "curr%s_input" % m.group(1) in files:
                channels[m.group(1)] = None
        for ch in sorted(channels, key=int):
            label = None
            for lf in ("power%s_label" % ch, "in%s_label" % ch, "curr%s_label" % ch):
                if lf in files:
                    label = _read_or_none(os.path.join(path, lf))
                    break
            rail = HwmonRail(path, ch, "%s %s" % (chip, label or "channel %s" % ch), channels[ch])
            try:
                rail.read_w()
            except PermissionError:
                problems.append("hwmon %s: permission denied reading %s" % (mon, rail.name))
                continue
            except (OSError, ValueError) as exc:
                problems.append("hwmon %s: %s unreadable: %s" % (mon, rail.name, exc))
                continue
            rails.append(rail)
    return rails, problems


def parse_power(text: str, pattern: str = DEFAULT_PATTERN) -> float:
    """The first power figure in ``text`` matched by ``pattern`` (groups ``value`` and ``unit``), in W.

    Raises:
        ValueError: no match, or a unit other than ``mW`` / ``W`` (named, with the pattern).
    """
    m = re.search(pattern, text)
    if m is None:
        raise ValueError("no power figure matching %r in %r" % (pattern, text.strip()[:80]))
    groups = m.groupdict()
    value = float(groups.get("value") or m.group(1))
    unit = groups.get("unit") or "W"
    if unit not in ("mW", "W"):
        raise ValueError("unit %r in %r is not mW or W" % (unit, m.group(0)))
    return value / 1000.0 if unit == "mW" else value


class CommandMeter(object):
    """A command whose output holds the power now (an external meter, a board tool), parsed by a stated pattern."""

    def __init__(self, command: str, pattern: Optional[str] = None, timeout: float = COMMAND_TIMEOUT_S) -> None:
        self.command, self.pattern, self.timeout = command, pattern or DEFAULT_PATTERN, timeout
        self.name = "command %s" % command
        self.covers = "what the command %r measures (pattern %s)" % (command, self.pattern)

    def read_w(self) -> float:
        """Run the command once and parse its output (W).

        Raises:
            ValueError: the command failed, hung past its timeout or printed no figure (said as such).
        """
        try:
            proc = subprocess.Popen(
                shlex.split(self.command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True
            )
        except OSError as exc:
            raise ValueError("power command %r could not start: %s" % (self.command, exc)) from None
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise ValueError("power command %r hung (no answer in %.1f s)" % (self.command, self.timeout)) from None
        if proc.returncode != 0:
            raise ValueError(
                "power command %r exited %d: %s" % (self.command, proc.returncode, (err or out).strip()[-200:])
            )
        return parse_power(out, self.pattern)


class PowerMeter(object):
    """The board's power sources for one sustained run: read once per window, summed up at the end.

    `find_sources` picks them: RAPL counters (energy), hwmon rails and the meter command
    (power, integrated over the windows). `sample` returns ``{domain: W}`` for one window;
    `summary` the result's ``power`` block.
    """

    def __init__(self, root: str = "/", command: Optional[str] = None, pattern: Optional[str] = None) -> None:
        self.rapl, problems = rapl_domains(root)
        self.rails, more = hwmon_rails(root)
        self.problems = problems + more
        self.command = CommandMeter(command, pattern) if command else None
        if self.command is not None:
            try:
                self.command.read_w()
            except ValueError as exc:
                self.problems.append(str(exc))
                self.command = None
        self.energy_j = {}  # type: Dict[str, float]
        self.last_w = {}  # type: Dict[str, float]
        self.failed = {}  # type: Dict[str, str]
        self.seconds = 0.0

    def available(self) -> bool:
        """Whether any source was found and read."""
        return bool(self.rapl or self.rails or self.command)

    def covers(self) -> Dict[str, str]:
        """Each domain or rail read, and what it covers."""
        out = {d.name: d.covers for d in self.rapl}
        out.update((r.name, r.covers) for r in self.rails)
        if self.command is not None:
            out[self.command.name] = self.command.covers
        return out

    def sample(self, dt_s: float) -> Dict[str, Optional[float]]:
        """Read every source after a window of ``dt_s`` seconds: mean power over it per domain (W).

        A counter's power is its energy over the window; a rail's or the command's is the
        reading now, integrated with the previous one (trapezoid). A read that fails is
        None for that window and named once in `summary`.
        """
        out = {}  # type: Dict[str, Optional[float]]
        self.seconds += dt_s
        for d in self.rapl:
            try:
                before = d.total_uj * UJ
                e = d.read_j()
                out[d.name] = (e - before) / dt_s if dt_s > 0 else None
                self.energy_j[d.name] = e
            except (OSError, ValueError) as exc:
                self.failed.setdefault(d.name, str(exc))
                out[d.name] = None
        readers = [(r.name, r.read_w) for r in self.rails]
        if self.command is not None:
            readers.append((self.command.name, self.command.read_w))
        for name, read in readers:
            try:
                w = read()
            except (OSError, ValueError) as exc:
                self.failed.setdefault(name, str(exc))
                out[name] = None
                continue
            prev = self.last_w.get(name, w)
            self.energy_j[name] = self.energy_j.get(name, 0.0) + (prev + w) / 2.0 * dt_s
            self.last_w[name] = w
            out[name] = w
        return out

    def prime(self) -> None:
        """Restart every counter and rail at the start of the timed run (the zero of the energy)."""
        for d in self.rapl:
            try:
                d.start()
            except (OSError, ValueError) as exc:
                self.failed.setdefault(d.name, str(exc))
        readers = [(r.name, r.read_w) for r in self.rails]
        if self.command is not None:
            readers.append((self.command.name, self.command.read_w))
        for name, read in readers:
            try:
                self.last_w[name] = read()
            except (OSError, ValueError) as exc:
                self.failed.setdefault(name, str(exc))
        self.energy_j, self.seconds = {}, 0.0

    def summary(self, inferences: int, window_s: float) -> Dict[str, Any]:
        """The result's ``power`` block: per domain energy (J), mean power (W), mJ per inference, what it covers.

        Without a source: ``{"available": false, "none": NO_SENSOR, "problems": [...]}``.
        """
        block = {"available": self.available(), "problems": list(self.problems)}  # type: Dict[str, Any]
        if not self.available():
            block["none"] = NO_SENSOR + (": " + "; ".join(self.problems) if self.problems else "")
            return block
        covers = self.covers()
        domains = []
        for name in covers:
            e = self.energy_j.get(name)
            kind = "counter" if any(d.name == name for d in self.rapl) else "power"
            entry = {
                "name": name,
                "covers": covers[name],
                "kind": kind,
                "sampling": "energy counter read once per %g s window" % window_s
                if kind == "counter"
                else "power read once per %g s window, integrated (trapezoid)" % window_s,
                "energy_j": e,
                "mean_w": None if e is None or self.seconds <= 0 else e / self.seconds,
                "mj_per_inference": None if e is None or inferences <= 0 else e * 1000.0 / inferences,
                "error": self.failed.get(name),
            }  # type: Dict[str, Any]
            wraps = [d.wraps for d in self.rapl if d.name == name]
            if wraps:
                entry["wraps"] = wraps[0]
            domains.append(entry)
        block["domains"] = domains
        block["seconds"] = self.seconds
        block["inferences"] = inferences
        return block
