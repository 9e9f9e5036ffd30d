"""Profiles rendered: rich tables, Markdown, JSON and an HTML section with one stacked bar per variant.

Profiled times are never shown as latency: the latency column is the unprofiled p50 from
the same process; the profiled p50, the overhead ratio and the coverage sit beside it.

In a run's report (`profile_lines`) each profile is said in context: its line names board,
model and variant, and its speed against fp32 is the run's measured ratio (the table's and
the verdict's figure, from the run's processes), not the one profiled process's; a variant
of a profiled run without a profile gets a line saying why.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from edgebench.bench.profile import COVERAGE_MIN, TFLITE_NO_TIMING, Profile, ProfileDiff, diff_profiles
from edgebench.model import Change, ReportRow
from edgebench.model import Report as ReportData
from edgebench.render.report import fold_warnings
from edgebench.results.analysis import BASELINE, speed_figure, speed_words

TOP = 10
OVERHEAD_BAND = (0.95, 1.5)  # profiled/unprofiled p50 outside this: the profile's process was disturbed
DIFFER = 0.15  # the profiled processes' own ratio differs from the run's by more than this: said in the line
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


Key = tuple[str, str, str]


@dataclass(frozen=True)
class ProfileLine:
    """One variant of a profiled run in context: what the report says of it under "where the time goes".

    Attributes:
        board: the board. model: the model. variant: the variant (``head`` starts with ``board/model/variant``).
        head: the line: the case, its speed against fp32 and where that figure comes from, its top cause when
            it is slower; or why it has no profile.
        details: the lines under it: runtime and profiled figures, op types (none without a profile).
        warnings: one-line warnings (`overhead_warning`), folded with the others of their kind when rendered.
        speedup: the speed-up the line gives (fp32 p50 / variant p50), None when it gives none.
        source: where ``speedup`` comes from: ``"run"`` (the run's measurements: the table's and the verdict's
            figure) or ``"profile"`` (one profiled process of each, when the run has no ratio for the pair).
        profile: the profile, None when the variant has none.
    """

    board: str
    model: str
    variant: str
    head: str
    details: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    speedup: float | None = None
    source: str | None = None
    profile: Profile | None = None

    @property
    def label(self) -> str:
        """``board/model/variant``."""
        return f"{self.board}/{self.model}/{self.variant}"


def overhead_warning(p: Profile) -> str | None:
    """One line when a profile's profiled/unprofiled overhead is outside `OVERHEAD_BAND` (None inside it).

    A profiler costs time, so a profiled p50 below the unprofiled one (0.35x) or far above it means the
    profiled process was disturbed: its shares and figures are noise as much as signal.
    """
    r = p.overhead_ratio
    lo, hi = OVERHEAD_BAND
    if not p.ok or r is None or lo <= round(r, 2) <= hi:  # as printed: 1.503 reads 1.50x, inside
        return None
    return (
        f"profile of {p.label}: overhead {r:.2f}x is outside [{lo:g}, {hi:g}]: the profiled figures are noisy "
        "(a busy board, or a model too fast for the profiler)"
    )


def _run_speed(r: ReportRow, sp: float) -> str:
    """The run's speed against fp32 in the verdict's words, and the table's figure."""
    figure = f"{speed_figure(sp)} in its table"
    if r.speed is Change.NO_CHANGE:
        return f"same speed as fp32 in the run ({figure})"
    if r.speed is Change.UNDECIDED or r.speed is None:
        return f"too noisy to tell against fp32 in the run ({figure})"
    return f"{speed_words(sp)} than fp32 in the run ({figure})"


def _no_run_ratio(r: ReportRow | None, base: ReportRow | None, report: ReportData | None) -> str:
    """Why the run gives no speed-up for a pair (the line then takes it from the profiled processes)."""
    if report is None:
        return "no run measurements given"
    if r is None:
        return "the variant is not in the run's table"
    if base is None:
        return "the run did not measure fp32 there"
    if not base.ok:
        return "fp32's measurement failed in the run"
    return "the run has no p50 ratio for it"


