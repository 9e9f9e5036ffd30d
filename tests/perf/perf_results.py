"""Results benchmarks (print figures; run with `pytest tests/perf/perf_results.py -s`).

* detection: a 10% slowdown injected with a CFS CPU quota (cgroup v1 ``cpu`` controller)
  on a local agent process is flagged by `compare_runs`, and identical reruns are not;
* scale: a report over 10,000 stored runs (synthesized from a real run file) renders
  from the SQLite index in under 2 s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from edgebench.model import Measurement, Run
from edgebench.render.html import report_html
from edgebench.results import index, store
from edgebench.results.analysis import load_report
from edgebench.results.compare import compare_runs
from edgebench.results.schema import add_measurement, new_run

RUNS = Path(__file__).parents[1] / "unit" / "data" / "results_runs"
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")


# ----------------------------------------------------------------------------- detection


def _cgroup(name: str, slowdown: float | None) -> Path | None:
    """A cgroup v1 cpu group with a high CPU weight (other processes on this shared machine
    hardly preempt the agent) and, for ``slowdown``, a CFS quota that leaves 1/slowdown of
    one CPU per 10 ms period."""
    cg = CGROUP_CPU / name
    try:
        cg.mkdir(exist_ok=True)
        (cg / "cpu.shares").write_text("262144")
        if slowdown is not None:
            (cg / "cpu.cfs_period_us").write_text("10000")
            (cg / "cpu.cfs_quota_us").write_text(str(round(10000 / slowdown)))
    except OSError:
        return None
    return cg


def _wrapper(path: Path, cg: Path, python: str) -> str:
    """A python launcher that moves itself into a cgroup first (the board's ``python``)."""
    path.write_text(f'#!/bin/sh\necho $$ > {cg}/cgroup.procs\nexec {python} "$@"\n')
    path.chmod(0o755)
    return str(path)


def test_detection_of_a_10_percent_slowdown(tmp_path: Path) -> None:
    from edgebench import zoo
    from edgebench.compress.variant import save_variant
    from edgebench.targets.board import local_board
    from edgebench.targets.driver import LocalDriver
    from edgebench.testing.runs import measure_variant

    trials = int(os.environ.get("EDGEBENCH_PERF_TRIALS", "20"))
    seconds = float(os.environ.get("EDGEBENCH_PERF_SECONDS", "6.0"))  # per variant per run (of <= 30 s allowed)
    n_blocks = int(os.environ.get("EDGEBENCH_PERF_BLOCKS", "6"))
    cg = _cgroup(f"edgebench-perf-slow-{os.getpid()}", 1.10)
    cg_fast = _cgroup(f"edgebench-perf-fast-{os.getpid()}", None)
    if cg is None or cg_fast is None:
        pytest.skip(f"cannot create a cgroup under {CGROUP_CPU} (needs root and the cgroup v1 cpu controller)")
    try:
        # a CNN of ~3-4 ms per inference: long against the 10 ms CFS period, so the quota slows every inference
        model = zoo.digits_cnn(width=256).eval()
        onnx = zoo.export_onnx(model, np.zeros((1, 1, 8, 8), np.float32), tmp_path / "m.onnx")
        fields = {"model": "wide_cnn", "variant": "fp32", "fmt": "onnx", "parent": None, "passes": []}
        v = save_variant(tmp_path / "v" / "wide_cnn" / "fp32", onnx, fields)
        normal = replace(local_board(), threads=1)
        slow = replace(normal, python=_wrapper(tmp_path / "python-slow", cg, normal.python))
        normal = replace(normal, python=_wrapper(tmp_path / "python-fast", cg_fast, normal.python))
        per_block = seconds / n_blocks
        settings = {"min_time_s": per_block, "max_time_s": per_block, "warmup_min_s": 0.2}

        def measure(board: Any) -> dict[str, Any]:
            m = measure_variant(LocalDriver(board), v, settings=settings)
            assert m["ok"], m["error"]
            return m

        def as_run(blocks: list[dict[str, Any]]) -> dict[str, Any]:
            m = dict(blocks[0])
            m["samples_ns"] = [x for b in blocks for x in b["samples_ns"]]
            return add_measurement(new_run("perf"), Measurement.from_json(m)).to_json()

        flagged_slow, flagged_same, undecided = 0, 0, {"slow": 0, "same": 0}
        ratios_mean, ratios_p50, rounds, t_meas = [], [], [], 0.0
        for i in range(trials):
            # the three arms are measured in interleaved blocks (fresh agent each), so the load that
            # other work puts on this shared machine drifts alike for all of them, as on a quiet board
            blocks: dict[str, list[dict[str, Any]]] = {"a": [], "b": [], "c": []}
            for k in range(n_blocks):
                order = [("a", normal), ("b", normal), ("c", slow)]
                for name, board in order[(i + k) % 3 :] + order[: (i + k) % 3]:
                    t0 = time.monotonic()
                    blocks[name].append(measure(board))
                    t_meas += time.monotonic() - t0
            got = {name: as_run(b) for name, b in blocks.items()}
            same = compare_runs(Run.from_json(got["a"]), Run.from_json(got["b"])).to_json()["rows"][0]
            slowed = compare_runs(Run.from_json(got["a"]), Run.from_json(got["c"])).to_json()["rows"][0]
            flagged_slow += slowed["label"] == "slower"
            flagged_same += same["label"] in ("slower", "faster")
            undecided["slow"] += slowed["label"] == "undecided"
            undecided["same"] += same["label"] == "undecided"
            ea, ec = got["a"]["benchmarks"][0]["extra_info"], got["c"]["benchmarks"][0]["extra_info"]
            ratios_mean.append(ec["summary"]["mean_ms"] / ea["summary"]["mean_ms"])
            ratios_p50.append(slowed["p50"]["ratio"])
            rounds.append(ea["summary"]["rounds"])
            sd, sl = same, slowed
            print(
                f"trial {i + 1:2d}: same {sd['label']:9s} (p50 {sd['p50']['delta_pct']:+5.1f}%, "
                f"p90 {sd['p90']['delta_pct']:+5.1f}%)  slowed {sl['label']:9s} "
                f"(p50 {sl['p50']['delta_pct']:+5.1f}%, p90 {sl['p90']['delta_pct']:+5.1f}%)"
            )
        stat = dict(line.split() for line in (cg / "cpu.stat").read_text().splitlines())
    finally:
        shutil.rmtree(tmp_path / "v", ignore_errors=True)
        for group in (cg, cg_fast):
            with contextlib.suppress(OSError):
                group.rmdir()
    print(f"\ninjected slowdown: CFS quota {round(10000 / 1.10)}/10000 us; measured mean ratio "
          f"{np.median(ratios_mean):.3f} (median over trials), p50 ratio {np.median(ratios_p50):.3f}; "
          f"throttled periods {stat.get('nr_throttled')}/{stat.get('nr_periods')}")  # fmt: skip
    per_variant = t_meas / (3 * trials)
    print(
        f"samples per run: median {int(np.median(rounds))}; measurement {seconds:.1f} s per variant per run "
        f"({n_blocks} blocks); wall time per measured variant incl. agent starts {per_variant:.1f} s"
    )
    print(
        f"DETECTION: slowdown flagged in {flagged_slow}/{trials} = {flagged_slow / trials:.0%} of trials "
        f"(target >= 95%); identical reruns flagged in {flagged_same}/{trials} = {flagged_same / trials:.0%} "
        f"(target <= 5%); undecided: slowed {undecided['slow']}, identical {undecided['same']}"
    )


# ----------------------------------------------------------------------------- scale


def _synthesize(results: Path, n: int) -> None:
    """``n`` run files shaped like a real one (3 variants x 3 boards, 200 raw samples each)."""
    template = json.loads(sorted(RUNS.glob("*.json"))[0].read_text())
    rng = np.random.default_rng(0)
    folder = store.prepare(results)
    base = []
    for b in template["benchmarks"]:
        data = np.asarray(b["stats"]["data"])
        base.append((b, data[:: max(1, len(data) // 200)][:200]))
    for i in range(n):
        when = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=i)
        rid = when.strftime("%Y%m%dT%H%M%SZ") + f"-{i:06x}"
        run = json.loads(json.dumps({k: v for k, v in template.items() if k != "benchmarks"}))
        eb = run["edgebench"]
        eb.update(run_id=rid, started=when.isoformat(timespec="seconds"), command="nightly")
        benches = []
        step = 1.15 if i >= n - 20 else 1.0  # a 15% step 20 runs before the end: inside the trend window
        for board in ("pi4", "rk3588", "jetson"):
            for b, data in base:
                f = step * rng.normal(1.0, 0.01)
                nb = json.loads(json.dumps({k: v for k, v in b.items() if k != "stats"}))
                nb["stats"] = {**b["stats"], "data": (data * f).tolist()}
                e = nb["extra_info"]
                e["board"] = board
                e["summary"] = {k: (v * f if k.endswith("_ms") else v) for k, v in e["summary"].items()}
                benches.append(nb)
        run["benchmarks"] = benches
        (folder / f"{rid}.json").write_text(json.dumps(run))


def test_report_over_10000_runs(tmp_path: Path) -> None:

    n = int(os.environ.get("EDGEBENCH_PERF_RUNS", "10000"))
    results = tmp_path / "results"
    t0 = time.perf_counter()
    _synthesize(results, n)
    t_make = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in (results / "runs").iterdir())
    t0 = time.perf_counter()
    rep = store.sync(results)
    t_cold = time.perf_counter() - t0
    assert rep.indexed == n
    timings = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = load_report(results, "latest", last=60)
        con = Console(file=io.StringIO(), width=140, color_system=None)
        con.print(r)
        timings.append(time.perf_counter() - t0)
    out = con.file.getvalue()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    page = report_html(r)
    t_html = time.perf_counter() - t0
    trends = r.trends or ()
    changes = [t for t in trends if t.changes]
    print(f"\n{n} run files ({size / 2**20:.0f} MiB, 9 measurements each) synthesized in {t_make:.1f} s")
    print(
        f"index: cold sync {t_cold:.1f} s ({n / t_cold:.0f} files/s), {index.INDEX} "
        f"{(results / index.INDEX).stat().st_size / 2**20:.1f} MiB"
    )
    print(
        f"REPORT over {n} runs (sync check + latest run + trends of 60 runs from the index + render): "
        f"best {min(timings):.3f} s, worst {max(timings):.3f} s (target < 2 s); "
        f"HTML {t_html:.3f} s, {len(page) / 1024:.0f} KiB"
    )
    print(f"trends with a change point flagged: {len(changes)}/{len(trends)}")
    shutil.rmtree(results)  # hundreds of MiB
    assert "rk3588" in out and len(trends) == 9 and len(changes) == 9
