"""The report as ONE self-contained HTML file: tables and inline SVG plots, no scripts, no network.

Plots: latency distributions (histograms up to p99) per board, the Pareto front of
top-1 against p90 per board, and the trends of p90 over earlier runs with change points.

Trend y axes are in ms and span at least +-10 % of the series' median (wider when the
values are), so a 0.5 % change looks like 0.5 % and never fills the plot. Plots scale
down to the page width (phones), tables scroll sideways instead of overflowing.
A nightly page (`nightly_html`) opens with one verdict line, then the gate and the
comparison with the last nightly, then the settings and whether the run was valid.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from edgebench.bench.profile import Profile
from edgebench.model import Change, CheckVerdict, Comparison, Gate, ModelReport, Report, ReportRow, Trend, Worth
from edgebench.render.compare import quantile_text, runs_line
from edgebench.render.gate import GATE_COLUMNS, summary
from edgebench.render.gate import runs_line as gate_runs_line
from edgebench.render.profile import html_section
from edgebench.render.report import commit_words, failure_lines, fidelity_note, shown_columns, speed_class, validity

W, H, PAD = 470, 230, 64
TREND_SPAN = 0.10  # trend y axes cover at least median +-10 %
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,td:nth-child(2),th{text-align:left}.good{color:#070}.bad{color:#b00}.warn{color:#a60}
.plots{display:flex;flex-wrap:wrap;gap:1em}svg{background:#fafafa;border:1px solid #ddd;max-width:100%;height:auto}
.tw{overflow-x:auto;max-width:100%}.verdict{font-size:1.3em;padding:.4em .6em;border:2px solid;margin:0 0 .5em}
.verdict.good{background:#efe}.verdict.bad{background:#fee}.verdict.warn{background:#ffd}
"""


def _e(s: Any) -> str:
    return html.escape(str(s))


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def _axes(title: str, xlabel: str, ylabel: str, x0: float, x1: float, y0: float, y1: float) -> list[str]:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img">',
        f"<title>{_e(title)}</title>",
        f'<text x="{W / 2}" y="14" text-anchor="middle" font-size="11">{_e(_fit(title, 80))}</text>',
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="20" x2="{PAD}" y2="{H - PAD}" stroke="#333"/>',
        f'<text x="{(W + PAD) / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{_e(xlabel)}</text>',
        f'<text x="12" y="{(H - PAD + 20) / 2}" font-size="11" transform="rotate(-90 12 {(H - PAD + 20) / 2})" '
        f'text-anchor="middle">{_e(ylabel)}</text>',
        f'<text x="{PAD}" y="{H - PAD + 14}" font-size="10" text-anchor="start">{x0:.3g}</text>',
        f'<text x="{W - 10}" y="{H - PAD + 14}" font-size="10" text-anchor="end">{x1:.3g}</text>',
    ]
    for v in _ticks(y0, y1):
        y = _sy(v, y0, y1)
        out.append(f'<text x="{PAD - 3}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{v:.3g}</text>')
        out.append(f'<line x1="{PAD - 2}" y1="{y:.1f}" x2="{PAD}" y2="{y:.1f}" stroke="#333"/>')
    return out


