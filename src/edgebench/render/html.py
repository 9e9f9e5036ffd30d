"""The report as ONE self-contained HTML file: tables and inline SVG plots, no scripts, no network.

Plots: latency distributions (histograms up to p99) per board, the Pareto front of
top-1 against p90 per board, the trends of p50 over earlier runs with change points, and
(``run --profile``) one bar per variant split by op type, and (``run --sustained``) each sustained
run's timeline: latency (p50, p99 per window) over the CPU clock and temperature on one time
axis, the onset of throttling marked (`sustained_svg`).

Trend y axes are in ms and span at least +-10 % of the series' median (wider when the
values are), so a 0.5 % change looks like 0.5 % and never fills the plot.

The page reads on a laptop and on a 390 px phone (`tests/integration/test_html_chromium.py`
measures both in headless Chromium): every chart is drawn in a viewBox `W` units wide and
scaled by CSS to the width it gets (at most `MAX_WIDTH` px, height from the aspect ratio);
axes carry at least four ticks at 1-2-5 steps (`nice_ticks`, `log_ticks`), x labels that
would touch are thinned out (`spread`); titles and long variant names fold (`fold`); a
Pareto point's label goes where it touches no other label or point (`place_labels`), else
the point gets a number that a legend under the plot names. Tables scroll sideways inside
their own container; the page itself never does.

A nightly page (`nightly_html`) opens with one verdict line, then the gate and the
comparison with the last nightly, then the settings and whether the run was valid.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from edgebench.bench.profile import Profile
from edgebench.model import Change, CheckVerdict, Comparison, Gate, ModelReport, Report, ReportRow, Trend, Worth
from edgebench.model.decisions import SustainedRun
from edgebench.render.compare import degraded_lines, quantile_text, runs_line, verdict_text
from edgebench.render.gate import GATE_COLUMNS, summary
from edgebench.render.gate import runs_line as gate_runs_line
from edgebench.render.profile import OTHER, PALETTE, html_section
from edgebench.render.report import (
    commit_words,
    failure_lines,
    fidelity_note,
    fold_warnings,
    shown_columns,
    speed_class,
    sustained_lines,
    validity,
)
from edgebench.results.sustained import duration_text

TREND_SPAN = 0.10  # trend y axes cover at least median +-10 %
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
# Every chart is drawn in a viewBox W units wide and scaled by CSS to the width it gets (at most MAX_WIDTH
# px): a 390 px phone shows it at about 0.85x, a laptop at MAX_WIDTH / W. Text sizes are in viewBox units.
W = 400
MAX_WIDTH = 540
PLOT_H = 150  # height of a plot area
TICK, LABEL, TITLE = 10.5, 11.0, 12.0  # font sizes: tick labels, axis labels and legends, titles
CHAR_W = 0.64  # an upper estimate of a glyph's width per unit of font size (DejaVu Sans digits: 0.636)
LINE = 1.25  # line height per unit of font size
MIN_TICKS = 4
Box = tuple[float, float, float, float]  # left, top, right, bottom
CSS = f"""
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222;overflow-wrap:anywhere}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right;
overflow-wrap:normal}}td.note{{min-width:14em}}
td:first-child,td:nth-child(2),th,table.words td:nth-child(-n+5){{text-align:left}}
.good{{color:#070}}.bad{{color:#b00}}.warn{{color:#a60}}
.plots{{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}}
svg{{background:#fafafa;border:1px solid #ddd;max-width:100%;height:auto}}
svg.chart{{width:100%;max-width:{MAX_WIDTH}px;height:auto;box-sizing:border-box}}
.tw{{overflow-x:auto;max-width:100%}}.verdict{{font-size:1.3em;padding:.4em .6em;border:2px solid;margin:0 0 .5em}}
.verdict.good{{background:#efe}}.verdict.bad{{background:#fee}}.verdict.warn{{background:#ffd}}
"""


def _e(s: Any) -> str:
    return html.escape(str(s))


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def text_width(text: str, size: float) -> float:
    """An upper estimate of ``text``'s width in an SVG at font size ``size`` (no browser to ask)."""
    return len(text) * size * CHAR_W


def _fit(text: str, n: int) -> str:
    """Shorten a label to ``n`` characters (an SVG text never wraps; clipped text says less)."""
    return text if len(text) <= n else text[: max(n - 1, 0)] + "…"


def fold(text: str, width: float, size: float, lines: int = 2) -> list[str]:
    """``text`` folded into at most ``lines`` lines that fit ``width`` at font size ``size``.

    Lines break after a space, ``/``, ``-``, ``_`` or ``:`` (a variant name folds at its
    dashes); a word longer than a line is cut; what does not fit ends in "…".
    """
    n = max(int(width / (size * CHAR_W)), 2)
    raw: list[str] = []  # consecutive pieces of the text, one per line
    cur = ""
    for tok in re.findall(r"[^ /\-_:]+[ /\-_:]*|[ /\-_:]+", text):
        if cur.strip() and len((cur + tok).rstrip()) > n:
            raw.append(cur)
            cur = ""
        cur += tok
        while len(cur.rstrip()) > n:  # a word longer than a line: cut it
            raw.append(cur[:n])
            cur = cur[n:]
    raw.append(cur)
    if len(raw) > lines:
        raw = [*raw[: lines - 1], _fit("".join(raw[lines - 1 :]).strip(), n)]
    return [line.strip() for line in raw if line.strip()] or [""]


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9))


def nice_ticks(lo: float, hi: float, at_least: int = MIN_TICKS) -> list[float]:
    """Tick values at a 1-2-5 step (…, 0.1, 0.2, 0.5, 1, 2, 5, …) inside ``[lo, hi]``: the widest step
    that still gives ``at_least`` ticks.
    """
    if not hi > lo:
        d = abs(lo) * 0.05 or 1.0
        lo, hi = lo - d, hi + d
    e = math.floor(math.log10((hi - lo) / at_least))
    for step in (m * 10.0**k for k in range(e + 1, e - 3, -1) for m in (5, 2, 1)):
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 >= at_least:
            return [round(k * step, _decimals(step) + 1) for k in range(first, last + 1)]
    return [lo + (hi - lo) * k / (at_least - 1) for k in range(at_least)]  # not reached: a step 1000x finer fits


def log_ticks(lo: float, hi: float, at_least: int = MIN_TICKS) -> list[float]:
    """Tick values for a log axis over ``[lo, hi]`` (both > 0): powers of ten, else 1-2-5 or 1…9 times them,
    the sparsest that gives ``at_least``; a range narrower than that gets linear 1-2-5 steps.
    """
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for mantissas in ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0**e for e in range(e0, e1 + 1) for m in mantissas]
        ticks = [round(t, max(0, -e0) + 1) for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        if len(ticks) >= at_least:
            return ticks
    return nice_ticks(lo, hi, at_least)


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for tick values, all with the decimals the finest of them needs (``0.5, 1.0, 1.5``; ``2, 5, 10``)."""

    def need(v: float) -> int:
        return next((d for d in range(12) if abs(v - round(v, d)) <= abs(v) * 1e-6), 12)

    d = max((need(v) for v in ticks), default=0)
    return [f"{v:.{d}f}" for v in ticks]


def spread(centers: Sequence[float], widths: Sequence[float], gap: float = 4.0) -> list[int]:
    """Which labels to keep, first to last, so that none overlaps the one kept before it (centred labels)."""
    kept: list[int] = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=True)):
        if not kept or c - w / 2 >= centers[kept[-1]] + widths[kept[-1]] / 2 + gap:
            kept.append(i)
    return kept


def overlaps(a: Box, b: Box, slack: float = 0.0) -> bool:
    """Whether two boxes intersect by more than ``slack`` in both directions."""
    return min(a[2], b[2]) - max(a[0], b[0]) > slack and min(a[3], b[3]) - max(a[1], b[1]) > slack


def place_labels(points: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]], bounds: Box,
                 *, r: float = 6.0) -> list[Box | None]:  # fmt: skip
    """A box for each point's label that stays inside ``bounds`` and overlaps no other label or point.

    Tries the right of the point (level, above, below), then the left, then above and below it,
    then the same places further out; a label with nowhere to go gets None (the caller
    shortens it or names it in a legend).

    Args:
        points: where each point is.
        sizes: each label's (width, height).
        bounds: the area labels must stay in.
        r: the radius of a point's marker, kept clear.
    """
    marks = [(x - r, y - r, x + r, y + r) for x, y in points]
    placed: list[Box] = []
    out: list[Box | None] = []
    for (x, y), (w, h) in zip(points, sizes, strict=True):
        got: Box | None = None
        for d in (r + 2, r + 14):
            right, left = x + d, x - d - w
            candidates = [(right, y - h / 2), (right, y - h - 1), (right, y + 1), (left, y - h / 2),
                          (left, y - h - 1), (left, y + 1), (x - w / 2, y - d - h), (x - w / 2, y + d)]  # fmt: skip
            for lx, ly in candidates:
                box = (lx, ly, lx + w, ly + h)
                inside = box[0] >= bounds[0] and box[1] >= bounds[1] and box[2] <= bounds[2] and box[3] <= bounds[3]
                if inside and not any(overlaps(box, o, 0.5) for o in [*placed, *marks]):
                    got = box
                    break
            if got:
                break
        if got:
            placed.append(got)
        out.append(got)
    return out


def _text(x: float, y: float, lines: Sequence[str], size: float, *, anchor: str = "start", cls: str = "",
          fill: str = "", more: str = "") -> str:  # fmt: skip
    """An SVG ``<text>`` (``y`` is the first baseline); several lines are ``<tspan>``s one line apart."""
    attrs = f'x="{x:.1f}" y="{y:.1f}" font-size="{size:g}"' + (f' class="{cls}"' if cls else "")
    attrs += (f' fill="{fill}"' if fill else "") + (f" {more}" if more else "")
    if len(lines) == 1:
        return f'<text {attrs} text-anchor="{anchor}">{_e(lines[0])}</text>'
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{0 if i == 0 else size * LINE:.1f}">{_e(line)}</tspan>' for i, line in enumerate(lines)
    )
    return f'<text {attrs} text-anchor="{anchor}">{spans}</text>'


def _svg(kind: str, title: str, height: float, parts: Sequence[str]) -> str:
    """A chart: scales to its container (viewBox, CSS width 100 %, height from the aspect ratio)."""
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" width="{W}" height="{height:.0f}" '
            f'viewBox="0 0 {W} {height:.0f}" preserveAspectRatio="xMidYMid meet" role="img">',
            f"<title>{_e(title)}</title>",
            *parts,
            "</svg>",
        ]
    )


class Scale:
    """Values to viewBox units along one axis (linear or log10)."""

    def __init__(self, lo: float, hi: float, a: float, b: float, *, log: bool = False) -> None:
        self.log = log
        self.lo, self.hi = (math.log10(lo), math.log10(hi)) if log else (lo, hi)
        self.a, self.b = a, b

    def __call__(self, v: float) -> float:
        """Where ``v`` goes."""
        v = math.log10(v) if self.log else v
        return self.a + (v - self.lo) / (self.hi - self.lo if self.hi > self.lo else 1) * (self.b - self.a)


class Frame:
    """A chart's frame: title, plot area, both axes with labelled ticks, axis labels and a legend below.

    ``x_ticks`` / ``y_ticks`` are (value, label) pairs; x labels that would touch are thinned
    out (every other one, …), so pass more than needed rather than fewer.
    """

    def __init__(self, kind: str, title: str, xlabel: str, ylabel: str, x: tuple[float, float],
                 y: tuple[float, float], x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[tuple[float, str]],
                 *, xlog: bool = False, legend: Sequence[tuple[str, str]] = (), y0: float = 0.0,
                 plot_h: float = PLOT_H, left: float | None = None) -> None:  # fmt: skip
        self.kind, self.title = kind, title
        heads = fold(title, W - 8, TITLE) if title else []
        self.left = left if left is not None else 20 + max((text_width(s, TICK) for _, s in y_ticks), default=0) + 6
        self.right = W - 14.0
        self.top = y0 + 6 + len(heads) * TITLE * LINE + 8
        self.bottom = self.top + plot_h
        self.sx = Scale(x[0], x[1], self.left, self.right, log=xlog)
        self.sy = Scale(y[0], y[1], self.bottom, self.top)
        parts = [_text(W / 2, y0 + 6 + TITLE, heads, TITLE, anchor="middle", cls="title")] if heads else []
        parts += [
            f'<rect x="{self.left:.1f}" y="{self.top:.1f}" width="{self.right - self.left:.1f}" '
            f'height="{plot_h:g}" fill="#fff" stroke="#333"/>'
        ]
        for v, s in y_ticks:
            py = self.sy(v)
            parts.append(f'<line x1="{self.left - 3:.1f}" y1="{py:.1f}" x2="{self.right:.1f}" y2="{py:.1f}" '
                         f'stroke="#333" stroke-opacity=".12"/>')  # fmt: skip
            parts.append(_text(self.left - 5, py + TICK * 0.35, [s], TICK, anchor="end", cls="tick y"))
        xs = [self.sx(v) for v, _ in x_ticks]
        widths = [text_width(s, TICK) for _, s in x_ticks]
        # an x label never reaches left of the plot's edge, where the lowest y label ends (a label at the
        # left edge starts at its tick instead of centring on it)
        centers = [
            min(max(c, w / 2 + 2, self.left - 3 + w / 2), W - w / 2 - 2) for c, w in zip(xs, widths, strict=True)
        ]
        for i in spread(centers, widths):
            parts.append(f'<line x1="{xs[i]:.1f}" y1="{self.bottom:.1f}" x2="{xs[i]:.1f}" y2="{self.bottom + 3:.1f}" '
                         'stroke="#333"/>')  # fmt: skip
            parts.append(_text(centers[i], self.bottom + 5 + TICK, [x_ticks[i][1]], TICK, anchor="middle",
                               cls="tick x"))  # fmt: skip
        yb = self.bottom + (5 + TICK + 6 + LABEL if xlabel else 0)
        if xlabel:  # a panel over another that carries the shared x axis has none
            parts.append(_text((self.left + self.right) / 2, yb, [_fit(xlabel, int(W / (LABEL * CHAR_W)))], LABEL,
                               anchor="middle", cls="label x"))  # fmt: skip
        cy = (self.top + self.bottom) / 2
        parts.append(_text(14, cy, [_fit(ylabel, int(plot_h / (LABEL * CHAR_W)))], LABEL, anchor="middle",
                           cls="label y", more=f'transform="rotate(-90 14 {cy:.1f})"'))  # fmt: skip
        ly = yb + 4
        for color, name in legend:
            lines = fold(name, W - self.left - 26, LABEL)
            parts.append(f'<line x1="{self.left:.1f}" y1="{ly + LABEL * 0.7:.1f}" x2="{self.left + 16:.1f}" '
                         f'y2="{ly + LABEL * 0.7:.1f}" stroke="{color}" stroke-width="3"/>')  # fmt: skip
            parts.append(_text(self.left + 22, ly + LABEL, lines, LABEL, cls="legend", fill=color))
            ly += len(lines) * LABEL * LINE + 3
        self.height = ly + 6
        self.parts = parts

    @property
    def plot(self) -> Box:
        """The plot area."""
        return (self.left, self.top, self.right, self.bottom)

    def svg(self, body: Sequence[str]) -> str:
        """The whole chart with ``body`` (lines, points, their labels) drawn over the frame."""
        return _svg(self.kind, self.title, self.height, [*self.parts, *body])


def _pairs(ticks: Sequence[float]) -> list[tuple[float, str]]:
    return list(zip(ticks, tick_labels(ticks), strict=True))


def shown_ticks(ticks: Sequence[tuple[float, str]], sx: Scale) -> int:
    """How many of these x tick labels a `Frame` with this x scale keeps (labels that would touch are thinned)."""
    xs = [sx(v) for v, _ in ticks]
    widths = [text_width(s, TICK) for _, s in ticks]
    centers = [min(max(c, w / 2 + 2), W - w / 2 - 2) for c, w in zip(xs, widths, strict=True)]
    return len(spread(centers, widths))


def log_axis_ticks(lo: float, hi: float, sx: Scale) -> list[tuple[float, str]]:
    """Ticks for a log x axis of which at least `MIN_TICKS` labels survive thinning: `log_ticks`, else (a range
    whose 1…9 mantissas crowd at its low end, 0.008 0.009 0.01 0.02) linear 1-2-5 steps, finer until enough show."""
    first = _pairs(log_ticks(lo, hi))
    if shown_ticks(first, sx) >= MIN_TICKS:
        return first
    for k in range(MIN_TICKS, 4 * MIN_TICKS):
        ticks = _pairs(nice_ticks(lo, hi, k))
        if shown_ticks(ticks, sx) >= MIN_TICKS:
            return ticks
    return first


def distribution_svg(title: str, rows: list[ReportRow]) -> str:
    """Overlaid latency histograms (step lines, each scaled to its own peak) on a log-latency axis."""
    hists = [(r.variant, r.hist) for r in rows if r.hist is not None]
    hi = max(h.hi_ms for _, h in hists)
    lo = max(min(h.lo_ms for _, h in hists), hi * 1e-4)  # a log axis: a 0 ms bin edge would be at minus infinity
    if not hi > lo:
        lo, hi = lo * 0.95, hi * 1.05
    y_ticks = _pairs(nice_ticks(0, 1))
    left = 20 + max(text_width(s, TICK) for _, s in y_ticks) + 6  # as `Frame` places the plot
    f = Frame("distribution", title, "latency (ms, log scale), min to p99", "share of peak", (lo, hi), (0, 1),
              log_axis_ticks(lo, hi, Scale(lo, hi, left, W - 14.0, log=True)), y_ticks, xlog=True,
              legend=[(COLORS[i % 10], v) for i, (v, _) in enumerate(hists)])  # fmt: skip
    out = []
    for i, (_, h) in enumerate(hists):
        peak = max(h.counts) or 1
        width = (h.hi_ms - h.lo_ms) / len(h.counts)
        pts = []
        for k, c in enumerate(h.counts):
            a, b = h.lo_ms + k * width, h.lo_ms + (k + 1) * width
            y = f.sy(c / peak)
            pts += [f"{f.sx(max(a, lo)):.1f},{y:.1f}", f"{f.sx(min(max(b, lo), hi)):.1f},{y:.1f}"]
        out.append(f'<polyline fill="none" stroke="{COLORS[i % 10]}" stroke-width="1.5" points="{" ".join(pts)}"/>')
    return f.svg(out)


def pareto_svg(title: str, rows: list[ReportRow]) -> str:
    """Top-1 against p90 of each variant; the Pareto front joined by a line.

    Each point is labelled with its variant (folded at its dashes) where that fits without
    touching another label or point (`place_labels`); otherwise with its number, and the
    numbers are named in a legend under the plot.
    """
    pts = [(r.variant, r.p90_ms, r.top1 * 100, r.pareto) for r in rows if r.ok and r.top1 is not None and r.p90_ms]
    xs, ys = [p[1] for p in pts], [p[2] for p in pts]
    x1 = max(xs) * 1.15
    pad = max(0.5, (max(ys) - min(ys)) * 0.15)
    y0, y1 = min(ys) - pad, max(ys) + pad
    names = [fold(v, 120, TICK) for v, *_ in pts]
    sizes = [(max(text_width(s, TICK) for s in n), len(n) * TICK * LINE) for n in names]

    def frame(legend: Sequence[tuple[str, str]]) -> Frame:
        return Frame("pareto", title, "p90 latency (ms)", "top-1 (%)", (0, x1), (y0, y1),
                     _pairs(nice_ticks(0, x1)), _pairs(nice_ticks(y0, y1)), legend=legend)  # fmt: skip

    f = frame(())
    centers = [(f.sx(x), f.sy(y)) for _, x, y, _ in pts]
    boxes = place_labels(centers, sizes, f.plot)
    if None in boxes:  # numbers where names do not fit, named under the plot
        tags = [[str(i + 1)] if b is None else n for i, (b, n) in enumerate(zip(boxes, names, strict=True))]
        sizes = [(max(text_width(s, TICK) for s in t), len(t) * TICK * LINE) for t in tags]
        legend = [(COLORS[i % 10], f"{i + 1}: {pts[i][0]}") for i, b in enumerate(boxes) if b is None]
        f = frame(legend)
        boxes = place_labels(centers, sizes, f.plot)
        names = tags
    out = []
    front = sorted((p for p in pts if p[3]), key=lambda p: p[1])
    if len(front) > 1:
        line = " ".join(f"{f.sx(x):.1f},{f.sy(y):.1f}" for _, x, y, _ in front)
        out.append(f'<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="{line}"/>')
    for i, ((cx, cy), p, box, lines) in enumerate(zip(centers, pts, boxes, names, strict=True)):
        color = COLORS[i % 10]
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color if p[3] else "none"}" stroke="{color}" '
                   'stroke-width="2"/>')  # fmt: skip
        if box is not None:
            out.append(_text(box[0], box[1] + TICK * 0.95, lines, TICK, cls="point", fill=color))
    return f.svg(out)


def trend_range(values: list[float]) -> tuple[float, float]:
    """The y range of a trend: the values, widened to at least median +-10 % (see module doc)."""
    mid = sorted(values)[len(values) // 2]
    span = abs(mid) * TREND_SPAN or 1e-9
    return min(min(values), mid - span), max(max(values), mid + span)


def trend_svg(t: Trend) -> str:
    """One metric over the last runs (ms; y axis at least median +-10 %); change points as red lines.

    The x axis names each point by its short commit id (by run number without commits),
    as many as fit side by side: the first, then every k-th.
    """
    vals = [v for v in t.values if v is not None]
    n = len(t.values)
    y0, y1 = trend_range(vals)
    title = f"{t.board} / {t.model} / {t.variant}: {t.metric} over {n} runs"
    unit = t.metric if t.metric.endswith("ms") else f"{t.metric} (ms)"
    labels = list(t.commits) if t.commits else [str(i + 1) for i in range(n)]
    xlabel = "commit (oldest → newest)" if t.commits else "run (oldest → newest)"
    last = max(n - 1, 1)
    f = Frame("trend", title, xlabel, unit, (0, last), (y0, y1), list(enumerate(labels)), _pairs(nice_ticks(y0, y1)))
    pts = [f"{f.sx(i):.1f},{f.sy(v):.1f}" for i, v in enumerate(t.values) if v is not None]
    out = [f'<polyline fill="none" stroke="{COLORS[0]}" stroke-width="1.5" points="{" ".join(pts)}"/>']
    out += [f'<circle cx="{f.sx(i):.1f}" cy="{f.sy(v):.1f}" r="2" fill="{COLORS[0]}"/>'
            for i, v in enumerate(t.values) if v is not None]  # fmt: skip
    placed: list[Box] = []
    for rid, label in zip(t.changes, t.change_labels, strict=True):  # each change point names its commit
        x = f.sx(t.runs.index(rid))
        out.append(f'<line x1="{x:.1f}" y1="{f.top:.1f}" x2="{x:.1f}" y2="{f.bottom:.1f}" stroke="#d62728" '
                   'stroke-dasharray="3 2"/>')  # fmt: skip
        text = f"change at {label}"
        w, right = text_width(text, TICK), x > (f.left + f.right) / 2  # it reads away from the edge it is near
        lx = x - 3 - w if right else x + 3
        y = f.top + 3
        while any(overlaps((lx, y, lx + w, y + TICK * LINE), b) for b in placed) and y < f.bottom - 2 * TICK:
            y += TICK * LINE  # below a change label it would cover
        placed.append((lx, y, lx + w, y + TICK * LINE))
        out.append(_text(x - 3 if right else x + 3, y + TICK, [text], TICK, anchor="end" if right else "start",
                         cls="change", fill="#d62728"))  # fmt: skip
    return f.svg(out)


SUSTAINED_POINTS = 400  # a longer timeline is drawn in medians of consecutive windows (the viewBox is W wide)
SUSTAINED_H = 100.0  # height of each panel of a sustained chart
ONSET = "#d62728"


def _binned(values: Sequence[float | None], k: int) -> list[float | None]:
    """Medians of ``k`` consecutive values (None where all are None)."""
    out: list[float | None] = []
    for i in range(0, len(values), k):
        got = sorted(v for v in values[i : i + k] if v is not None)
        out.append(None if not got else (got[(len(got) - 1) // 2] + got[len(got) // 2]) / 2)
    return out


def _lines(f: Frame, xs: Sequence[float], ys: Sequence[float | None], color: str, top: float) -> list[str]:
    """A polyline per run of known values (an empty window breaks the line); values over ``top`` drawn at it."""
    out: list[str] = []
    run: list[str] = []
    for x, y in [*zip(xs, ys, strict=True), (0.0, None)]:
        if y is not None:
            run.append(f"{f.sx(x):.1f},{f.sy(min(y, top)):.1f}")
            continue
        if len(run) == 1:
            px, py = run[0].split(",")
            out.append(f'<circle cx="{px}" cy="{py}" r="1.5" fill="{color}"/>')
        elif run:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(run)}"/>')
        run = []
    return out


def _range(values: Sequence[float | None]) -> tuple[float, float]:
    """A y range around ``values``: their extent, widened to at least median +-10 % (as trends are)."""
    return trend_range([v for v in values if v is not None])


def sustained_svg(model: str, run: SustainedRun) -> str:
    """A sustained run's timeline: latency (p50 and p99 per window) over the clock and the temperature.

    Stacked panels share one time axis (the bottom panel labels it; all start at the same left
    edge): latency from 0 ms, so a +38 % reads as +38 %; then the CPU frequency (MHz) and the
    hottest thermal zone (C) where the board reports them. The onset of throttling is a dashed red
    line through every panel, named in the first. Each point sits at the middle of its window; a
    timeline longer than `SUSTAINED_POINTS` windows is drawn in medians of consecutive windows. A
    p99 above the latency axis (the 98th percentile of the windows' p99, or the p50's top) is drawn
    at its top, and the legend says so.
    """
    n = len(run.t_s)
    k = max(1, -(-n // SUSTAINED_POINTS))
    step = run.t_s[-1] - run.t_s[-2] if n > 1 else 1.0  # the window length
    t = [run.t_s[i] + min(k, n - i) * step / 2 for i in range(0, n, k)]  # each point at its windows' middle
    p50, p99 = _binned(run.p50_ms, k), _binned(run.p99_ms, k)
    freq, temp = _binned(run.freq_mhz, k), _binned(run.temp_c, k)
    end = max(run.t_s[-1] + step, 1e-9) if n else 1.0
    minutes = end >= 120
    scale = 60.0 if minutes else 1.0
    xs = [v / scale for v in t]
    x1 = end / scale
    x_ticks = _pairs(nice_ticks(0, x1))
    xlabel = f"time since the start ({'min' if minutes else 's'})"
    known50 = [v for v in p50 if v is not None]
    known99 = sorted(v for v in p99 if v is not None)
    top = max([*known50, known99[int(0.98 * (len(known99) - 1))] if known99 else 0.0, 1e-9]) * 1.1
    clipped = any(v is not None and v > top for v in p99)
    onset = run.onset_s
    secs = run.values.get("seconds")
    length = f" over {secs / 60:.0f} min" if isinstance(secs, int | float) and secs >= 120 else ""
    title = f"{model} on {run.board} / {run.variant}: sustained load{length}"
    panels: list[tuple[str, list[float | None], tuple[float, float], str, str]] = [
        ("latency (ms)", p50, (0.0, top), COLORS[0], "p50 per window"),
    ]
    if any(v is not None for v in freq):
        panels.append(("clock (MHz)", freq, _range(freq), COLORS[2], "highest CPU frequency"))
    if any(v is not None for v in temp):
        panels.append(("temp. (°C)", temp, _range(temp), COLORS[4], "hottest thermal zone (°C)"))
    y_ticks = [_pairs(nice_ticks(*rng)) for _, _, rng, _, _ in panels]
    left = 20 + max(text_width(s, TICK) for ticks in y_ticks for _, s in ticks) + 6
    parts: list[str] = []
    y0 = 0.0
    frames: list[Frame] = []
    for i, ((ylabel, ys, rng, color, name), ticks) in enumerate(zip(panels, y_ticks, strict=True)):
        last = i == len(panels) - 1
        legend = [(color, name)]
        if i == 0:
            legend.append((COLORS[1], "p99 per window" + (" (above the axis: drawn at its top)" if clipped else "")))
            if onset is not None:
                legend.append((ONSET, f"throttling from {duration_text(onset)}"))
        f = Frame("sustained", title if i == 0 else "", xlabel if last else "", ylabel, (0, x1), rng,
                  x_ticks if last else [], ticks, legend=legend, y0=y0, plot_h=SUSTAINED_H, left=left)  # fmt: skip
        parts += f.parts
        if i == 0:
            parts += _lines(f, xs, p99, COLORS[1], top)
        parts += _lines(f, xs, ys, color, rng[1] if i == 0 else math.inf)
        frames.append(f)
        y0 = f.height - 6 - 8  # the next panel's top: its own top margin is 14 under this legend
    if onset is not None:
        x = onset / scale
        for f in frames:
            px = f.sx(x)
            parts.append(f'<line x1="{px:.1f}" y1="{f.top:.1f}" x2="{px:.1f}" y2="{f.bottom:.1f}" stroke="{ONSET}" '
                         'stroke-dasharray="3 2" class="onset"/>')  # fmt: skip
    return _svg("sustained", title, frames[-1].height, parts)


def _profile_colours(profiles: Sequence[Profile]) -> dict[str, str]:
    """The op types' colours as `edgebench.render.profile.html_section` gives them (its legend names them)."""
    weight: dict[str, float] = {}
    for p in profiles:
        if p.ok and p.available:
            for o in p.op_types:
                weight[o.op_type] = max(weight.get(o.op_type, 0.0), o.share or 0.0)
    ranked = sorted(weight, key=lambda op: -weight[op])
    return {op: PALETTE[i] if i < len(PALETTE) else OTHER for i, op in enumerate(ranked)}


def profile_svg(profiles: Sequence[Profile]) -> str:
    """One stacked bar per variant: its profiled latency split by op type (time outside the nodes grey).

    Each bar has the full width of the chart, under a line naming the variant, its
    unprofiled p50 and the coverage; a share axis (0-100 %) runs under the last bar.
    Variants without per-operator timing get a line saying why instead.
    """
    colours = _profile_colours(profiles)
    x0, x1, bar = 6.0, W - 14.0, 14.0
    parts: list[str] = []
    y = 6.0
    for p in profiles:
        if p.ok and p.available:
            line = f"{p.label}: p50 {_ms(p.unprofiled_p50_ms)} ms, coverage {_pct(p.coverage)}"
        else:
            line = f"{p.label}: {p.error if not p.ok else (p.note or 'no per-operator timing')}"
        lines = fold(line, x1 - x0, LABEL, 3)
        parts.append(_text(x0, y + LABEL, lines, LABEL, cls="row"))
        y += len(lines) * LABEL * LINE + 3
        if not (p.ok and p.available):
            y += 6
            continue
        x = x0
        for o in p.op_types:
            w = max(0.0, (o.share or 0.0) * (x1 - x0))
            tip = f"{o.op_type}: {_pct(o.share)} ({_ms(o.mean_ms)} ms, {o.nodes} nodes)"
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar}" '
                         f'fill="{colours[o.op_type]}"><title>{_e(tip)}</title></rect>')  # fmt: skip
            x += w
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(0.0, x1 - x):.1f}" height="{bar}" '
                     'fill="#ddd"><title>outside nodes</title></rect>')  # fmt: skip
        y += bar + 10
    scale = Scale(0, 1, x0, x1)
    parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#333"/>')
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        px, s = scale(v), f"{v:.0%}"
        parts.append(f'<line x1="{px:.1f}" y1="{y:.1f}" x2="{px:.1f}" y2="{y + 3:.1f}" stroke="#333"/>')
        half = text_width(s, TICK) / 2
        parts.append(_text(min(max(px, half + 2), W - half - 2), y + 5 + TICK, [s], TICK, anchor="middle",
                           cls="tick x"))  # fmt: skip
    y += 5 + TICK + 6 + LABEL
    parts.append(_text(W / 2, y, ["share of the profiled latency"], LABEL, anchor="middle", cls="label x"))
    return _svg("profile", "where the time goes: profiled latency by op type", y + 6, parts)


