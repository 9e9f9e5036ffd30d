"""Repeats on the real local board: N fresh agent processes per variant, interleaved, samples pooled."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from _bench_models import eval_npz, onnx_model, variant

from edgebench.bench.session import EdgeSession, load_variants
from edgebench.bench.settings import RunSettings
from edgebench.targets.board import local_board

SETTINGS = RunSettings(warmup_min_iters=2, warmup_min_s=0.0, min_rounds=30, min_time_s=0.15, max_time_s=5.0, repeats=3)


def test_each_variant_runs_in_n_interleaved_processes_with_pooled_samples(tmp_path: Path) -> None:
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx", seed=0))
    variant(root, "tiny", "noisy", onnx_model(tmp_path / "b.onnx", seed=3), parent="fp32")
    board = dataclasses.replace(local_board(), workdir=str(tmp_path / "board"))
    data = eval_npz(tmp_path / "e.npz", n=40)
    s = EdgeSession([board], load_variants(root), SETTINGS, eval_data=data, results=tmp_path / "results")
    try:
        ms = [s.measure(c).to_json() for c in s.cases]
    finally:
        s.close()
    assert [m["variant"] for m in ms] == ["fp32", "noisy"] and all(m["ok"] for m in ms), [m["error"] for m in ms]
    procs = [(m["variant"], p) for m in ms for p in m["processes"]]
    pids = [p["pid"] for _, p in procs]
    assert len(set(pids)) == 6 and os.getpid() not in pids  # 3 fresh agent processes per variant
    by_start = [name for name, _ in sorted(procs, key=lambda vp: vp[1]["started"])]
    assert by_start == ["fp32", "noisy"] * 3  # round-robin across the board's variants
    assert sorted(p["order"] for _, p in procs) == list(range(6))
    for m in ms:
        assert len(m["processes"]) == 3
        assert len(m["samples_ns"]) == sum(p["rounds"] for p in m["processes"])  # pooled
        assert all(p["rounds"] >= 10 for p in m["processes"])  # ceil(30 / 3) rounds per process
        assert m["settings"]["per_process"] == {"min_rounds": 10, "min_time_s": 0.05}
        assert m["memory"]["peak_rss"] == max(p["peak_rss"] for p in m["processes"])
        assert m["accuracy"]["n"] == 40 and "process 1 of 3" in m["evaluation"]
        assert m["runtime"]["threads"] == 1  # the local board's default
    assert 0.0 <= ms[1]["fidelity"]["top1_agreement"] <= 1.0 and ms[1]["reference"]["variant"] == "fp32"
    # the run document: the benchmark's stats are over the pooled samples
    bench = {b["params"]["variant"]: b for b in s.run.to_json()["benchmarks"]}
    for m in ms:
        assert bench[m["variant"]]["stats"]["rounds"] == len(m["samples_ns"])
        assert bench[m["variant"]]["extra_info"]["processes"] == m["processes"]
