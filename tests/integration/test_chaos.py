"""Chaos: 6 real `edgebench run`s on the 3-board farm, each hit at a random moment by one fault.

Each run measures 3 tiny ONNX variants on each of 3 boards of a farm of its own (``--parallel``,
``--repeats 1``, ``--min-time 0.2``, lock timeout 0), after one clean run that fills the board
caches. The six faults, each once (``tests/perf/perf_chaos.py`` repeats them and adds four), in a
seeded order (``EDGEBENCH_CHAOS_SEED``, printed; default
`DEFAULT_SEED`), each at a seeded moment (after the first measurement lands in the run file,
or at a delay after the start, which may fall before the harness has measured anything):

=========  ==================================================  =========================================
fault      what is done                                        what is expected of the run
=========  ==================================================  =========================================
sigint     SIGINT to the CLI's process group (Ctrl-C)          exit 130; a run file iff something
                                                               finished, ``complete: false``,
                                                               ``interrupted by SIGINT``
sigterm    SIGTERM to the ``edgebench`` process alone          the same with exit 143 and SIGTERM
                                                               (-15 while edgebench loads: the default
                                                               action, 143 in a shell too)
sigkill    SIGKILL of the ``edgebench`` process alone          its harness stops on its own (within
                                                               `HARNESS_STOP_S`); a run file iff something
                                                               finished, ``complete: false``, "... died"
sshd       a board's sshd and its sessions killed (restarted   exit 1, complete; the dark board's
           before the next run)                                unfinished cases are failures
agent      one agent process on a board SIGKILLed              exit 1, complete; that case a failure
flip       one byte of a board's cached artifact changed,      exit 1, complete; that case failed
           for a variant the board has not started yet         with the agent's sha256 error (or
                                                               measured from a re-uploaded copy)
=========  ==================================================  =========================================

After each run the invariants are checked (and the results kept for the table):

1. **files**: every run file parses; the files from before are byte-identical; the run
   added exactly one file (zero only when nothing had finished when the fault hit and
   nothing finished after it); what was in the file at the fault is still there.
2. **once**: no (board, model, variant) twice in the run; a complete run has every case.
3. **index**: the SQLite index (`edgebench.results.index`) has the same run ids, complete
   flags and measurement counts as the files, and `store.sync` finds nothing to redo.
4. **agents**: no agent process runs on any board (psutil scan of the board workdirs).
5. **next**: the next run on the same three boards, with a lock timeout of 0, exits 0 with
   every measurement ok (and a flipped cache is uploaded afresh).
6. **fault**: the fault's own expectation from the table above (exit code, reason, the hit case),
   no traceback on stderr, no progress file left in ``results/logs``.

The smaller tests below pin the bugs this test found, each at the exact moment.

Reproduce: ``EDGEBENCH_CHAOS_SEED=<seed> .venv/bin/pytest tests/integration/test_chaos.py -s -p no:cacheprovider``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from _bench_models import onnx_model, variant
from click.testing import CliRunner

from conftest import require_sshd
from edgebench.bench import session as session_mod
from edgebench.bench.session import EdgeSession, resolve_boards
from edgebench.bench.settings import RunSettings
from edgebench.cli import main
from edgebench.cli import run as cli_run
from edgebench.compress.variant import Variant
from edgebench.model import Measurement, MeasurementError
from edgebench.results import index, schema, store
from edgebench.targets.farm import Farm, farm_up
from edgebench.workflows.run import RunOutcome

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
DEFAULT_SEED = 20261126
FAULTS = ("sigint", "sigterm", "sigkill", "sshd", "agent", "flip")
RUNS = 6  # each fault once: the suite's time; tests/perf/perf_chaos.py runs more trials
BOARDS = 3
VARIANTS = 3  # per board, measured in this order (round-robin with --repeats 1)
RUN_TIMEOUT_S = 150.0  # one run, start to end, on a loaded 2-core machine
HARNESS_STOP_S = 60.0  # a SIGKILLed CLI's harness notices within a second; generous for load
INVARIANTS = ("files", "once", "index", "agents", "next", "fault")
CASES = BOARDS * VARIANTS
Key = tuple[str, str, str]


@dataclass
class Outcome:
    """One chaos run: the fault, when it hit, what came out and which invariants held."""

    fault: str
    moment: str
    exit: int | None = None
    kept: int = 0
    at_fault: int = 0  # measurements in the run file when the fault hit
    seconds: float = 0.0
    held: dict[str, bool] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def landed(self) -> bool:
        """False when the fault hit nothing: the run ended first, or the killed agent had answered."""
        return not any(m in n for n in self.notes for m in ("ended before", "had already answered"))

    def check(self, name: str, ok: bool, why: str = "") -> None:
        """Record invariant ``name`` (it holds only if every check of it held)."""
        self.held[name] = self.held.get(name, True) and ok
        if not ok:
            self.notes.append(f"{name}: {why}")


def _doc(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc


def _keys(doc: dict[str, Any] | None) -> list[Key]:
    """(board, model, variant) of every measurement in a run document, ok or failed."""
    if doc is None:
        return []
    ok = [(b["params"]["board"], b["params"]["model"], b["params"]["variant"]) for b in doc["benchmarks"]]
    return ok + [(f["board"], f["model"], f["variant"]) for f in doc["edgebench"]["failures"]]


def _failure(doc: dict[str, Any], key: Key) -> dict[str, Any] | None:
    return next((f for f in doc["edgebench"]["failures"] if (f["board"], f["model"], f["variant"]) == key), None)


class Chaos:
    """The farm, the variants and the results folder shared by the chaos runs."""

    def __init__(self, farm: Farm, tmp: Path, rng: random.Random) -> None:
        self.farm, self.tmp, self.rng = farm, tmp, rng
        self.results = tmp / "results"
        self.names = [b.name for b in farm.boards]
        self.workdirs = {n: Path(farm.board(n).workdir) for n in self.names}
        self.variants: list[Variant] = [
            variant(tmp / "variants", "tiny", f"v{i}", onnx_model(tmp / f"m{i}.onnx", seed=i)) for i in range(VARIANTS)
        ]
        # the next run measures one variant (the flipped one after a flip): the same file, the same board cache
        for v in self.variants:
            variant(tmp / "verify" / v.name, "tiny", v.name, v.artifact)
        self.by_sha = {v.sha256: v for v in self.variants}

    # -- processes ---------------------------------------------------------------------------------------------
    def start(self, variants: str = "variants") -> subprocess.Popen[str]:
        """`edgebench run` on the three boards in parallel, its own process group (as a shell starts it)."""
        cmd = [
            EDGEBENCH, "run", "--boards-file", str(self.farm.boards_file), "--boards", ",".join(self.names),
            "--variants", str(self.tmp / variants), "--results", str(self.results), "--parallel",
            "--min-time", "0.2", "--warmup-time", "0", "--warmup-iters", "2", "--repeats", "1",
            "--", "--edge-lock-timeout", "0",
        ]  # fmt: skip
        env = {**os.environ, "HOME": str(self.tmp / "home")}
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=self.tmp,
            start_new_session=True,
        )  # fmt: skip

    def harnesses(self) -> list[psutil.Process]:
        """The child pytest processes writing into this results folder."""
        out = []
        for p in psutil.process_iter(["cmdline"]):
            args = p.info["cmdline"] or []
            if "--edge-run-id" in args and str(self.results.resolve()) in args:
                out.append(p)
        return out

    def agents(self) -> dict[psutil.Process, tuple[str, Variant | None]]:
        """Agent processes on the boards: process -> (board, the variant its job loads)."""
        out: dict[psutil.Process, tuple[str, Variant | None]] = {}
        for p in psutil.process_iter(["cmdline", "create_time"]):
            args = p.info["cmdline"] or []
            if not args or not Path(args[0]).name.startswith("python"):
                continue  # the on-board backstop `timeout -s KILL N python agent.pyz` is its parent
            for name, wd in self.workdirs.items():
                if any(a.endswith("agent.pyz") and a.startswith(str(wd)) for a in args):
                    out[p] = (name, self._job_variant(args[-1]))
        return out

    def _job_variant(self, job_file: str) -> Variant | None:
        doc = _doc(Path(job_file))
        artifact = str(doc.get("artifact", "")) if doc else ""
        return self.by_sha.get(Path(artifact).parent.name)

    # -- the results folder --------------------------------------------------------------------------------------
    def files(self) -> dict[str, bytes]:
        """Every run file's bytes by name."""
        return {p.name: p.read_bytes() for p in store.list_runs(self.results)}

    def current(self, before: dict[str, bytes]) -> dict[str, Any] | None:
        """The document of the run being written now (the file that was not there before)."""
        new = [p for p in store.list_runs(self.results) if p.name not in before]
        return _doc(new[-1]) if new else None

    # -- the moment and the fault ---------------------------------------------------------------------------------
    def wait_moment(self, proc: subprocess.Popen[str], before: dict[str, bytes], moment: str, delay: float) -> bool:
        """Wait for the fault's moment; False if the run ended first."""
        deadline = time.monotonic() + (delay if moment == "delay" else RUN_TIMEOUT_S)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if moment == "first" and _keys(self.current(before)):
                return True
            time.sleep(0.02)
        assert moment == "delay", "no measurement was stored in time"
        return proc.poll() is None

    def pick_agent(
        self, proc: subprocess.Popen[str], before: dict[str, bytes], board: str
    ) -> tuple[psutil.Process, str, Variant | None] | None:
        """A running agent, on ``board`` if it has one, else on any board (waits, bounded)."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            done = _keys(self.current(before))
            found = [(p, b, v) for p, (b, v) in self.agents().items() if v and (b, "tiny", v.name) not in done]
            # on the chosen board first, the youngest first (an older one may be past its answer, exiting)
            found.sort(key=lambda t: (t[1] != board, -t[0].info["create_time"]))
            if found:
                return found[0]
            time.sleep(0.02)
        return None

    def pick_flip(
        self, proc: subprocess.Popen[str], before: dict[str, bytes], board: str
    ) -> tuple[str, Variant] | None:
        """A (board, variant) whose agent has surely not loaded the artifact yet: after the running one
        in the board's order, or two after the last recorded one when none runs (the next one may have
        just finished and not been recorded yet)."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        order = {v.name: i for i, v in enumerate(self.variants)}
        while time.monotonic() < deadline and proc.poll() is None:
            done = _keys(self.current(before))
            running = self.agents().values()
            for name in sorted(self.names, key=lambda n: n != board):
                runs = [order[v.name] for b, v in running if b == name and v is not None]
                last = max([order[k[2]] for k in done if k[0] == name], default=-1)
                first_safe = max(runs) + 1 if runs else last + 2
                if first_safe < VARIANTS:
                    return name, self.variants[self.rng.randrange(first_safe, VARIANTS)]
            time.sleep(0.02)
        return None

    def cached(self, board: str, v: Variant) -> Path:
        """The board's cached copy of a variant's artifact."""
        return self.workdirs[board] / "cache" / v.sha256 / v.artifact.name


