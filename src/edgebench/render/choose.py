"""`edgebench choose` in the terminal: the ranked options, then the rejected ones with their reasons."""

from __future__ import annotations

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from edgebench.model import Choice


def _n(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


class ChoiceView:
    """A rich renderable of a `Choice`."""

    def __init__(self, data: Choice) -> None:
        self.data = data

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The ranked options, then the rejected ones with their reasons."""
        d = self.data
        want = [f"p90 <= {d.max_p90_ms:g} ms" if d.max_p90_ms is not None else "",
                f"top-1 >= {d.min_accuracy:.2%}" if d.min_accuracy is not None else "",
                f"peak <= {d.max_memory_mb:g} MiB" if d.max_memory_mb is not None else ""]  # fmt: skip
        yield f"[bold]{d.model}[/bold]: {', '.join(w for w in want if w) or 'no constraints'}; ranked by {d.rank}"
        if d.chosen:
            t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for col in ("#", "board", "variant", "p90 ms", "top-1", "peak MiB", "cost", "power W", "run"):
                t.add_column(col, justify="right" if col not in ("board", "variant", "run") else "left")
            for i, o in enumerate(d.chosen, 1):
                figures = (f"{o.p90_ms:.3g}", _n(o.top1, ".2%"), _n(o.peak_mb, ".0f"), _n(o.cost, ",.0f"))
                t.add_row(str(i), o.board, o.variant, *figures, _n(o.power_w, ".1f"), o.run_id)
            yield t
            best = d.chosen[0]
            yield f"[green]choose {best.board} with {best.variant}[/green]"
        else:
            yield "[red]nothing meets the constraints[/red]"
        for o in d.rejected:
            yield f"  [dim]{o.board}/{o.variant}:[/dim] {'; '.join(o.reasons)}"
        for board in d.unmeasured:
            yield f"  [dim]{board}:[/dim] no results: run edgebench run --boards {board}"
