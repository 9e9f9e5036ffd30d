"""Profiles rendered: rich tables, Markdown, JSON and an HTML section with one stacked bar per variant.

Profiled times are never shown as latency: the latency column is the unprofiled p50 from
the same process; the profiled p50, the overhead ratio and the coverage sit beside it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from edgebench.bench.profile import Profile, ProfileDiff, slower_causes

TOP = 10
# a colour per op type in the HTML bars, the heaviest first
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
OTHER = "#888"  # op types past the palette (the time outside the nodes is lighter, #ddd)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def summary_line(p: Profile) -> str:
    """One line: latency (unprofiled), profiled p50, overhead, coverage, what is in use."""
    if not p.ok:
        return f"{p.label}: FAILED: {p.error}"
    ratio = "-" if p.overhead_ratio is None else f"{p.overhead_ratio:.2f}x"
    return (
        f"{p.label} ({p.runtime}; in use: {', '.join(p.in_use) or '?'}): latency p50 {_ms(p.unprofiled_p50_ms)} ms "
        f"(unprofiled); profiled p50 {_ms(p.profiled_p50_ms)} ms, overhead {ratio}, coverage {_pct(p.coverage)} "
        f"over {p.iterations} profiled inferences"
    )


def memory_line(p: Profile) -> str | None:
    """The highest RSS per phase, in MiB (load, warm-up, steady state...)."""
    phases = p.memory_by_phase()
    if not phases:
        return None
    return "RSS by phase: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in phases.items())


def _nodes_table(p: Profile, top: int) -> Table:
    t = Table(title=f"top operators: {p.label}", title_justify="left")
    for col in ("name", "type", "provider", "mean ms", "share"):
        t.add_column(col, justify="right" if col in ("mean ms", "share") else "left")
    for n in p.top(top):
        t.add_row(n.name, n.op_type, n.provider, _ms(n.mean_ms), _pct(n.share))
    return t


def _types_table(p: Profile) -> Table:
    t = Table(title=f"per op type: {p.label}", title_justify="left")
    for col in ("op type", "nodes", "mean ms", "share", "providers"):
        t.add_column(col, justify="right" if col in ("nodes", "mean ms", "share") else "left")
    for o in p.op_types:
        t.add_row(o.op_type, str(o.nodes), _ms(o.mean_ms), _pct(o.share), ", ".join(o.providers))
    return t


class ProfileView:
    """The rich rendering of profiles: per variant a summary, the top operators and the op-type totals."""

    def __init__(self, profiles: Sequence[Profile], top: int = TOP) -> None:
        self.profiles, self.top = list(profiles), top

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render each profile."""
        for p in self.profiles:
            yield Text(summary_line(p), style="bold" if p.ok else "bold red")
            if not p.ok:
                continue
            for line in (p.fallback_line(), memory_line(p), *p.warnings):
                if line:
                    yield Text("  " + line)
            yield Group(_nodes_table(p, self.top), _types_table(p))


class ProfileSummary:
    """The profiles of a run in `edgebench report`: why each slower variant is slower, one line per variant."""

    def __init__(self, profiles: Sequence[Profile], top: int = 3) -> None:
        self.profiles, self.top = list(profiles), top

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render the causes, then per variant its summary line and its heaviest op types."""
        yield Text("where the time goes (profiles; latency is the unprofiled p50):", style="bold")
        for line in slower_causes(self.profiles):
            yield Text("  " + line, style="bold")
        for p in self.profiles:
            yield Text("  " + summary_line(p), style="" if p.ok else "red")
            types = ", ".join(f"{o.op_type} {_pct(o.share)}" for o in p.op_types[: self.top] if o.share is not None)
            if p.ok and types:
                yield Text(f"    op types: {types}")
        yield Text("  per-operator tables: `edgebench report --format html` or `--format markdown`")


class DiffView:
    """The rich rendering of a `ProfileDiff`: op types side by side, then the verdict."""

    def __init__(self, diff: ProfileDiff) -> None:
        self.diff = diff

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render the diff table and the verdict."""
        d = self.diff
        t = Table(title=f"{d.a.label} vs {d.b.label}", title_justify="left")
        for col in ("op type", "A ms", "A share", "B ms", "B share", "B - A ms"):
            t.add_column(col, justify="left" if col == "op type" else "right")
        for r in d.rows:
            t.add_row(r.op_type, _ms(r.a_ms), _pct(r.a_share), _ms(r.b_ms), _pct(r.b_share), f"{r.delta_ms:+.3f}")
        yield Text(summary_line(d.a))
        yield Text(summary_line(d.b))
        yield t
        yield Text(d.verdict(), style="bold")
        for n in d.notes:
            yield Text("note: " + n)


