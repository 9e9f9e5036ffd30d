"""The pytest plugin from outside (pytester): board samples as benchmark stats, run files, compare."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx.helper
import onnx.numpy_helper
import pytest
from _bench_models import eval_npz, onnx_model, variant

from edgebench.results.store import read_run

pytest_plugins = ["pytester"]

# Loaded before pytester snapshots sys.modules: protobuf's C extension aborts if onnx is imported twice.
PRELOADED = (onnx.helper, onnx.numpy_helper)

FAST = [
    "--edge-min-time", "0.05", "--edge-min-rounds", "15", "--edge-warmup-iters", "2", "--edge-warmup-time", "0",
    "--edge-repeats", "3",
]  # fmt: skip


@pytest.fixture
def variants(tmp_path: Path) -> Path:
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx", seed=0))
    variant(root, "tiny", "noisy", onnx_model(tmp_path / "b.onnx", seed=3), parent="fp32")
    return root


@pytest.fixture(autouse=True)
def not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness run here is a pytest session of its own: under pytest-xdist the worker's variables would
    make pytest-benchmark disable itself (as `edgebench run` strips them for its harness)."""
    for k in [k for k in os.environ if k.startswith("PYTEST_XDIST_")]:
        monkeypatch.delenv(k)


def _harness(pytester: pytest.Pytester, variants: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "edgebench.bench.harness", "--edge-variants", str(variants), *FAST, *args
    )


def test_board_samples_become_the_benchmark_stats(pytester: pytest.Pytester, variants: Path, tmp_path: Path) -> None:
    data = eval_npz(tmp_path / "e.npz", n=40)
    out_json = tmp_path / "bench.json"
    results = tmp_path / "results"
    progress = tmp_path / "progress.jsonl"
    r = _harness(
        pytester, variants, "--edge-eval", str(data), "--edge-results", str(results), f"--benchmark-json={out_json}",
        "--edge-progress", str(progress),
    )  # fmt: skip
    r.assert_outcomes(passed=2)
    events = [json.loads(line) for line in progress.read_text().splitlines()]
    # progress counts fresh agent processes: 2 variants x 3 repeats, interleaved, then the 2 reported cases
    assert (events[0]["done"], events[0]["total"]) == (0, 6)
    procs = [e for e in events if "process" in e]
    assert [(e["done"], e["total"]) for e in procs] == [(i, 6) for i in range(1, 7)]
    first = ["local/tiny/fp32 #1/3", "local/tiny/noisy #1/3", "local/tiny/fp32 #2/3"]
    assert [e["process"] for e in procs[:3]] == first
    assert {e.get("case") for e in events if "case" in e} == {"local/tiny/fp32", "local/tiny/noisy"}
    assert (events[-1]["done"], events[-1]["total"]) == (6, 6)
    r.stdout.fnmatch_lines(["edgebench: run * stored in *"])
    r.stdout.fnmatch_lines(["test_variant[[]local-tiny-fp32[]] *"])  # pytest-benchmark's table shows the board's stats
    doc = json.loads(out_json.read_text())
    eb = doc["edgebench"]
    assert eb["schema"] == 1 and eb["complete"] is True and eb["failures"] == []
    assert eb["boards"]["local"]["cpu_count"] and eb["boards"]["local"]["runtime"].startswith("onnxruntime")
    # the run stored under results/ is the same document pytest-benchmark wrote
    [stored] = (results / "runs").glob("*.json")
    assert stored.stem == eb["run_id"] and json.loads(stored.read_text())["benchmarks"] == doc["benchmarks"]
    by_variant = {b["params"]["variant"]: b for b in doc["benchmarks"]}
    for b in by_variant.values():
        st, info = b["stats"], b["extra_info"]
        assert b["fullname"] == f"edgebench::test_variant[local-tiny-{b['params']['variant']}]"
        assert b["options"]["timer"] == "perf_counter_ns (on board)"
        # the board's samples, not the host's single timing of the whole deploy + agent run
        assert st["rounds"] == len(st["data"]) >= 15
        assert st["median"] == pytest.approx(info["summary"]["p50_ms"] / 1e3)
        assert st["max"] < info["cold_start"]["load_ms"] / 1e3 + 1.0
        assert {"p90_ms", "p95_ms", "p99_ms", "iqr_ms", "cv", "throughput"} <= set(info["summary"])
        assert info["memory"]["peak_rss"] > 0 and info["fingerprint"]["name"] == "local"
        assert info["accuracy"]["n"] == 40
    fid = by_variant["noisy"]["extra_info"]["fidelity"]
    assert 0.0 <= fid["top1_agreement"] <= 1.0 and fid["cosine_mean"] < 1.0
    assert by_variant["noisy"]["extra_info"]["reference"]["variant"] == "fp32"
    assert "fidelity" not in by_variant["fp32"]["extra_info"] or by_variant["fp32"]["extra_info"]["fidelity"] is None

    assert len(read_run(stored).benchmarks) == 2  # valid for every edgebench reader


