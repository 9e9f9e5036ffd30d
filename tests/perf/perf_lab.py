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

The same through the real CLI (``test_cli_*``): 3 concurrent ``edgebench run --boards pool:perf``
processes, each holding one place ~20 s (an MLP, 4 fresh agent processes): every run exit 0 and
its run file complete; no place used by two at once (the place is each run's Measurement.board,
held from its stderr ``acquired`` line to its exit, when it releases; the agents' starts from
``processes[].started`` checked inside that; the run file has no agent end times); wall time
against runs x time / places; the reservation overhead from the ``acquired`` line. Then a
SIGKILLed run holding a place: what the waiting run prints, and how long after the release
commands that line names its place is acquired and measured on again.
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
from lab.conftest import Lab, free_port, lab_key, lab_stopped_on_signals, labgrid_tool, require_labgrid, start_lab

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
    with lab_stopped_on_signals(the_lab):
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


# --- the same through the real CLI: `edgebench run --boards pool:perf` in separate processes

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
# one board for ~20 s: 4 fresh agent processes sharing a 6 s steady-state floor, their starts and the harness's
CLI_MEASURE = ["--repeats", "4", "--min-time", "6", "--max-time", "30", "--warmup-time", "0.2"]
CLI_SHORT = ["--repeats", "1", "--min-time", "0.5", "--min-rounds", "10", "--warmup-time", "0"]


class CliRun:
    """One `edgebench run --boards pool:perf` process, its stderr lines with the time each arrived."""

    def __init__(self, lab: Lab, variant: Path, results: Path, args: list[str]) -> None:
        self.results = results
        cmd = [
            EDGEBENCH, "run", "--boards", "pool:perf", "--boards-file", str(lab.inventory), "--variants",
            str(variant), "--results", str(results), *args,
        ]  # fmt: skip
        env = {**os.environ, "EDGEBENCH_NO_SPACE_CHECK": "1", "COLUMNS": "200"}
        self.started = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[tuple[float, str]] = []
        self.out = ""
        self.ended = 0.0
        self.readers = [threading.Thread(target=self._read, daemon=True), threading.Thread(target=self._out)]
        for t in self.readers:
            t.daemon = True
            t.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.time(), line.rstrip("\n")))

    def _out(self) -> None:
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()

    def line(self, needle: str, timeout: float = 60, *, anywhere: bool = False) -> tuple[float, str]:
        """The first stderr line starting with ``needle`` (containing it, ``anywhere``) and when it arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, text in list(self.lines):
                if text.startswith(needle) or (anywhere and needle in text):
                    return t, text
            if self.proc.poll() is not None and not any(r.is_alive() for r in self.readers):
                break
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r} line (exit {self.proc.poll()}): {[t for _, t in self.lines]}")

    def finish(self, timeout: float = 300) -> int:
        code = self.proc.wait(timeout)
        self.ended = time.time()
        for r in self.readers:
            r.join(5)
        return code

    def run(self) -> Any:
        from edgebench.results.store import list_runs, read_run

        (path,) = list_runs(self.results)
        return read_run(path)


def _overhead(acquired: str) -> float:
    found = re.search(r"reservation overhead ([0-9.]+) s", acquired)
    assert found is not None, acquired
    return float(found.group(1))


def _allocated_to(client: Any, place: str, token: str, timeout: float = 120) -> float:
    """When ``place`` is allocated to (or acquired under) the reservation ``token``, seen every 0.1 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.place(place).reservation == token:
            return time.time()
        time.sleep(0.1)
    raise AssertionError(f"{place} was not allocated to {token} in {timeout:g} s")