def profile_section(profiles: Sequence[Profile], report: Report | None = None) -> str:
    """The report's profile section (`edgebench.render.profile.html_section`) made for narrow screens:
    its chart drawn by `profile_svg` (scales with the page) and its tables in containers that scroll sideways.
    """
    section = html_section(profiles, report=report)
    chart = profile_svg(profiles)
    section, n = re.subn(r"<svg\b.*?</svg>", lambda _: chart, section, count=1, flags=re.S)
    if n == 0:  # a section without a chart: put it after the heading's paragraph
        section = section.replace("</p>", "</p>" + chart, 1)
    return re.sub(r"<table\b.*?</table>", lambda m: f'<div class="tw">{m.group(0)}</div>', section, flags=re.S)


def _table(mm: ModelReport) -> str:
    cols = shown_columns(mm.rows)
    out = ['<div class="tw"><table><tr>' + "".join(f"<th>{c.header}</th>" for c in cols) + "</tr>"]
    for r in mm.rows:
        if not r.ok:  # the error goes whole under the table
            head = f"<tr><td>{_e(r.board)}</td><td>{_e(r.variant)}</td>"
            out.append(f'{head}<td class="bad" colspan="{len(cols) - 2}">failed (below)</td></tr>')
            continue
        tds = "".join(
            f'<td class="{speed_class(r)}">{_e(c.cell(r))}</td>'
            if c.header == "speedup"
            else f"<td>{_e(c.cell(r))}</td>"
            for c in cols
        )
        out.append(f"<tr>{tds}</tr>")
    out.append("</table></div>")
    out += [f'<p class="bad">{_e(line)}</p>' for line in failure_lines(mm)]
    return "\n".join(out)


