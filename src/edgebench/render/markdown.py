"""Markdown renderings (for pull-request comments): report, comparison, gate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgebench.bench.profile import Profile
from edgebench.model import Change, CheckVerdict, Comparison, Gate, Report, Worth
from edgebench.render.compare import ONE_RUN_NOTE, quantile_text, runs_line, signed, title_text
from edgebench.render.gate import GATE_COLUMNS, summary
from edgebench.render.gate import runs_line as gate_runs_line
from edgebench.render.html import comparison_counts, settings_text
from edgebench.render.profile import markdown_section
from edgebench.render.report import (
    commit_words,
    failure_lines,
    fidelity_note,
    fold_warnings,
    shown_columns,
    sustained_lines,
    validity,
)

VERDICT_ICON = {Worth.WORTH_IT: "✅", Worth.WORTH_IT_FOR_SIZE: "📦", Worth.NOT_WORTH_IT: "❌", Worth.UNDECIDED: "❔",
                Worth.DEGRADED: "⛔", Worth.WORTH_IT_IF_ACCURATE: "⚠️"}  # fmt: skip
LABEL_ICON = {Change.FASTER: "🟢", Change.SLOWER: "🔴", Change.NO_CHANGE: "⚪", Change.UNDECIDED: "🟡"}
CHECK_ICON = {CheckVerdict.PASS: "✅", CheckVerdict.FAIL: "❌", CheckVerdict.UNDECIDED: "❔"}


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report_markdown(
    d: Report,
    settings: Mapping[str, Any] | None = None,
    profiles: Sequence[Profile] = (),
    *,
    verbose: bool = False,
) -> str:
    """The run report as Markdown (with its validity, when given its measurement settings and its profiles).

    Each profile line names its board, model and variant and gives the run's speed ratio (the table's);
    warnings of one kind fold into one line (`edgebench.render.report.fold_warnings`) unless ``verbose``.
    """
    ok, valid = validity(d)
    state = valid if ok else f"**{valid}**"
    out = [f"## edgebench run `{d.run_id}`", "", f"{d.command}, {d.started}, {commit_words(d)}, {state}", ""]
    out += [f"settings: {settings_text(settings)}", ""]
    for mm in d.models:
        out += [f"### {mm.model}", ""]
        rows, cols = [], shown_columns(mm.rows)
        for r in mm.rows:
            if not r.ok:  # the error goes whole under the table
                rows.append([r.board, r.variant, "failed (below)"] + [""] * (len(cols) - 3))
                continue
            rows.append([c.cell(r) for c in cols])
        out += [table([c.header for c in cols], rows), ""]
        out += [f"- ❌ {line}" for line in failure_lines(mm)]
        note = fidelity_note(mm)
        out += [f"- ⚠️ {note}"] if note else []
        out += [f"- {'⚠️ ' if t else ''}{line}" for t, line in sustained_lines(mm.sustained, verbose=verbose)]
        out += [f"- {VERDICT_ICON[r.verdict]} {r.board}: {r.verdict_text}" for r in mm.rows if r.verdict]
        out += [f"- Pareto (top-1 vs p90) on {b}: {', '.join(n) or '-'}" for b, n in mm.pareto.items()]
        out.append("")
    if d.trends:
        out += ["### Trends", ""]
        rows = [
            [t.board, t.model, t.variant, t.metric, f"`{t.sparkline}`", ", ".join(t.change_labels) or "-"]
            for t in d.trends
        ]
        out += [table(["board", "model", "variant", "metric", "trend", "change points"], rows), ""]
    out += [markdown_section(profiles, report=d, verbose=verbose)] if profiles else []
    out += [f"> ⚠️ {w}" for w in fold_warnings(d.warnings, verbose=verbose)]
    return "\n".join(out).rstrip() + "\n"


def comparison_markdown(d: Comparison) -> str:
    """A comparison as Markdown."""
    rows = [
        [r.board, r.model, r.variant, quantile_text(r.p50), quantile_text(r.p90), f"{LABEL_ICON[r.label]} {r.label}",
         signed(r.d_peak_mb, " MiB"), signed(r.d_top1_pt, " pt", 2)]
        for r in d.rows
    ]  # fmt: skip
    hdr = ["board", "model", "variant", "p50 ms A→B", "p90 ms A→B", "verdict", "Δ peak", "Δ top-1"]
    out = [f"## edgebench compare: `{d.b}` against `{d.a}`", "", runs_line(d), "", title_text(d), ""]
    out += [table(hdr, rows), ""]
    if any(r.p50.basis == "one run each" for r in d.rows):
        out += [f"> {ONE_RUN_NOTE}", ""]
    out += [f"- only in A: {'/'.join(k)}" for k in d.only_a] + [f"- only in B: {'/'.join(k)}" for k in d.only_b]
    out += [f"- failed in {f.side}: {f.board}/{f.model}/{f.variant}" for f in d.failed]
    return "\n".join(out).rstrip() + "\n"


def gate_markdown(g: Gate) -> str:
    """The gate as Markdown, for a pull-request comment."""
    rows = [
        [cell(c) for _, cell in GATE_COLUMNS[:-2]] + [f"{CHECK_ICON[c.verdict]} {c.verdict}", c.note] for c in g.checks
    ]
    head = f"## edgebench gate: {CHECK_ICON[g.outcome]} **{g.outcome.upper()}** (run `{g.run_id}`)"
    return f"{head}\n\n{gate_runs_line(g)}: {summary(g)}\n\n{table([h for h, _ in GATE_COLUMNS], rows)}\n"


OUTCOME_ICON = {"PASS": "✅", "FAIL": "❌", "UNDECIDED": "❔"}


def nightly_markdown(
    d: Report,
    outcome: str,
    why: str,
    *,
    gate: Gate | None = None,
    vs_last: Comparison | None = None,
    vs_baseline: Comparison | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """A nightly as Markdown: the verdict line first, the gate, the comparisons, then the report."""
    out = [
        f"# {OUTCOME_ICON.get(outcome, '')} {outcome}: edgebench nightly `{d.run_id}`: {why}".replace("#  ", "# "),
        "",
        f"- gate: {f'{gate.outcome.upper()} ({summary(gate)})' if gate else 'no budgets given'}",
        f"- against the last nightly: {comparison_counts(vs_last) if vs_last else 'no earlier nightly'}",
        "",
    ]
    if gate is not None:
        out.append(gate_markdown(gate))
    out += [comparison_markdown(c) for c in (vs_last, vs_baseline) if c is not None]
    out.append(report_markdown(d, settings))
    return "\n".join(out)
