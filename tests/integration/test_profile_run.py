"""`edgebench run --profile` with real ONNX Runtime: profiles stored with the run, latency from unprofiled processes."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

from edgebench.bench.profile import profiles_in_run
from edgebench.results.store import read_run
from edgebench.targets.farm import Farm

pytestmark = pytest.mark.slow
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.2", "--min-rounds", "20", "--warmup-iters", "5", "--repeats", "2"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_run_profile_stores_profiles_and_reports_unprofiled_latency(tmp_path: Path) -> None:
    root, res = tmp_path / "variants", tmp_path / "results"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    variant(root, "tiny", "wide", onnx_model(tmp_path / "w.onnx", n_in=4, n_out=64, seed=2))
    variant(root, "tiny", "broken", onnx_model(tmp_path / "b.onnx", kind="badop"))
    # `--profile` alone (its flag value, 50 profiled inferences), before other options
    out = _cli("run", "--variants", str(root), "--results", str(res), "--profile", *FAST, "--json", cwd=tmp_path)
    assert out.returncode == 1, out.stderr[-3000:]  # the broken variant failed; the run went on and is stored
    assert "tiny/broken" in out.stderr
    run = read_run(Path(json.loads(out.stdout)["run_file"]))
    assert run.complete and run.extra["settings"]["profile"] == 50
    by = {m.variant: m for m in run.measurements}
    assert not by["broken"].ok and by["broken"].profile is None  # nothing to profile: recorded as failed
    for name in ("fp32", "wide"):
        m = by[name]
        prof = m.profile
        assert prof is not None and prof.available and prof.iterations == 50
        assert prof.profiled_samples_ns is not None and len(prof.profiled_samples_ns) == 50
        # the latency figures come from the two measuring processes, never from the profiling one
        assert m.processes is not None and len(m.processes) == 2
        measuring = {p.pid for p in m.processes}
        assert prof.agent_pid not in measuring and prof.agent_pid != m.agent_pid
        assert len(m.samples_ns) == sum(p.rounds for p in m.processes)
        bench = next(b for b in run.benchmarks if b.measurement.variant == name)
        assert bench.stats["data"] == pytest.approx([s / 1e9 for s in m.samples_ns])
        assert bench.stats["median"] == pytest.approx(statistics.median(m.samples_ns) / 1e9)
    profiles = {p.variant: p for p in profiles_in_run(run)}
    assert sorted(profiles) == ["fp32", "wide"] and all(p.ok for p in profiles.values())
    assert all(p.overhead_ratio and p.coverage for p in profiles.values())

    html = _cli("report", "--results", str(res), "--format", "html", "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "r.html").read_text()
    assert page.count('<section class="profile">') == 1 and page.count("<h3>local/tiny/") == 2
    assert "MatMul" in page and "</svg>" in page.split('<section class="profile">')[1]
    md = _cli("report", "--results", str(res), "--format", "markdown", cwd=tmp_path)
    assert md.returncode == 0 and "Where the time goes" in md.stdout and "local/tiny/wide" in md.stdout
    table = _cli("report", "--results", str(res), cwd=tmp_path)
    assert table.returncode == 0 and "where the time goes" in table.stdout and "op types: Gemm" in table.stdout
    js = _cli("report", "--results", str(res), "--format", "json", cwd=tmp_path)
    assert sorted(p["variant"] for p in json.loads(js.stdout)["profiles"]) == ["fp32", "wide"]


def test_run_without_profile_carries_none(tmp_path: Path) -> None:
    root, res = tmp_path / "variants", tmp_path / "results"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    out = _cli("run", "--variants", str(root), "--results", str(res), *FAST, "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    run = read_run(Path(json.loads(out.stdout)["run_file"]))
    assert profiles_in_run(run) == [] and "profile" not in run.measurements[0].extra
    html = _cli("report", "--results", str(res), "--format", "html", "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert html.returncode == 0 and '<section class="profile">' not in (tmp_path / "r.html").read_text()
    table = _cli("report", "--results", str(res), cwd=tmp_path)
    assert table.returncode == 0 and "where the time goes" not in table.stdout
    assert "profiles" not in json.loads(_cli("report", "--results", str(res), "--format", "json", cwd=tmp_path).stdout)


@pytest.mark.ssh
def test_run_profile_on_a_farm_board(farm: Farm, tmp_path: Path) -> None:
    root, res = tmp_path / "variants", tmp_path / "results"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    name = farm.boards[0].name
    out = _cli(
        "run", "--boards-file", str(farm.boards_file), "--boards", name, "--variants", str(root), "--results", str(res),
        "--profile", "10", *FAST, "--json", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    run = read_run(Path(json.loads(out.stdout)["run_file"]))
    (m,) = run.measurements
    assert m.board == name and m.processes is not None
    prof = m.profile
    assert prof is not None and prof.iterations == 10 and prof.agent_pid not in {p.pid for p in m.processes}
    (p,) = profiles_in_run(run)
    assert p.ok and p.board == name and p.nodes and p.fallback_line() == f"0 of {len(p.nodes)} nodes fell off " \
        "CPUExecutionProvider"  # fmt: skip
