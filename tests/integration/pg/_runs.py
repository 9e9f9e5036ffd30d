"""Runs for the PostgreSQL store's tests: realistic documents (samples, failures, commits, unknown keys)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

from edgebench.model import Measurement, Run
from edgebench.results import schema
from edgebench.results import store as folder
from edgebench.results.pg import PgStore
from edgebench.results.pg import save_run as pg_save

BOARDS = ("pi4", "jetson")
MODELS = ("mnist", "cnn")
VARIANTS = ("fp32", "int8")


def measurement(board: str, model: str, variant: str, *, seed: int, ok: bool = True, ms: float = 2.0) -> Measurement:
    """One measurement: samples around ``ms`` (successful) or a failure with its message."""
    rng = random.Random(seed)
    d: dict[str, Any] = {
        "board": board, "model": model, "variant": variant, "ok": ok, "batch_size": 1, "format": "onnx",
        "sha256": f"{seed:064x}", "bytes": 1000 + seed,
        "runtime": {"name": "onnxruntime", "version": "1.17.0", "threads": 2},
        "fingerprint": {"machine": "aarch64", "platform": "Linux-6.1", "cpu_count": 4, "python": "3.11"},
        "inputs": [{"name": "x", "shape": [1, 4], "dtype": "float32", "made": "uniform 0..1", "batched": True}],
        "memory": {"peak_rss": 50_000_000 + seed}, "accuracy": {"top1": 0.9 + seed % 7 / 100},
        "fidelity": {"cosine": 0.999}, "settings": {"min_rounds": 20, "max_time_s": 1.0},
        "custom_key": {"kept": ["as", "is"], "z": 1, "a": 2},  # unknown keys round-trip in their order
    }  # fmt: skip
    if ok:
        d["samples_ns"] = [int(ms * 1e6 * rng.uniform(0.95, 1.1)) for _ in range(40)]
    else:
        d["error"] = {"kind": "runtime", "message": f"model {model} failed on {board}"}
    return Measurement.from_json(d)


def make_run(
    i: int, *, n: int = 4, started: str | None = None, command: str = "run", complete: bool = True, seed: int = 0
) -> Run:
    """Run ``i``: ``n`` measurements over the boards x models x variants (every fifth a failure)."""
    start = started or f"2026-01-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00"
    run_id = start[:19].replace("-", "").replace(":", "") + f"Z-{i:06x}"
    run = dataclasses.replace(
        schema.new_run(command, run_id),
        started=start,
        datetime=start,
        commit_info={"id": f"{i:040x}", "time": start, "branch": "main", "dirty": i % 3 == 0, "zeta": 1, "alpha": 2},
        machine_info={"node": "ci-7", "cpu": {"count": 4, "brand": "arm"}},
        doc_extra={"zz_unknown_top": {"b": 1, "a": [1, 2]}},
    )
    if command == "nightly":
        run = dataclasses.replace(run, nightly={"verdict": "PASS", "config": "nightly.toml"})
    for k in range(n):
        board = BOARDS[k % 2]
        model = MODELS[(k // 2) % 2]
        variant = VARIANTS[(k // 4) % 2]
        ok = (k + i) % 5 != 4
        run = schema.add_measurement(
            run, measurement(board, model, variant, seed=seed * 1000 + i * 10 + k, ok=ok, ms=2.0 + i * 0.01)
        )
    return schema.finish(run, complete=complete, interrupted=None if complete else "interrupted by SIGINT")


def store_both(results: Path, pg: PgStore, runs: list[Run]) -> None:
    """The same runs into a folder and onto the server, in the same order."""
    for run in runs:
        folder.save_run(results, run)
        pg_save(pg, run)
