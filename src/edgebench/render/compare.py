"""`edgebench compare` in the terminal: one row per (board, model, variant), the label coloured."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table

from edgebench.model import Change, Comparison, ComparisonRow, QuantileChange
from edgebench.render.report import commit_text
from edgebench.render.widths import dropped_note, fit_table

LABEL_STYLE = {Change.FASTER: "green", Change.SLOWER: "red", Change.NO_CHANGE: "dim", Change.UNDECIDED: "yellow"}


def signed(v: float | None, unit: str, digits: int = 1) -> str:
    """A change with its sign and unit, ``-`` when unknown."""
    return "-" if v is None else f"{v:+.{digits}f}{unit}"


def quantile_text(c: QuantileChange, label: bool = False) -> str:
    """``0.0182→0.02 (+10.0%)``, with the quantile's own label when ``label`` is set and it is not "no change".

    The median's text carries its interval and basis: ``1.07→1.18 (+10.3%, 90% +9.8..+10.9, paired)``.
    """
    own = f" {c.label}" if label and c.label is not Change.NO_CHANGE else ""
    if c.q != 0.5 or c.basis is None or c.basis == "same run":
        return f"{c.a:.3g}→{c.b:.3g} ({c.delta_pct:+.1f}%){own}"
    lo, hi = (c.ratio_low - 1) * 100, (c.ratio_high - 1) * 100
    return f"{c.a:.3g}→{c.b:.3g} ({c.delta_pct:+.1f}%, 90% {lo:+.1f}..{hi:+.1f}, {c.basis}){own}"


ONE_RUN_NOTE = (
    "undecided, one run each: two separate runs cannot tell a change from a shift of a whole run (5-20 % "
    "between invocations on a shared runner); measure B with `edgebench run --baseline A` (paired), "
    "use `edgebench compare --ab`, or keep 3+ runs of history"
)


def title_text(d: Comparison) -> str:
    """The comparison's title: what decides a row."""
    return (
        f"B against A (ms; the median decides, on paired processes when B re-measured A, else on the processes "
        f"widened by history; alpha {d.alpha:g}; no change = the interval within ±{d.margin:.0%})"
    )


def runs_line(d: Comparison) -> str:
    """Which runs and commits are compared: ``A <id> (commit 1a2b3c4 on main) → B <id> (commit 5d6e7f8*)``."""
    return f"A {d.a} ({commit_text(d.commit_a, d.branch_a)}) → B {d.b} ({commit_text(d.commit_b, d.branch_b)})"


def verdict_text(r: ComparisonRow) -> str:
    """The row's speed label, with ``, degraded`` when B's variant is: faster or not, not usable."""
    return f"{r.label}, degraded" if r.degraded_b else str(r.label)


def verdict_cell(r: ComparisonRow) -> str:
    """`verdict_text` with rich colours: the label's, and red for ``degraded``."""
    label = f"[{LABEL_STYLE[r.label]}]{r.label}[/]"
    return f"{label}, [red]degraded[/red]" if r.degraded_b else label


def degraded_lines(d: Comparison) -> list[str]:
    """One line per row whose variant is degraded in B (or was in A): ``degraded: board/model/variant ...``."""
    return [f"{r.board}/{r.model}/{r.variant} {r.fidelity_note}" for r in d.rows if r.fidelity_note]


COMPARE_COLUMNS = ("board", "model", "variant", "p50 A→B", "p90 A→B", "verdict", "Δpeak MiB", "Δtop-1")


class ComparisonView:
    """A rich renderable of a `Comparison`."""

    def __init__(self, data: Comparison) -> None:
        self.data = data

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The runs and their commits, then one row per (board, model, variant); label coloured."""
        d = self.data
        yield f"[bold]compare[/bold] {escape(runs_line(d))}"

        def make(shown: Sequence[str]) -> Table:
            t = Table(
                title=title_text(d),
                title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False,
            )  # fmt: skip
            for c in shown:  # names fold, figures are never cut (render.widths drops columns instead)
                name = c in ("board", "model", "variant", "verdict")  # "faster, degraded" wraps at its comma
                t.add_column(c, no_wrap=not name, overflow="fold", justify="right" if c.startswith("Δ") else "left")
            for r in d.rows:
                cells = dict(zip(COMPARE_COLUMNS, (
                    r.board, r.model, r.variant, quantile_text(r.p50), quantile_text(r.p90, label=True),
                    verdict_cell(r), signed(r.d_peak_mb, ""), signed(r.d_top1_pt, " pt", 2),
                ), strict=True))  # fmt: skip
                t.add_row(*(cells[c] for c in shown))
            return t

        t, dropped = fit_table(make, COMPARE_COLUMNS, ("Δtop-1", "Δpeak MiB", "model", "p90 A→B"), console, options)
        yield t
        if dropped:
            yield dropped_note(dropped)
        if any(r.p50.basis == "one run each" for r in d.rows):
            yield f"[yellow]{ONE_RUN_NOTE}[/yellow]"
        for line in degraded_lines(d):
            yield f"[red]{escape(line)}[/red]"
        for r in d.rows:
            for w in r.warnings:
                yield f"[yellow]warning: {w}[/yellow]"
        for c in d.config_changes:
            yield f"[yellow]configuration changed (allowed): {c}[/yellow]"
        for k in d.only_a:
            yield f"[yellow]only in A: {'/'.join(k)}[/yellow]"
        for k in d.only_b:
            yield f"[yellow]only in B: {'/'.join(k)}[/yellow]"
        for f in d.failed:
            yield f"[red]failed in {f.side}: {f.board}/{f.model}/{f.variant}[/red]"
