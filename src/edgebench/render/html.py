"""The report as ONE self-contained HTML file: tables and inline SVG plots, no scripts, no network.

Plots: latency distributions (histograms up to p99) per board, the Pareto front of
top-1 against p90 per board, and the trends of p90 over earlier runs with change points.
"""

from __future__ import annotations

import html
import math
from typing import Any

from edgebench.model import ModelReport, Report, ReportRow, Trend, Worth
from edgebench.render.report import COLUMNS, speed_class

W, H, PAD = 460, 220, 40
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,td:nth-child(2),th{text-align:left}.good{color:#070}.bad{color:#b00}.warn{color:#a60}
.plots{display:flex;flex-wrap:wrap;gap:1em}svg{background:#fafafa;border:1px solid #ddd}
"""


def _e(s: Any) -> str:
    return html.escape(str(s))


def _axes(title: str, xlabel: str, ylabel: str, x0: float, x1: float, y0: float, y1: float) -> list[str]:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">',
        f"<title>{_e(title)}</title>",
        f'<text x="{W / 2}" y="14" text-anchor="middle" font-size="12">{_e(title)}</text>',
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="20" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>',
        f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle" font-size="11">{_e(xlabel)}</text>',
        f'<text x="10" y="{H / 2}" font-size="11" transform="rotate(-90 10 {H / 2})" text-anchor="middle">'
        f"{_e(ylabel)}</text>",
        f'<text x="{PAD}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{x0:.3g}</text>',
        f'<text x="{W - 10}" y="{H - PAD + 14}" font-size="10" text-anchor="end">{x1:.3g}</text>',
        f'<text x="{PAD - 3}" y="{H - PAD}" font-size="10" text-anchor="end">{y0:.3g}</text>',
        f'<text x="{PAD - 3}" y="26" font-size="10" text-anchor="end">{y1:.3g}</text>',
    ]
    return out


def _sx(v: float, lo: float, hi: float) -> float:
    return PAD + (v - lo) / (hi - lo if hi > lo else 1) * (W - 10 - PAD)


def _sy(v: float, lo: float, hi: float) -> float:
    return H - PAD - (v - lo) / (hi - lo if hi > lo else 1) * (H - 20 - PAD)


def _legend(names: list[str]) -> list[str]:
    return [
        f'<text x="{W - 12}" y="{30 + 13 * i}" font-size="10" text-anchor="end" fill="{COLORS[i % 10]}">{_e(n)}</text>'
        for i, n in enumerate(names)
    ]


def distribution_svg(title: str, rows: list[ReportRow]) -> str:
    """Overlaid latency histograms (step lines, each scaled to its own peak) on a log-latency axis."""
    hists = [(r.variant, r.hist) for r in rows if r.hist is not None]
    x0 = math.log10(min(h.lo_ms for _, h in hists))
    x1 = math.log10(max(h.hi_ms for _, h in hists))
    out = _axes(title, "latency (ms, log scale), min to p99", "share of peak", 10**x0, 10**x1, 0, 1)
    for i, (_, h) in enumerate(hists):
        peak = max(h.counts) or 1
        width = (h.hi_ms - h.lo_ms) / len(h.counts)
        pts = []
        for k, c in enumerate(h.counts):
            a, b = h.lo_ms + k * width, h.lo_ms + (k + 1) * width
            y = _sy(c / peak, 0, 1)
            pts += [f"{_sx(math.log10(a), x0, x1):.1f},{y:.1f}", f"{_sx(math.log10(b), x0, x1):.1f},{y:.1f}"]
        out.append(f'<polyline fill="none" stroke="{COLORS[i % 10]}" stroke-width="1.5" points="{" ".join(pts)}"/>')
    out += [*_legend([v for v, _ in hists]), "</svg>"]
    return "\n".join(out)


def pareto_svg(title: str, rows: list[ReportRow]) -> str:
    """Top-1 against p90 of each variant; the Pareto front joined by a line."""
    pts = [(r.variant, r.p90_ms, r.top1 * 100, r.pareto) for r in rows if r.ok and r.top1 is not None and r.p90_ms]
    xs, ys = [p[1] for p in pts], [p[2] for p in pts]
    x0, x1 = 0.0, max(xs) * 1.1
    y0, y1 = min(ys) - 0.5, max(ys) + 0.5
    out = _axes(title, "p90 latency (ms)", "top-1 (%)", x0, x1, y0, y1)
    front = sorted((p for p in pts if p[3]), key=lambda p: p[1])
    if len(front) > 1:
        line = " ".join(f"{_sx(x, x0, x1):.1f},{_sy(y, y0, y1):.1f}" for _, x, y, _ in front)
        out.append(f'<polyline fill="none" stroke="#999" stroke-dasharray="4 3" points="{line}"/>')
    for i, (variant, x, y, on_front) in enumerate(pts):
        cx, cy = _sx(x, x0, x1), _sy(y, y0, y1)
        fill = COLORS[i % 10] if on_front else "none"
        out.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}" stroke="{COLORS[i % 10]}" stroke-width="2"/>'
        )
        out.append(f'<text x="{cx + 7:.1f}" y="{cy - 6:.1f}" font-size="10">{_e(variant)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def trend_svg(t: Trend) -> str:
    """One metric over the last runs; change points as red vertical lines."""
    vals = [v for v in t.values if v is not None]
    n = len(t.values)
    y0, y1 = min(vals), max(vals)
    if y1 == y0:
        y0, y1 = y0 * 0.95, y1 * 1.05 + 1e-12
    title = f"{t.board} / {t.model} / {t.variant}: {t.metric} over {n} runs"
    out = _axes(title, "run (oldest → newest)", t.metric, 1, n, y0, y1)
    pts = [f"{_sx(i, 0, max(n - 1, 1)):.1f},{_sy(v, y0, y1):.1f}" for i, v in enumerate(t.values) if v is not None]
    out.append(f'<polyline fill="none" stroke="{COLORS[0]}" stroke-width="1.5" points="{" ".join(pts)}"/>')
    for rid in t.changes:
        x = _sx(t.runs.index(rid), 0, max(n - 1, 1))
        out.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{H - PAD}" stroke="#d62728" stroke-dasharray="3 2"/>')
    out.append("</svg>")
    return "\n".join(out)


def _table(mm: ModelReport) -> str:
    out = ["<table><tr>" + "".join(f"<th>{c.header}</th>" for c in COLUMNS) + "</tr>"]
    for r in mm.rows:
        if not r.ok:
            head = f"<tr><td>{_e(r.board)}</td><td>{_e(r.variant)}</td>"
            out.append(f'{head}<td class="bad" colspan="{len(COLUMNS) - 2}">failed: {_e(r.error)}</td></tr>')
            continue
        tds = "".join(
            f'<td class="{speed_class(r)}">{_e(c.cell(r))}</td>'
            if c.header == "speedup"
            else f"<td>{_e(c.cell(r))}</td>"
            for c in COLUMNS
        )
        out.append(f"<tr>{tds}</tr>")
    return "\n".join([*out, "</table>"])


KIND_CLASS = {
    Worth.WORTH_IT: "good",
    Worth.WORTH_IT_FOR_SIZE: "good",
    Worth.NOT_WORTH_IT: "bad",
    Worth.UNDECIDED: "warn",
}


def report_html(d: Report, results: Any = None) -> str:
    """The whole report as one HTML document (no external resources)."""
    state = "complete" if d.complete else '<b class="warn">incomplete</b>'
    body = [
        f"<h1>edgebench run {_e(d.run_id)}</h1>",
        f"<p>{_e(d.command)}, {_e(d.started)}, {state}</p>",
    ]
    for w in d.warnings:
        body.append(f'<p class="warn">warning: {_e(w)}</p>')
    for mm in d.models:
        body += [f"<h2>{_e(mm.model)}</h2>", _table(mm), "<ul>"]
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
        body.append('<div class="plots">' + "\n".join(plots) + "</div>")
    trends = [t for t in d.trends or () if sum(v is not None for v in t.values) >= 2]
    if trends:
        body.append("<h2>Trends</h2><p>Dashed red lines mark change points.</p>")
        body.append('<div class="plots">' + "\n".join(trend_svg(t) for t in trends) + "</div>")
    title = f"edgebench run {_e(d.run_id)}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