KIND_CLASS = {
    Worth.WORTH_IT: "good",
    Worth.WORTH_IT_FOR_SIZE: "good",
    Worth.NOT_WORTH_IT: "bad",
    Worth.UNDECIDED: "warn",
    Worth.DEGRADED: "bad",
    Worth.WORTH_IT_IF_ACCURATE: "warn",
}


def settings_text(settings: Mapping[str, Any] | None) -> str:
    """``min_time_s=2.0, repeats=3, ...``: the measurement settings, empty ones left out."""
    if not settings:
        return "not recorded"
    return ", ".join(f"{k}={v}" for k, v in settings.items() if v not in (None, {}, [], ""))


def _report_body(d: Report, settings: Mapping[str, Any] | None, *, verbose: bool = False) -> list[str]:
    ok, valid = validity(d)
    body = [
        f"<p>{_e(d.command)}, {_e(d.started)}, {_e(commit_words(d))}, "
        f'<b class="{"good" if ok else "bad"}">{_e(valid)}</b></p>',
        f"<p>settings: {_e(settings_text(settings))}</p>",
    ]
    for w in fold_warnings(d.warnings, verbose=verbose):
        body.append(f'<p class="warn">warning: {_e(w)}</p>')
    for mm in d.models:
        body += [f"<h2>{_e(mm.model)}</h2>", _table(mm), "<ul>"]
        note = fidelity_note(mm)
        body += [f'<li class="warn">{_e(note)}</li>'] if note else []
        found = sustained_lines(mm.sustained, verbose=verbose)
        body += [f'<li class="{"warn" if t else ""}">{_e(line)}</li>' for t, line in found]
        body += [
            f'<li class="{KIND_CLASS[r.verdict]}">{_e(r.board)}: {_e(r.verdict_text)}</li>'
            for r in mm.rows
            if r.verdict
        ]
        body.append("</ul>")
        plots = []
        for board in mm.pareto:
            rows = [r for r in mm.rows if r.board == board and r.ok]
            if rows:
                plots.append(distribution_svg(f"{mm.model} on {board}: latency distribution", rows))
            if any(r.top1 is not None for r in rows):
                plots.append(pareto_svg(f"{mm.model} on {board}: top-1 vs p90 (filled: Pareto)", rows))
        plots += [sustained_svg(mm.model, sr) for sr in mm.sustained_runs if sr.t_s]
        body.append('<div class="plots">' + "\n".join(plots) + "</div>")
    trends = [t for t in d.trends or () if sum(v is not None for v in t.values) >= 2]
    if trends:
        body.append(
            "<h2>Trends</h2><p>Dashed red lines mark change points; y axes span at least ±10 % of the median.</p>"
        )
        body.append('<div class="plots">' + "\n".join(trend_svg(t) for t in trends) + "</div>")
    return body


