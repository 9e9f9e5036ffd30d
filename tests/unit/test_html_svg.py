"""The HTML charts without a browser: they scale (viewBox), axes have >= 4 nice ticks, labels keep apart.

`tests/integration/test_html_chromium.py` checks the same in headless Chromium on real pages;
these check the pieces over many ranges and crowded cases.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest

from _svg import svg_texts
from edgebench.bench.profile import Profile
from edgebench.model import Histogram, Measurement, ProfileBlock, ReportRow, Trend
from edgebench.render.html import (
    CHAR_W,
    LINE,
    W,
    distribution_svg,
    fold,
    log_ticks,
    nice_ticks,
    overlaps,
    pareto_svg,
    place_labels,
    profile_section,
    profile_svg,
    spread,
    text_width,
    tick_labels,
    trend_svg,
)

RANGES = [(0, 1), (0, 0.0273), (0.0108, 0.0132), (9.5, 10.5), (0, 1234), (-3, 7), (1e-6, 3e-6), (42.1, 42.2),
          (0.3, 3), (38.5, 44.3), (5, 5)]  # fmt: skip


def _is_125(step: float) -> bool:
    m = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return any(abs(m - k) < 1e-6 for k in (1, 2, 5, 10))


@pytest.mark.parametrize(("lo", "hi"), RANGES)
def test_nice_ticks_are_at_least_four_1_2_5_steps_inside_the_range(lo: float, hi: float) -> None:
    ticks = nice_ticks(lo, hi)
    assert 4 <= len(ticks) <= 12, ticks
    if hi > lo:
        assert lo - 1e-12 <= ticks[0] and ticks[-1] <= hi + 1e-12
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(steps) - min(steps) < steps[0] * 1e-6 and _is_125(steps[0]), ticks
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels)  # enough decimals to tell them apart
    assert all(float(s) == pytest.approx(v, abs=steps[0] / 100) for s, v in zip(labels, ticks, strict=True))


@pytest.mark.parametrize(("lo", "hi"), [(0.008, 0.1), (0.3, 3), (1, 1000), (0.0121, 0.0134), (0.05, 40), (2e-4, 9e-3)])
def test_log_ticks_are_at_least_four_inside_the_range(lo: float, hi: float) -> None:
    ticks = log_ticks(lo, hi)
    assert len(ticks) >= 4 and ticks == sorted(ticks) and lo * 0.999 <= ticks[0] and ticks[-1] <= hi * 1.001, ticks
    assert len(set(tick_labels(ticks))) == len(ticks)


def test_labels_of_a_few_axes() -> None:
    assert tick_labels(nice_ticks(0, 1)) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert tick_labels(log_ticks(1, 1000)) == ["1", "10", "100", "1000"]
    assert tick_labels(log_ticks(0.008, 0.1)) == ["0.01", "0.02", "0.05", "0.10"]
    assert tick_labels(nice_ticks(0, 1234)) == ["0", "200", "400", "600", "800", "1000", "1200"]


def test_spread_keeps_labels_apart() -> None:
    centers = [10.0 * i for i in range(20)]
    widths = [35.0] * 20
    kept = spread(centers, widths)
    assert kept[0] == 0 and kept == list(range(0, 20, 4))  # every 4th: 40 apart >= 35 + 4 gap
    assert all(centers[b] - centers[a] >= 39 for a, b in itertools.pairwise(kept))


def test_place_labels_avoids_labels_points_and_edges() -> None:
    pts = [(100.0, 100.0), (104.0, 102.0), (100.0, 108.0), (300.0, 20.0), (395.0, 150.0)]
    sizes = [(60.0, 12.0)] * len(pts)
    bounds = (50.0, 10.0, 400.0, 200.0)
    boxes = place_labels(pts, sizes, bounds)
    got = [b for b in boxes if b is not None]
    assert len(got) == len(pts)  # room enough for all of them here
    for i, a in enumerate(got):
        assert bounds[0] <= a[0] and a[2] <= bounds[2] and bounds[1] <= a[1] and a[3] <= bounds[3]
        assert not any(overlaps(a, b, 0.5) for b in got[i + 1 :])
        assert not any(overlaps(a, (x - 6, y - 6, x + 6, y + 6), 0.5) for x, y in pts)


def test_place_labels_gives_up_where_there_is_no_room() -> None:
    pts = [(60.0 + i, 30.0) for i in range(6)]  # six points on one spot in a small box
    boxes = place_labels(pts, [(80.0, 12.0)] * 6, (50.0, 10.0, 200.0, 60.0))
    assert boxes[0] is not None and None in boxes


def test_fold_breaks_names_at_dashes_and_cuts_what_is_left() -> None:
    assert fold("int8-dynamic-per-channel-reduce-range", 120, 10.5) == ["int8-dynamic-per-", "channel-reduce-r…"]
    assert fold("fp32", 120, 10.5) == ["fp32"]
    long = fold("a / b / " + "x" * 100, 200, 12, lines=3)
    assert len(long) == 3 and all(len(s) <= int(200 / (12 * CHAR_W)) for s in long) and long[-1].endswith("…")


def _box(x: float, y: float, anchor: str, text: str, size: float = 10.5) -> tuple[float, float, float, float]:
    w = text_width(text, size)
    left = x - w / 2 if anchor == "middle" else x - w if anchor == "end" else x
    return (left, y - size, left + w, y + size * (LINE - 1))


def _row(variant: str, p90: float, top1: float, pareto: bool = False) -> ReportRow:
    hist = Histogram(p90 * 0.8, p90 * 1.2, (1, 4, 9, 3, 1), 0)
    return ReportRow(board="b", variant=variant, ok=True, p90_ms=p90, top1=top1, pareto=pareto, hist=hist)


def _scales(svg: str) -> None:
    head = svg.split(">", 1)[0]
    assert 'viewBox="0 0 400 ' in head and 'preserveAspectRatio="xMidYMid meet"' in head and 'class="chart ' in head
    assert f'width="{W}"' in head  # its natural size where no CSS applies; the page's CSS makes it 100 %


def _ticks(svg: str, axis: str) -> list[str]:
    return [t[4] for t in svg_texts(svg) if t[0] == f"tick {axis}"]


@pytest.mark.parametrize("spread_ms", [(0.0121, 0.0134), (0.008, 0.1), (1.0, 250.0), (0.0078, 0.024)])
def test_distribution_has_four_ticks_on_each_axis(spread_ms: tuple[float, float]) -> None:
    lo, hi = spread_ms
    rows = [_row("fp32", lo / 0.8, 80.0), _row("int8", hi / 1.2, 79.0)]
    svg = distribution_svg("m on b: latency distribution", rows)
    _scales(svg)
    assert len(_ticks(svg, "x")) >= 4 and len(_ticks(svg, "y")) >= 4, (_ticks(svg, "x"), _ticks(svg, "y"))
    xs = [t for t in svg_texts(svg) if t[0] == "tick x"]
    boxes = [_box(x, y, a, s) for _, x, y, a, s in xs]
    assert not any(overlaps(a, b, 0) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_pareto_labels_of_close_points_do_not_overlap() -> None:
    names = ["fp32", "fp16", "int8-dynamic-per-channel-reduce-range", "int8-static", "wide-head_pruned-50pct",
             "pruned-30", "pruned-50", "pruned-70"]  # fmt: skip
    rows = [_row(n, 0.0100 + 0.00002 * i, 43.75 - 0.01 * i, pareto=i < 2) for i, n in enumerate(names)]
    svg = pareto_svg("m on b: top-1 vs p90 (filled: Pareto)", rows)
    _scales(svg)
    assert len(_ticks(svg, "x")) >= 4 and len(_ticks(svg, "y")) >= 4
    labels = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" font-size="10.5" class="point"[^>]*>(.*?)</text>', svg)
    boxes = []
    for x, y, inner in labels:
        lines = re.findall(r">([^<]+)</tspan>", inner) or [inner]
        w = max(text_width(s, 10.5) for s in lines)
        boxes.append((float(x), float(y) - 10.5, float(x) + w, float(y) + 10.5 * LINE * (len(lines) - 1)))
    assert not any(overlaps(a, b, 0.5) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    legend = re.findall(r'class="legend"[^>]*>(.*?)</text>', svg)
    named = len(labels) - len(re.findall(r'class="point"[^>]*>\d+</text>', svg))
    assert named + len(legend) == len(names)  # each point is named, in place or by a number in the legend
    assert legend and all(re.match(r"\d+: ", s) for s in legend)


def test_trend_x_labels_are_thinned_and_y_has_four_ticks() -> None:
    commits = tuple(f"{i:07x}" for i in range(30))
    t = Trend("local", "m", "a-very-long-variant-name-that-folds", "p50", tuple(1.0 + 0.001 * i for i in range(30)),
              tuple(f"r{i}" for i in range(30)), "", ("r10", "r11", "r25"), commits=commits)  # fmt: skip
    svg = trend_svg(t)
    _scales(svg)
    xs = [t for t in svg_texts(svg) if t[0] == "tick x"]
    assert 4 <= len(xs) <= 8 and xs[0][4] == commits[0] and len(_ticks(svg, "y")) >= 4
    boxes = [_box(x, y, a, s) for _, x, y, a, s in xs]
    assert not any(overlaps(a, b, 0) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    changes = [_box(x, y, a, s) for c, x, y, a, s in svg_texts(svg) if c == "change"]
    assert len(changes) == 3 and not any(overlaps(a, b, 0.5) for i, a in enumerate(changes) for b in changes[i + 1 :])
    assert all(b[0] >= 0 and b[2] <= W for b in boxes + changes)


def _profile(variant: str, shares: dict[str, int]) -> Profile:
    """A profile with nodes of these op types and microseconds per inference (100 us profiled per inference)."""
    nodes = [{"name": f"/{op}_{i}", "op_type": op, "provider": "CPUExecutionProvider", "total_us": us * 10,
              "count": 10} for i, (op, us) in enumerate(shares.items())]  # fmt: skip
    node_us = sum(shares.values())
    prof = {"available": True, "iterations": 10, "nodes": nodes, "profiled_samples_ns": [100_000] * 10,
            "runs": [{"model_run_us": node_us + 5, "node_us": node_us}] * 10,
            "unprofiled_p50_ns": 80_000, "profiled_p50_ns": 100_000}  # fmt: skip
    return Profile.from_measurement(Measurement("local", "m", variant, ok=True, profile=ProfileBlock.from_json(prof)))


def test_the_profile_chart_scales_and_its_tables_scroll() -> None:
    ps = [_profile("fp32", {"Conv": 60, "Relu": 20}), _profile("int8-dynamic-per-channel", {"ConvInteger": 70})]
    svg = profile_svg(ps)
    _scales(svg)
    assert svg.count('class="row"') == 2 and svg.count('fill="#ddd"') == 2  # a row and a bar per variant
    assert _ticks(svg, "x") == ["0%", "25%", "50%", "75%", "100%"]
    section = profile_section(ps)
    assert section.count("<svg") == 1 and 'class="chart profile"' in section
    assert section.count("<table") == section.count('<div class="tw"><table') == 2