def _details(p: Profile, top: int) -> tuple[str, ...]:
    """The op types (or the ops, without per-operator timing), then the runtime and the profiled figures."""
    ratio = "-" if p.overhead_ratio is None else f"{p.overhead_ratio:.2f}x"
    ratio += " (noisy)" if overhead_warning(p) else ""
    where = "" if p.in_use == ("CPUExecutionProvider",) else f" on {', '.join(p.in_use) or '?'}"  # the usual: unsaid
    figures = f"{p.runtime}{where}: overhead {ratio} over {p.iterations} inferences"
    if not p.available:
        ops = ", ".join(f"{o.op_type} x{o.nodes}" for o in p.op_types[:top])
        return f"ops, not timed ({p.note or TFLITE_NO_TIMING}): {ops or '-'}", figures
    types = ", ".join(f"{o.op_type} {_pct(o.share)}" for o in p.op_types[:top] if o.share is not None)
    low = p.coverage is not None and p.coverage < COVERAGE_MIN
    cov = f"coverage {_pct(p.coverage)}" + (", low" if low else "")
    return (f"op types: {types} ({cov})" if types else cov), figures


def _ratio(fast: Profile | None, p: Profile) -> float | None:
    """fp32's unprofiled p50 over ``p``'s, each from its own profiled process."""
    if fast is None or not fast.unprofiled_p50_ms or not p.unprofiled_p50_ms:
        return None
    return fast.unprofiled_p50_ms / p.unprofiled_p50_ms


def profile_lines(
    profiles: Sequence[Profile], report: ReportData | None = None, *, base: str = BASELINE, top: int = 3
) -> list[ProfileLine]:
    """Every variant of a profiled run as a `ProfileLine`, in the report's order.

    The speed in a line is the run's measured ratio to ``base`` on the same board (``report``'s row: the
    table's and the verdict's figure) whenever the run has one; else, when both were profiled, the ratio of
    their profiled processes, said to be that. Where the profiled processes' own ratio differs from the
    run's by more than `DIFFER`, a detail line says so and why. A variant that is slower gets its top cause
    (`ProfileDiff.cause_line`) when both have per-operator timing. A variant of ``report`` without a profile
    (its measurement failed, or the run stopped first) and a failed profile get a line saying so.

    Args:
        profiles: the run's profiles (`edgebench.bench.profile.profiles_in_run`).
        report: the run's report (`edgebench.results.analysis.analyze_run`); None: the profiles alone.
        top: op types per line.
    """
    rows: dict[Key, ReportRow] = {}
    if report is not None:
        rows = {(r.board, mm.model, r.variant): r for mm in report.models for r in mm.rows}
    by_key = {(p.board, p.model, p.variant): p for p in profiles}
    keys = list(dict.fromkeys([*(rows if profiles else []), *by_key]))
    out = []
    for key in keys:
        board, model, variant = key
        label, p, r = "/".join(key), by_key.get(key), rows.get(key)
        if p is None:
            failed = r is not None and not r.ok
            why = "its measurement failed" if failed else "no profile was recorded (the run stopped before it)"
            out.append(ProfileLine(*key, f"{label}: not profiled: {why}"))
            continue
        if not p.ok:
            err = p.error or "no profile was recorded"
            why = err if err.startswith("profile failed") else f"no profile: {err}"
            out.append(ProfileLine(*key, f"{label}: {why}", profile=p))
            continue
        ref = by_key.get((board, model, base))
        ref = ref if ref is not None and ref.ok else None
        base_row = rows.get((board, model, base))
        details = list(_details(p, top))
        sp, source = None, None
        own = _ratio(ref, p)
        if variant == base:
            head = f"{label}: the {base} baseline of {model} on {board}"
        elif r is not None and r.ok and r.speedup:
            sp, source = r.speedup, "run"
            head = f"{label}: {_run_speed(r, sp)}"
            if own is not None and abs(own / sp - 1) > DIFFER:
                details.append(
                    f"one profiled process each: {speed_figure(own)} (the run's {speed_figure(sp)} pools all its "
                    "processes)"
                )
        elif own is not None:
            sp, source = own, "profile"
            why = _no_run_ratio(r, base_row, report)
            head = f"{label}: {speed_words(own)} than {base} in one profiled process each ({why})"
        else:
            head = f"{label}: no {base} of {model} on {board} profiled or measured to compare with"
        slower = (r.speed is Change.SLOWER) if source == "run" and r is not None else sp is not None and sp < 1
        if slower and ref is not None:  # its top cause, when the profiles agree that it is the slower one
            d = diff_profiles(ref, p)
            if d.slow is p and d.cause:
                head += f": {d.cause_line()}"
            elif d.slow is p and not (p.available and ref.available):
                head += ": no op type named (no per-operator timing)"
        w = overhead_warning(p)
        out.append(ProfileLine(*key, head, tuple(details), (w,) if w else (), sp, source, p))
    return out