def test_cli_three_runs_four_places(perf_lab: Lab, tmp_path: Path) -> None:
    variant = mlp_variant(tmp_path / "variants", width=256).path
    t0 = time.time()
    runs = [CliRun(perf_lab, variant, tmp_path / f"results-{i}", CLI_MEASURE) for i in range(3)]
    codes = [r.finish() for r in runs]
    wall = time.time() - t0
    assert codes == [0, 0, 0], [[t for _, t in r.lines][-5:] for r in runs]
    rows = []
    for r in runs:
        doc = r.run()
        (m,) = doc.measurements
        assert m.ok, m.error
        t_acq, acquired = r.line("acquired ")
        agents = sorted(p.started for p in (m.processes or ()))
        # the place is held from the `acquired` line until the process exits (it releases on the way out)
        rows.append((r, doc, m.board, t_acq, r.ended, _overhead(acquired), agents))
    overlaps = []
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            if a[2] == b[2] and a[3] < b[4] and b[3] < a[4]:
                overlaps.append((a[2], a[0].proc.pid, b[0].proc.pid))
    outside = [(row[2], s) for row in rows for s in row[6] if not row[3] <= s <= row[4]]
    per_run = [r.ended - r.started for r in runs]
    typical = sorted(per_run)[len(per_run) // 2]
    ideal = len(runs) * typical / len(PLACES)
    print(
        f"\n3 concurrent `edgebench run --boards pool:perf --variants <MLP 256> {' '.join(CLI_MEASURE)}`, "
        f"{len(PLACES)} places:"
    )
    for r, doc, place, t_acq, t_end, overhead, agents in rows:
        print(
            f"  pid {r.proc.pid}: exit 0, run {doc.run_id} complete={doc.complete}, {place}, "
            f"held +{t_acq - t0:.1f}..+{t_end - t0:.1f} s ({t_end - t_acq:.1f} s), "
            f"{len(agents)} agent processes started +{agents[0] - t0:.1f}..+{agents[-1] - t0:.1f} s, "
            f"run {r.ended - r.started:.1f} s, reservation overhead {overhead:.2f} s"
        )
    print(
        "  no place used by two runs at once: "
        f"{'yes' if not overlaps else f'NO {overlaps}'} (from each run's Measurement.board, the stderr `acquired` "
        "line's arrival time and the process exit, when the place is released; the run file records each agent "
        "process's start (processes[].started) but no end, so the agents' starts are checked inside the hold: "
        f"{len(outside)} outside); places used: {sorted({row[2] for row in rows})}"
    )
    print(
        f"  wall {wall:.1f} s, ideal {ideal:.1f} s (runs x time / places = 3 x {typical:.1f} s / {len(PLACES)}): "
        f"{wall / ideal:.2f}x; against ceil(3/4) x {typical:.1f} s = {typical:.1f} s: {wall / typical:.2f}x"
    )
    res, held = _leftovers(perf_lab.address)
    print(f"  left on the coordinator: {len(res)} reservations, {len(held)} acquired places")
    assert all(row[1].complete for row in rows)
    assert not overlaps and not outside and not res and not held


def test_cli_sigkilled_run(perf_lab: Lab, tmp_path: Path) -> None:
    variant = mlp_variant(tmp_path / "variants", width=256).path
    others = [Client(perf_lab, 600, None) for _ in range(3)]  # 3 of the 4 places held
    try:
        for c in others:
            c.line("HOLDING ")
        killed = CliRun(
            perf_lab, variant, tmp_path / "killed", ["--repeats", "1", "--min-time", "600", "--max-time", "600"]
        )
        _, acquired = killed.line("acquired ")
        place = acquired.split()[1]
        time.sleep(8)  # its harness started (~5 s) and its agent is measuring on the board
        killed.proc.send_signal(signal.SIGKILL)
        killed.finish()
        t_kill = killed.ended  # its harness keeps the pipes open a little longer
        waiting = CliRun(perf_lab, variant, tmp_path / "waiting", CLI_SHORT)
        first = waiting.line("waiting for perf: reservation ", timeout=60)
        t_dead, dead = waiting.line("is gone: a dead run", timeout=60, anywhere=True)
        assert f"its process {killed.proc.pid} is gone" in dead, dead
        command = re.search(r"free it with `([^`]*)`", dead)
        assert command is not None, dead
        tool = labgrid_tool("labgrid-client")
        assert tool is not None
        token = re.search(r"reservation (\S+),", first[1])
        assert token is not None, first
        from edgebench.targets.lab import LabClient

        with LabClient(perf_lab.address) as observer:  # connected before the release, so its setup is not timed
            observer.place(place)
            t_cmd = time.time()
            for part in command.group(1).split(" && "):
                subprocess.run([tool, *shlex.split(part)[1:]], check=True, capture_output=True, timeout=30)
            t_freed = time.time()
            t_alloc = _allocated_to(observer, place, token.group(1))
        t_acq, _ = waiting.line("acquired ", timeout=120)
        assert waiting.finish() == 0, [t for _, t in waiting.lines]
        doc = waiting.run()
        (m,) = doc.measurements
        agents = sorted(p.started for p in (m.processes or ()))
        print(
            f"\na SIGKILLed `edgebench run --boards pool:perf` (pid {killed.proc.pid}) held {place}; "
            "the waiting run printed:"
        )
        for _, text in waiting.lines:
            if text.startswith(("waiting for perf", "acquired ")):
                print(f"  {text}")
        print(
            f"  first waiting line {first[0] - t_kill:.1f} s after the kill, the dead-run line {t_dead - t_kill:.1f} s "
            f"after; the release commands (`{command.group(1)}`) took {t_freed - t_cmd:.2f} s"
        )
        print(
            f"  {place} allocated by the coordinator to the waiting run's reservation {token.group(1)} "
            f"{t_alloc - t_freed:.2f} s after the release commands returned (seen by this benchmark's own client, "
            "polling every 0.1 s)"
        )
        print(
            f"  {m.board} acquired by the waiting run {t_acq - t_freed:.2f} s after the release commands returned, "
            f"its first agent process started {(agents[0] - t_freed) if agents else float('nan'):.2f} s after them; "
            f"{t_acq - t_kill:.1f} s after the kill; "
            f"waiting run exit 0, complete={doc.complete}, measured on {m.board} ok={m.ok}"
        )
        later = [f"+{when - t_freed:.1f} s {t[:160]}" for when, t in waiting.lines if when > t_acq and t.strip()]
        print(f"  the waiting run's stderr after `acquired` (s after the release commands): {later[:8] or 'nothing'}")
        assert m.board == place and doc.complete and m.ok
    finally:
        for c in others:
            c.proc.send_signal(signal.SIGTERM)
        codes = [c.finish() for c in others]
    assert codes == [143, 143, 143]
    res, held = _leftovers(perf_lab.address)
    print(f"  left on the coordinator: {len(res)} reservations, {len(held)} acquired places")
    assert not res and not held
