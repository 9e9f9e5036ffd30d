"""`edgebench gate` in the terminal and as JUnit XML; one column spec for the checks table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape, quoteattr

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape as rich_escape
from rich.table import Table

from edgebench.model import Check, CheckVerdict, Gate
from edgebench.render.report import commit_text
from edgebench.render.widths import dropped_note, fit_table

STYLE = {CheckVerdict.PASS: "green", CheckVerdict.FAIL: "red", CheckVerdict.UNDECIDED: "yellow"}


def number(v: float | None, sign: bool = False) -> str:
    """A figure with 4 significant digits (signed for margins), ``-`` when unknown."""
    if v is None:
        return "-"
    return f"{v:+.4g}" if sign else f"{v:.4g}"


# header, cell text; the terminal colours the verdict, Markdown adds an icon
GATE_COLUMNS: tuple[tuple[str, Callable[[Check], str]], ...] = (
    ("#", lambda c: str(c.budget)),
    ("board", lambda c: c.board),
    ("model", lambda c: c.model),
    ("variant", lambda c: c.variant),
    ("check", lambda c: c.check),
    ("measured", lambda c: number(c.measured)),
    ("budget", lambda c: number(c.limit)),
    ("margin", lambda c: number(c.margin, True)),
    ("verdict", lambda c: c.verdict.value),
    ("note", lambda c: c.note),
)


def summary(g: Gate) -> str:
    """``3 passed, 1 failed, 0 undecided``, naming the degraded variants when there are
    (``...; degraded: local/det/fp16, local/det/int8-dynamic``): the gate's verdict line everywhere."""
    n = g.counts
    text = f"{n[CheckVerdict.PASS]} passed, {n[CheckVerdict.FAIL]} failed, {n[CheckVerdict.UNDECIDED]} undecided"
    return f"{text}; degraded: {', '.join(g.degraded)}" if g.degraded else text


def runs_line(g: Gate) -> str:
    """The gated run and its commit, and the baseline's when there is one.

    For example ``run <id> (commit 1a2b3c4* on main) against baseline <id> (commit 5d6e7f8)``.
    """
    base = f" against baseline {g.baseline} ({commit_text(g.baseline_commit, g.baseline_branch)})" if g.baseline else ""
    return f"run {g.run_id} ({commit_text(g.commit, g.branch)}){base}"


class GateView:
    """A rich renderable of a `Gate`: measured / budget / margin per check, then the outcome."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The checks table, the budgets that matched nothing, the outcome."""
        g = self.gate
        yield f"[bold]gate[/bold] on {rich_escape(runs_line(g))}"

        def make(shown: Sequence[str]) -> Table:
            t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False)
            for col in shown:  # names and notes fold, figures are never cut (render.widths drops columns instead)
                text = col in ("board", "model", "variant", "note")
                t.add_column(
                    col, justify="right" if col in ("measured", "budget", "margin") else "left", no_wrap=not text,
                    overflow="fold",
                )  # fmt: skip
            for c in g.checks:
                cells = {h: cell(c) for h, cell in GATE_COLUMNS}
                cells["verdict"] = f"[{STYLE[c.verdict]}]{c.verdict}[/]"
                t.add_row(*(cells[h] for h in shown))
            return t

        every = [h for h, _ in GATE_COLUMNS]
        t, dropped = fit_table(make, every, ("#", "note", "model", "budget"), console, options)
        yield t
        if dropped:
            yield dropped_note(dropped)
        for c in g.checks:
            if c.check == "matches a result":
                yield f"[red]error: {c.note}: fix its model/board/variant patterns or measure that combination[/red]"
        yield f"[{STYLE[g.outcome]}]gate {g.outcome.upper()}[/]: {summary(g)}"


def junit_xml(g: Gate) -> str:
    """JUnit XML: one test case per check; fail and undecided are failures."""
    cases = []
    for c in g.checks:
        name = quoteattr(f"{c.check}[{c.board}/{c.model}/{c.variant}]")
        body = ""
        if c.verdict is not CheckVerdict.PASS:
            msg = f"{c.verdict}: measured {number(c.measured)}, budget {number(c.limit)}. {c.note}".strip()
            body = f"<failure type={quoteattr(c.verdict.value)} message={quoteattr(msg)}>{escape(msg)}</failure>"
        cls = quoteattr(f"edgebench.gate.budget{c.budget}")
        cases.append(f'  <testcase classname={cls} name={name} time="0">{body}</testcase>')
    fails = sum(c.verdict is not CheckVerdict.PASS for c in g.checks)
    head = f'<testsuite name="edgebench gate" tests="{len(g.checks)}" failures="{fails}" errors="0">'
    return '<?xml version="1.0" encoding="utf-8"?>\n' + head + "\n" + "\n".join(cases) + "\n</testsuite>\n"