class ProfileSummary:
    """The profiles of a run in `edgebench report`: one line per variant naming board, model and variant, its
    speed against fp32 as the run measured it and its top cause when slower (`profile_lines`), its profiled
    figures and op types; warnings of one kind folded into one line (`fold_warnings`) unless ``verbose``.

    Args:
        profiles: the run's profiles.
        report: the run's report, for the run's ratios (without it a line's ratio is its profiled processes').
        verbose: every warning whole.
    """

    def __init__(
        self, profiles: Sequence[Profile], report: ReportData | None = None, *, top: int = 3, verbose: bool = False
    ) -> None:
        self.profiles, self.report, self.top, self.verbose = list(profiles), report, top, verbose

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render the header, then per variant its line and details, then the warnings."""
        lines = profile_lines(self.profiles, self.report, top=self.top)
        yield Text(
            "where the time goes (profiles; speed against fp32 as the run measured it; overhead: profiled p50 / "
            "unprofiled p50):",
            style="bold",
        )
        for line in lines:
            ok = line.profile is not None and line.profile.ok
            yield Text("  " + line.head, style="bold" if ok else "red")
            for d in line.details:
                yield Text("    " + d)
        for w in fold_warnings([w for line in lines for w in line.warnings], verbose=self.verbose):
            yield Text("  warning: " + w, style="yellow")
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


def html_section(
    profiles: Sequence[Profile], *, width: int = 640, top: int = 5, report: ReportData | None = None
) -> str:
    """An HTML ``<section>`` for the HTML report: one stacked bar per variant (inline SVG), then its top ops.

    Each bar is the variant's profiled latency split by op type (share of the profiled
    end-to-end time; the rest, time outside the nodes, is left grey), labelled with the
    unprofiled p50 and coverage. Variants without per-operator timing get a note instead.
    Under the bars, per variant: the summary line and the ``top`` operators by time. The list above them
    holds each variant's line in context (`profile_lines`; given ``report``, the run's speed ratios).
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
    lines = profile_lines(profiles, report)  # each variant named, its speed the run's (given the report)
    verdicts = "".join(f"<li><b>{esc(x.head)}</b></li>" for x in lines)
    warned = [w for x in lines for w in x.warnings] + [w for p in profiles for w in p.warnings]
    verdicts += "".join(f"<li>{esc(w)}</li>" for w in fold_warnings(warned))
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


def markdown_section(
    profiles: Sequence[Profile], top: int = 5, *, report: ReportData | None = None, verbose: bool = False
) -> str:
    """The report's Markdown section: per variant its line in context (`profile_lines`: board/model/variant,
    the run's speed against fp32, the top cause when slower), its figures and top operators, then the warnings
    (folded unless ``verbose``)."""
    out = ["### Where the time goes (profiles)", "", "Speed against fp32 as the run measured it; the profiled "
           "figures come from one more process per variant.", ""]  # fmt: skip
    lines = profile_lines(profiles, report)
    for line in lines:
        p = line.profile
        out += [f"- **{line.head}**" if p is not None and p.ok else f"- ❌ {line.head}"]
        out += [f"  - {d}" for d in line.details]
        if p is None or not p.ok:
            continue
        out += [f"  - {fb}" for fb in (p.fallback_line(),) if fb]
        tops = ", ".join(f"{n.op_type} {n.name} {_pct(n.share)}" for n in p.top(top))
        out += [f"  - top operators: {tops}"] if tops else []
    out += [""] + [f"> ⚠️ {w}" for w in fold_warnings([w for x in lines for w in x.warnings], verbose=verbose)]
    return "\n".join(out).rstrip() + "\n"
