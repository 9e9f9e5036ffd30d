"""Trends: change points with known truth, one point per commit, configuration keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgebench.model import ConfigKey, Measurement, Paired, PairedProcess, Trend
from edgebench.render.html import trend_svg
from edgebench.results.schema import add_measurement, new_run
from edgebench.results.store import save_run
from edgebench.results.trend import by_commit, change_points, linked


@pytest.mark.parametrize(
    ("series", "truth"),
    [
        ([1, 1, 1, 1, 2, 2], [4]),  # the first run of the new level
        ([1, 1, 1, 1, 1, 2], [5]),  # a step on the newest run is that run
        ([1, 1, 1, 5, 1, 1, 1], []),  # one spike is not a change
        ([1, 1, 1, 1, 1, 1, 0.2], [6]),  # ... but a drop on the newest run is
        ([1, 1, None, 1, 2, None, 2], [4]),  # missing values skipped, indices into the series
        ([1, 1, 1, 1.02, 1, 1], []),  # under the 5 % floor
        ([3.0] * 10, []),
        ([1], []),
    ],
)
def test_change_points_known_truth(series: list[float | None], truth: list[int]) -> None:
    assert change_points(series) == truth


@pytest.mark.parametrize("seed", range(5))
def test_noisy_steps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.concatenate([10 + rng.normal(0, 0.2, 15), 12 + rng.normal(0, 0.2, 10), 9 + rng.normal(0, 0.2, 10)])
    x[5] = 14  # and a spike
    assert change_points(list(x)) == [15, 25]


def test_noise_alone_is_no_change() -> None:
    rng = np.random.default_rng(7)
    assert change_points(list(10 + rng.normal(0, 0.3, 30))) == []


def test_one_point_per_commit() -> None:
    pts = [
        {"run_id": "r1", "commit": "aaaaaaaaaa", "dirty": False, "p90": 1.0},
        {"run_id": "r2", "commit": "aaaaaaaaaa", "dirty": False, "p90": 3.0},
        {"run_id": "r3", "commit": "bbbbbbbbbb", "dirty": True, "p90": 2.0},
        {"run_id": "r4", "commit": None, "dirty": None, "p90": 4.0},
    ]
    got = by_commit(pts, "p90")
    assert [(p["label"], p["value"], p["run_id"], p["runs"]) for p in got] == [
        ("aaaaaaa", 2.0, "r2", ["r1", "r2"]),
        ("bbbbbbb*", 2.0, "r3", ["r3"]),
        ("r4", 4.0, "r4", ["r4"]),
    ]


def _m(**kw: object) -> Measurement:
    base: dict[str, object] = {
        "board": "b", "model": "m", "variant": "v", "ok": True, "batch_size": 1,
        "runtime": {"name": "onnxruntime", "version": "1.17.0", "threads": 2},
        "fingerprint": {"machine": "aarch64", "platform": "Linux-6.1", "cpu_count": 4, "python": "3.9"},
        "inputs": [{"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32", "made": "uniform 0..1", "batched": True}],
    }  # fmt: skip
    return Measurement.from_json({**base, **kw})


def test_config_key_names_what_differs() -> None:
    a = _m()
    assert a.config_key.differences(_m().config_key) == []
    other_python = {"machine": "aarch64", "platform": "Linux-6.1", "cpu_count": 4, "python": "3.11"}
    assert a.config_key.differences(_m(fingerprint=other_python).config_key) == []
    x4 = {"name": "x", "shape": [4, 3, 8, 8], "dtype": "float32", "made": "normal", "batched": True}
    b = _m(batch_size=4, runtime={"name": "onnxruntime", "version": "1.18.0", "threads": 4}, inputs=[x4])
    assert a.config_key.differences(b.config_key) == [
        "batch: 1 -> 4",
        "shapes: x:1x3x8x8:float32 -> x:4x3x8x8:float32",
        "inputs made: x=uniform 0..1 -> x=normal",
        "threads: 2 -> 4",
        "runtime version: 1.17.0 -> 1.18.0",
    ]
    other_board = _m(fingerprint={"machine": "x86_64", "platform": "Linux-6.1", "cpu_count": 4})
    assert a.config_key.differences(other_board.config_key) == [
        "board: machine=aarch64, platform=Linux-6.1, cpu_count=4 -> machine=x86_64, platform=Linux-6.1, cpu_count=4"
    ]


def test_config_key_unknown_fields_are_no_difference_and_round_trip() -> None:
    default_threads = _m(runtime={"name": "onnxruntime", "version": "1.17.0", "threads": None})
    assert _m().config_key.differences(default_threads.config_key) == ["threads: 2 -> 0"]  # 0: the runtime's default
    old = _m(inputs=None, runtime=None, fingerprint=None)  # a run from before they were recorded
    assert old.config_key.differences(_m().config_key) == []
    key = _m().config_key
    assert ConfigKey.from_json(key.to_json()) == key and len(key.digest) == 10
    assert key.digest != _m(batch_size=2).config_key.digest


def test_the_trend_plot_labels_its_x_axis_with_commits() -> None:
    commits = tuple(f"{i:07x}" for i in range(20))
    t = Trend("b", "m", "v", "p90", (1.0,) * 20, tuple(f"r{i}" for i in range(20)), "", (), commits=commits)
    svg = trend_svg(t)
    shown = [c for c in commits if f">{c}</text>" in svg]
    assert "commit (oldest → newest)" in svg and shown[0] == commits[0] and 5 <= len(shown) <= 7


def test_change_points_are_named_by_commit() -> None:
    t = Trend("b", "m", "v", "p90", (1.0, 2.0), ("r1", "r2"), "", ("r2",), commits=("aaaaaaa", "bbbbbbb*"))
    assert t.change_labels == ("bbbbbbb*",)
    assert Trend("b", "m", "v", "p90", (1.0, 2.0), ("r1", "r2"), "", ("r2",)).change_labels == ("r2",)


def test_the_html_names_the_change_points_commit_inside_the_plot() -> None:
    t = Trend("b", "m", "v", "p50", (1.0,) * 5 + (1.1,) * 3, tuple(f"r{i}" for i in range(8)), "", ("r5",),
              commits=tuple(f"night{i}" for i in range(1, 9)))  # fmt: skip
    svg = trend_svg(t)
    assert 'text-anchor="end">change at night6</text>' in svg  # right half: reads leftwards, never clipped


def test_paired_runs_chain_the_trend_through_their_ratios(tmp_path: Path) -> None:
    # separate runs whose own medians jump about as a block (1.0, 1.2, 0.9, 1.25 ms), each paired with the
    # previous: the paired ratios say 1.0, 1.0, 1.1; the linked series is flat, then one 10 % step
    key = ("b", "m", "fp32")
    own = [1.0, 1.2, 0.9, 1.25]
    ratios = [None, 1.0, 1.0, 1.1]
    prev = None
    for i, (ms, r) in enumerate(zip(own, ratios, strict=True)):
        m = Measurement(*key, True, sha256=f"{i}" * 64, samples_ns=tuple([int(ms * 1e6)] * 20))
        if r is not None and prev is not None:
            procs = tuple(PairedProcess(1.0, r, 100, "a") for _ in range(4))
            m = dataclasses.replace(m, paired=Paired(prev.measurements[0].sha256 or "", procs, prev.run_id))
        run = dataclasses.replace(add_measurement(new_run("run", f"2026010{i}T000000Z-00000{i}"), m), complete=True)
        run = dataclasses.replace(run, started=f"2026-01-0{i + 1}T00:00:00+00:00")
        save_run(tmp_path, run)
        prev = run
    rows = [{"run_id": f"2026010{i}T000000Z-00000{i}", "p50": v} for i, v in enumerate(own)]
    got = [r["p50"] for r in linked(tmp_path, key, rows)]
    assert got == pytest.approx([1.0, 1.0, 1.0, 1.1])
    assert linked(tmp_path, ("b", "m", "other"), rows) == rows  # nothing paired: the medians as they are
