"""Throttling simulated honestly on the loopback farm (issue 23 item 5).

A board's CPU quota is lowered from 1 core to half a core part-way through a real
``edgebench run --sustained`` (the farm's cgroup, written while the agent runs), and the
finding must place the onset within two windows of that moment, with the slowdown of the quota's
effect measured independently (the issue's 10 % over 10 seeded trials is printed by
tests/perf/perf_sustained.py; one run here is checked against a wide band): short plain agent runs of the same model
on the same board at each quota, before and after the sustained run. The effect is measured,
never assumed to be 2x: a single-threaded inference at half a core waits out whole CFS
periods, so its p50 moves in steps (a ~2 ms inference at a 2 ms period read 1.7x to 3.4x from
run to run, and a plain onnxruntime loop, with other gaps between inferences, fell on another
step than the agent). Hence the choices below: the board is pinned to one CPU (no migration
between the per-CPU pools of CFS runtime), the period is 2 ms (the kernel's 1 ms minimum
quota at half a core), and the model takes ~5-6 ms (several periods per inference, so the
step is a small part of it).

When did the sustained phase begin? The agent's windows are timed from the phase's own
start, and the run records no absolute time. The test watches the board's cgroup for the
agent process (``agent.pyz`` with a job) and notes when it exits: the sustained phase ends
just before (with generated inputs there is no accuracy pass after it), so its start is the
exit minus the timeline's ``elapsed_s``. The lowering, taken on the same monotonic clock, is
then placed among the windows (`lowering_window`).

The farm's ``mid`` board is used (one core, a CPU cgroup); ``farm-1`` (``full``) has no CPU
cgroup to change. The helpers are shared with ``tests/perf/perf_sustained.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from _tiny_onnx import matmul_chain
from edgebench.model import Measurement
from edgebench.model.measurement import Timeline
from edgebench.results.store import load_run
from edgebench.results.sustained import SustainedFinding, find_throttling
from edgebench.targets import cgroups
from edgebench.targets.farm import Farm, FarmBoard

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
PIN_CPU = 1  # the agent and the timing loop run on one CPU: no migration between per-CPU CFS runtime pools
PERIOD_US = 2_000  # the CFS period while throttling: half a core is 1 ms per 2 ms, close to a 2x slowdown
BEFORE, AFTER = 1.0, 0.5  # cores
SHAPE = {"layers": 96, "width": 256, "batch": 32}  # ~5-6 ms per inference on one thread here


def require_cpu_limits(farm: Farm) -> None:
    """Skip loudly without cgroup limits (not root, no cpu controller); under CI=true fail instead."""
    if farm.limits:
        return
    msg = (
        f"farm boards have NO CPU LIMITS here ({farm.limits_note}), so throttling cannot be simulated: "
        "run the tests as root on a host with cgroup v1 or v2 cpu controllers"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: refusing to skip)")
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)


def limited_board(farm: Farm) -> FarmBoard:
    """The farm's one-core board (profile ``mid``): its CPU cgroup can be changed while it runs."""
    for m in farm.members:
        if m.cpu_cores == BEFORE and m.cgroups:
            return m
    pytest.fail(f"no farm board with a {BEFORE}-core CPU cgroup among {[(m.name, m.cpu_cores) for m in farm.members]}")


def make_model(folder: Path) -> Path:
    return matmul_chain(folder / "chain.onnx", SHAPE["layers"], SHAPE["width"], SHAPE["batch"])


@contextlib.contextmanager
def quota_restored(board: FarmBoard) -> Iterator[None]:
    """The board at `BEFORE` cores over `PERIOD_US`, put back to its own limit afterwards."""
    cgroups.set_cpu_limit(board.cgroups, BEFORE, PERIOD_US)
    try:
        yield
    finally:
        cgroups.set_cpu_limit(board.cgroups, board.cpu_cores, cgroups.CPU_PERIOD_US)


def _edgebench_run(farm: Farm, board: FarmBoard, model: Path, folder: Path, *extra: str) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [
        EDGEBENCH, "run", "--variants", str(model), "--results", str(folder / "results"), "--min-rounds", "10",
        "--warmup-iters", "5", "--warmup-time", "0", "--repeats", "1",
        "--boards-file", str(pinned_boards_file(farm, board, folder)), "--boards", board.name, *extra,
    ]  # fmt: skip
    env = {**os.environ, "EDGEBENCH_NO_SPACE_CHECK": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=folder, env=env)


