"""Trends: change points with known truth, one point per commit, configuration keys."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.model import ConfigKey, Measurement, Trend
from edgebench.render.html import trend_svg
from edgebench.results.trend import by_commit, change_points


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
