"""Chaos benchmark: the chaos test's six faults plus four disk and board faults, a table of what was kept.

Run with ``pytest tests/perf/perf_chaos.py -s -p no:cacheprovider`` (root: it mounts a tmpfs and a
read-only bind mount; needs OpenSSH sshd). Real ``edgebench run``s of 3 tiny ONNX variants on 3
farm boards (the chaos test's `Chaos` runs, `tests/integration/test_chaos.py`), each hit by one fault:

- the chaos test's six (``sigint``, ``sigterm``, ``sigkill``, ``sshd``, ``agent``, ``flip``), each
  run by its `_one_run` with every invariant of that test checked (the table shows whether all held);
- ``full-disk``: the results folder is a 512 KiB tmpfs (the space check before a run is turned off
  with ``EDGEBENCH_NO_SPACE_CHECK=1`` so that the disk fills mid-run);
- ``read-only``: the results folder is a read-only bind mount from the start (a bind mount cannot
  be remounted read-only while a file on it is open to write, as the harness log is all along);
- ``hung``: a board's sshd and its sessions are stopped (SIGSTOP) once the first measurement is in
  the run file, and resumed (SIGCONT) when the run has ended (``--timeout 30`` for that run);
- ``tampered``: the cached ``agent.pyz`` of the board with the fewest finished measurements is
  overwritten, once the first measurement is in the run file, by a script that leaves a marker.

Each fault runs ``EDGEBENCH_CHAOS_TRIALS`` times (default 1). Per row: the exit codes, and the
measurements finished (printed as ``measured ...`` by the CLI) vs kept (in the run file). The
one thing asserted is "kept = finished": every measurement printed as finished is in the run
file, and every one kept beyond those is a partial one stored at a stop (marked) or one that
finished after the CLI was killed (sigkill: nothing left to print it). Never times.

Last printed table (2026-12-07 14:41 UTC, load 3.7 4.3 4.2 (1, 5, 15 min), on a machine running a
long benchmark and a full test run; 212 s)::

    chaos benchmark: 1 trial(s) per fault (EDGEBENCH_CHAOS_TRIALS), 3 farm boards x 3 variants
    fault      trials exit codes         finished         kept kept = finished  chaos invariants
    --------------------------------------------------------------------------------------------
    sigint          1 130                       3            3             yes  6/6
    sigterm         1 143                       3            3             yes  6/6
    sigkill         1 -9                        0            3             yes  6/6
    sshd            1 1                         9            9             yes  6/6
    agent           1 1                         9            9             yes  6/6
    flip            1 0                         9            9             yes  6/6
    full-disk       1 1                         1            1             yes  -
    read-only       1 1                         0            0             yes  -
    tampered        1 1                         9            9             yes  -
    hung            1 1                         9            9             yes  -
      full-disk: error: results folder /tmp/.../full-disk-0/results is full (No space left on device, 76 KiB
        free): free space there or use --results with a folder on a disk with room; run 20261207T143955Z-a6f1b9
        stopped: 1 finished measurement(s) kept in /tmp/py[...]
      read-only: error: results folder /tmp/.../read-only-0/results is read-only (a read-only file system):
        choose another path or fix its permissions
      tampered: farm-1's cached agent overwritten
      tampered: error: 1 measurement(s) failed (farm-1/tiny/v1): see the errors in the run table
      hung: farm-3 hung
      hung: error: 2 measurement(s) failed (farm-3/tiny/v1, farm-3/tiny/v2): see the errors in the run table

(sigkill: the CLI was killed before it printed a line; its harness stored the 3 that finished.
The notes' long lines are wrapped here, and the /tmp paths shortened.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

INTEGRATION = Path(__file__).parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION))


def _integration_conftest() -> types.ModuleType:
    """tests/integration/conftest.py as a module of its own name (``conftest`` is tests/conftest.py here)."""
    spec = importlib.util.spec_from_file_location("edgebench_integration_conftest", INTEGRATION / "conftest.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_conftest = _integration_conftest()
_saved = sys.modules.get("conftest")
sys.modules["conftest"] = _conftest  # test_chaos imports `require_sshd` from it
try:
    import test_chaos
    from test_chaos import FAULTS as CHAOS_FAULTS
    from test_chaos import Chaos, _doc, _keys, _one_run, chaos_farm
    from test_full_disk import tmpfs
finally:
    if _saved is not None:
        sys.modules["conftest"] = _saved

from edgebench.agent.build import agent_sha256  # noqa: E402
from edgebench.results import store  # noqa: E402
from edgebench.targets.farm import Farm  # noqa: E402

own_board_lock = _conftest.own_board_lock  # autouse: this module's runs take a board lock folder of their own
__all__ = ["chaos_farm", "own_board_lock"]

NEW_FAULTS = ("full-disk", "read-only", "tampered", "hung")  # hung last: its board may keep a stale session
FAULTS = (*CHAOS_FAULTS, *NEW_FAULTS)
SEED = 20261207
RUN_TIMEOUT_S = 300.0
HUNG_TIMEOUT = ["--timeout", "30"]  # the hung board's job fails after this, not after the default 900 s
Key = tuple[str, str, str]


class _Recorded(subprocess.Popen[str]):
    """`subprocess.Popen` as `Chaos.start` uses it, keeping each process's stderr and adding `EXTRA` options."""

    EXTRA: list[str] = []  # noqa: RUF012 (set per fault)
    started: list[_Recorded] = []  # noqa: RUF012

    def __init__(self, args: list[str], **kw: Any) -> None:
        if self.EXTRA and "--" in args:
            at = args.index("--")
            args = [*args[:at], *self.EXTRA, *args[at:]]
        super().__init__(args, **kw)
        self.err = ""
        _Recorded.started.append(self)

    def communicate(self, input: str | None = None, timeout: float | None = None) -> tuple[str, str]:
        out, err = super().communicate(input, timeout)
        self.err += err or ""
        return out, err


