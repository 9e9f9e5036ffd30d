"""Artifacts are checked on every path: `edgebench profile` and `run --profile` against their manifests as `run`
does, and the agent records the sha256 of the file it loaded (real farm board)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

from edgebench.bench.runner import deploy_jobs, run_agent
from edgebench.bench.settings import RunSettings
from edgebench.results.store import read_run
from edgebench.targets.farm import Farm
from edgebench.targets.ssh import SSHDriver

pytestmark = [pytest.mark.ssh]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.05", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--iterations", "5"]


def test_profile_refuses_a_stale_manifest_in_one_line_and_profiles_the_rest(farm: Farm, tmp_path: Path) -> None:
    root = tmp_path / "variants"
    good = variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    stale = variant(root, "tiny", "noisy", onnx_model(tmp_path / "b.onnx", seed=4), parent="fp32")
    stale.artifact.write_bytes(good.artifact.read_bytes())  # replaced after compress wrote the manifest
    cache = Path(farm.board("farm-1").workdir) / "cache"
    cmd = [
        EDGEBENCH, "profile", "--boards-file", str(farm.boards_file), "--boards", "farm-1", "--variants", str(root),
        "--results", str(tmp_path / "results"), *FAST, "--format", "json",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert "farm-1/tiny/noisy" in line and "changed after its manifest was written" in line
    assert "edgebench compress" in line and "Traceback" not in out.stderr
    by = {p["variant"]: p for p in json.loads(out.stdout)["profiles"]}
    assert by["fp32"]["ok"] and not by["noisy"]["ok"]  # the intact variant was profiled
    assert not (cache / stale.sha256).exists()  # nothing of the stale variant reached the board


def test_run_profile_never_profiles_a_stale_variant(farm: Farm, tmp_path: Path) -> None:
    root = tmp_path / "variants"
    good = variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    stale = variant(root, "tiny", "noisy", onnx_model(tmp_path / "b.onnx", seed=4), parent="fp32")
    stale.artifact.write_bytes(good.artifact.read_bytes())
    cmd = [
        EDGEBENCH, "run", "--boards-file", str(farm.boards_file), "--boards", "farm-1", "--variants", str(root),
        "--results", str(tmp_path / "results"), *FAST[:-2], "--profile", "5", "--repeats", "1", "--json",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]
    run = read_run(Path(json.loads(out.stdout)["run_file"]))
    (m,) = [m for m in run.measurements if m.ok]
    assert m.variant == "fp32" and m.profile is not None and m.profile.iterations == 5
    (failed,) = run.failures
    assert failed.variant == "noisy" and failed.error is not None and "edgebench compress" in failed.error.message


def test_the_agent_records_the_sha256_of_the_file_it_loaded(farm: Farm, tmp_path: Path) -> None:
    v = variant(tmp_path / "variants", "tiny", "fp32", onnx_model(tmp_path / "a.onnx", seed=9))
    settings = RunSettings.from_mapping({"min_time_s": 0.05, "min_rounds": 5, "repeats": 1})
    with SSHDriver(farm.board("farm-1")) as driver:
        command, _ = deploy_jobs(driver, v, settings)
        out = run_agent(driver, command, 120)
    assert out["ok"] and out["artifact_sha256"] == v.sha256
