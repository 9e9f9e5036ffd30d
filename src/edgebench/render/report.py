"""Reports that render themselves with rich."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KB" if n < 2**20 else f"{n / 2**20:.2f} MB"


def fmt_ms(v: float | None) -> str:
    """A latency in ms with 3 significant digits."""
    if v is None:
        return "-"
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def fmt_pct(v: float | None) -> str:
    """A fraction 0..1 as a percentage."""
    return "-" if v is None else f"{v:.2%}"


def fmt_ratio(v: float | None) -> str:
    """A ratio like ``1.7x``."""
    return "-" if v is None else f"{v:.2f}x"


KIND_STYLE = {"worth it": "green", "worth it for size": "cyan", "not worth it": "red", "undecided": "yellow"}


class Report:
    """The report of one run: per model a board x variant table, verdicts, Pareto sets, trends.

    Args:
        data: `edgebench.results.analysis.analyze_run` output, optionally with a
            ``trends`` list (see `attach_trends`).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def model_table(self, mm: dict[str, Any]) -> Table:
        """The board x variant table of one model."""
        t = Table(
            title=f"{mm['model']} (latency in ms; speed and size against fp32 on the same board; *: Pareto)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, 0),
            collapse_padding=True,
            show_edge=False,
        )
        for c in ("board", "variant"):
            t.add_column(c, no_wrap=True)
        fid = any(r.get("fidelity") is not None for r in mm["rows"])
        for c in (
            "p50",
            "p90",
            "p99",
            "inf/s",
            "peak MB",
            "top-1",
            *(("fid.",) if fid else ()),
            "size",
            "speed",
            "size×",
        ):
            t.add_column(c, justify="right", no_wrap=True)
        for r in mm["rows"]:
            if not r["ok"]:
                t.add_row(r["board"], r["variant"], f"[red]failed: {r.get('error')}[/red]")
                continue
            sp = r["speedup"]
            sp_s = fmt_ratio(sp)
            if sp is not None and r.get("speed") in ("faster", "slower"):
                sp_s = f"[{'green' if sp > 1 else 'red'}]{sp_s}[/]"
            sr = r["size_ratio"]
            sr_s = "-" if sr is None else f"[{'green' if sr < 1 else 'red'}]{sr:.2f}x[/]"
            t.add_row(
                r["board"], r["variant"] + ("*" if r.get("pareto") else ""), fmt_ms(r["p50_ms"]), fmt_ms(r["p90_ms"]),
                fmt_ms(r["p99_ms"]), f"{r['throughput']:,.0f}", _mb(r["peak_rss"]), fmt_pct(r["top1"]),
                *((fmt_pct(r["fidelity"]),) if fid else ()), _size(r["bytes"]), sp_s, sr_s,
            )  # fmt: skip
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Header, per model table + verdicts + Pareto sets, trends, warnings."""
        d = self.data
        state = "complete" if d["complete"] else "[yellow]INCOMPLETE[/yellow]"
        yield f"[bold]run {d['run_id']}[/bold] ({d.get('command')}, {d.get('started')}, {state})"
        for mm in d["models"]:
            yield self.model_table(mm)
            for r in mm["rows"]:
                if r.get("verdict_text"):
                    yield f"  [{KIND_STYLE[r['verdict']]}]{r['board']}: {r['verdict_text']}[/]"
            for board, names in mm["pareto"].items():
                yield f"  Pareto (top-1 vs p90) on {board}: {', '.join(names) or '-'}"
        if d.get("trends"):
            t = Table(title="trends (oldest → newest, | marks a change point)", title_justify="left")
            for c in ("board", "model", "variant", "metric", "runs", "trend", "last", "change points"):
                t.add_column(c)
            for tr in d["trends"]:
                t.add_row(
                    tr["board"],
                    tr["model"],
                    tr["variant"],
                    tr["metric"],
                    str(len(tr["values"])),
                    tr["sparkline"],
                    fmt_ms(tr["values"][-1]) if tr["values"] else "-",
                    ", ".join(tr["changes"]) or "-",
                )
            yield t
        for w in d["warnings"]:
            yield f"[yellow]warning: {w}[/yellow]"


def attach_trends(
    data: dict[str, Any],
    results: Path,
    *,
    last: int = 30,
    command: str | None = None,
    metrics: tuple[str, ...] = ("p90",),
) -> dict[str, Any]:
    """Add ``trends`` to report data: per (board, model, variant) and metric, the last runs from the index.

    Each trend has ``values``, ``runs`` (ids), ``sparkline`` and ``changes`` (run ids
    where a change point starts).
    """
    from edgebench.results.index import history
    from edgebench.results.trend import change_points, sparkline

    keys = [(r["board"], mm["model"], r["variant"]) for mm in data["models"] for r in mm["rows"] if r["ok"]]
    hist = history(results, keys, metrics=metrics, last=last, command=command, before=data.get("started"))
    trends = []
    for key in keys:
        h = hist[key]
        for metric in metrics:
            vals = [x[metric] for x in h]
            cps = change_points(vals)
            trends.append({
                "board": key[0], "model": key[1], "variant": key[2], "metric": metric,
                "values": vals, "runs": [x["run_id"] for x in h], "sparkline": sparkline(vals, cps),
                "changes": [h[i]["run_id"] for i in cps],
            })  # fmt: skip
    data["trends"] = trends
    return data


def load_report(results: Path, ref: str = "latest", *, last: int = 30) -> Report:
    """The report of a stored run, with trends over the last ``last`` runs from the index.

    Unreadable run files elsewhere in the folder are skipped with a warning.

    Raises:
        RunNotFound: if ``ref`` names no run.
        UserError: if the run's own file cannot be read.
    """
    from edgebench.errors import UserError
    from edgebench.results.analysis import analyze_run
    from edgebench.results.index import sync
    from edgebench.results.schema import SchemaError
    from edgebench.results.store import find_run, read_run

    path = find_run(results, ref)
    sync(results)
    try:
        run = read_run(path)
    except SchemaError as exc:
        raise UserError(f"{exc}: pick another run (edgebench report RUN) or delete the file") from None
    data = analyze_run(run)
    data["run_file"] = str(path)
    return Report(attach_trends(data, results, last=last))


def read_run_or_fail(results: Path, ref: str) -> dict[str, Any]:
    """The run named by ``ref`` (id, prefix, file, ``latest~N``), upgraded.

    Raises:
        UserError: if there is no such run or its file cannot be read.
    """
    from edgebench.errors import UserError
    from edgebench.results.schema import SchemaError
    from edgebench.results.store import find_run, read_run

    path = find_run(results, ref)
    try:
        return read_run(path)
    except SchemaError as exc:
        raise UserError(f"{exc}: pick another run or delete the file") from None
