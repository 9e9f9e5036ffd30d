"""Issue 19, item 8: a test run stopped by SIGINT or SIGTERM stops its farm's sshd processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

HERE = Path(__file__).parent


@pytest.mark.ssh
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_test_run_stops_its_farm(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "farm.json"
    env = {**os.environ, "EDGEBENCH_FARM_HELPER_OUT": str(out)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "farm_signal_helper.py")],
        env=env, cwd=HERE.parent.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        while not out.exists():  # the farm is up (no time limit asserted: the helper ends it)
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            time.sleep(0.1)
        state = json.loads(out.read_text())
        assert state["pids"] and all(psutil.pid_exists(p) for p in state["pids"])
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, output[-3000:]
    left = [p for p in state["pids"] if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert left == [], output[-3000:]
    assert not Path(state["root"]).exists()