def test_plugin_is_inert_without_edge_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.makepyfile(test_edge="def test_needs(edge_case):\n    pass\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_edge.py")
    assert r.ret != 0
    r.stdout.fnmatch_lines(["*edge_case tests need --edge-variants DIR*"])


def test_bad_options_are_usage_errors(pytester: pytest.Pytester, variants: Path, tmp_path: Path) -> None:
    r = _harness(pytester, variants, "--edge-boards", "nosuchboard")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*unknown board 'nosuchboard'*known boards are*local*"])
    r = _harness(pytester, tmp_path / "absent")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*variants folder * does not exist*"])


def _scale_stats(path: Path, factor: float) -> None:
    doc: dict[str, Any] = json.loads(path.read_text())
    for b in doc["benchmarks"]:
        st = b["stats"]
        for k in ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "ld15iqr", "hd15iqr", "total"):
            st[k] *= factor
        st["data"] = [v * factor for v in st["data"]]
        st["ops"] /= factor
    path.write_text(json.dumps(doc))


@pytest.mark.slow
def test_pytest_benchmark_compare_and_compare_fail(pytester: pytest.Pytester, variants: Path, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    store_opt = f"--benchmark-storage=file://{storage}"
    _harness(pytester, variants, store_opt, "--benchmark-save=base").assert_outcomes(passed=2)
    [saved] = storage.rglob("0001_base.json")
    saved_doc = json.loads(saved.read_text())
    assert saved_doc["edgebench"]["complete"] is True
    assert all(len(b["stats"]["data"]) == b["stats"]["rounds"] for b in saved_doc["benchmarks"])  # samples kept
    # the stored file loads in pytest-benchmark's own compare command
    cmp = subprocess.run(
        [str(Path(sys.executable).with_name("pytest-benchmark")), f"--storage=file://{storage}", "compare", "0001"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cmp.returncode == 0, cmp.stderr
    assert "test_variant[local-tiny-fp32]" in cmp.stdout and "test_variant[local-tiny-noisy]" in cmp.stdout
    # against a baseline 1000x faster, the same variants have regressed
    _scale_stats(saved, 1e-3)
    r = _harness(pytester, variants, store_opt, "--benchmark-compare=0001", "--benchmark-compare-fail=median:50%")
    assert r.ret != 0
    assert "Performance has regressed" in r.stdout.str() + r.stderr.str()
    # against a baseline 1000x slower, nothing regressed
    _scale_stats(saved, 1e6)
    r = _harness(pytester, variants, store_opt, "--benchmark-compare=0001", "--benchmark-compare-fail=median:50%")
    assert r.ret == 0
    # and `edgebench run` maps a compare-fail to exit code 3
    _scale_stats(saved, 1e-6)
    cmd = [
        str(Path(sys.executable).with_name("edgebench")), "run", "--variants", str(variants),
        "--results", str(tmp_path / "results"), "--min-time", "0.05", "--min-rounds", "15", "--json",
        "--", store_opt, "--benchmark-compare=0001", "--benchmark-compare-fail=median:50%",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "performance regressed" in out.stderr
    assert len(json.loads(out.stdout)["run"]["benchmarks"]) == 2  # the run was stored all the same
