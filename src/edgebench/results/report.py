"""Reports that render themselves with rich."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from edgebench.results.schema import measurements


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KB" if n < 2**20 else f"{n / 2**20:.2f} MB"


class RunTable:
    """One row per (board, model, variant) of a run: latency, throughput, memory, accuracy, size."""

    def __init__(self, run: dict[str, Any]) -> None:
        self.run = run

    def rows(self) -> Iterator[dict[str, Any]]:
        """The measurements, in board, model, variant order."""
        yield from sorted(measurements(self.run), key=lambda m: (m["board"], m["model"], m["variant"]))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Render as a rich table; failed measurements show their error."""
        eb = self.run["edgebench"]
        table = Table(title=f"run {eb['run_id']}", title_justify="left")
        for col in ("board", "model", "variant"):
            table.add_column(col)
        for col in ("p50 ms", "p90 ms", "p99 ms", "inf/s", "peak MB", "top-1", "size"):
            table.add_column(col, justify="right")
        for m in self.rows():
            if not m.get("ok"):
                err = m.get("error") or {}
                table.add_row(m["board"], m["model"], m["variant"], f"[red]failed: {err.get('message', err)}[/red]")
                continue
            s = m["summary"]
            acc = (m.get("accuracy") or {}).get("top1")
            table.add_row(
                m["board"], m["model"], m["variant"],
                f"{s['p50_ms']:.3f}", f"{s['p90_ms']:.3f}", f"{s['p99_ms']:.3f}",
                f"{s['throughput']:,.0f}",
                _mb((m.get("memory") or {}).get("peak_rss")),
                "-" if acc is None else f"{acc:.2%}",
                _size(m.get("bytes")),
            )
        yield table
        for m in self.rows():
            if m.get("ok") and m["summary"]["cv"] > 0.10:
                yield f"[yellow]warning: {m['board']}/{m['variant']}: latency varies a lot (CV {m['summary']['cv']:.0%})[/yellow]"