def _flip_one_byte(path: Path, rng: random.Random) -> None:
    with open(path, "r+b") as f:  # in place, as a bad block or a stray write would
        size = f.seek(0, os.SEEK_END)
        at = rng.randrange(size)
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0xFF]))


def _check_index(c: Chaos, o: Outcome) -> None:
    """The index against the files, read before `sync` (which would repair it), then sync has nothing to do."""
    runs = {p.stem: store.read_run(p) for p in store.list_runs(c.results)}
    indexed = {r[0]: bool(r[1]) for r in index.query(c.results, "SELECT run_id, complete FROM runs")}
    o.check("index", indexed == {k: r.complete for k, r in runs.items()}, f"runs table {indexed} vs files")
    rows = dict(index.query(c.results, "SELECT run_id, count(*) FROM rows GROUP BY run_id"))
    want = {k: len(r.measurements) for k, r in runs.items() if r.measurements}
    o.check("index", rows == want, f"rows per run {rows} vs files {want}")
    rep = store.sync(c.results, warn=False)
    o.check("index", (rep.indexed, rep.removed, rep.unreadable) == (0, 0, []), f"sync had work: {rep}")


def _one_run(c: Chaos, fault: str, moment: str) -> Outcome:
    rng = c.rng
    o = Outcome(fault, moment)
    delay = rng.uniform(0.3, 2.5)  # on a loaded machine this falls in the CLI's start, on an idle one mid-run
    board = rng.choice(c.names)
    before = c.files()
    progress_before = set((c.results / "logs").glob(".*.progress"))
    t0 = time.monotonic()
    proc = c.start()
    hit: Key | None = None  # the case a board fault aimed at
    flipped: tuple[str, Variant] | None = None
    harness: list[psutil.Process] = []
    if not c.wait_moment(proc, before, moment, delay):
        o.notes.append("the run ended before the fault")
    at_fault = _keys(c.current(before))
    o.at_fault = len(at_fault)
    if proc.poll() is None:
        if fault == "sigint":
            os.killpg(proc.pid, signal.SIGINT)
        elif fault == "sigterm":
            proc.send_signal(signal.SIGTERM)
        elif fault == "sigkill":
            harness = c.harnesses()
            proc.kill()
            harness += [p for p in c.harnesses() if p not in harness]
        elif fault == "sshd":
            c.farm.kill_board(board)
            hit = (board, "", "")
        elif fault == "agent":
            got = c.pick_agent(proc, before, board)
            if got is not None:
                p, b, v = got
                try:
                    p.kill()
                    hit = (b, "tiny", v.name if v else "?")
                except psutil.NoSuchProcess:
                    o.notes.append("the agent ended before the kill")
        elif fault == "flip":
            flipped = c.pick_flip(proc, before, board)
            if flipped is not None:
                _flip_one_byte(c.cached(*flipped), rng)
                hit = (flipped[0], "tiny", flipped[1].name)
        if hit is None and fault in ("agent", "flip") and proc.poll() is not None:
            o.notes.append("the run ended before the fault")
        at_fault += _keys(c.current(before))  # what was there before and just after: all of it stays
    try:
        _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            o.notes.append("the run did not end in time: killed")
    o.exit = proc.returncode
    if fault == "sigkill":
        _, alive = psutil.wait_procs(harness, timeout=HARNESS_STOP_S)
        o.check("fault", not alive, f"harness still running {HARNESS_STOP_S:.0f} s after its CLI died")
    if fault == "sshd":
        c.farm.restart_board(board)

    # 1. files
    after = c.files()
    lost = [n for n, data in before.items() if after.get(n) != data]
    o.check("files", not lost, f"earlier run files changed or lost: {lost}")
    unreadable = []
    for p in store.list_runs(c.results):
        try:
            store.read_run(p)
        except Exception as exc:
            unreadable.append(f"{p.name}: {exc}")
    o.check("files", not unreadable, f"unreadable: {unreadable}")
    new = sorted(set(after) - set(before))
    doc = _doc(c.results / store.RUNS / new[0]) if new else None
    o.check("files", len(new) == 1 or (not new and not at_fault), f"{len(new)} new run files, {set(at_fault)} kept")
    keys = _keys(doc)
    o.kept = len(keys)
    o.check("files", set(at_fault) <= set(keys), f"lost measurements {set(at_fault) - set(keys)}")
    # 2. once
    twice = [k for k, n in Counter(keys).items() if n > 1]
    o.check("once", not twice, f"measured twice: {twice}")
    complete = bool(doc and doc["edgebench"]["complete"])
    if complete:
        want = {(b, "tiny", v.name) for b in c.names for v in c.variants}
        o.check("once", set(keys) == want, f"complete but missing {want - set(keys)}")
    # 3. index
    _check_index(c, o)
    # 4. agents
    left = [" ".join(p.cmdline()) for p in c.agents() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    o.check("agents", not left, f"agents still running: {left}")
    # 6. the fault's own expectation
    progress = set((c.results / "logs").glob(".*.progress")) - progress_before
    o.check("fault", not progress, f"progress files left: {sorted(progress)}")
    _expect(c, o, fault, doc, err, hit, flipped)
    # 5. next
    again = flipped[1] if flipped is not None else rng.choice(c.variants)
    nxt = c.start(f"verify/{again.name}")
    try:
        _, nerr = nxt.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(nxt.pid, signal.SIGKILL)
        nxt.communicate()
        nerr = "timed out"
    ndoc = c.current(after)
    ok = nxt.returncode == 0 and ndoc is not None and ndoc["edgebench"]["complete"]
    o.check("next", bool(ok) and not ndoc["edgebench"]["failures"], f"exit {nxt.returncode}: {nerr[-600:]}")
    if flipped is not None:
        good = c.cached(*flipped).read_bytes() == flipped[1].artifact.read_bytes()
        o.check("next", good, "the flipped cache file was not uploaded afresh")
    _check_index(c, o)
    o.seconds = time.monotonic() - t0
    return o


def _expect(
    c: Chaos, o: Outcome, fault: str, doc: dict[str, Any] | None, err: str, hit: Key | None, flipped: Any
) -> None:
    """The fault's own expectation (see the module docstring)."""
    eb = doc["edgebench"] if doc else None
    o.check("fault", "Traceback" not in err, f"a traceback on stderr: {err[-800:]}")
    if fault in ("sigint", "sigterm", "sigkill"):
        if "the run ended before the fault" in o.notes:
            o.check("fault", o.exit == 0 and eb is not None and eb["complete"], f"exit {o.exit}")
            return
        sig = {"sigint": signal.SIGINT, "sigterm": signal.SIGTERM, "sigkill": signal.SIGKILL}[fault]
        # SIGTERM before edgebench's handler is installed (while it loads) is the default action: -15, which a
        # shell shows as 143 too; SIGINT is always edgebench's own (KeyboardInterrupt while it loads: 130)
        codes = {-sig} if fault == "sigkill" else {128 + sig, -sig} if fault == "sigterm" else {128 + sig}
        o.check("fault", o.exit in codes, f"exit {o.exit}, expected {codes}: {err[-800:]}")
        if eb is not None and fault != "sigkill" and o.exit == 128 + sig:  # the last line tells the file's truth
            said = f"complete: {str(eb['complete']).lower()}"
            o.check("fault", said in err and f"interrupted by {sig.name}" in err, f"stderr: {err[-400:]}")
        # stopped at once: no agent starts after the signal, and one cut short is not recorded; one more per
        # board may finish between reading the file and the signal landing. Said, not asserted: once in about
        # 70 landed signals a SIGTERM took effect only after every measurement had finished (not reproduced)
        late = o.kept - o.at_fault
        if late > BOARDS:
            o.notes.append(f"slow stop: {late} measurements finished after the signal ({o.at_fault} before)")
        if eb is not None and not eb["complete"]:
            reason = "died" if fault == "sigkill" else f"interrupted by {sig.name}"
            o.check("fault", reason in (eb.get("interrupted") or ""), f"interrupted = {eb.get('interrupted')!r}")
        return
    o.check("fault", eb is not None and eb["complete"], "the run was not stored complete")
    if hit is None or eb is None:
        o.check("fault", "the run ended before the fault" in o.notes, "the fault found nothing to hit")
        return
    if fault == "sshd":
        dark = [f for f in eb["failures"] if f["board"] == hit[0]]
        o.check("fault", o.exit == 1 or not dark, f"exit {o.exit} with {len(dark)} failures on the dark board")
        others = [f for f in eb["failures"] if f["board"] != hit[0]]
        o.check("fault", not others, f"failures on boards that stayed up: {others}")
        return
    failure = _failure(doc, hit) if doc else None
    if fault == "agent":
        o.check("fault", o.exit == (1 if failure else 0), f"exit {o.exit}")
        if failure is not None:
            msg = failure["error"]["message"]
            o.check("fault", "without a result" in msg, f"the killed agent's case failed unclearly: {msg}")
        else:
            o.notes.append(f"{hit}: the killed agent had already answered")
        return
    # flip: never measured as if valid
    if failure is not None:
        e = failure["error"]
        o.check("fault", e.get("kind") == "artifact_changed", f"the flipped case failed otherwise: {e}")
    else:
        good = c.cached(*flipped).read_bytes() == flipped[1].artifact.read_bytes()
        o.check("fault", good, f"{hit} was measured from a flipped cache file")


def _table(outcomes: list[Outcome], seed: int) -> str:
    lines = [f"chaos seed {seed} (EDGEBENCH_CHAOS_SEED), {len(outcomes)} runs on 3 farm boards"]
    head = f"{'fault':8} {'count':>5} {'landed':>6} {'moments':14} {'exit codes':12} {'kept':>9} " + " ".join(
        f"{i:>6}" for i in INVARIANTS
    )
    lines += [head, "-" * len(head)]
    for fault in FAULTS:
        mine = [o for o in outcomes if o.fault == fault]
        moments = ",".join(o.moment for o in mine)
        exits = ",".join(str(o.exit) for o in mine)
        kept = ",".join(f"{o.kept}/{CASES}" for o in mine)
        held = " ".join(f"{sum(o.held.get(i, True) for o in mine)}/{len(mine)}".rjust(6) for i in INVARIANTS)
        landed = sum(o.landed for o in mine)
        lines.append(f"{fault:8} {len(mine):>5} {landed:>6} {moments:14} {exits:12} {kept:>9} {held}")
    for n, o in enumerate(outcomes, 1):
        kept = f"{o.kept:2}/{CASES} ({o.at_fault} at the fault)"
        lines.append(f"  run {n:2}: {o.fault:8} {o.moment:6} exit {o.exit!s:4} kept {kept} {o.seconds:5.1f} s")
        lines += [f"          {note}" for note in o.notes]
    return "\n".join(lines)


@pytest.fixture
def chaos_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """Three boards of its own, without CPU limits: the faults are the point here, not the speeds
    (and a half-core board would make every run slow); their sshds get killed and restarted."""
    require_sshd()
    f = farm_up(tmp_path_factory.mktemp("chaos-farm"), BOARDS, limits=False)
    try:
        yield f
    finally:
        f.down()


@pytest.mark.timeout(900)  # about 2-4 minutes; every wait inside is bounded
def test_chaos_six_runs_six_faults_every_invariant_holds(chaos_farm: Farm, tmp_path: Path) -> None:
    seed = int(os.environ.get("EDGEBENCH_CHAOS_SEED") or DEFAULT_SEED)
    print(f"\nchaos seed {seed}: EDGEBENCH_CHAOS_SEED={seed} pytest {__file__} -s")
    rng = random.Random(seed)
    c = Chaos(chaos_farm, tmp_path, rng)
    warm = c.start()  # one clean run first: every board has every artifact cached (the flip needs them)
    _, err = warm.communicate(timeout=RUN_TIMEOUT_S)
    assert warm.returncode == 0, err[-2000:]
    plan = rng.sample(FAULTS, RUNS)
    outcomes = [_one_run(c, fault, rng.choice(("first", "delay"))) for fault in plan]
    table = _table(outcomes, seed)
    print(table)
    broken = [(n, o.fault, o.notes) for n, o in enumerate(outcomes, 1) if not all(o.held.values())]
    assert not broken, table


def test_sigint_while_the_cli_loads_is_one_line_and_130(tmp_path: Path) -> None:
    """Found by the chaos test: a Ctrl-C in the second `edgebench` spends importing its commands printed
    a KeyboardInterrupt traceback (and the process died of SIGINT). The interrupt is raised exactly there,
    from an import hook, so the moment is not left to timing."""
    code = (
        "import sys\n"
        "class Boom:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'edgebench.cli.targets':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Boom())\n"
        "from edgebench.cli import main\n"
        "main()\n"
    )
    _interrupted_in_python(code, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_sigint_before_the_harness_starts_is_one_line_and_130(tmp_path: Path) -> None:
    """A Ctrl-C after the commands loaded but before `edgebench run` starts its harness (checking the
    variants): one line and 130, not click's "Aborted!" and 1."""
    code = (
        "import sys\n"
        "import edgebench.cli.run as r\n"
        "def interrupted(**kw):\n"
        "    raise KeyboardInterrupt\n"
        "r.run_harness = interrupted\n"
        "from edgebench.cli import main\n"
        "sys.argv = ['edgebench', 'run', '--variants', 'v']\n"
        "main()\n"
    )
    _interrupted_in_python(code, tmp_path)


def _interrupted_in_python(code: str, cwd: Path) -> None:
    """Run ``code`` (which raises KeyboardInterrupt somewhere in the CLI): one line on stderr and exit 130."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert (out.returncode, out.stderr) == (130, "error: interrupted by SIGINT\n")


def test_a_board_that_goes_dark_keeps_the_measurements_it_finished(farm: Farm, tmp_path: Path) -> None:
    """Found by the chaos test: when a board's sshd died after some of its measurements were recorded,
    the session handed every case of that board to the harness as failed, so the stored run lost
    the finished ones (in the file while measuring, missing from the final file, which still said
    ``complete``). The board goes dark right after its first measurement is recorded."""
    board = farm.board("farm-1")  # the unlimited one
    variants = [variant(tmp_path / "variants", "tiny", f"v{i}", onnx_model(tmp_path / f"m{i}.onnx")) for i in range(3)]
    settings = RunSettings(warmup_min_iters=2, warmup_min_s=0.0, min_rounds=10, min_time_s=0.05, repeats=1)
    s = EdgeSession([board], variants, settings, results=tmp_path / "results")
    record = s.record

    def record_then_go_dark(m: Measurement, case_id: str | None = None) -> Measurement:
        stored = record(m, case_id)
        if m.ok and len(s.measured) == 1:
            farm.kill_board(board.name)
        return stored

    s.record = record_then_go_dark  # type: ignore[method-assign]
    try:
        got = [s.measure(c) for c in s.cases]
    finally:
        s.close()
        farm.restart_board(board.name)
    assert [m.ok for m in got] == [True, False, False], [m.error_message for m in got]
    assert [m.key for m in s.run.measurements] == [m.key for m in got]  # each once, the first one ok
    assert s.final_run().complete


def test_a_signal_after_the_last_measurement_says_the_run_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the chaos test: a SIGTERM after every measurement had finished stored a complete run,
    but `edgebench run` said "interrupted: ... (complete: false)" and did not name the signal."""
    run = schema.finish(schema.new_run("run", boards=[("local", "local")]), complete=True)
    path = store.save_run(tmp_path / "results", run)
    done = RunOutcome(run, path, 0, tmp_path / "x.log", signal.SIGTERM)
    monkeypatch.setattr(cli_run, "run_harness", lambda **kw: done)
    out = CliRunner().invoke(main, ["run", "--variants", str(tmp_path), "--results", str(tmp_path / "results")])
    assert out.exit_code == 143
    assert f"error: run interrupted by SIGTERM: 0 finished measurement(s) stored in {path} (complete: true)" in (
        out.stderr
    )


def test_a_signal_while_a_measurement_is_being_recorded_does_not_hang_the_harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness's SIGINT/SIGTERM handler calls `EdgeSession.stop` in the main thread, which may be
    inside `EdgeSession.record` (holding its lock) at that moment: a plain lock deadlocked there and
    the CLI had to kill the harness after its grace period. The signal lands while the run file is
    being written."""
    v = variant(tmp_path / "variants", "tiny", "v0", onnx_model(tmp_path / "m.onnx"))
    s = EdgeSession(resolve_boards(["local"]), [v], RunSettings(), results=tmp_path / "results")
    save = store.save_run

    def save_then_signal(results: Path, run: Any, **kw: Any) -> Path:
        path = save(results, run, **kw)
        s.stop("interrupted by SIGINT")  # what the signal handler does, on this thread
        return path

    monkeypatch.setattr(session_mod.store, "save_run", save_then_signal)
    failed = Measurement(board="local", model="tiny", variant="v0", ok=False, error=MeasurementError("x", "y"))
    t = threading.Thread(target=s.record, args=(failed, "local-tiny-v0"), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "record() deadlocked when stop() ran inside it"
    assert s.stop_reason == "interrupted by SIGINT" and [m.key for m in s.run.measurements] == [failed.key]
