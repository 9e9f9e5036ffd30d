"""Sustained load, phase 2: the timeline plot, the verdict after throttling, sustained and energy budgets,
choose --rank energy, and a nightly's sustained setting reaching the run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from _svg import svg_texts
from edgebench.bench.settings import RunSettings
from edgebench.cli import main
from edgebench.model import BoardCost, Budget, Budgets, CheckVerdict, Measurement, Run, Worth
from edgebench.model.measurement import Timeline, Window
from edgebench.render.html import LINE, TICK, W, overlaps, report_html, sustained_svg, text_width
from edgebench.results import store
from edgebench.results.analysis import analyze_run, sustained_run
from edgebench.results.choose import choose
from edgebench.results.gate import evaluate, gate_of, load_budgets
from edgebench.results.schema import add_measurement, finish, new_run
from edgebench.results.sustained import energy_figure, find_throttling, steady_state
from edgebench.workflows import nightly
from edgebench.workflows.run import pytest_argv

NO_SENSOR = {"available": False, "none": "no power sensor on this board"}


def _power(mj: dict[str, float]) -> dict[str, Any]:
    """A power block with these domains' mJ per inference (as `agent.power.PowerMeter.summary` writes it)."""
    domains = [{"name": k, "covers": f"covers {k}", "kind": "counter", "sampling": "energy counter read once per "
                "1 s window", "energy_j": v, "mean_w": v / 10, "mj_per_inference": v, "error": None}
               for k, v in mj.items()]  # fmt: skip
    return {"available": True, "problems": [], "domains": domains}


def timeline(p50: Any, *, freq: Any = None, temp: Any = None, power: dict[str, Any] | None = None) -> Timeline:
    """A timeline of one window per second with these p50s (p99 = 1.5 x p50)."""
    ws = tuple(
        Window(t_s=float(i), duration_s=1.0, count=100, p50_ms=None if v is None else float(v),
               p99_ms=None if v is None else float(v) * 1.5, freq_mhz=None if freq is None else freq[i],
               temp_c=None if temp is None else temp[i])
        for i, v in enumerate(p50)
    )  # fmt: skip
    run = {"seconds": float(len(ws)), "window_s": 1.0, "elapsed_s": float(len(ws)), "sensor_overhead": 1e-5}
    return Timeline(windows=ws, run=run, power=power or NO_SENSOR)


def throttling(before: float, after: float, step: int = 220, n: int = 600, seed: int = 0, **kw: Any) -> Timeline:
    """A timeline whose p50 steps from ``before`` to ``after`` at window ``step`` (2 % noise), clock 1800 -> 1200."""
    rng = np.random.default_rng(seed)
    p50 = np.where(np.arange(n) < step, before, after) * (1 + rng.normal(0, 0.02, n))
    freq = [1800.0 if i < step else 1200.0 for i in range(n)]
    temp = [60.0 + 25.0 * i / n for i in range(n)]
    return timeline(p50, freq=freq, temp=temp, **kw)


def measured(variant: str, ms: float, board: str = "pi", tl: Timeline | None = None, seed: int = 0) -> Measurement:
    rng = np.random.default_rng(seed)
    samples = tuple(int(v) for v in ms * 1e6 * (1 + rng.normal(0, 0.01, 300)))
    return Measurement(board, "tiny", variant, True, samples_ns=samples, bytes=1000, timeline=tl)


def run_of(*ms: Measurement, run_id: str = "r1") -> Run:
    run = new_run("run", run_id)
    for m in ms:
        run = add_measurement(run, m)
    return finish(run)


# ----------------------------------------------------------------------------- the plot


def _box(x: float, y: float, anchor: str, text: str, size: float = TICK) -> tuple[float, float, float, float]:
    w = text_width(text, size)
    left = x - w / 2 if anchor == "middle" else x - w if anchor == "end" else x
    return (left, y - size, left + w, y + size * (LINE - 1))


