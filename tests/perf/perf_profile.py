"""Profile figures for the demo CNN's variants (prints them; asserts only sanity, never absolute times).

Run: ``.venv/bin/pytest tests/perf/perf_profile.py -s -p no:cacheprovider``

For fp32 and int8-dynamic of the demo's digits CNN (built here like `workflows.demo`), on
the local board, each in one fresh agent process: the unprofiled p50, the profiled p50,
their ratio (the profiler's overhead), coverage (node times / profiled end-to-end time)
and the session coverage (node times / ONNX Runtime's own model_run time), then the
`--diff` verdict and the demo line (`why_slower`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from _profile_models import demo_variants

from edgebench.results.store import list_runs, read_run
from edgebench.testing.profiles import why_slower

pytestmark = pytest.mark.slow


def test_demo_variants_overhead_and_coverage(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    demo_variants(root, epochs=2)
    res = tmp_path / "results"
    cmd = [
        str(Path(sys.executable).with_name("edgebench")), "profile", "--variants", str(root), "--results", str(res),
        "--min-time", "2", "--iterations", "200", "--format", "json", "--diff", "fp32", "int8-dynamic",
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
    print("demo line:", why_slower(read_run(list_runs(res)[-1])))
