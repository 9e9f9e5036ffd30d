"""Profile figures for the demo's variants (prints them; asserts only sanity, never absolute times).

Run: ``.venv/bin/pytest tests/perf/perf_profile.py -s -p no:cacheprovider``

Runs `edgebench demo` (which trains the 32x32 digits CNN, makes its five variants and measures
them with one profiled process each), then `edgebench profile` on the demo's variants folder,
on the local board, each variant in one fresh agent process: the unprofiled p50, the profiled
p50, their ratio (the profiler's overhead), coverage (node times / profiled end-to-end time)
and the session coverage (node times / ONNX Runtime's own model_run time), then the
`--diff fp32 int8-dynamic` verdict and the demo's own line (`why_slower`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))


def test_demo_variants_overhead_and_coverage(tmp_path: Path) -> None:
    res = tmp_path / "results"
    demo = subprocess.run([EDGEBENCH, "demo", "--results", str(res), "--json"], capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr[-2000:]
    cmd = [
        EDGEBENCH, "profile", "--variants", str(res / "demo" / "variants"), "--results", str(tmp_path / "prof"),
        "--format", "json", "--diff", "fp32", "int8-dynamic",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    print()
    print(
        f"{'variant':<14}{'unprofiled p50 ms':>19}{'profiled p50 ms':>17}{'overhead':>10}{'coverage':>10}{'session':>9}"
    )
    for p in doc["profiles"]:
        print(
            f"{p['variant']:<14}{p['unprofiled_p50_ms']:>19.4f}{p['profiled_p50_ms']:>17.4f}"
            f"{p['overhead_ratio']:>9.2f}x{p['coverage']:>10.0%}{p['session_coverage']:>9.0%}"
        )
        assert p["overhead_ratio"] > 0.5 and 0 < p["coverage"] < 2
    print("diff:", doc["diff"]["verdict"])
    d = json.loads(demo.stdout)
    print("demo line:", d["why_slower"], f"(demo took {d['seconds']:.1f} s)")