def _document(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def report_html(
    d: Report,
    results: Any = None,
    settings: Mapping[str, Any] | None = None,
    profiles: Sequence[Profile] = (),
    *,
    verbose: bool = False,
) -> str:
    """The whole report as one HTML document (no external resources).

    Args:
        settings: the run's measurement settings, stated under the title.
        profiles: the run's profiles (``run --profile``, `edgebench.bench.profile.profiles_in_run`): a section
            with one stacked bar and the top operators per variant.
        verbose: every warning in full (else warnings of one kind fold into one line, `fold_warnings`).
    """
    ok, _ = validity(d)
    state = "" if ok else " (not valid)"
    body = [f"<h1>edgebench run {_e(d.run_id)}</h1>", *_report_body(d, settings, verbose=verbose)]
    return _document(f"edgebench run {d.run_id}{state}", body + ([profile_section(profiles, d)] if profiles else []))


OUTCOME_CLASS = {"PASS": "good", "FAIL": "bad", "UNDECIDED": "warn"}
CHECK_CLASS = {CheckVerdict.PASS: "good", CheckVerdict.FAIL: "bad", CheckVerdict.UNDECIDED: "warn"}
LABEL_CLASS = {Change.FASTER: "good", Change.SLOWER: "bad", Change.NO_CHANGE: "", Change.UNDECIDED: "warn"}


def gate_html(g: Gate) -> str:
    """The gate's checks as an HTML table, its outcome first."""
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_e(cell(c))}</td>" for _, cell in GATE_COLUMNS[:-2])
        + f'<td class="{CHECK_CLASS[c.verdict]}">{_e(c.verdict)}</td><td class="note">{_e(c.note)}</td></tr>'
        for c in g.checks
    )
    head = "".join(f"<th>{_e(h)}</th>" for h, _ in GATE_COLUMNS)
    return (
        f'<h2>Gate: <span class="{CHECK_CLASS[g.outcome]}">{_e(g.outcome.upper())}</span> ({_e(summary(g))})</h2>'
        f"<p>{_e(gate_runs_line(g))}</p>"
        f'<div class="tw"><table class="words"><tr>{head}</tr>{rows}</table></div>'
    )


