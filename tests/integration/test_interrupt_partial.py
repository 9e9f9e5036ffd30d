"""Ctrl-C in the middle of a run's interleaved processes keeps each variant that has two finished ones.

A real `edgebench run` (``--repeats 8``, three variants, processes round-robin) gets SIGINT
once every variant has two finished agent processes and before any has all eight (read from
the run's progress file). The run file then holds every variant, each pooled from the
processes that ran and marked partial: ``settings.repeats`` = those processes,
``settings.repeats_planned`` = 8, a warning saying k of 8; the interval of a later
comparison is over those processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

pytestmark = [pytest.mark.slow]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
VARIANTS, REPEATS = 3, 8


def _done(results: Path) -> int:
    """Agent processes finished so far (the last progress line), 0 before the first."""
    files = list((results / "logs").glob(".*.progress"))
    lines = files[0].read_text().splitlines() if files else []
    done = [json.loads(ln)["done"] for ln in lines if ln.endswith("}")]
    return max(done, default=0)


def test_sigint_keeps_variants_with_two_finished_processes_as_partial(tmp_path: Path) -> None:
    for i in range(VARIANTS):
        variant(tmp_path / "variants", "tiny", f"v{i}", onnx_model(tmp_path / f"m{i}.onnx", seed=i))
    results = tmp_path / "results"
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    cmd = [
        EDGEBENCH, "run", "--variants", str(tmp_path / "variants"), "--results", str(results),
        "--repeats", str(REPEATS), "--min-time", "2.4",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while _done(results) < 2 * VARIANTS + 1:  # round 2 over, round 3 started: nobody has all 8
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    done = _done(results)
    assert done < (REPEATS - 1) * VARIANTS, "the run went too fast to be stopped in the middle"
    assert list((results / "runs").glob("*.json")) == []  # before: nothing would be kept
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    (path,) = (results / "runs").glob("*.json")
    doc = json.loads(path.read_text())
    eb = doc["edgebench"]
    assert eb["complete"] is False and eb["interrupted"] == "interrupted by SIGINT" and eb["failures"] == []
    kept = sorted(b["params"]["variant"] for b in doc["benchmarks"])
    assert kept == [f"v{i}" for i in range(VARIANTS)]  # each had two finished processes at the signal
    for b in doc["benchmarks"]:
        info = b["extra_info"]
        k = len(info["processes"])
        assert 2 <= k < REPEATS
        assert info["settings"]["repeats"] == k and info["settings"]["repeats_planned"] == REPEATS
        assert f"partial: {k} of {REPEATS} agent processes finished before the run stopped" in " ".join(
            info["warnings"]
        )
        assert len(b["stats"]["data"]) == sum(p["rounds"] for p in info["processes"])  # pooled from those k
    assert err.strip().splitlines()[-1] == (
        f"error: run interrupted by SIGINT: {VARIANTS} finished measurement(s) ({VARIANTS} partial: from fewer "
        f"agent processes than --repeats) stored in {path} (complete: false)"
    )
    out = subprocess.run(  # a partial run reads like any other
        [EDGEBENCH, "report", "latest", "--results", str(results), "--json"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    flat = " ".join(" ".join(rep["warnings"]).split())
    assert "partial (the run stopped before all their agent processes ran) on " in flat  # the report says so
    first = doc["benchmarks"][0]
    assert f"local/tiny/{first['params']['variant']} ({len(first['extra_info']['processes'])} of {REPEATS})" in flat