@dataclass
class Trial:
    """One run hit by one fault: its exit code, what the CLI printed as finished and what the run file kept."""

    fault: str
    exit: int | None = None
    finished: set[Key] = field(default_factory=set)
    kept: set[Key] = field(default_factory=set)
    partial: set[Key] = field(default_factory=set)  # kept from fewer agent processes than planned
    invariants: str = ""  # the chaos test's invariants, for its faults
    notes: list[str] = field(default_factory=list)

    @property
    def kept_is_finished(self) -> bool:
        """Every finished measurement kept; every other kept one partial (a stop) or finished after a SIGKILL."""
        extra = self.kept - self.finished - self.partial
        return self.finished <= self.kept and (not extra or self.fault == "sigkill")


def _finished(stderr: str) -> set[Key]:
    out: set[Key] = set()
    for ln in stderr.splitlines():
        if ln.startswith("measured "):
            board, model, variant = ln[len("measured ") :].split(": ")[0].split("/")
            out.add((board, model, variant))
    return out


def _partial(doc: dict[str, Any] | None) -> set[Key]:
    if doc is None:
        return set()
    out = set()
    for b in doc["benchmarks"]:
        settings = b["extra_info"].get("settings") or {}
        if settings.get("repeats_planned") not in (None, settings.get("repeats")):
            out.add((b["params"]["board"], b["params"]["model"], b["params"]["variant"]))
    return out


def _new_doc(c: Chaos, before: set[str]) -> dict[str, Any] | None:
    new = sorted(p for p in store.list_runs(c.results) if p.name not in before) if c.results.is_dir() else []
    return _doc(new[-1]) if new else None


def _chaos_trial(c: Chaos, fault: str) -> Trial:
    """One of the chaos test's faults, by its `_one_run` (which checks that test's invariants too)."""
    snaps: list[set[str]] = []  # the run files when each run starts: the faulted one, then the check run
    start = c.start

    def snap_then_start(variants: str = "variants") -> subprocess.Popen[str]:
        snaps.append({p.name for p in store.list_runs(c.results)})
        return start(variants)

    n = len(_Recorded.started)
    c.start = snap_then_start  # type: ignore[method-assign]
    try:
        o = _one_run(c, fault, c.rng.choice(("first", "delay")))
    finally:
        c.start = start  # type: ignore[method-assign]
    proc = _Recorded.started[n]  # the faulted run; the next one is `_one_run`'s check run
    new = sorted(snaps[1] - snaps[0]) if len(snaps) > 1 else []
    doc = _doc(c.results / store.RUNS / new[-1]) if new else None
    held = sum(o.held.values())
    t = Trial(fault, o.exit, _finished(proc.err), set(_keys(doc)), _partial(doc), f"{held}/{len(o.held)}")
    t.notes += o.notes
    return t