def comparison_html(title: str, d: Comparison) -> str:
    """A comparison (B against A) as an HTML table."""
    head = "".join(f"<th>{h}</th>" for h in ("board", "model", "variant", "p50 ms A→B", "p90 ms A→B", "verdict"))
    rows = "".join(
        f"<tr><td>{_e(r.board)}</td><td>{_e(r.model)}</td><td>{_e(r.variant)}</td><td>{_e(quantile_text(r.p50))}</td>"
        f'<td>{_e(quantile_text(r.p90))}</td><td class="{LABEL_CLASS[r.label]}">{_e(verdict_text(r))}</td></tr>'
        for r in d.rows
    )
    extra = [f"degraded: {x}" for x in degraded_lines(d)]
    extra += [f"only in {side}: {'/'.join(k)}" for side, ks in (("A", d.only_a), ("B", d.only_b)) for k in ks]
    extra += [f"failed in {f.side}: {f.board}/{f.model}/{f.variant}" for f in d.failed]
    notes = "".join(f"<li>{_e(x)}</li>" for x in extra)
    return (
        f"<h2>{_e(title)}</h2><p>{_e(runs_line(d))}</p>"
        f'<div class="tw"><table class="words"><tr>{head}</tr>{rows}</table></div>'
        + (f"<ul>{notes}</ul>" if notes else "")
    )