def _measurement(proc: subprocess.Popen[str], folder: Path) -> Measurement:
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    (run_file,) = sorted((folder / "results" / "runs").glob("*.json"))
    (m,) = load_run(run_file).measurements
    assert m.ok, m.error
    return m


def independent_ratio(
    farm: Farm, board: FarmBoard, model: Path, folder: Path, seconds: float = 1.5
) -> tuple[float, float]:
    """The model's p50 (ms) at `BEFORE` and at `AFTER` cores: a short plain agent run (no sustained phase) at each.

    The same agent and timing loop as the sustained phase, so the quota acts on the same
    sequence of inferences (a plain onnxruntime loop, with other gaps between inferences,
    fell on another cycle of the CFS periods: 3.2x where the agent saw 2.2x).
    """
    p50 = []
    try:
        for cores in (BEFORE, AFTER):
            cgroups.set_cpu_limit(board.cgroups, cores, PERIOD_US)
            where = folder / f"independent-{cores:g}"
            m = _measurement(_edgebench_run(farm, board, model, where, "--min-time", str(seconds)), where)
            assert m.summary is not None
            p50.append(m.summary.p50_ms)
    finally:
        cgroups.set_cpu_limit(board.cgroups, BEFORE, PERIOD_US)
    return p50[0], p50[1]


