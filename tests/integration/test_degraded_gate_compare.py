"""Issue 18 item 4: `compare` and `gate` show a variant degraded from its manifest when the run had no eval data.

A third-party-style dense-output text detector (`_dense_detector`: opset 11, ``Constant`` weights, dynamic
dims, a sigmoid probability map) is compressed from generated data (no ``[data]``: fidelity only), so its
fp16 and int8-dynamic manifests mark them degraded; a real run on the ``local`` board without ``--eval``
is compared (with itself: the CLI calls are slow on a loaded machine) and gated on a latency-only budget
through the CLI. The gate's decision (a degraded variant gets a ``fidelity`` check in every budget that
matches it, failed as no top-1 was measured), its JSON and JUnit, and the nightly page's gate (built by
the same `gate_run`, rendered by `render.html` / `render.markdown`) are checked on the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _dense_detector import dense_detector
from edgebench.model import CheckVerdict
from edgebench.render.gate import junit_xml
from edgebench.render.html import gate_html
from edgebench.render.markdown import gate_markdown
from edgebench.results.analysis import fidelity_of
from edgebench.results.compare import compare_runs
from edgebench.results.gate import gate_run, load_budgets
from edgebench.results.store import open_run

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.1", "--repeats", "1", "--warmup-time", "0", "--min-rounds", "5"]
RECIPE = """
[models.det]
source = "det.onnx"
dims = { height = 32, width = 32 }
[models.det.variants.fp16]
passes = [{ pass = "fp16" }]
[models.det.variants.int8-dynamic]
passes = [{ pass = "int8-dynamic" }]
"""
BUDGETS = """
[[budget]]
model = "det"
max_p90_ms = 10000.0
max_size_mb = 100
"""
DEGRADED = ("local/det/fp16", "local/det/int8-dynamic")


def cli(cwd: Path, *args: str, width: int = 100) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": f"{cwd}-cache", "COLUMNS": str(width)}
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The detector compressed without data and measured without --eval."""
    cwd = tmp_path_factory.mktemp("detector")
    dense_detector(cwd / "det.onnx")
    (cwd / "recipe.toml").write_text(RECIPE)
    (cwd / "budgets.toml").write_text(BUDGETS)
    res = cli(cwd, "compress", "recipe.toml")
    assert res.returncode == 0, res.stderr + res.stdout
    res = cli(cwd, "run", "--variants", "variants", "--results", "results", *FAST)
    assert res.returncode == 0, res.stderr
    run = open_run(cwd / "results", "latest", "test")
    fid = {m.variant: fidelity_of(m) for m in run.measurements}
    assert fid["fp16"].degraded and fid["int8-dynamic"].degraded and not fid["fp32"].degraded
    assert fid["fp16"].source == "compress" and fid["fp16"].cosine is not None  # no eval: the manifest's cosine
    return cwd


def test_compare_marks_the_degraded_variants(runs: Path) -> None:
    res = cli(runs, "compare", "latest", "latest", "--results", "results", width=80)  # a run against itself
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()

    def row(variant: str) -> str:  # the row's text, its verdict rejoined where it wrapped at its comma
        i = next(k for k, ln in enumerate(lines) if ln.startswith("local ") and f" {variant} " in ln)
        text = lines[i].rstrip()
        return f"{text} {lines[i + 1].strip()}" if text.endswith(",") else text

    assert row("fp16").endswith("no change, degraded") and row("int8-dynamic").endswith("no change, degraded")
    assert row("fp32").endswith("no change")
    flat = " ".join(res.stdout.split())
    for key in DEGRADED:
        assert f"{key} degraded in A and B: host-side cosine" in flat, flat
    assert "local/det/fp32 degraded" not in flat
    run = open_run(runs / "results", "latest", "test")
    doc = compare_runs(run, run).to_json()  # what `compare --json` prints after its schema key
    rows = {r["variant"]: r for r in doc["rows"]}
    assert rows["fp16"]["degraded_b"] is True and rows["fp16"]["degraded_a"] is True
    assert rows["fp16"]["cosine_b"] < 0.99 and "against its parent at compress time" in rows["fp16"]["fidelity_note"]
    assert rows["fp32"]["degraded_b"] is False and rows["fp32"]["fidelity_note"] == ""
    assert doc["degraded"] == [["local", "det", "fp16"], ["local", "det", "int8-dynamic"]]


def test_gate_fails_a_degraded_variant_on_a_latency_budget_and_names_it(runs: Path) -> None:
    res = cli(runs, "gate", "budgets.toml", "--results", "results", width=80)
    assert res.returncode == 3, res.stdout + res.stderr  # the latency and size checks pass; fidelity fails
    flat = " ".join(res.stdout.split())
    assert "gate FAIL: 6 passed, 2 failed, 0 undecided; degraded: local/det/fp16, local/det/int8-dynamic" in flat
    fidelity_rows = [ln.split() for ln in res.stdout.splitlines() if " fidelity " in ln]
    assert [(r[2], r[-1]) for r in fidelity_rows] == [("fp16", "fail"), ("int8-dynamic", "fail")]
    results = runs / "results"
    # the nightly gates with this very function and renders it in its HTML and Markdown pages
    g = gate_run(results, load_budgets(runs / "budgets.toml"), open_run(results, "latest", "test"), None)
    doc = g.to_json()  # what `gate --json` prints
    assert doc["degraded"] == list(DEGRADED) and doc["outcome"] == "fail"
    fidelity = [c for c in doc["checks"] if c["check"] == "fidelity"]
    assert {c["variant"] for c in fidelity} == {"fp16", "int8-dynamic"}
    for c in fidelity:
        assert c["verdict"] == "fail" and c["measured"] < c["limit"] == 0.99 and c["margin"] < 0
        assert c["note"].startswith("degraded: host-side cosine") and "no top-1 measured" in c["note"]
    others = [c for c in doc["checks"] if c["check"] != "fidelity"]
    assert len(others) == 6 and all(c["verdict"] == "pass" for c in others)
    assert junit_xml(g).count('<failure type="fail"') == 2 and "fidelity[local/det/fp16]" in junit_xml(g)
    assert g.counts[CheckVerdict.FAIL] == 2
    for page in (gate_html(g), gate_markdown(g)):
        assert "degraded: local/det/fp16, local/det/int8-dynamic" in page and "fidelity" in page
