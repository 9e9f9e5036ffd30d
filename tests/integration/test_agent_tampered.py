"""A board's cached agent overwritten during a run never runs: the board checks its sha256 before every process.

A real `edgebench run` on a farm board (real sshd, real agents); once its first agent
process has finished, the cached ``agent.pyz`` on the board is overwritten in place by a
script that would leave a marker file. The next agent process refuses it: that variant
fails naming the board, the file and "redeploy: the cached agent changed"; the agent is
uploaded again, so the other variant's later processes run the real agent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

from edgebench.agent.build import agent_bytes, agent_sha256
from edgebench.targets.farm import Farm

pytestmark = [pytest.mark.slow, pytest.mark.ssh]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
REPEATS = 4


def _done(results: Path) -> int:
    files = list((results / "logs").glob(".*.progress"))
    lines = files[0].read_text().splitlines() if files else []
    return max((json.loads(ln)["done"] for ln in lines if ln.endswith("}")), default=0)


def test_a_cached_agent_changed_during_a_run_never_runs(farm: Farm, tmp_path: Path) -> None:
    for i in range(2):
        variant(tmp_path / "variants", "tiny", f"v{i}", onnx_model(tmp_path / f"m{i}.onnx", seed=i))
    name = farm.boards[0].name
    cached = Path(farm.board(name).workdir) / "cache" / agent_sha256() / "agent.pyz"
    marker = tmp_path / "the-replacement-ran"
    results = tmp_path / "results"
    cmd = [
        EDGEBENCH, "run", "--inventory", str(farm.boards_file), "--boards", name, "--variants",
        str(tmp_path / "variants"), "--results", str(results), "--repeats", str(REPEATS), "--min-time", "3",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 300
    while _done(results) < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    with open(cached, "w") as f:  # in place, as a user (or an attacker) would
        f.write(f"open({str(marker)!r}, 'w').write('ran')\nprint('{{\"ok\": true, \"samples_ns\": [1]}}')\n")
    assert _done(results) < 2 * REPEATS - 2, "the run went too fast to change its agent in the middle"
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-3000:]
    assert not marker.exists()  # the replacement never ran
    assert cached.read_bytes() == agent_bytes()  # uploaded again
    (path,) = (results / "runs").glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["edgebench"]["complete"] is True
    (failure,) = doc["edgebench"]["failures"]
    error = failure["error"]
    assert error["kind"] == "AgentChanged"
    assert error["message"].startswith(f"{name}: the cached agent ")
    assert (
        f"/cache/{agent_sha256()}/agent.pyz on board {name} is not the file deployed (its sha256 is "
        in error["message"]
    )
    assert "redeploy: the cached agent changed (uploaded again for the next process)" in error["message"]
    (ok,) = doc["benchmarks"]  # the other variant: all its processes, the real agent
    assert ok["params"]["variant"] != failure["variant"] and len(ok["extra_info"]["processes"]) == REPEATS
    failed = f"{name}/tiny/{failure['variant']}"
    assert f"error: 1 measurement(s) failed ({failed}): see the errors in the run table" in err
    assert os.path.getsize(cached) == len(agent_bytes())
