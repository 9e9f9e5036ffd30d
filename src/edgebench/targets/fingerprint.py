"""Board fingerprints and ``boards check``: what a board is, and whether it is fit to run jobs.

A fingerprint holds arch, CPU model, cores, memory, OS, Python, numpy, each runtime's
version (and ONNX Runtime's providers), CPU governor and frequency, temperature, and the
cgroup CPU quota / memory limit where one applies. ``check_boards`` marks each board
ready, unreachable or unfit, with the reason, and records the fingerprints.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.errors import BoardUnreachable, EdgebenchError, RemoteError
from edgebench.fsutil import write_json_atomic
from edgebench.targets.board import Board
from edgebench.targets.driver import Driver
from edgebench.targets.group import for_each_board

READY, UNREACHABLE, UNFIT = "ready", "unreachable", "unfit"
FINGERPRINTS = "fingerprints.json"

# Runs on the board with its Python (>= 3.8, nothing but the standard library needed).
PROBE = r"""
import json, os, platform, sys
def rd(p):
    try:
        with open(p) as f:
            return f.read().strip()
    except Exception:
        return None
def cpuinfo():
    txt = rd('/proc/cpuinfo') or ''
    for key in ('model name', 'Model', 'Hardware', 'cpu model', 'Processor'):
        for line in txt.splitlines():
            if line.split(':')[0].strip() == key and ':' in line:
                return line.split(':', 1)[1].strip()
    return platform.processor() or None
def meminfo():
    for line in (rd('/proc/meminfo') or '').splitlines():
        if line.startswith('MemTotal:'):
            return int(line.split()[1]) * 1024
    return None
def cgroup():
    out = {'cpu_quota_cores': None, 'memory_limit_bytes': None}
    for line in (rd('/proc/self/cgroup') or '').splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        ctrls, path = parts[1].split(','), parts[2]
        if 'cpu' in ctrls:
            base = '/sys/fs/cgroup/cpu' + path
            q, p = rd(base + '/cpu.cfs_quota_us'), rd(base + '/cpu.cfs_period_us')
            if q and p and int(q) > 0:
                out['cpu_quota_cores'] = int(q) / float(p)
        if 'memory' in ctrls:
            m = rd('/sys/fs/cgroup/memory' + path + '/memory.limit_in_bytes')
            if m and int(m) < (1 << 60):
                out['memory_limit_bytes'] = int(m)
        if parts[0] == '0' and parts[1] == '':
            cm = rd('/sys/fs/cgroup' + path + '/cpu.max')
            if cm and not cm.startswith('max'):
                q, p = cm.split()
                out['cpu_quota_cores'] = int(q) / float(p)
            mm = rd('/sys/fs/cgroup' + path + '/memory.max')
            if mm and mm != 'max':
                out['memory_limit_bytes'] = int(mm)
    return out
def osname():
    for line in (rd('/etc/os-release') or '').splitlines():
        if line.startswith('PRETTY_NAME='):
            return line.split('=', 1)[1].strip('"')
    return platform.platform()
def temp():
    best = None
    try:
        zones = [z for z in os.listdir('/sys/class/thermal') if z.startswith('thermal_zone')]
    except OSError:
        zones = []
    for z in zones:
        t = rd('/sys/class/thermal/' + z + '/temp')
        if t and t.lstrip('-').isdigit():
            best = max(best or -1e9, int(t) / 1000.0)
    return best
fp = {'arch': platform.machine(), 'cpu_model': cpuinfo(), 'cores': os.cpu_count(), 'memory_bytes': meminfo(),
      'os': osname(), 'kernel': platform.release(), 'python': platform.python_version(), 'hostname': platform.node(),
      'governor': rd('/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor'), 'freq_mhz': None, 'temp_c': temp(),
      'numpy': None, 'runtimes': {}, 'problems': []}
f = rd('/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq')
if f and f.isdigit():
    fp['freq_mhz'] = int(f) / 1000.0
try:
    fp['cpus_allowed'] = len(os.sched_getaffinity(0))
except Exception:
    fp['cpus_allowed'] = None
fp.update(cgroup())
try:
    import numpy
    fp['numpy'] = numpy.__version__
except Exception as e:
    fp['problems'].append('numpy is not importable (%s): install numpy on the board' % type(e).__name__)