def test_the_plot_stacks_latency_clock_and_temperature_on_one_time_axis_with_the_onset_marked() -> None:
    tl = throttling(0.52, 0.72)
    m = Measurement(board="pi", model="tiny", variant="int8", ok=True, timeline=tl)
    svg = sustained_svg("tiny", sustained_run(m, find_throttling(tl)))
    head = svg.split(">", 1)[0]
    assert 'viewBox="0 0 400 ' in head and 'class="chart sustained"' in head and f'width="{W}"' in head
    rects = [tuple(map(float, r)) for r in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', svg)]
    assert len(rects) == 3  # latency, clock, temperature
    assert len({(x, w) for x, _, w in rects}) == 1  # the same left edge and width: one shared time axis
    assert rects[0][1] < rects[1][1] < rects[2][1]  # stacked top to bottom
    texts = svg_texts(svg)
    xt = [t for t in texts if t[0] == "tick x"]
    assert len(xt) >= 4 and [t[4] for t in xt][:2] == ["0", "2"]  # minutes: 10 min run
    assert all(t[2] > rects[2][1] for t in xt)  # only the bottom panel labels the time axis
    boxes = [_box(x, y, a, s) for _, x, y, a, s in xt]
    assert not any(overlaps(a, b, 0) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    yt = [t for t in texts if t[0] == "tick y"]
    for top, nxt in zip([r[1] for r in rects], [*[r[1] for r in rects[1:]], 1e9], strict=True):
        assert sum(top - 1 <= t[2] < nxt for t in yt) >= 4  # four ticks on each panel's y axis
    assert "time since the start (min)" in svg and "clock (MHz)" in svg and "temp. (°C)" in svg
    onsets = re.findall(r'<line x1="([\d.]+)"[^>]*class="onset"', svg)
    assert len(onsets) == 3 and len(set(onsets)) == 1  # through every panel at the same x
    x0, _, w = rects[0]
    assert float(onsets[0]) == pytest.approx(x0 + w * 220 / 600, abs=1.0)
    assert "throttling from 3 min 40 s" in svg


def test_a_board_without_clock_or_temperature_gets_the_latency_panel_alone_and_long_runs_are_binned() -> None:
    tl = timeline([1.0] * 3000 + [1.5] * 600)  # an hour: drawn in medians of 9 windows
    m = Measurement(board="x86", model="tiny", variant="fp32", ok=True, timeline=tl)
    svg = sustained_svg("tiny", sustained_run(m, find_throttling(tl)))
    assert svg.count("<rect ") == 1 and "clock" not in svg and "over 60 min" in svg
    points = max(len(p.split()) for p in re.findall(r'points="([^"]+)"', svg))
    assert 300 <= points <= 400
    assert len([t for t in svg_texts(svg) if t[0] == "tick x"]) >= 4


def test_the_html_report_has_a_sustained_chart_per_sustained_run_and_json_the_structured_finding() -> None:
    run = run_of(measured("fp32", 1.0, tl=throttling(1.0, 1.3)), measured("int8", 0.6, seed=1))
    rep = analyze_run(run)
    page = report_html(rep)
    assert page.count('class="chart sustained"') == 1 and "tiny on pi / fp32: sustained load over 10 min" in page
    (entry,) = rep.to_json()["models"][0]["sustained"]
    assert entry["board"] == "pi" and entry["variant"] == "fp32" and entry["throttled"] is True
    v = entry["values"]
    assert v["onset_s"] == pytest.approx(220, abs=1) and v["before_p50_ms"] == pytest.approx(1.0, rel=0.02)
    assert v["after_p50_ms"] == pytest.approx(1.3, rel=0.02) and v["cost"] == pytest.approx(0.3, abs=0.02)
    assert v["freq_before_mhz"] == 1800 and v["freq_after_mhz"] == 1200 and v["temp_c"] is not None
    assert v["energy_mj"] is None and v["energy_domain"] == "no power sensor on this board"
    assert entry["finding"].startswith("pi/fp32 sustained 10 min: p50 +30%")
    json.dumps(rep.to_json())  # plain data
    plain = analyze_run(run_of(measured("fp32", 1.0), measured("int8", 0.6, seed=1)))
    assert "sustained" not in plain.to_json()["models"][0]  # unchanged without sustained runs
    assert "chart sustained" not in report_html(plain)


# ----------------------------------------------------------------------------- the verdict


def _verdict(run: Run, variant: str = "int8") -> tuple[Worth | None, str | None]:
    row = next(r for r in analyze_run(run).models[0].rows if r.variant == variant)
    return row.verdict, row.verdict_text


def test_a_speed_up_that_throttling_takes_away_says_so() -> None:
    fp32 = measured("fp32", 1.7, tl=throttling(1.7, 1.7 * 1.02, seed=1))  # steady: 1.7 ms under load
    int8 = measured("int8", 1.0, tl=throttling(1.0, 1.7, seed=2), seed=3)  # 1.0 ms at first, 1.7 ms after 3 min 40 s
    kind, text = _verdict(run_of(fp32, int8))
    assert text is not None and text.startswith("int8: 1.7x faster at first, 1.0x after throttling at 3 min 40 s")
    assert text.endswith(": not worth it (its speed-up does not survive sustained load)")
    assert kind is Worth.NOT_WORTH_IT


def test_a_speed_up_that_survives_throttling_keeps_its_verdict() -> None:
    fp32 = measured("fp32", 1.7, tl=throttling(1.7, 2.4, seed=1))
    int8 = measured("int8", 1.0, tl=throttling(1.0, 1.4, seed=2), seed=3)  # 2.4 / 1.4 = 1.7x after throttling too
    kind, text = _verdict(run_of(fp32, int8))
    assert text is not None and "after throttling" not in text and text.startswith("int8: 1.7x faster")
    assert kind is Worth.WORTH_IT_IF_ACCURATE
    # without fp32 sustained on the board there is nothing to compare with: the verdict stands
    kind, text = _verdict(run_of(measured("fp32", 1.7), measured("int8", 1.0, tl=throttling(1.0, 1.7), seed=3)))
    assert text is not None and "after throttling" not in text and kind is Worth.WORTH_IT_IF_ACCURATE


# ----------------------------------------------------------------------------- budgets


def test_the_sustained_figures_are_the_throttled_steady_state_or_the_last_third() -> None:
    tl = throttling(1.0, 1.5)
    st = steady_state(tl)
    assert st.p50_ms == pytest.approx(1.5, rel=0.02) and st.p99_ms == pytest.approx(2.25, rel=0.02)
    assert st.windows == 380 and st.note == "median of 380 windows over the throttled steady state (from 3 min 40 s)"
    flat = steady_state(timeline([1.0] * 40 + [1.02] * 20))
    assert flat.windows == 20 and flat.p50_ms == pytest.approx(1.02)
    assert "the last third of the run (from 40 s: no throttling)" in flat.note


def test_energy_is_the_widest_domain_and_never_a_sum() -> None:
    e = energy_figure(timeline([1.0] * 10, power=_power({"core": 2.0, "package-0": 3.0, "dram": 0.5})))
    assert e.mj == 3.0 and e.note == "package-0 (covers package-0)"
    assert energy_figure(None).why == "no sustained run: run --sustained"
    assert energy_figure(timeline([1.0] * 10)).why == "no power sensor on this board"
    broken = _power({"package-0": 1.0})
    broken["domains"][0].update(mj_per_inference=None, error="permission denied")
    assert energy_figure(timeline([1.0] * 10, power=broken)).why == (
        "the power sensors gave no reading (package-0: permission denied)"
    )


def _checks(*ms: Measurement, **limits: float) -> dict[tuple[str, str], Any]:
    run = run_of(*ms)
    checks = evaluate(run, Budgets((Budget(model="tiny", **limits),)))  # type: ignore[arg-type]
    return {(c.variant, c.check): c for c in checks}


def test_sustained_and_energy_budgets_pass_fail_or_stay_undecided_naming_why() -> None:
    sensed = throttling(1.0, 1.5, power=_power({"package-0": 4.0}))
    got = _checks(
        measured("fp32", 1.0, tl=sensed),
        measured("int8", 0.6, tl=throttling(0.6, 0.9)),  # no power sensor
        measured("fp16", 0.8),  # not sustained
        max_sustained_p50_ms=1.2, max_sustained_p99_ms=3.0, max_energy_mj=5.0,
    )  # fmt: skip
    p50 = got[("fp32", "max_sustained_p50_ms")]
    assert p50.verdict is CheckVerdict.FAIL and p50.measured == pytest.approx(1.5, rel=0.02)
    assert p50.note.endswith("over the throttled steady state (from 3 min 40 s)")
    assert got[("fp32", "max_sustained_p99_ms")].verdict is CheckVerdict.PASS  # 2.25 ms
    energy = got[("fp32", "max_energy_mj")]
    assert energy.verdict is CheckVerdict.PASS and energy.measured == 4.0 and "package-0" in energy.note
    assert got[("int8", "max_sustained_p50_ms")].verdict is CheckVerdict.PASS
    no_sensor = got[("int8", "max_energy_mj")]
    assert no_sensor.verdict is CheckVerdict.UNDECIDED and no_sensor.note == "no power sensor on this board"
    for name in ("max_sustained_p50_ms", "max_sustained_p99_ms", "max_energy_mj"):
        c = got[("fp16", name)]
        assert c.verdict is CheckVerdict.UNDECIDED and c.note == "no sustained run: run --sustained"
        assert c.measured is None
    over = _checks(measured("fp32", 1.0, tl=sensed), max_energy_mj=3.0)[("fp32", "max_energy_mj")]
    assert over.verdict is CheckVerdict.FAIL and over.margin == pytest.approx(-1.0)
    # an undecided sustained check never lets the gate pass
    run = run_of(measured("fp16", 0.8))
    assert not gate_of(run, evaluate(run, Budgets((Budget(max_energy_mj=100.0),)))).passed


def test_the_budget_keys_are_read_from_a_budgets_file(tmp_path: Path) -> None:
    f = tmp_path / "budgets.toml"
    f.write_text("[[budget]]\nmax_sustained_p50_ms = 2.5\nmax_sustained_p99_ms = 4\nmax_energy_mj = 40.0\n")
    (b,) = load_budgets(f).budgets
    assert b.limits == {"max_sustained_p50_ms": 2.5, "max_sustained_p99_ms": 4.0, "max_energy_mj": 40.0}
    f.write_text("[[budget]]\nmax_energy_mj = -1\n")
    res = CliRunner().invoke(main, ["gate", str(f), "--results", str(tmp_path)])
    assert res.exit_code == 1 and "max_energy_mj" in res.stderr


# ----------------------------------------------------------------------------- choose --rank energy


def test_choose_ranks_by_energy_and_lists_boards_without_a_sensor_last(tmp_path: Path) -> None:
    boards = {"x86": 6.0, "jetson": 2.0, "pi": None}  # mJ per inference; the pi has no power sensor
    for i, (board, mj) in enumerate(boards.items()):
        power = _power({"VDD_IN": mj}) if mj is not None else None
        tl = timeline([1.0] * 30, power=power)
        store.save_run(tmp_path, run_of(measured("fp32", 1.0 + i, board=board, tl=tl), run_id=f"2026010{i}T000000Z-r"))
    inv = {b: BoardCost(100.0, 5.0) for b in boards}
    d = choose(tmp_path, "tiny", inv, rank="energy", max_p90_ms=1000.0)
    assert [o.board for o in d.chosen] == ["jetson", "x86", "pi"]
    assert [o.energy_mj for o in d.chosen] == [2.0, 6.0, None]
    assert d.chosen[2].energy_note == "no power sensor on this board" and d.to_json()["rank"] == "energy"
    tight = choose(tmp_path, "tiny", inv, rank="energy", max_p90_ms=1.5)  # the latency limit still decides
    assert [o.board for o in tight.chosen] == ["x86"]
    inv_file = tmp_path / "boards.toml"
    inv_file.write_text("".join(f'[[boards]]\nname = "{b}"\nhost = "10.0.0.{i}"\n' for i, b in enumerate(boards, 1)))
    args = ["choose", "-m", "tiny", "--rank", "energy", "--results", str(tmp_path), "--boards-file", str(inv_file)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "ranked by energy" in res.stdout and "1. jetson/fp32: 2 mJ per inference, VDD_IN" in res.stdout
    assert "3. pi/fp32: no power sensor on this board" in res.stdout


# ----------------------------------------------------------------------------- nightly


def test_a_nightly_with_sustained_s_runs_sustained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = tmp_path / "nightly.toml"
    cfg_file.write_text('[nightly]\nboards = ["local"]\nvariants = "v"\n[nightly.settings]\nsustained_s = "10m"\n')
    cfg = nightly.load_config(cfg_file)
    seen: dict[str, RunSettings] = {}

    class Stop(Exception):
        pass

    def harness(**kw: Any) -> Any:
        seen["settings"] = kw["settings"]
        raise Stop

    monkeypatch.setattr(nightly, "run_harness", harness)
    with pytest.raises(Stop):
        nightly.run_nightly(cfg, tmp_path / "results")
    s = seen["settings"]
    assert s.sustained_s == 600.0 and s.sustained_block() == {"seconds": 600.0, "window_s": 1.0}
    argv = pytest_argv(variants=tmp_path, boards=["local"], results=tmp_path, run_id="r", settings=s)
    assert argv[argv.index("--edge-sustained") + 1] in ("600", "600.0")