def _agent_pids(board: FarmBoard) -> list[int]:
    """The agent processes running a job in the board's cgroup (not the probes and board tools)."""
    found = []
    for cg in board.cgroups:
        with contextlib.suppress(OSError):
            for pid in (Path(cg) / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    python = os.path.basename(argv[0]).startswith(b"python")  # not `timeout` nor the shell
                    if (
                        python
                        and any(a.endswith(b"agent.pyz") for a in argv)
                        and not any(a.startswith(b"--") for a in argv)
                    ):
                        found.append(int(pid))
    return sorted(set(found))


@dataclass
class Trial:
    """One sustained run with the quota lowered part-way: where it was lowered and what was found."""

    timeline: Timeline
    finding: SustainedFinding
    lowered_s: float  # the lowering, in seconds from the sustained phase's start
    start_estimate_s: float  # agent start + --min-time: the earliest the phase can have begun (a cross-check)

    @property
    def lowering_window(self) -> int:
        """The window the lowering fell in."""
        ws = self.timeline.windows
        for i, w in enumerate(ws):
            if self.lowered_s < w.t_s + w.duration_s:
                return i
        return len(ws) - 1


def pinned_boards_file(farm: Farm, board: FarmBoard, folder: Path) -> Path:
    """The farm's boards.toml with ``board`` pinned to `PIN_CPU` (as the timing loop is)."""
    text = farm.boards_file.read_text()
    marker = f'name = "{board.name}"\n'
    assert marker in text
    path = folder / "boards.toml"
    path.write_text(text.replace(marker, marker + f"cpu_affinity = [{PIN_CPU}]\n", 1))
    return path


def throttled_run(
    farm: Farm, board: FarmBoard, model: Path, folder: Path, *, seconds: int = 20, lower_after: float = 8.0
) -> Trial:
    """``edgebench run --sustained`` on ``board``, its quota lowered to `AFTER` about ``lower_after`` s into the phase.

    The board must be at `BEFORE` cores over `PERIOD_US` (`quota_restored`); it is left at `AFTER`.
    """
    min_time = 0.5
    proc = _edgebench_run(farm, board, model, folder, "--min-time", str(min_time), "--sustained", f"{seconds}s")
    try:
        deadline = time.monotonic() + 60
        pids: list[int] = []
        while not pids:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the agent never started on the board"
            pids = _agent_pids(board)
            time.sleep(0.01)
        (pid,) = pids
        started = time.monotonic()
        # the model loads and warms up in well under a second here: the phase begins ~min_time + 0.5 s in
        time.sleep(max(0.0, started + min_time + 0.5 + lower_after - time.monotonic()))
        cgroups.set_cpu_limit(board.cgroups, AFTER, PERIOD_US)
        lowered = time.monotonic()
        while Path(f"/proc/{pid}").exists() and b"agent.pyz" in _cmdline(pid):
            assert time.monotonic() < deadline + seconds, "the agent did not finish"
            time.sleep(0.005)
        exited = time.monotonic()
        m = _measurement(proc, folder)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    tl = m.timeline
    assert tl is not None
    phase_start = exited - float(tl.run["elapsed_s"])
    return Trial(tl, find_throttling(tl), lowered - phase_start, started + min_time - phase_start)


def _calm(trial: Trial) -> list[float]:
    """The p50s of the windows before the quota was lowered."""
    return [w.p50_ms for w in trial.timeline.windows[: trial.lowering_window] if w.p50_ms is not None]


def _calm_spread(trial: Trial) -> float:
    """How far apart the unthrottled windows' p50s are (max / min; 1.0 on a quiet board)."""
    calm = _calm(trial)
    return max(calm) / min(calm) if calm else 1.0


def _misplaced(trial: Trial) -> bool:
    """The finding's onset is not within 2 windows of the lowering (or there is none)."""
    onset = trial.finding.onset_window
    return onset is None or abs(onset - trial.lowering_window) > 2


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.ssh
def test_lowering_a_boards_cpu_quota_mid_run_is_found_where_and_as_much_as_it_happened(
    farm: Farm, tmp_path: Path
) -> None:
    require_cpu_limits(farm)
    board = limited_board(farm)
    model = make_model(tmp_path)
    with quota_restored(board):
        # the quota's effect, measured on each side of the sustained run: a neighbour's load on this shared
        # machine moves the unthrottled p50 more than the throttled one, so one measurement can be off by 10 %+
        fast, slow = independent_ratio(farm, board, model, tmp_path / "independent-before")
        trial = throttled_run(farm, board, model, tmp_path / "sustained")
        if _misplaced(trial) and _calm_spread(trial) > 1.10:
            # the other test worker shares these 2 cores: when its load visibly moved the windows before the
            # lowering (p50 spread > 10 %), the precondition of a quiet board failed, not the finding; once more
            print(f"a neighbour's load moved the unthrottled windows (x{_calm_spread(trial):.2f}): one more trial")
            cgroups.set_cpu_limit(board.cgroups, BEFORE, PERIOD_US)
            trial = throttled_run(farm, board, model, tmp_path / "sustained-again")
        fast2, slow2 = independent_ratio(farm, board, model, tmp_path / "independent-after")
    expected = ((slow / fast) * (slow2 / fast2)) ** 0.5
    print(
        f"independent: p50 {fast:.3f} / {fast2:.3f} ms at {BEFORE} core, {slow:.3f} / {slow2:.3f} ms at {AFTER} core "
        f"(before / after the run): x{slow / fast:.3f} / x{slow2 / fast2:.3f}, x{expected:.3f} taken"
    )
    assert min(fast, fast2) > 1 and max(fast, fast2) < 20, "the model should take a few ms per inference on one thread"
    assert expected > 1.3, "half a core should slow the model down markedly"
    f = trial.finding
    ws = trial.timeline.windows
    print(
        f"lowered at {trial.lowered_s:.2f} s (window {trial.lowering_window}); "
        f"the phase began {-trial.start_estimate_s:.2f} s after the agent's start + --min-time; "
        f"finding: {f.sentence}; onset window {f.onset_window}; p50s {[round(w.p50_ms or 0, 3) for w in ws]}"
    )
    assert trial.start_estimate_s <= 0.05, "the phase began before the agent had done its --min-time"
    assert 18 <= len(ws) <= 21
    assert 5 <= trial.lowering_window <= 12, "the lowering should fall in the middle of the run"
    assert f.throttled and f.onset_window is not None and f.cost is not None, f.sentence
    calm = _calm(trial)
    busy = f"the unthrottled windows' p50 ranged {min(calm):.2f}..{max(calm):.2f} ms (a neighbour's load shows there)"
    assert abs(f.onset_window - trial.lowering_window) <= 2, (f.onset_window, trial.lowering_window, busy)
    measured = 1 + f.cost
    print(f"slowdown: x{measured:.3f} found, x{expected:.3f} expected ({measured / expected - 1:+.1%})")
    # The 10 % is a statistical target, measured over 10 seeded trials by tests/perf/perf_sustained.py
    # (these machines are shared: a neighbour on the 2 cores moved single runs by 7-12 %). Here: the slowdown
    # found is the quota's, not noise: more than half of its independently measured effect, less than 1.5 times.
    assert 1 + (expected - 1) / 2 < measured < 1 + (expected - 1) * 1.5, busy
