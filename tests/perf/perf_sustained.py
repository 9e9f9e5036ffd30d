"""Sustained-mode benchmarks (run with `pytest tests/perf/perf_sustained.py -s`); they print figures.

- onset error (s) and slowdown error (%) of simulated throttling (a farm board's CPU quota lowered
  from 1 to 0.5 core part-way through `edgebench run --sustained 20s`) over 10 seeded trials, at the
  default 1 s window; the seed sets when the quota is lowered (the procedure of
  ``tests/integration/test_sustained_throttle.py``, whose helpers it uses);
- the sampler's overhead: the p50 of the same variant on the same board with ``--sustained 10s``
  (the median of its windows' p50) and with a plain ``--min-time 10``, alternately, as a ratio (goal <= 1.01);
- energy per inference on fake power sources (an INA3221 rail and a RAPL counter of known power) against the truth.

No timed asserts: the figures are printed.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgebench.agent.power import PowerMeter
from edgebench.agent.sustained import Sensors, run_sustained
from edgebench.targets import cgroups
from edgebench.targets.driver import LOCK_DIR_ENV
from edgebench.targets.farm import Farm, farm_up, find_sshd

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
from test_sustained_throttle import (
    AFTER,
    BEFORE,
    PERIOD_US,
    _edgebench_run,
    _measurement,
    independent_ratio,
    limited_board,
    make_model,
    quota_restored,
    throttled_run,
)

TRIALS = 10


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    if find_sshd() is None:
        pytest.skip("OpenSSH sshd is not installed: apt-get install -y openssh-server")
    with pytest.MonkeyPatch.context() as mp:  # a board lock and cache of its own, never the machine's
        mp.setenv(LOCK_DIR_ENV, str(tmp_path_factory.mktemp("lock")))
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        f = farm_up(tmp_path_factory.mktemp("perf-farm"), 3)
        try:
            yield f
        finally:
            f.down()


def test_onset_and_slowdown_error_over_seeded_trials(farm: Farm, tmp_path: Path) -> None:
    if not farm.limits:
        pytest.skip(f"farm boards have no CPU limits here ({farm.limits_note})")
    board = limited_board(farm)
    model = make_model(tmp_path)
    onset_err, slow_err, rows = [], [], []
    with quota_restored(board):
        fast, slow = independent_ratio(farm, board, model, tmp_path / "independent")
        expected = slow / fast
        for seed in range(TRIALS):
            lower_after = float(np.random.default_rng(seed).uniform(5.0, 13.0))
            t0 = time.monotonic()
            trial = throttled_run(farm, board, model, tmp_path / f"trial-{seed}", lower_after=lower_after)
            cgroups.set_cpu_limit(board.cgroups, BEFORE, PERIOD_US)
            f = trial.finding
            ws = trial.timeline.windows
            if f.throttled and f.onset_window is not None and f.cost is not None:
                # the onset's error in seconds: the found window's start against the moment of the lowering
                err_s = ws[f.onset_window].t_s - trial.lowered_s
                err_pct = (1 + f.cost) / expected - 1
                onset_err.append(err_s)
                slow_err.append(err_pct)
                found = f"onset {ws[f.onset_window].t_s:5.2f} s ({err_s:+.2f} s), x{1 + f.cost:.3f} ({err_pct:+.1%})"
            else:
                found = f"NOT FOUND: {f.sentence}"
            rows.append(
                f"  seed {seed}: lowered at {trial.lowered_s:5.2f} s (window {trial.lowering_window:2d}); "
                f"{found}; {time.monotonic() - t0:.0f} s"
            )
    print(
        f"\n[sustained perf] independent: p50 {fast:.3f} ms at {BEFORE} core, {slow:.3f} ms at {AFTER}: x{expected:.3f}"
    )
    print("\n".join(rows))
    if onset_err:
        a, s = np.abs(onset_err), np.abs(slow_err)
        print(
            f"[sustained perf] {len(onset_err)}/{TRIALS} found; onset error |s|: median {np.median(a):.2f}, "
            f"max {a.max():.2f} (goal <= 2 windows = 2 s); slowdown error |%|: median {np.median(s):.1%}, "
            f"max {s.max():.1%} (goal <= 10 %)"
        )


def test_sampler_overhead_on_p50(farm: Farm, tmp_path: Path) -> None:
    board = farm.member("farm-1")
    model = make_model(tmp_path)
    with_s: list[float] = []
    without: list[float] = []
    for i in range(3):
        for mode in ("sustained", "plain"):
            where = tmp_path / f"{mode}-{i}"
            extra = ["--min-time", "0.5", "--sustained", "10s"] if mode == "sustained" else ["--min-time", "10"]
            m = _measurement(_edgebench_run(farm, board, model, where, *extra), where)
            if mode == "sustained":
                assert m.timeline is not None
                with_s.append(float(np.median([w.p50_ms for w in m.timeline.windows if w.p50_ms is not None])))
            else:
                assert m.summary is not None
                without.append(m.summary.p50_ms)
    ratios = [a / b for a, b in zip(with_s, without, strict=True)]
    print(f"\n[sustained perf] board {board.name}: p50 with sampling {[round(v, 3) for v in with_s]} ms")
    print(f"[sustained perf] p50 without (plain --min-time 10) {[round(v, 3) for v in without]} ms")
    print(
        f"[sustained perf] ratio with/without: {[round(r, 4) for r in ratios]}; median {statistics.median(ratios):.4f} "
        f"(goal <= 1.01); the agent's own stated overhead is in each timeline's run block"
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_energy_per_inference_on_fake_sources_against_truth(tmp_path: Path) -> None:
    """A 4 W INA3221 rail and a RAPL counter advanced at 7.5 W of the run's own clock: mJ per inference vs truth."""
    rail_w, rapl_w = 4.0, 7.5
    ina = tmp_path / "sys/class/hwmon/hwmon0"
    _write(ina / "name", "ina3221")
    _write(ina / "in1_label", "VDD_IN")
    _write(ina / "power1_input", str(int(rail_w * 1e6)))
    rapl = tmp_path / "sys/class/powercap/intel-rapl:0"
    _write(rapl / "name", "package-0")
    _write(rapl / "max_energy_range_uj", "262143328850")
    t0 = [0.0]

    def run(_feed: Any) -> None:  # an "inference" of ~1 ms; the counter follows the wall clock at rapl_w
        time.sleep(0.001)
        _write(rapl / "energy_uj", str(int((time.monotonic() - t0[0]) * rapl_w * 1e6)))

    spec = {"seconds": 3.0, "window_s": 0.5, "root": str(tmp_path)}
    _write(rapl / "energy_uj", "0")  # the counter starts now (the meter primes a moment later)
    t0[0] = time.monotonic()
    block, windows, power = run_sustained(run, None, spec, Sensors(str(tmp_path)), PowerMeter(str(tmp_path)))
    n, elapsed = block["inferences"], block["elapsed_s"]
    assert power["available"], power
    print(f"\n[sustained perf] fake sources: {n} inferences in {elapsed:.3f} s, {len(windows)} windows")
    for dom in power["domains"]:
        truth_w = rail_w if "ina3221" in dom["name"] else rapl_w  # each constant over the run
        truth_mj = truth_w * elapsed / n * 1e3
        print(
            f"[sustained perf]   {dom['name']:20s} {dom['mj_per_inference']:.4f} mJ/inference vs truth {truth_mj:.4f} "
            f"({dom['mj_per_inference'] / truth_mj - 1:+.2%}); mean {dom['mean_w']:.3f} W vs {truth_w} W "
            f"(goal within 1 %)"
        )
