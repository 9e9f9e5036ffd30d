"""No orphans on the farm: agents left by a dead host are killed (and the run says so), one lock per
board host, and a board's env never shows on a command line."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from _bench_models import onnx_model, variant

from edgebench.errors import BoardBusy
from edgebench.targets.farm import Farm
from edgebench.targets.ssh import SSHDriver

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))


def _agents(workdir: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        args = p.info["cmdline"] or []
        if any(a.startswith(workdir) and a.endswith("/agent.pyz") for a in args):
            found.append(p)
    return found


def _run(farm: Farm, tmp: Path, board: str, *args: str) -> subprocess.Popen[str]:
    cmd = [
        EDGEBENCH, "run", "--inventory", str(farm.boards_file), "--boards", board, "--variants", str(tmp / "variants"),
        "--results", str(tmp / "results"), "--repeats", "1", "--json", *args,
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_agent_left_by_a_dead_host_is_killed_before_measuring(farm: Farm, tmp_path: Path) -> None:
    variant(tmp_path / "variants", "tiny", "fp32", onnx_model(tmp_path / "m.onnx"))
    board = farm.boards[0]
    # a long measurement; the whole host side dies (SIGKILL to edgebench and its harness) mid-agent
    first = _run(farm, tmp_path, board.name, "--min-time", "60")
    deadline = time.monotonic() + 120
    while not _agents(board.workdir):
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    host = [psutil.Process(first.pid), *psutil.Process(first.pid).children(recursive=True)]
    for p in host:
        p.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    orphans = _agents(board.workdir)
    assert orphans, "the agent should outlive its host (the on-board backstop kills it only much later)"
    lock = (Path(farm.member(board.name).dir) / ".edgebench" / "board.lock").read_text()
    assert re.search(r"pid \d+ since \S+ run \S+", lock)  # the holder: host, pid, start time, run id
    # the next run gets the lock at once (it died with the connection) and kills the orphan first
    nxt = _run(farm, tmp_path, board.name, "--min-time", "0.2", "--", "--edge-lock-timeout", "10")
    out, err = nxt.communicate(timeout=300)
    assert nxt.returncode == 0, err[-2000:]
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in orphans)
    warnings = json.loads(out)["run"]["benchmarks"][0]["extra_info"]["warnings"]
    assert any(re.search(rf"board {board.name}: killed \d+ agent process\(es\) left running", w) for w in warnings)
    assert _agents(board.workdir) == []


def test_one_lock_per_board_host_whatever_the_workdir(farm: Farm) -> None:
    one = farm.boards[1]
    other = dataclasses.replace(one, name=f"{one.name}-again", workdir=one.workdir + "-again")
    busy = rf"board busy: held by \S+ pid {os.getpid()} since"
    with SSHDriver(one) as a, SSHDriver(other) as b, a.lock(5), pytest.raises(BoardBusy, match=busy), b.lock(0.5):
        pass
    with SSHDriver(other) as b, b.lock(5):  # released with the first
        pass


def test_board_env_reaches_the_job_but_no_command_line(farm: Farm) -> None:
    secret = "s3cret-value-8127"
    board = dataclasses.replace(farm.boards[2], env={"EDGEBENCH_TEST_SECRET": secret, "OTHER": "a b 'c'"})
    job = (
        "import os,sys,time;print(os.environ['EDGEBENCH_TEST_SECRET'],os.environ['OTHER']);"
        "sys.stdout.flush();time.sleep(2)"
    )
    seen: list[str] = []
    with SSHDriver(board) as d:
        result: dict[str, str] = {}
        t = threading.Thread(target=lambda: result.update(out=d.run([board.python, "-c", job], 60).stdout))
        t.start()
        while t.is_alive():  # the job runs on this machine: read every process's /proc/<pid>/cmdline
            for p in Path("/proc").iterdir():
                try:
                    cmdline = (p / "cmdline").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                if "import os,sys,time" in cmdline:
                    seen.append(cmdline)
                assert secret not in cmdline
            time.sleep(0.05)
        t.join()
    assert list((Path(board.workdir) / "run").glob("*.env")) == []  # the env file is removed once read
    assert seen  # the job was running while we looked
    assert result["out"].strip() == f"{secret} a b 'c'"
