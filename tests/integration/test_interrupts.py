"""Signals to a real `edgebench run` in the middle of a run: what finished is kept, nothing is left behind.

Each test starts `edgebench run` as a subprocess in its own process group (as a shell
would), waits until the first measurement is in the run file (the run is written as it
goes), and then sends SIGINT to the process group, SIGTERM to the `edgebench` process
alone, or SIGKILL. After it: the exit code, the stored run (finished measurements each
exactly once, ``complete: false`` and why), no agent process (psutil scan), no board
lock held (the next run takes it with a lock timeout of 0), no progress file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from _bench_models import onnx_model, variant

from edgebench.targets.farm import Farm

pytestmark = [pytest.mark.slow]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
VARIANTS = 4


def _variants(tmp: Path) -> Path:
    root = tmp / "variants"
    for i in range(VARIANTS):
        variant(root, "tiny", f"v{i}", onnx_model(tmp / f"m{i}.onnx", seed=i))
    return root


def _start(tmp: Path, *args: str) -> subprocess.Popen[str]:
    """`edgebench run` over the variants, its own process group; HOME in tmp (the local board's workdir)."""
    env = {**os.environ, "HOME": str(tmp / "home")}
    cmd = [
        EDGEBENCH, "run", "--variants", str(tmp / "variants"), "--results", str(tmp / "results"),
        "--min-time", "0.3", "--repeats", "1", *args,
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp, start_new_session=True
    )


def _run_doc(tmp: Path) -> dict[str, Any] | None:
    files = sorted((tmp / "results" / "runs").glob("*.json"))
    if not files:
        return None
    doc: dict[str, Any] = json.loads(files[-1].read_text())
    return doc


def _measured(doc: dict[str, Any]) -> list[tuple[str, str]]:
    ok = [(b["params"]["board"], b["params"]["variant"]) for b in doc["benchmarks"]]
    return ok + [(f["board"], f["variant"]) for f in doc["edgebench"]["failures"]]


def _wait_first_measurement(tmp: Path, proc: subprocess.Popen[str], timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        doc = _run_doc(tmp)
        if doc is not None and _measured(doc):
            assert doc["edgebench"]["complete"] is False  # written as it goes, incomplete until the end
            return len(_measured(doc))
        time.sleep(0.05)
    raise AssertionError("no measurement was stored in time")


def _agents(workdirs: list[Path]) -> list[str]:
    """Agent processes running from any of these workdirs (this machine hosts the farm boards too)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        args = p.info["cmdline"] or []
        if any(a.endswith("agent.pyz") and any(a.startswith(str(w)) for w in workdirs) for a in args):
            out.append(" ".join(args))
    return out


def _check_left_nothing(tmp: Path, workdirs: list[Path], reason: str, *boards: str) -> dict[str, Any]:
    doc = _run_doc(tmp)
    assert doc is not None
    eb = doc["edgebench"]
    assert eb["complete"] is False and eb["interrupted"] == reason
    measured = _measured(doc)
    assert measured and all(n == 1 for n in Counter(measured).values())  # each finished one exactly once
    assert len(measured) < VARIANTS * len(boards)
    assert _agents(workdirs) == []
    assert list((tmp / "results" / "logs").glob(".*.progress")) == []
    # no lock held: the next run takes every board at once (lock timeout 0) and completes
    nxt = _start(
        tmp,
        "--models",
        "tiny",
        "--boards",
        ",".join(boards),
        *_inventory_args(tmp),
        "--",
        "--edge-lock-timeout",
        "0",
        "-k",
        "v0",
    )
    _, err = nxt.communicate(timeout=300)
    assert nxt.returncode == 0, err[-2000:]
    return doc


def _inventory_args(tmp: Path) -> list[str]:
    inv = tmp / "boards.toml"
    return ["--boards-file", str(inv)] if inv.is_file() else []


def test_sigint_to_the_process_group_keeps_what_finished(tmp_path: Path) -> None:
    _variants(tmp_path)
    proc = _start(tmp_path)
    _wait_first_measurement(tmp_path, proc)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted by SIGINT" in err and "complete: false" in err and "Aborted" not in err
    workdir = tmp_path / "home" / ".cache" / "edgebench" / "boards" / "local"
    _check_left_nothing(tmp_path, [workdir], "interrupted by SIGINT", "local")


@pytest.mark.ssh
def test_sigterm_to_edgebench_alone_stops_the_farm_boards(farm: Farm, tmp_path: Path) -> None:
    _variants(tmp_path)
    (tmp_path / "boards.toml").write_text(farm.boards_file.read_text())
    names = [b.name for b in farm.boards[:2]]
    proc = _start(tmp_path, "--boards-file", str(farm.boards_file), "--boards", ",".join(names), "--parallel")
    _wait_first_measurement(tmp_path, proc)
    workdirs = [Path(farm.board(n).workdir) for n in names]
    proc.send_signal(signal.SIGTERM)  # the edgebench process only: it tells the harness
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    _check_left_nothing(tmp_path, workdirs, "interrupted by SIGTERM", *names)


def test_sigkill_of_edgebench_keeps_what_finished_and_the_harness_stops(tmp_path: Path) -> None:
    _variants(tmp_path)
    proc = _start(tmp_path)
    first = _wait_first_measurement(tmp_path, proc)
    harness = psutil.Process(proc.pid).children()
    proc.kill()
    proc.communicate(timeout=30)
    doc = _run_doc(tmp_path)
    assert doc is not None and len(_measured(doc)) >= first  # already on disk when the host process died
    # the harness sees its parent die, kills its agent and closes the run
    _, alive = psutil.wait_procs(harness, timeout=60)
    assert alive == []
    doc = _run_doc(tmp_path)
    assert doc is not None and doc["edgebench"]["complete"] is False
    assert "died" in doc["edgebench"]["interrupted"]
    assert all(n == 1 for n in Counter(_measured(doc)).values())
    assert _agents([tmp_path / "home"]) == []