def comparison_counts(d: Comparison) -> str:
    """``1 slower, 0 faster, 4 no change, 0 undecided``."""
    return ", ".join(
        f"{sum(r.label is c for r in d.rows)} {c}"
        for c in (Change.SLOWER, Change.FASTER, Change.NO_CHANGE, Change.UNDECIDED)
    )


def nightly_html(
    d: Report,
    outcome: str,
    why: str,
    *,
    gate: Gate | None = None,
    vs_last: Comparison | None = None,
    vs_baseline: Comparison | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """A nightly's page: the verdict line first (PASS / FAIL / UNDECIDED and why), the gate,
    the comparison with the last nightly (and the pinned baseline), then the run report.
    """
    cls = OUTCOME_CLASS.get(outcome, "warn")
    body = [
        f'<p id="verdict" class="verdict {cls}"><b>{_e(outcome)}</b>: {_e(why)}</p>',
        f"<h1>edgebench nightly {_e(d.run_id)}: {_e(outcome)}</h1>",
        "<ul>",
        f"<li>gate: {_e(f'{gate.outcome.upper()} ({summary(gate)})' if gate else 'no budgets given')}</li>",
        f"<li>against the last nightly: {_e(comparison_counts(vs_last) if vs_last else 'no earlier nightly')}</li>",
        "</ul>",
    ]
    if gate is not None:
        body.append(gate_html(gate))
    if vs_last is not None:
        body.append(comparison_html("Against the last nightly", vs_last))
    if vs_baseline is not None:
        body.append(comparison_html("Against the pinned baseline", vs_baseline))
    body.append("<h2>Run report</h2>")
    return _document(f"{outcome}: edgebench nightly {d.run_id}", body + _report_body(d, settings))