def to_markdown(profiles: Sequence[Profile], top: int = TOP) -> str:
    """Profiles as Markdown: a summary line, the top operators and the op-type totals per variant."""
    out: list[str] = ["# Profiles", ""]
    for p in profiles:
        out += [f"## {p.label}", "", summary_line(p), ""]
        if not p.ok:
            continue
        out += [f"- {line}" for line in (p.fallback_line(), memory_line(p), *p.warnings) if line]
        out += ["", "| name | type | provider | mean ms | share |", "| --- | --- | --- | ---: | ---: |"]
        out += [f"| {n.name} | {n.op_type} | {n.provider} | {_ms(n.mean_ms)} | {_pct(n.share)} |" for n in p.top(top)]
        out += ["", "| op type | nodes | mean ms | share | providers |", "| --- | ---: | ---: | ---: | --- |"]
        out += [
            f"| {o.op_type} | {o.nodes} | {_ms(o.mean_ms)} | {_pct(o.share)} | {', '.join(o.providers)} |"
            for o in p.op_types
        ]
        out.append("")
    return "\n".join(out) + "\n"


def diff_markdown(d: ProfileDiff) -> str:
    """A `ProfileDiff` as Markdown."""
    out = [f"# {d.a.label} vs {d.b.label}", "", f"- A: {summary_line(d.a)}", f"- B: {summary_line(d.b)}", ""]
    out += ["| op type | A ms | A share | B ms | B share | B - A ms |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    out += [
        f"| {r.op_type} | {_ms(r.a_ms)} | {_pct(r.a_share)} | {_ms(r.b_ms)} | {_pct(r.b_share)} | {r.delta_ms:+.3f} |"
        for r in d.rows
    ]
    out += ["", f"**{d.verdict()}**", *[f"- note: {n}" for n in d.notes]]
    return "\n".join(out) + "\n"


def to_doc(profiles: Sequence[Profile], diff: ProfileDiff | None = None) -> dict[str, Any]:
    """Profiles (and a diff) as plain data for JSON (``edgebench profile --format json``)."""
    doc: dict[str, Any] = {"profiles": [p.to_json() for p in profiles]}
    if diff is not None:
        doc["diff"] = diff.to_json()
    return doc


def to_json(profiles: Sequence[Profile], diff: ProfileDiff | None = None) -> str:
    """Profiles (and a diff) as JSON text."""
    return json.dumps(to_doc(profiles, diff), indent=1)


