"""Issue 18: a third-party dense-output detector whose fp16 and int8 variants compress marks degraded is shown
degraded by `variants`, `run` and `report` without ``--eval`` (from the manifests), never "worth it".

The model is built here (`_dense_detector`: opset 11, ``Constant`` weights, dynamic dims, a sigmoid
probability map) and compressed by a recipe without ``[data]`` (generated inputs, fidelity only).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from _dense_detector import dense_detector

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.2", "--repeats", "1", "--warmup-time", "0", "--min-rounds", "10"]
RECIPE = """
[models.det]
source = "det.onnx"
dims = { height = 64, width = 64 }
[models.det.variants.fp16]
passes = [{ pass = "fp16" }]
[models.det.variants.int8-dynamic]
passes = [{ pass = "int8-dynamic" }]
"""
WORTH_IT = re.compile(r"(?<!not )worth it")  # "worth it", "worth it if its accuracy holds", never "not worth it"


def cli(cwd: Path, *args: str, width: int = 100) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": f"{cwd}-cache", "COLUMNS": str(width)}
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def compressed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("detector")
    dense_detector(cwd / "det.onnx")
    (cwd / "recipe.toml").write_text(RECIPE)
    res = cli(cwd, "compress", "recipe.toml")
    assert res.returncode == 0, res.stderr + res.stdout
    return cwd


def test_compress_marks_the_variants_degraded_and_variants_shows_it(compressed: Path) -> None:
    mf = {p.parent.name: json.loads(p.read_text()) for p in (compressed / "variants").glob("det/*/manifest.json")}
    assert mf["fp16"]["degraded"] is True and mf["int8-dynamic"]["degraded"] is True
    assert "degraded" not in mf["fp32"]
    for width in (80, 140):
        out = cli(compressed, "variants", width=width)
        assert out.returncode == 0, out.stderr
        lines = {ln.split()[1]: ln for ln in out.stdout.splitlines() if ln.startswith("det ")}
        for v in ("fp16", "int8-dynamic"):
            assert f"{mf[v]['fidelity']['cosine']:.4f} degraded" in lines[v]
        assert "degraded" not in lines["fp32"]
        assert "degraded: det/fp16, det/int8-dynamic" in out.stdout
    doc = json.loads(cli(compressed, "variants", "--json").stdout)
    rows = {r["variant"]: r for r in doc["variants"]}
    assert rows["int8-dynamic"]["degraded"] is True and rows["int8-dynamic"]["cosine"] < 0.99


def test_run_and_report_without_eval_say_degraded_never_worth_it(compressed: Path) -> None:
    res = cli(compressed, "run", "--variants", "variants", "--results", "results", *FAST)
    assert res.returncode == 0, res.stderr
    [run_file] = (compressed / "results" / "runs").glob("*.json")
    stored = {b["extra_info"]["variant"]: b["extra_info"] for b in json.loads(run_file.read_text())["benchmarks"]}
    assert stored["int8-dynamic"]["compress_fidelity"]["degraded"] is True
    assert stored["fp32"].get("compress_fidelity") is None  # the parent has nothing to compare with
    for out in (
        res.stdout,
        cli(compressed, "report", "--results", "results").stdout,
        cli(compressed, "report", "--results", "results", width=80).stdout,
        cli(compressed, "report", "--results", "results", "--format", "markdown").stdout,
    ):
        flat = " ".join(out.split())
        for v in ("fp16", "int8-dynamic"):
            assert f"{v}: " in flat and "but its outputs are degraded (host-side cosine" in flat
        assert "against its parent at compress time): not worth it" in flat
        assert "cosine of local/fp16, local/int8-dynamic: host-side, from the manifests" in flat
        assert not WORTH_IT.search(flat), flat
