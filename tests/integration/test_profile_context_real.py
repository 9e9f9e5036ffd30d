"""Profiles in context on the real path (issue 18, items 6 and 7): `edgebench run --profile` on the local board
over two models with two variants each, then `edgebench report`: every profiled variant has a line naming
board/model/variant, and the speed ratio it prints is the report table's for that pair."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

from _tiny_onnx import matmul_chain

pytestmark = pytest.mark.slow
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.1", "--min-rounds", "20", "--warmup-iters", "3", "--warmup-time", "0"]
FAST += ["--repeats", "1", "--profile", "10"]  # one measuring process per variant, then one profiled
CASES = {("chain", "fp32"), ("chain", "long"), ("tiny", "fp32"), ("tiny", "wide")}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "250"}  # one profile line per line: nothing wraps
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def _markdown_speedups(md: str) -> dict[tuple[str, str], str]:
    """(model, variant) -> the speedup cell of the Markdown report's table of that model."""
    out: dict[tuple[str, str], str] = {}
    for section in md.split("\n### ")[1:]:
        model = section.splitlines()[0].strip()
        rows = [ln for ln in section.splitlines() if ln.startswith("| ")]
        if not rows:
            continue
        header = [c.strip() for c in rows[0].strip("|").split("|")]
        if "speedup" not in header:
            continue
        for ln in rows[1:]:
            cells = [c.strip() for c in ln.strip("|").split("|")]
            out[(model, cells[header.index("variant")])] = cells[header.index("speedup")]
    return out


def test_every_profiled_variant_has_a_line_with_the_tables_ratio(tmp_path: Path) -> None:
    root, res = tmp_path / "variants", tmp_path / "results"
    variant(root, "chain", "fp32", matmul_chain(tmp_path / "c4.onnx", 4, 64, 1))
    variant(root, "chain", "long", matmul_chain(tmp_path / "c32.onnx", 32, 64, 1))  # 8x the work: slower
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "t.onnx"))
    variant(root, "tiny", "wide", onnx_model(tmp_path / "w.onnx", n_in=4, n_out=256, seed=2))
    run = _cli("run", "--variants", str(root), "--results", str(res), *FAST, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]

    md = _cli("report", "--results", str(res), "--format", "markdown", cwd=tmp_path)
    assert md.returncode == 0, md.stderr
    table = _markdown_speedups(md.stdout)
    assert {k for k in table} == CASES
    for model, name in CASES:
        label = f"local/{model}/{name}"
        (line,) = [ln for ln in md.stdout.splitlines() if ln.startswith(f"- **{label}: ")]
        if name == "fp32":
            assert f"{label}: the fp32 baseline of {model} on local" in line
            continue
        ratio = re.search(r"in the run \((\S+x) in its table\)", line)
        assert ratio is not None, line  # the run's ratio, never one profiled process's
        assert ratio[1] == table[(model, name)], (line, table)
    long_line = next(ln for ln in md.stdout.splitlines() if ln.startswith("- **local/chain/long: "))
    assert "slower than fp32 in the run" in long_line  # 8x the work
    assert re.search(r"in its table\): (MatMul|Tanh)", long_line), long_line  # its top cause, named

    doc = json.loads(_cli("report", "--results", str(res), "--json", cwd=tmp_path).stdout)
    speed = {(mm["model"], r["variant"]): r["speedup"] for mm in doc["models"] for r in mm["rows"]}
    term = _cli("report", "--results", str(res), cwd=tmp_path)
    assert term.returncode == 0, term.stderr
    lines = term.stdout.splitlines()
    for model, name in CASES:
        label = f"local/{model}/{name}"
        (line,) = [ln for ln in lines if ln.startswith(f"  {label}: ")]  # one line per profiled variant
        if name != "fp32":
            figure = f"{speed[(model, name)]:.2f}x"
            assert f"in the run ({figure} in its table)" in line, line
            row = next(ln for ln in lines if re.match(rf"local\s+{name}\s", ln) and f" {figure}" in ln)
            assert row  # the terminal table prints the same figure for the pair
