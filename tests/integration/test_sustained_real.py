"""`edgebench run --sustained` for real: the local board (and a farm board), through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _tiny_onnx import make_tiny_onnx
from edgebench.agent.power import NO_SENSOR, rapl_domains
from edgebench.model import Measurement
from edgebench.results.store import load_run
from edgebench.results.sustained import sustained_notes
from edgebench.targets.farm import Farm

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.05", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "1"]
WINDOW_KEYS = {"t_s", "duration_s", "count", "p50_ms", "p99_ms", "freq_mhz", "temp_c", "flags", "power_w", "sensor_ms"}


def _run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    model = make_tiny_onnx(tmp_path / "tiny.onnx")
    results = tmp_path / "results"
    cmd = [EDGEBENCH, "run", "--variants", str(model), "--results", str(results), *FAST, "--sustained", "6s", *extra]
    env = {**os.environ, "EDGEBENCH_NO_SPACE_CHECK": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    return out, results


def _measurement(results: Path) -> tuple[Measurement, str]:
    (run_file,) = sorted((results / "runs").glob("*.json"))
    run = load_run(run_file)
    (m,) = run.measurements
    # what a user reads: `edgebench report` (a pipe: plain text at $COLUMNS) and its JSON
    env = {**os.environ, "COLUMNS": "400"}
    shown = subprocess.run([EDGEBENCH, "report", "--results", str(results)], capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    doc = subprocess.run([EDGEBENCH, "report", "--results", str(results), "--json"], capture_output=True, text=True)
    [model] = json.loads(doc.stdout)["models"]
    assert [f["finding"] for f in model["sustained"]] == [
        line for _, line in sustained_notes(run.measurements)[m.model]
    ]
    return m, shown.stdout


def _check(m: Measurement, report: str) -> None:
    print(report)  # -s shows the finding and the sensors' overhead
    assert m.ok, m.error
    tl = m.timeline
    assert tl is not None
    assert 5 <= len(tl.windows) <= 7  # 6 s at 1 s windows (the last one may be cut short)
    for w in tl.windows:
        assert w.count > 0 and w.p50_ms is not None and w.p99_ms is not None and w.p99_ms >= w.p50_ms
        assert set(w.to_json()) >= WINDOW_KEYS  # frequency and temperature keys present, None where no sensor
    assert abs(sum(w.duration_s for w in tl.windows) - 6.0) < 0.5
    assert tl.sensor_overhead is not None and 0 <= tl.sensor_overhead < 0.05
    assert "sustained 6 s:" in report and "sensors read in" in report


def test_sustained_on_the_local_board_records_a_timeline_and_says_what_power_it_can_read(tmp_path: Path) -> None:
    out, results = _run(tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    m, report = _measurement(results)
    _check(m, report)
    tl = m.timeline
    assert tl is not None and tl.power is not None
    domains, _problems = rapl_domains("/")
    if domains:  # this machine exposes readable RAPL counters: the report gives energy per inference
        assert tl.power["available"] and "mJ per inference" in report
    else:  # this VM has no /sys/class/powercap: said, never a number
        assert tl.power["available"] is False and NO_SENSOR in report and "mJ" not in report
        assert all(w.power_w is None for w in tl.windows)
    assert "no throttling in 6 s" in report or "p50 +" in report


@pytest.mark.ssh
def test_sustained_on_a_farm_board(farm: Farm, tmp_path: Path) -> None:
    out, results = _run(tmp_path, "--boards-file", str(farm.boards_file), "--boards", "farm-1", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["run"]["benchmarks"][0]["extra_info"]["timeline"]["windows"]
    m, report = _measurement(results)
    assert m.board == "farm-1"
    _check(m, report)


@pytest.mark.ssh
def test_a_boards_power_command_gives_energy_per_inference(farm: Farm, tmp_path: Path) -> None:
    """A board whose boards.toml entry names a meter command: its figure is read on the board every window."""
    boards = tmp_path / "boards.toml"
    text = farm.boards_file.read_text()
    marker = 'name = "farm-1"\n'
    assert marker in text
    meter = "power_command = \"echo 'rail VDD_IN: 2500 mW'\"\npower_pattern = '(?P<value>[0-9.]+) (?P<unit>mW|W)'\n"
    boards.write_text(text.replace(marker, marker + meter, 1))
    out, results = _run(tmp_path, "--boards-file", str(boards), "--boards", "farm-1")
    assert out.returncode == 0, out.stderr[-3000:]
    m, report = _measurement(results)
    print(report)
    tl = m.timeline
    assert tl is not None and tl.power is not None and tl.power["available"], tl
    assert all(w.power_w and all(abs(float(v) - 2.5) < 1e-6 for v in w.power_w.values()) for w in tl.windows), tl
    assert "mJ per inference" in report and NO_SENSOR not in report
