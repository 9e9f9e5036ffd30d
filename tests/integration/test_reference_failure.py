"""A host-side fp32 reference that fails is recorded for its variant (fidelity unknown, with the error), the
variant is still measured, the run goes on and is stored, and every report shows why (issue 10, item 8).

The variants (built here with onnx.helper): ``m/fp32`` takes ``x [N, 5]``, its child ``m/v`` takes
``x [N, 4]``; the eval data has 4 features, so ONNX Runtime on the host rejects it for the parent's
reference outputs (and on the board for fp32's own measurement) while ``v`` runs fine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from _bench_models import eval_npz, onnx_model, variant

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.1", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "1"]


def test_a_failed_host_reference_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "m", "fp32", onnx_model(tmp_path / "p.onnx", n_in=5))
    variant(root, "m", "v", onnx_model(tmp_path / "v.onnx", n_in=4), parent="fp32")
    data = eval_npz(tmp_path / "eval.npz", n_in=4)
    results = tmp_path / "results"
    cmd = [EDGEBENCH, "run", "--variants", str(root), "--eval", str(data), "--results", str(results), *FAST]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 1 and "1 measurement(s) failed (local/m/fp32)" in res.stderr, res.stderr
    [path] = (results / "runs").glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["edgebench"]["complete"] is True
    [v] = [b["extra_info"] for b in doc["benchmarks"] if b["extra_info"]["variant"] == "v"]
    assert v["ok"] and v["accuracy"]["top1"] is not None  # measured, accuracy from the labels
    why = v["fidelity"]["unknown"]
    assert why.startswith("reference outputs of m/fp32") and "eval data" in why, why
    assert "reference" not in v  # nothing to compare against: no reference recorded

    rep = subprocess.run([EDGEBENCH, "report", "--results", str(results), "--json"], capture_output=True, text=True)
    rows = {r["variant"]: r for r in json.loads(rep.stdout)["models"][0]["rows"]}
    assert rows["v"]["fidelity_unknown"] == why and rows["v"]["cosine"] is None
    md = subprocess.run(
        [EDGEBENCH, "report", "--results", str(results), "--format", "markdown"], capture_output=True, text=True
    ).stdout
    assert f"local/v fidelity unknown: {why}" in " ".join(md.split())
