"""A shared board lab through labgrid (run with `pytest tests/perf/perf_lab.py -s`); it prints figures.

A real labgrid coordinator and exporter on loopback, 4 places (``board=perf``) reaching 4 real
sshd farm boards, and separate client processes (``tests/integration/lab/holder.py``) that lease
one board of pool ``perf`` each and measure a real MLP on it with the runner for ~20 s:

- 3 concurrent clients: every one finished, no place held by two at once (from the hold
  intervals each printed), the wall time against the ideal (ceil(runs / places) x hold), and the
  reservation overhead per client (connect, check, reserve, acquire, read: the wait excluded);
- a SIGKILLed client: its place stays acquired (labgrid keeps it); what a waiting client prints;
  how long after the release commands it names the place is used again; and, without
  ``cancel-reservation``, how long labgrid's own timeout keeps the dead reservation's place.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from _targets_models import mlp_variant
from lab.conftest import Lab, free_port, lab_key, labgrid_tool, require_labgrid, start_lab, stopped_on_signals

from edgebench.targets.farm import farm_up, find_sshd

HOLDER = Path(__file__).parents[1] / "integration" / "lab" / "holder.py"
REPO = Path(__file__).resolve().parents[2]
HOLD_S = 20.0
PLACES = {f"perf-{i}": ({"board": "perf"}, f"farm-{i}", f"farm-{i}") for i in range(1, 5)}


@pytest.fixture(scope="module")
def perf_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if find_sshd() is None:
        pytest.skip("OpenSSH sshd is not installed: apt-get install -y openssh-server")
    require_labgrid()
    root = tmp_path_factory.mktemp("perf-lab")
    farm = farm_up(root / "farm", profiles=["full"] * 4)
    the_lab = Lab(root=root, address=f"127.0.0.1:{free_port()}", farm=farm, inventory=root / "boards.toml")
    with stopped_on_signals(the_lab):
        try:
            start_lab(the_lab, PLACES)
            key = lab_key(root, farm)
            the_lab.inventory.write_text(
                f'[pools.perf]\ncoordinator = "{the_lab.address}"\ntags = {{ board = "perf" }}\n'
                f'identity_file = "{key}"\nknown_hosts = "{farm.known_hosts}"\npython = "{farm.python}"\n'
                f'workdir = "{root}/work/{{place}}"\n'
            )
            yield the_lab
        finally:
            the_lab.stop()
            farm.down()


class Client:
    """One holder process and every line it printed, with the time each arrived."""

    def __init__(self, lab: Lab, hold: float, variant: Path | None) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        extra = ["--measure", str(variant)] if variant is not None else []
        cmd = [sys.executable, str(HOLDER), str(lab.inventory), "pool:perf", str(hold), *extra]
        self.started = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))

    def line(self, prefix: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, text in self.lines:
                if text.startswith(prefix):
                    return text
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} line: {self.lines} {self.proc.stderr.read() if self.proc.stderr else ''}")

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(5)
        return code

    def interval(self) -> tuple[str, float, float, float]:
        """(place, start of hold, end of hold, overhead)."""
        hold = self.line("HOLDING ").split()
        end = float(self.line("RELEASED ").split()[1])
        return hold[1], float(hold[2]), end, float(hold[4])


def _leftovers(address: str) -> tuple[list[Any], list[Any]]:
    from edgebench.targets.lab import LabClient

    with LabClient(address) as client:
        return client.reservations(), [p for p in client.places() if p.acquired]


def test_three_clients_four_places(perf_lab: Lab, tmp_path: Path) -> None:
    variant = mlp_variant(tmp_path / "variants", width=256)
    t0 = time.time()
    clients = [Client(perf_lab, HOLD_S, variant.path) for _ in range(3)]
    codes = [c.finish() for c in clients]
    wall = time.time() - t0
    assert codes == [0, 0, 0], [c.proc.stderr.read() if c.proc.stderr else "" for c in clients]
    intervals = [c.interval() for c in clients]
    measured = [int(c.line("MEASURED ").split()[1]) for c in clients]
    overlaps = []
    for i, a in enumerate(intervals):
        for b in intervals[i + 1 :]:
            if a[0] == b[0] and a[1] < b[2] and b[1] < a[2]:
                overlaps.append((a, b))
    ideal = math.ceil(len(clients) / len(PLACES)) * HOLD_S
    print(f"\n3 concurrent clients, {len(PLACES)} places, each holding one board {HOLD_S:g} s measuring a real MLP:")
    for c, (place, start, end, overhead), n in zip(clients, intervals, measured, strict=True):
        print(
            f"  pid {c.proc.pid}: {place}, held {end - start:.1f} s from +{start - t0:.2f} s, "
            f"{n} measurements, reservation overhead {overhead * 1000:.0f} ms (process start to hold: "
            f"{start - c.started:.2f} s)"
        )
    print(f"  places used by two at once: {len(overlaps)}; places used: {sorted({i[0] for i in intervals})}")
    print(f"  wall {wall:.1f} s, ideal {ideal:.1f} s (ceil(3/4) x {HOLD_S:g} s): {wall / ideal:.2f}x")
    res, held = _leftovers(perf_lab.address)
    print(f"  left on the coordinator: {len(res)} reservations, {len(held)} acquired places")
    assert not overlaps and not res and not held


def test_sigkilled_client(perf_lab: Lab) -> None:
    # hold all 4 places: 3 well-behaved clients and the one we kill
    killed = Client(perf_lab, 600, None)
    killed.line("HOLDING ")
    others = [Client(perf_lab, 600, None) for _ in range(3)]
    for c in others:
        c.line("HOLDING ")
    place = killed.line("HOLDING ").split()[1]
    killed.proc.send_signal(signal.SIGKILL)
    killed.finish()
    t_kill = time.time()
    waiting = Client(perf_lab, 1, None)
    line = waiting.line("waiting for perf: reservation ", timeout=30)
    time.sleep(2)
    dead = [t for _, t in waiting.lines if "is gone: a dead run" in t]
    print(f"\na SIGKILLed client (pid {killed.proc.pid}) held {place}; the waiting client printed:")
    print(f"  {line}")
    assert dead, waiting.lines
    print(f"  {dead[0]}" if dead[0] != line else "  (the first line already named the dead holder)")
    command = re.search(r"free it with `([^`]*)`", dead[0])
    assert command is not None
    t_cmd = time.time()
    tool = labgrid_tool("labgrid-client")
    assert tool is not None
    for part in command.group(1).split(" && "):
        subprocess.run([tool, *shlex.split(part)[1:]], check=True, capture_output=True, timeout=30)
    t_freed = time.time()
    holding = waiting.line("HOLDING ", timeout=60)
    t_used = float(holding.split()[2])
    assert waiting.finish() == 0
    print(
        f"  the release commands took {t_freed - t_cmd:.2f} s; the waiting client held {holding.split()[1]} "
        f"{t_used - t_freed:.2f} s after them ({t_used - t_kill:.1f} s after the kill, most of it us reading the line)"
    )

    # without cancel-reservation: labgrid's own timeout frees the dead reservation's place
    killed2 = Client(perf_lab, 600, None)
    place2 = killed2.line("HOLDING ").split()[1]
    killed2.proc.send_signal(signal.SIGKILL)
    killed2.finish()
    waiting2 = Client(perf_lab, 1, None)
    line2 = waiting2.line("waiting for perf: reservation ", timeout=30)
    dead2 = (
        next(t for _, t in waiting2.lines if "is gone" in t)
        if any("is gone" in t for _, t in waiting2.lines)
        else line2
    )
    holder = re.search(rf"{place2} acquired by (\S+)", dead2)
    assert holder is not None, dead2
    t2 = time.time()
    subprocess.run(
        [tool, "-x", perf_lab.address, "-p", place2, "release-from", holder.group(1)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    holding2 = waiting2.line("HOLDING ", timeout=120)
    print(
        f"  release-from only (no cancel-reservation): {place2} used again {float(holding2.split()[2]) - t2:.1f} s "
        "later (the dead reservation expires on labgrid's 60 s timeout, checked every 15 s)"
    )
    assert waiting2.finish() == 0
    for c in others:
        c.proc.send_signal(signal.SIGTERM)
    assert [c.finish() for c in others] == [143, 143, 143]
    res, held = _leftovers(perf_lab.address)
    expired = [r for r in res if r.state == "expired" and r.owner.split("/")[0].endswith(f":{killed2.proc.pid}")]
    print(
        f"  left on the coordinator: {len(res)} reservations ({len(expired)} the dead client's, expired, "
        f"removed by labgrid 60 s later), {len(held)} acquired places"
    )
    assert len(res) == len(expired) and not held
