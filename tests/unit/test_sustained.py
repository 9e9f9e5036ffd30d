"""Sustained mode: window statistics, sensors on a fake tree, the agent's loop, the stored timeline, the finding."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from edgebench.agent import run_job
from edgebench.agent.power import PowerMeter
from edgebench.agent.sustained import Sensors, decode_throttled, percentile, rpi_flags, run_sustained, window_stats
from edgebench.bench.agent_result import AgentResult, malformed
from edgebench.bench.runner import build_job, from_agent
from edgebench.bench.settings import SETTINGS, BadValue, RunSettings, parse_duration
from edgebench.compress.variant import Variant, save_variant
from edgebench.errors import ConfigError
from edgebench.model import Measurement, ModelReport, ReportRow
from edgebench.model import Report as ReportData
from edgebench.model.measurement import Timeline, Window
from edgebench.render.report import Report, sustained_lines
from edgebench.results.sustained import duration_text, energy_line, find_throttling, sustained_notes
from edgebench.targets.board import Board

# ------------------------------------------------------------------------------ the agent


def test_window_stats_are_numpy_linear_percentiles() -> None:
    rng = np.random.default_rng(1)
    samples = [int(v) for v in rng.integers(1_000, 90_000, 1001)]
    got = window_stats(samples)
    p50, p99 = np.percentile(samples, [50, 99])
    assert got == {"count": 1001, "p50_ms": pytest.approx(p50 / 1e6), "p99_ms": pytest.approx(p99 / 1e6)}
    assert percentile(sorted(samples), 0.99) == pytest.approx(p99)  # the rule without numpy is the same
    assert window_stats([]) == {"count": 0, "p50_ms": None, "p99_ms": None}
    assert window_stats([2_000_000]) == {"count": 1, "p50_ms": 2.0, "p99_ms": 2.0}


def test_vcgencmd_bits_decode() -> None:
    bits = decode_throttled("throttled=0x50005\n")
    assert bits == 0x50005 and rpi_flags(bits) == ["rpi_under_voltage", "rpi_throttled"]
    assert rpi_flags(0x8) == ["rpi_soft_temp_limit"] and rpi_flags(0x70000) == []  # "has occurred" bits: not now
    assert decode_throttled("error") is None and decode_throttled("throttled=zz") is None


def _fake_board(root: Path, freqs_khz: list[int], temps_mc: dict[str, int]) -> None:
    for i, f in enumerate(freqs_khz):
        d = root / f"sys/devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        (d / "scaling_cur_freq").write_text(f"{f}\n")
    for zone, t in temps_mc.items():
        z = root / "sys/class/thermal" / zone
        z.mkdir(parents=True, exist_ok=True)
        (z / "temp").write_text(f"{t}\n")


def test_sensors_read_the_highest_clock_the_hottest_zone_and_flag_drops_and_trip_points(tmp_path: Path) -> None:
    _fake_board(tmp_path, [1_800_000, 1_500_000], {"thermal_zone0": 55_000, "thermal_zone1": 61_500})
    zone = tmp_path / "sys/class/thermal/thermal_zone1"
    (zone / "trip_point_0_temp").write_text("80000\n")
    (zone / "trip_point_0_type").write_text("passive\n")
    (zone / "trip_point_1_temp").write_text("95000\n")
    (zone / "trip_point_1_type").write_text("critical\n")
    s = Sensors(str(tmp_path), vcgencmd="")
    assert s.describe()["trip_points"] == [
        {"zone": "thermal_zone1", "type": "passive", "temp_c": 80.0},
        {"zone": "thermal_zone1", "type": "critical", "temp_c": 95.0},
    ]
    assert s.read() == {"freq_mhz": 1800.0, "temp_c": 61.5, "flags": []}
    (tmp_path / "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").write_text("1600000\n")  # -11 %
    (zone / "temp").write_text("81000\n")
    assert s.read() == {"freq_mhz": 1600.0, "temp_c": 81.0, "flags": ["freq_drop", "trip_passive"]}
    (tmp_path / "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").write_text("1700000\n")  # -5.6 %: not
    assert s.read()["flags"] == ["trip_passive"]


def test_a_board_without_sensors_reads_none_not_zero(tmp_path: Path) -> None:
    s = Sensors(str(tmp_path), vcgencmd="")
    assert s.read() == {"freq_mhz": None, "temp_c": None, "flags": []}
    assert s.describe() == {"freq_cpus": 0, "thermal_zones": 0, "trip_points": [], "vcgencmd": None}


def test_a_fake_vcgencmd_is_read_each_window(tmp_path: Path) -> None:
    tool = tmp_path / "vcgencmd"
    tool.write_text(f"#!{sys.executable}\nprint('throttled=0x20006')\n")
    os.chmod(tool, 0o755)
    s = Sensors(str(tmp_path), vcgencmd=str(tool))
    assert s.read()["flags"] == ["rpi_freq_capped", "rpi_throttled"]
    assert s.occurred == 0x20006


def test_the_loop_records_windows_with_counts_and_its_overhead(tmp_path: Path) -> None:
    _fake_board(tmp_path, [1_200_000], {"thermal_zone0": 40_000})
    calls = []

    def run(feed: Any) -> None:
        calls.append(feed)
        time.sleep(0.002)

    spec = {"seconds": 0.6, "window_s": 0.2}
    block, windows, power = run_sustained(
        run, "x", spec, Sensors(str(tmp_path), vcgencmd=""), PowerMeter(str(tmp_path))
    )  # fmt: skip
    assert len(windows) == 3 and block["windows"] == 3
    assert sum(w["count"] for w in windows) == len(calls) == block["inferences"] > 0
    assert all(w["count"] > 10 and w["p50_ms"] >= 2.0 and w["freq_mhz"] == 1200.0 for w in windows)
    assert all(w["temp_c"] == 40.0 and w["power_w"] is None and w["sensor_ms"] >= 0 for w in windows)
    assert [round(w["t_s"], 1) for w in windows] == [0.0, 0.2, 0.4]
    assert 0 <= block["sensor_overhead"] <= block["overhead"] < 0.2
    assert power == {"available": False, "problems": [], "none": "no power sensor on this board"}


def test_a_sustained_job_on_the_real_agent_and_a_bad_one(tiny_onnx: Path) -> None:
    job = {"artifact": str(tiny_onnx), "measure": {"min_time_s": 0.01, "min_rounds": 5}}
    out = run_job({**job, "sustained": {"seconds": 0.4, "window_s": 0.2}})
    assert out["ok"] and malformed(out) is None and len(out["timeline"]) == 2
    assert out["sustained"]["inferences"] == sum(w["count"] for w in out["timeline"])
    bad = run_job({**job, "sustained": {"seconds": 1, "window_s": 2}})
    assert (
        bad["error"]["kind"] == "bad_job" and "window_s must be above 0 and at most the run" in bad["error"]["message"]
    )
    assert "sustained.seconds must be above 0" in run_job({**job, "sustained": {"seconds": 0}})["error"]["message"]


# ------------------------------------------------------------------------------- the host


def test_durations_parse_and_bad_ones_are_one_line() -> None:
    assert [parse_duration(v) for v in ("10m", "90s", "600", "3m40s", "1h", 2.5)] == [600, 90, 600, 220, 3600, 2.5]
    (flag,) = [s for s in SETTINGS if s.name == "sustained_s"]
    assert flag.flag == "--sustained" and flag.type("6s") == 6.0
    for bad, said in (("0", "not in the range above 0"), ("-5", "not a duration"), ("ten", "not a duration")):
        with pytest.raises(BadValue, match=said):
            flag.type(bad)
    assert RunSettings.from_mapping({"sustained_s": "10m"}).sustained_block() == {"seconds": 600.0, "window_s": 1.0}
    with pytest.raises(ConfigError, match=r"sustained window \(5 s\) is longer than the sustained run \(2 s\)"):
        RunSettings.from_mapping({"sustained_s": 2, "sustained_window_s": 5})
    with pytest.raises(ConfigError, match="raise --timeout to at least 1320"):
        RunSettings.from_mapping({"sustained_s": "20m"})
    assert RunSettings().sustained_block() is None


def _variant(tmp_path: Path, onnx: Path) -> Variant:
    return save_variant(
        tmp_path / "variants" / "tiny" / "fp32",
        onnx,
        {"model": "tiny", "variant": "fp32", "fmt": "onnx", "parent": None, "passes": []},
    )


def test_the_job_is_sustained_in_the_first_process_only(tmp_path: Path, tiny_onnx: Path) -> None:
    v, board = _variant(tmp_path, tiny_onnx), Board(name="local")
    s = RunSettings.from_mapping({"sustained_s": "90s", "sustained_window_s": 2})
    first = build_job(board, v, s, artifact="/a/model.onnx")
    assert first["sustained"] == {"seconds": 90.0, "window_s": 2.0}
    assert "sustained" not in build_job(board, v, s, artifact="/a/model.onnx", evaluate=False)
    assert "sustained" not in build_job(board, v, RunSettings(), artifact="/a/model.onnx")


def _window(i: int, p50: float | None, freq: float | None = None, temp: float | None = None) -> dict[str, Any]:
    return {
        "t_s": float(i), "duration_s": 1.0, "count": 0 if p50 is None else 1000, "p50_ms": p50,
        "p99_ms": None if p50 is None else p50 * 1.5, "freq_mhz": freq, "temp_c": temp, "flags": [],
        "power_w": None, "sensor_ms": 0.03, "overhead_ms": 0.5,
    }  # fmt: skip


def test_the_timeline_round_trips_exactly_and_is_absent_when_not_sustained() -> None:
    agent_out = {
        "ok": True,
        "timing": {"load_ns": 1, "first_inference_ns": 1, "batch_size": 1, "samples_ns": [1000, 1100]},
        "sustained": {"seconds": 2.0, "window_s": 1.0, "sensor_overhead": 3e-5, "sensors": {"trip_points": []}},
        "timeline": [_window(0, 0.5, 1800.0, 50.0), {**_window(1, 0.51), "new_key": 1}],
        "power": {"available": False, "problems": [], "none": "no power sensor on this board"},
    }
    assert AgentResult.from_json(agent_out).timeline == agent_out["timeline"]
    m = from_agent(Measurement(board="b", model="m", variant="v", ok=False), Board(name="b"), agent_out)
    assert m.timeline is not None and m.timeline.windows[0].freq_mhz == 1800.0
    assert m.timeline.windows[1].extra == {"new_key": 1}  # a newer agent's key is kept
    doc = json.loads(json.dumps(m.to_json()))
    assert Measurement.from_json(doc).to_json() == doc and doc["timeline"]["windows"][1]["new_key"] == 1
    plain = {"board": "b", "model": "m", "variant": "v", "ok": True, "samples_ns": [1], "batch_size": 1}
    plain_doc = Measurement.from_json(plain).to_json()
    assert "timeline" not in plain_doc and Measurement.from_json(plain_doc).to_json() == plain_doc


# ----------------------------------------------------------------------------- the finding


def _timeline(p50: Any, freq: Any = None, temp: Any = None, power: dict[str, Any] | None = None) -> Timeline:
    n = len(p50)
    ws = tuple(
        Window.from_json(
            _window(i, float(p50[i]), None if freq is None else freq[i], None if temp is None else temp[i])
        )
        for i in range(n)
    )
    run = {"seconds": float(n), "window_s": 1.0, "elapsed_s": float(n), "sensor_overhead": 2e-5}
    return Timeline(windows=ws, run=run, power=power or {"available": False, "none": "no power sensor on this board"})


@pytest.mark.parametrize("step", [37, 220, 480])
def test_a_step_is_found_within_one_window_with_its_cost_clock_and_temperature(step: int) -> None:
    rng = np.random.default_rng(step)
    n = 600
    p50 = np.where(np.arange(n) < step, 0.52, 0.72) * (1 + rng.normal(0, 0.02, n))
    freq = [1800.0 if i < step else 1200.0 for i in range(n)]
    temp = [60.0 + 25.0 * i / n for i in range(n)]
    f = find_throttling(_timeline(p50, freq, temp))
    assert f.throttled and f.onset_window is not None and abs(f.onset_window - step) <= 1
    assert f.cost == pytest.approx(0.72 / 0.52 - 1, abs=0.02)
    assert f.freq_before_mhz == 1800.0 and f.freq_after_mhz == 1200.0
    assert re.match(r"p50 \+3[89]% \(0\.5\d* → 0\.7\d* ms\) after ", f.sentence), f.sentence
    assert f"after {duration_text(f.onset_s or 0)}, as the clock fell from 1800 to 1200 MHz at" in f.sentence
    if step == 220:
        assert "after 3 min 40 s" in f.sentence


def test_an_hour_of_windows_is_judged_fast_and_exact_to_a_window() -> None:
    rng = np.random.default_rng(7)
    n, step = 3600, 2017
    p50 = np.where(np.arange(n) < step, 1.0, 1.25) * (1 + rng.normal(0, 0.02, n))
    t = time.perf_counter()
    f = find_throttling(_timeline(p50))
    assert time.perf_counter() - t < 10  # PELT on every window would take minutes
    assert f.throttled and f.onset_window is not None and abs(f.onset_window - step) <= 1
    assert re.search(r"after 33 min 3[678] s", f.sentence), f.sentence


@pytest.mark.parametrize("seed", range(5))
def test_noise_alone_is_no_throttling(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p50 = 0.5 * (1 + rng.normal(0, 0.03, 600)) * np.where(rng.random(600) < 0.02, 1.5, 1.0)  # spikes too
    f = find_throttling(_timeline(p50))
    assert not f.throttled and f.sentence.startswith("no throttling in 10 min (p50 steady within ±")
    assert f.spread is not None and f.spread < 0.1


def test_a_flat_series_is_no_throttling_and_a_faster_level_is_not_throttling() -> None:
    f = find_throttling(_timeline([0.5] * 60))
    assert not f.throttled and f.sentence == "no throttling in 1 min (p50 steady within ±0.0%)"
    faster = find_throttling(_timeline([0.8] * 30 + [0.5] * 30))
    assert not faster.throttled and "p50 fell 38% after 30 s" in faster.sentence


def test_throttling_without_a_clock_sensor_says_so() -> None:
    f = find_throttling(_timeline([1.0] * 20 + [1.5] * 40))
    assert f.throttled and f.sentence == "p50 +50% (1 → 1.5 ms) after 20 s (the board reports no CPU frequency)"


def test_energy_line_names_what_it_covers_or_no_sensor() -> None:
    power = {
        "available": True,
        "domains": [{
            "name": "package-0", "covers": "CPU package (cores, caches, uncore), not DRAM", "kind": "counter",
            "sampling": "energy counter read once per 1 s window", "energy_j": 60.0, "mean_w": 6.0,
            "mj_per_inference": 4.2,
        }],
    }  # fmt: skip
    assert energy_line(_timeline([1.0] * 10, power=power)) == (
        "4.2 mJ per inference, mean 6 W (package-0: CPU package (cores, caches, uncore), not DRAM; energy counter "
        "read once per 1 s window)"
    )
    assert energy_line(_timeline([1.0] * 10)) == "no power sensor on this board"


def test_the_report_shows_the_finding_under_the_model_table_and_folds_many() -> None:
    m = Measurement(board="pi", model="tiny", variant="int8", ok=True, timeline=_timeline([1.0] * 20 + [1.5] * 40))
    notes = sustained_notes([m])
    ((throttled, line),) = notes["tiny"]
    assert throttled and line.startswith("pi/int8 sustained 1 min: p50 +50%")
    assert "energy: no power sensor on this board; sensors read in 0.002% of the run" in line
    row = ReportRow(board="pi", variant="int8", ok=True, p50_ms=1.2, p90_ms=1.4, p99_ms=1.5, rounds=100)
    model = ModelReport(model="tiny", rows=(row,), pareto={})
    data = ReportData(run_id="r", command="run", started=None, complete=True, boards=("pi",), models=(model,))
    buf = io.StringIO()
    Console(file=buf, width=400).print(Report(data, sustained=notes))
    shown = buf.getvalue()
    assert f"  {line}" in shown and shown.index("int8 ") < shown.index("sustained 1 min")  # under the table
    buf = io.StringIO()
    Console(file=buf, width=400).print(Report(data))  # without the notes: nothing said
    assert "sustained" not in buf.getvalue()
    many = [(False, f"steady {i}") for i in range(5)] + [(True, "throttled")]
    folded = sustained_lines(many)
    assert folded[0] == (True, "throttled") and len(folded) == 4
    assert folded[-1] == (False, "... and 3 more sustained runs (0 throttled): --verbose shows them")
    assert len(sustained_lines(many, verbose=True)) == 6


def test_a_timeline_of_too_few_windows_judges_nothing() -> None:
    """Three windows with a 9 % rise in the last: not called throttling, and the fix is named."""
    from edgebench.model.measurement import Timeline
    from edgebench.results.sustained import MIN_WINDOWS, find_throttling

    windows = [
        {"t_s": float(i), "duration_s": 1.0, "count": 100, "p50_ms": p, "p99_ms": p * 1.2, "freq_mhz": None,
         "temp_c": None, "flags": [], "power_w": None, "sensor_ms": 0.01}
        for i, p in enumerate([1.0, 1.0, 1.09])
    ]  # fmt: skip
    f = find_throttling(Timeline.from_json({"run": {"seconds": 3.0}, "windows": windows}))
    assert not f.throttled
    assert "too short to judge throttling (3 timed windows" in f.sentence and f"at least {MIN_WINDOWS}" in f.sentence


def test_a_two_window_spike_is_not_the_onset_and_the_throttled_level_is_the_whole_stretch() -> None:
    """A neighbour's 2-window spike before the real step is not throttling; a short last piece stays in the level."""
    from edgebench.model.measurement import Timeline
    from edgebench.results.sustained import find_throttling

    rng = np.random.default_rng(3)
    p50 = [1.0] * 30 + [1.4, 1.4] + [1.0] * 18 + [2.0] * 47 + [1.85] * 3  # spike at 30, throttled from 50
    p50 = [v * (1 + 0.01 * rng.standard_normal()) for v in p50]
    windows = [
        {"t_s": float(i), "duration_s": 1.0, "count": 100, "p50_ms": p, "p99_ms": p * 1.2, "freq_mhz": None,
         "temp_c": None, "flags": [], "power_w": None, "sensor_ms": 0.01}
        for i, p in enumerate(p50)
    ]  # fmt: skip
    f = find_throttling(Timeline.from_json({"run": {"seconds": 100.0}, "windows": windows}))
    assert f.throttled and f.onset_window is not None and abs(f.onset_window - 50) <= 1, f.sentence
    assert f.after_p50_ms is not None and abs(f.after_p50_ms - 2.0) < 0.05, f.after_p50_ms
