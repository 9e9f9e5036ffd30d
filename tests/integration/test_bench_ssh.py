"""`edgebench run` over real sshd boards on loopback (the targets farm): samples come from each board's agent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import eval_npz, onnx_model, variant

from edgebench.targets.farm import Farm

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


def test_run_over_ssh_boards_and_an_unreachable_one(farm: Farm, tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    variant(root, "tiny", "noisy", onnx_model(tmp_path / "b.onnx", seed=4), parent="fp32")
    data = eval_npz(tmp_path / "e.npz", n=30)
    names = [b.name for b in farm.boards]
    farm.kill_board(names[2])
    try:
        cmd = [
            str(Path(sys.executable).with_name("edgebench")), "run", "--boards-file", str(farm.boards_file),
            "--boards", ",".join(names), "--variants", str(root), "--eval", str(data),
            "--results", str(tmp_path / "results"), "--min-time", "0.05", "--min-rounds", "10", "--json", "--parallel",
            "--repeats", "3",
        ]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        farm.restart_board(names[2])
    assert out.returncode == 1, out.stderr[-3000:]
    run = json.loads(out.stdout)["run"]
    measured = {(b["params"]["board"], b["params"]["variant"]) for b in run["benchmarks"]}
    assert measured == {(n, v) for n in names[:2] for v in ("fp32", "noisy")}  # the run went on
    for b in run["benchmarks"]:
        info = b["extra_info"]
        assert info["fingerprint"]["address"].startswith("127.0.0.")
        assert b["stats"]["rounds"] == len(b["stats"]["data"]) >= 10
        assert info["accuracy"]["n"] == 30
    noisy = [b["extra_info"] for b in run["benchmarks"] if b["params"]["variant"] == "noisy"]
    assert all(0 <= m["fidelity"]["top1_agreement"] <= 1 for m in noisy)
    # both reachable boards ran the same models on the same data: identical accuracy
    assert len({m["accuracy"]["top1"] for m in noisy}) == 1
    failed = run["edgebench"]["failures"]
    assert {f["board"] for f in failed} == {names[2]} and len(failed) == 2
    assert all(names[2] in f["error"]["message"] for f in failed)
    assert f"{names[2]}/tiny/fp32" in out.stderr