for rt in json.loads(sys.argv[1]):
    try:
        if rt == 'onnxruntime':
            import onnxruntime as ort
            fp['runtimes'][rt] = {'version': ort.__version__, 'providers': ort.get_available_providers()}
        elif rt == 'tflite':
            info = None
            for mod in ('ai_edge_litert', 'tflite_runtime'):
                try:
                    m = __import__(mod + '.interpreter', fromlist=['Interpreter'])
                    top = __import__(mod)
                    info = {'module': mod, 'version': getattr(top, '__version__', None)}
                    break
                except Exception:
                    pass
            if info is None:
                import tensorflow as tf
                info = {'module': 'tensorflow', 'version': tf.__version__}
            fp['runtimes'][rt] = info
        else:
            fp['problems'].append('unknown runtime %r' % rt)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ''
        fp['problems'].append('runtime %s is not installed or not importable (%s: %s)' % (rt, type(e).__name__, first))
print(json.dumps(fp))
"""


@dataclass
class BoardCheck:
    """The outcome of checking one board."""

    name: str
    status: str
    reason: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {"name": self.name, "status": self.status, "reason": self.reason, "fingerprint": self.fingerprint}


def probe(driver: Driver, timeout: float = 60.0) -> dict[str, Any]:
    """Run the probe on the board and return its fingerprint.

    Raises:
        RemoteError: the board's Python is missing or the probe failed.
    """
    board = driver.board
    res = driver.run([board.python, "-c", PROBE, json.dumps(list(board.runtimes))], timeout)
    if res.exit_code != 0:
        detail = (res.stderr.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
        if res.exit_code in (126, 127):
            msg = (
                f"python {board.python!r} is not on the board ({detail}): set python in boards.toml to its interpreter"
            )
        else:
            msg = f"python {board.python!r} failed to run the probe ({detail})"
        raise RemoteError(board.name, res.command[:80] + " ...", res.stderr, msg)
    try:
        fp: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RemoteError(board.name, "probe", res.stdout + res.stderr, "the probe printed no fingerprint") from None
    return fp


def check_boards(
    boards: Sequence[Board],
    *,
    timeout: float = 60.0,
    on_done: Callable[[str, Any], None] | None = None,
    connect_retries: int = 2,
) -> list[BoardCheck]:
    """Connect to each board in parallel, probe it, and judge it ready / unreachable / unfit."""

    def work(driver: Driver) -> dict[str, Any]:
        return probe(driver, timeout)

    outcomes = for_each_board(boards, work, lock=False, connect_retries=connect_retries, backoff_s=0.3, on_done=on_done)
    checks: list[BoardCheck] = []
    for board in boards:
        out = outcomes[board.name]
        if isinstance(out, BoardUnreachable):
            checks.append(BoardCheck(board.name, UNREACHABLE, _reason(out)))
        elif isinstance(out, EdgebenchError):
            checks.append(BoardCheck(board.name, UNFIT, _reason(out)))
        elif isinstance(out, Exception):
            checks.append(BoardCheck(board.name, UNREACHABLE, f"{type(out).__name__}: {out}"))
        else:
            problems = list(out.pop("problems", []))
            checks.append(BoardCheck(board.name, UNFIT if problems else READY, "; ".join(problems), out))
    return checks


def _reason(exc: Exception) -> str:
    """The message without the board prefix and the command suffix."""
    text = str(exc)
    if isinstance(exc, RemoteError):
        text = text.removeprefix(f"{exc.board}: ")
        text = text.split(" (command: ")[0]
    return text


def fingerprints_path(boards_file: Path) -> Path:
    """Where fingerprints recorded by ``boards check`` live: beside the boards file."""
    return boards_file.parent / FINGERPRINTS


def load_fingerprints(path: Path) -> dict[str, Any]:
    """Recorded checks, ``{board: {status, reason, fingerprint, checked}}`` (empty if none)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_checks(path: Path, checks: Sequence[BoardCheck], when: str) -> None:
    """Merge ``checks`` into the fingerprints file (atomically)."""
    data = load_fingerprints(path)
    for c in checks:
        data[c.name] = {**c.as_dict(), "checked": when}
    if path.parent.exists() and os.access(path.parent, os.W_OK):
        write_json_atomic(path, data)