def html_section(profiles: Sequence[Profile], *, width: int = 640, top: int = 5) -> str:
    """An HTML ``<section>`` for the HTML report: one stacked bar per variant (inline SVG), then its top ops.

    Each bar is the variant's profiled latency split by op type (share of the profiled
    end-to-end time; the rest, time outside the nodes, is left grey), labelled with the
    unprofiled p50 and coverage. Variants without per-operator timing get a note instead.
    Under the bars, per variant: the summary line and the ``top`` operators by time.
    """
    esc = html.escape
    timed = [p for p in profiles if p.ok and p.available]
    # a colour for each of the op types that weigh most (their largest share in any variant); the rest share
    # one grey, so that two op types never look alike
    weight: dict[str, float] = {}
    for p in timed:
        for o in p.op_types:
            weight[o.op_type] = max(weight.get(o.op_type, 0.0), o.share or 0.0)
    ranked = sorted(weight, key=lambda op: -weight[op])
    colours = {op: PALETTE[i] if i < len(PALETTE) else OTHER for i, op in enumerate(ranked)}
    rows: list[str] = []
    bar_h, gap, label_w = 18, 26, 220
    y = 0
    for p in profiles:
        if not (p.ok and p.available):
            why = p.error if not p.ok else (p.note or "")
            rows.append(f'<text x="0" y="{y + 13}" font-size="12">{esc(p.label)}: {esc(str(why))}</text>')
            y += gap
            continue
        rows.append(f'<text x="0" y="{y + 13}" font-size="12">{esc(p.label)}</text>')
        x = float(label_w)
        for o in p.op_types:
            w = max(0.0, (o.share or 0.0) * (width - label_w))
            title = f"{o.op_type}: {_pct(o.share)} ({_ms(o.mean_ms)} ms, {o.nodes} nodes)"
            rows.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colours[o.op_type]}">'
                f"<title>{esc(title)}</title></rect>"
            )
            x += w
        rest = max(0.0, width - x)
        rows.append(f'<rect x="{x:.1f}" y="{y}" width="{rest:.1f}" height="{bar_h}" fill="#ddd"><title>outside nodes'
                    "</title></rect>")  # fmt: skip
        rows.append(
            f'<text x="{width + 6}" y="{y + 13}" font-size="11">p50 {_ms(p.unprofiled_p50_ms)} ms, '
            f"coverage {_pct(p.coverage)}</text>"
        )
        y += gap
    named = [(op, c) for op, c in colours.items() if c != OTHER]
    if len(named) < len(colours):
        named.append(("other op types", OTHER))
    legend = " ".join(
        f'<span style="display:inline-block;margin-right:8px"><span style="display:inline-block;width:10px;'
        f'height:10px;background:{c}"></span> {esc(op)}</span>'
        for op, c in named
    )
    verdicts = "".join(f"<li><b>{esc(line)}</b></li>" for line in slower_causes(profiles))
    verdicts += "".join(f"<li>{esc(line)}</li>" for p in profiles for line in p.warnings)
    return (
        '<section class="profile"><h2>Where the time goes (profiles)</h2>'
        "<p>Bars split the profiled latency by op type; latency figures are unprofiled p50s.</p>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 220}" height="{max(y, gap)}" role="img">'
        + "".join(rows)
        + f"</svg><div>{legend}</div>"
        + (f"<ul>{verdicts}</ul>" if verdicts else "")
        + "".join(_html_top(p, top) for p in profiles if p.ok)
        + "</section>"
    )


def _html_top(p: Profile, top: int) -> str:
    """One variant's summary line, fallback line and top operators as an HTML table."""
    esc = html.escape
    cells = "".join(
        f"<tr><td>{esc(n.name)}</td><td>{esc(n.op_type)}</td><td>{esc(n.provider)}</td>"
        f'<td class="num">{_ms(n.mean_ms)}</td><td class="num">{_pct(n.share)}</td></tr>'
        for n in p.top(top)
    )
    notes = "".join(f"<li>{esc(line)}</li>" for line in (p.fallback_line(), memory_line(p)) if line)
    return (
        f"<h3>{esc(p.label)}</h3><p>{esc(summary_line(p))}</p>" + (f"<ul>{notes}</ul>" if notes else "")
        + "<table><tr><th>name</th><th>type</th><th>provider</th><th>mean ms</th><th>share</th></tr>"
        + cells + "</table>"
    )  # fmt: skip


def markdown_section(profiles: Sequence[Profile], top: int = 5) -> str:
    """The report's Markdown section: per variant its summary line, the slow-down line and the top operators."""
    out = ["### Where the time goes (profiles)", "", "Latency figures are unprofiled p50s.", ""]
    out += [f"- **{line}**" for line in slower_causes(profiles)]
    for p in profiles:
        out += [f"- {summary_line(p)}"]  # it starts with the label
        if not p.ok:
            continue
        out += [f"  - {line}" for line in (p.fallback_line(), *p.warnings) if line]
        tops = ", ".join(f"{n.op_type} {n.name} {_pct(n.share)}" for n in p.top(top))
        out += [f"  - top operators: {tops}"] if tops else []
    return "\n".join(out) + "\n"