def _fit(text: str, n: int) -> str:
    """Shorten a label to ``n`` characters (an SVG text never wraps; clipped text says less)."""
    return text if len(text) <= n else text[: n - 1] + "…"


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
    placed: list[tuple[float, float]] = []  # label boxes' (x, y) so far
    for i, (variant, x, y, on_front) in enumerate(pts):
        cx, cy = _sx(x, x0, x1), _sy(y, y0, y1)
        fill = COLORS[i % 10] if on_front else "none"
        out.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}" stroke="{COLORS[i % 10]}" stroke-width="2"/>'
        )
        label = _fit(variant, 22)
        width = 6 * len(label)
        right = cx + 7 + width <= W - 4  # else the label goes to the left of its point
        lx, ly = (cx + 7, cy - 6) if right else (cx - 7 - width, cy - 6)
        while any(abs(ly - py) < 11 and abs(lx - px) < width for px, py in placed):
            ly += 12  # below the label it would cover
        ly = min(max(ly, 30.0), H - PAD - 3)
        placed.append((lx, ly))
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" fill="{COLORS[i % 10]}">{_e(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def trend_range(values: list[float]) -> tuple[float, float]:
    """The y range of a trend: the values, widened to at least median +-10 % (see module doc)."""
    mid = sorted(values)[len(values) // 2]
    span = abs(mid) * TREND_SPAN or 1e-9
    return min(min(values), mid - span), max(max(values), mid + span)


def trend_svg(t: Trend) -> str:
    """One metric over the last runs (ms; y axis at least median +-10 %); change points as red lines."""
    vals = [v for v in t.values if v is not None]
    n = len(t.values)
    y0, y1 = trend_range(vals)
    title = f"{t.board} / {t.model} / {t.variant}: {t.metric} over {n} runs"
    unit = t.metric if t.metric.endswith("ms") else f"{t.metric} (ms)"
    out = _axes(title, "commit (oldest → newest)" if t.commits else "run (oldest → newest)", unit, 1, n, y0, y1)
    step = -(-len(t.commits) // 7)  # as asv labels its x axis: short commit ids, at most 7 that fit
    for i in range(0, len(t.commits), max(step, 1)):
        x = _sx(i, 0, max(n - 1, 1))
        anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"  # the end labels stay inside
        out.append(
            f'<text x="{x:.1f}" y="{H - PAD + 28}" font-size="9" text-anchor="{anchor}">{_e(t.commits[i])}</text>'
        )
    pts = [f"{_sx(i, 0, max(n - 1, 1)):.1f},{_sy(v, y0, y1):.1f}" for i, v in enumerate(t.values) if v is not None]
    out.append(f'<polyline fill="none" stroke="{COLORS[0]}" stroke-width="1.5" points="{" ".join(pts)}"/>')
    for rid, label in zip(t.changes, t.change_labels, strict=True):  # each change point names its commit
        x = _sx(t.runs.index(rid), 0, max(n - 1, 1))
        out.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{H - PAD}" stroke="#d62728" stroke-dasharray="3 2"/>')
        right = x > W / 2  # the label reads away from the edge it is near, never clipped
        out.append(
            f'<text class="change" x="{x - 3 if right else x + 3:.1f}" y="30" font-size="10" fill="#d62728" '
            f'text-anchor="{"end" if right else "start"}">change at {_e(label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


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


def _report_body(d: Report, settings: Mapping[str, Any] | None) -> list[str]:
    ok, valid = validity(d)
    body = [
        f"<p>{_e(d.command)}, {_e(d.started)}, {_e(commit_words(d))}, "
        f'<b class="{"good" if ok else "bad"}">{_e(valid)}</b></p>',
        f"<p>settings: {_e(settings_text(settings))}</p>",
    ]
    for w in d.warnings:
        body.append(f'<p class="warn">warning: {_e(w)}</p>')
    for mm in d.models:
        body += [f"<h2>{_e(mm.model)}</h2>", _table(mm), "<ul>"]
        note = fidelity_note(mm)
        body += [f'<li class="warn">{_e(note)}</li>'] if note else []
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
    d: Report, results: Any = None, settings: Mapping[str, Any] | None = None, profiles: Sequence[Profile] = ()
) -> str:
    """The whole report as one HTML document (no external resources).

    Args:
        settings: the run's measurement settings, stated under the title.
        profiles: the run's profiles (``run --profile``, `edgebench.bench.profile.profiles_in_run`): a section
            with one stacked bar and the top operators per variant.
    """
    ok, _ = validity(d)
    state = "" if ok else " (not valid)"
    body = [f"<h1>edgebench run {_e(d.run_id)}</h1>", *_report_body(d, settings)]
    return _document(f"edgebench run {d.run_id}{state}", body + ([html_section(profiles)] if profiles else []))


OUTCOME_CLASS = {"PASS": "good", "FAIL": "bad", "UNDECIDED": "warn"}
CHECK_CLASS = {CheckVerdict.PASS: "good", CheckVerdict.FAIL: "bad", CheckVerdict.UNDECIDED: "warn"}
LABEL_CLASS = {Change.FASTER: "good", Change.SLOWER: "bad", Change.NO_CHANGE: "", Change.UNDECIDED: "warn"}


def gate_html(g: Gate) -> str:
    """The gate's checks as an HTML table, its outcome first."""
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{_e(cell(c))}</td>" for _, cell in GATE_COLUMNS[:-2])
        + f'<td class="{CHECK_CLASS[c.verdict]}">{_e(c.verdict)}</td><td>{_e(c.note)}</td></tr>'
        for c in g.checks
    )
    head = "".join(f"<th>{_e(h)}</th>" for h, _ in GATE_COLUMNS)
    return (
        f'<h2>Gate: <span class="{CHECK_CLASS[g.outcome]}">{_e(g.outcome.upper())}</span> ({_e(summary(g))})</h2>'
        f"<p>{_e(gate_runs_line(g))}</p>"
        f'<div class="tw"><table><tr>{head}</tr>{rows}</table></div>'
    )


def comparison_html(title: str, d: Comparison) -> str:
    """A comparison (B against A) as an HTML table."""
    head = "".join(f"<th>{h}</th>" for h in ("board", "model", "variant", "p50 ms A→B", "p90 ms A→B", "verdict"))
    rows = "".join(
        f"<tr><td>{_e(r.board)}</td><td>{_e(r.model)}</td><td>{_e(r.variant)}</td><td>{_e(quantile_text(r.p50))}</td>"
        f'<td>{_e(quantile_text(r.p90))}</td><td class="{LABEL_CLASS[r.label]}">{_e(r.label)}</td></tr>'
        for r in d.rows
    )
    extra = [f"only in {side}: {'/'.join(k)}" for side, ks in (("A", d.only_a), ("B", d.only_b)) for k in ks]
    extra += [f"failed in {f.side}: {f.board}/{f.model}/{f.variant}" for f in d.failed]
    notes = "".join(f"<li>{_e(x)}</li>" for x in extra)
    return (
        f"<h2>{_e(title)}</h2><p>{_e(runs_line(d))}</p>"
        f'<div class="tw"><table><tr>{head}</tr>{rows}</table></div>' + (f"<ul>{notes}</ul>" if notes else "")
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