@contextlib.contextmanager
def _bind(folder: Path) -> Iterator[Path]:
    """``folder`` bind-mounted on itself while the block runs (so it can be remounted read-only)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _first_measurement(c: Chaos, proc: subprocess.Popen[str], before: set[str]) -> bool:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if _keys(_new_doc(c, before)):
            return True
        time.sleep(0.02)
    return False


def _new_trial(farm: Farm, tmp: Path, fault: str, rng: random.Random) -> Trial:
    """One of the four new faults on a results folder of its own."""
    tmp.mkdir()
    c = Chaos(farm, tmp, rng)
    t = Trial(fault)
    with contextlib.ExitStack() as stack:
        if fault == "full-disk":
            c.results = stack.enter_context(tmpfs(tmp / "results", "512k"))
        elif fault == "read-only":  # from the start: a bind mount cannot turn read-only while a file is open to write
            c.results = stack.enter_context(_bind(tmp / "results"))
            subprocess.run(["mount", "-o", "remount,bind,ro", str(c.results)], check=True)
        _Recorded.EXTRA = HUNG_TIMEOUT if fault == "hung" else []
        stopped: list[psutil.Process] = []
        marker = tmp / "the-replacement-ran"

        def resume() -> None:
            for p in stopped:
                with contextlib.suppress(psutil.Error):
                    p.resume()  # SIGCONT

        stack.callback(resume)
        before: set[str] = set()
        proc = c.start()
        _Recorded.EXTRA = []
        try:
            if fault == "read-only":
                pass
            elif not _first_measurement(c, proc, before):
                t.notes.append("the run ended before the fault")
            elif fault == "hung":
                board = c.names[-1]
                sshd = psutil.Process(farm.member(board).pid)
                stopped += [sshd, *sshd.children(recursive=True)]
                for p in stopped:
                    p.suspend()  # SIGSTOP
                t.notes.append(f"{board} hung")
            elif fault == "tampered":
                done = _keys(_new_doc(c, before))
                board = min(c.names, key=lambda n: sum(k[0] == n for k in done))
                cached = Path(farm.board(board).workdir) / "cache" / agent_sha256() / "agent.pyz"
                with open(cached, "w") as f:  # in place, as in test_agent_tampered
                    f.write(f"open({str(marker)!r}, 'w').write('ran')\nprint('{{\"ok\": true}}')\n")
                t.notes.append(f"{board}'s cached agent overwritten")
            try:
                proc.communicate(timeout=RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                t.notes.append("the run did not end in time: killed")
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert isinstance(proc, _Recorded)
        t.exit = proc.returncode
        doc = _new_doc(c, before)
        t.finished, t.kept, t.partial = _finished(proc.err), set(_keys(doc)), _partial(doc)
        if marker.exists():
            t.notes.append("the tampered agent RAN")
        errors = [ln for ln in proc.err.splitlines() if ln.startswith("error:")]
        t.notes += [e[:300] for e in errors[-1:]]
        if "Traceback" in proc.err:
            t.notes.append("a traceback on stderr")
    return t


def _table(trials: list[Trial], n: int) -> str:
    head = (
        f"{'fault':10} {'trials':>6} {'exit codes':14} {'finished':>12} {'kept':>12} {'kept = finished':>15}  "
        "chaos invariants"
    )
    lines = [f"chaos benchmark: {n} trial(s) per fault (EDGEBENCH_CHAOS_TRIALS), 3 farm boards x 3 variants", head]
    lines.append("-" * len(head))
    for fault in FAULTS:
        mine = [t for t in trials if t.fault == fault]
        exits = ",".join(str(t.exit) for t in mine)
        fin = ",".join(str(len(t.finished)) for t in mine)
        kept = ",".join(f"{len(t.kept)}" + (f"({len(t.partial)}p)" if t.partial else "") for t in mine)
        ok = "yes" if all(t.kept_is_finished for t in mine) else "NO"
        inv = ",".join(t.invariants for t in mine) or "-"
        lines.append(f"{fault:10} {len(mine):>6} {exits:14} {fin:>12} {kept:>12} {ok:>15}  {inv}")
    for t in trials:
        lines += [f"  {t.fault}: {note}" for note in t.notes]
    return "\n".join(lines)


@pytest.mark.timeout(3600)
def test_chaos_benchmark_kept_is_finished(chaos_farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trials_n = int(os.environ.get("EDGEBENCH_CHAOS_TRIALS") or 1)
    rng = random.Random(int(os.environ.get("EDGEBENCH_CHAOS_SEED") or SEED))
    monkeypatch.setattr(test_chaos, "subprocess", types.SimpleNamespace(**{**vars(subprocess), "Popen": _Recorded}))
    monkeypatch.setenv("EDGEBENCH_NO_SPACE_CHECK", "1")  # the full disk fills mid-run
    (tmp_path / "chaos").mkdir()
    c = Chaos(chaos_farm, tmp_path / "chaos", rng)
    warm = c.start()  # one clean run first: every board has every artifact cached (the flip needs them)
    _, err = warm.communicate(timeout=RUN_TIMEOUT_S)
    assert warm.returncode == 0, err[-2000:]
    trials: list[Trial] = []
    for fault in FAULTS:
        for i in range(trials_n):
            if fault in CHAOS_FAULTS:
                trials.append(_chaos_trial(c, fault))
            else:
                trials.append(_new_trial(chaos_farm, tmp_path / f"{fault}-{i}", fault, rng))
    table = _table(trials, trials_n)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{time.strftime('%Y-%m-%d')}, load {load}\n{table}")
    broken = [t.fault for t in trials if not t.kept_is_finished]
    assert not broken, table
