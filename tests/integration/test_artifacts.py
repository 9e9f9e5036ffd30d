"""Artifacts are what their manifests say, and manifest paths stay in their folders (real farm boards)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import eval_npz, onnx_model, variant

from edgebench.compress.variant import load_variant
from edgebench.targets.farm import Farm
from edgebench.targets.ssh import SSHDriver
from edgebench.testing.runs import measure_once

pytestmark = [pytest.mark.ssh]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.05", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "3"]


def run_cli(farm: Farm, tmp_path: Path, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        EDGEBENCH, "run", "--boards-file", str(farm.boards_file), "--boards", "farm-1", "--variants", str(root),
        "--results", str(tmp_path / "results"), *FAST, "--json", *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_a_model_replaced_after_compress_is_a_stale_manifest_and_the_run_goes_on(farm: Farm, tmp_path: Path) -> None:
    root = tmp_path / "variants"
    good = variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    stale = variant(root, "tiny", "noisy", onnx_model(tmp_path / "b.onnx", seed=4), parent="fp32")
    stale.artifact.write_bytes(good.artifact.read_bytes())  # replaced after compress wrote the manifest
    out = run_cli(farm, tmp_path, root)
    assert out.returncode == 1, out.stderr[-3000:]
    run = json.loads(out.stdout)["run"]
    assert [b["params"]["variant"] for b in run["benchmarks"]] == ["fp32"]  # the other variant was measured
    (failed,) = run["edgebench"]["failures"]
    assert failed["variant"] == "noisy" and "edgebench compress" in failed["error"]["message"]
    assert "changed after its manifest was written" in failed["error"]["message"]
    cache = Path(farm.board("farm-1").workdir) / "cache"
    assert not (cache / stale.sha256).exists()  # nothing of the stale variant reached the board


def test_a_board_cache_file_flipped_is_refused_by_the_agent_then_deployed_afresh(farm: Farm, tmp_path: Path) -> None:
    v = variant(tmp_path / "variants", "tiny", "fp32", onnx_model(tmp_path / "a.onnx", seed=7))
    driver = SSHDriver(farm.board("farm-1"))
    try:
        first = measure_once(driver, v, settings={"min_time_s": 0.05, "min_rounds": 5})
        assert first.ok, first.error
        cached = Path(driver.board.workdir) / "cache" / v.sha256 / "model.onnx"
        data = bytearray(cached.read_bytes())
        data[-1] ^= 0xFF  # the board's copy changes under the run (same connection: no re-check of the cache)
        cached.write_bytes(bytes(data))
        flipped = measure_once(driver, v, settings={"min_time_s": 0.05, "min_rounds": 5})
        assert not flipped.ok and flipped.error is not None and flipped.error.kind == "artifact_changed"
        assert "deploy it afresh" in flipped.error.message and not flipped.samples_ns
    finally:
        driver.deactivate()
    again = SSHDriver(farm.board("farm-1"))  # the next run checks the cache and uploads the right file
    try:
        m = measure_once(again, v, settings={"min_time_s": 0.05, "min_rounds": 5})
    finally:
        again.deactivate()
    assert m.ok and cached.read_bytes() == v.artifact.read_bytes()


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("artifact", "../../../secret.txt", "is not a file in the variant folder"),
        ("artifact", "/etc/passwd", "is not a file in the variant folder"),
        ("model", "../digits", "is not a plain name"),
    ],
)
def test_manifest_paths_and_names_stay_in_their_folders(
    farm: Farm, tmp_path: Path, field: str, value: str, said: str
) -> None:
    root = tmp_path / "variants"
    v = variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    (tmp_path / "secret.txt").write_text("host secret")
    mf = v.path / "manifest.json"
    doc = json.loads(mf.read_text())
    doc[field] = value
    mf.write_text(json.dumps(doc))
    before = sorted(p.name for p in (Path(farm.board("farm-1").workdir) / "cache").glob("*"))
    out = run_cli(farm, tmp_path, root, "--eval", str(tmp_path))
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: ") and said in line and "edgebench compress" in line
    assert sorted(p.name for p in (Path(farm.board("farm-1").workdir) / "cache").glob("*")) == before
    assert not (tmp_path / "results" / "runs").exists() or not list((tmp_path / "results" / "runs").glob("*.json"))


def test_links_out_of_the_variant_and_eval_folders_are_refused(farm: Farm, tmp_path: Path) -> None:
    root = tmp_path / "variants"
    v = variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    outside = tmp_path / "outside.onnx"
    v.artifact.rename(outside)
    v.artifact.symlink_to(outside)
    with pytest.raises(Exception, match="links outside the variant folder"):
        load_variant(v.path)
    out = run_cli(farm, tmp_path, root)
    assert out.returncode == 1 and "links outside the variant folder" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    # eval data: <eval>/<model>.npz linking out of the --eval folder
    v.artifact.unlink()
    outside.rename(v.artifact)
    evals = tmp_path / "evals"
    evals.mkdir()
    (evals / "tiny.npz").symlink_to(eval_npz(tmp_path / "elsewhere.npz", n=10))
    out = run_cli(farm, tmp_path, root, "--eval", str(evals))
    assert out.returncode == 1 and "links outside" in out.stderr and str(evals) in out.stderr
