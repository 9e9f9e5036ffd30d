"""`edgebench choose`: which board and variant to buy/ship, from stored results and the inventory.

For a model, the latest successful measurement of every (board, variant) is taken from
the index; candidates that meet every constraint are ranked by board cost, board power
or p90 latency; the others are listed with every reason they fail.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from edgebench.errors import UserError
from edgebench.targets.board import Board

RANKS = ("cost", "power", "latency")
_TIME = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3, "": 1.0}
_SIZE = {"b": 2**-20, "kb": 2**-10, "kib": 2**-10, "mb": 1.0, "mib": 1.0, "gb": 1024.0, "gib": 1024.0, "": 1.0}


def parse_ms(text: str) -> float:
    """A duration like ``20ms``, ``0.5s``, ``800us`` or ``20`` (ms) in milliseconds.

    Raises:
        UserError: naming the value and the accepted forms.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e-?\d+)?)\s*(ns|us|µs|ms|s|)\s*", text.lower())
    if not m:
        raise UserError(f"latency {text!r} is not a duration: write it like 20ms, 0.5s or 800us")
    return float(m.group(1)) * _TIME[m.group(2)]


def parse_mb(text: str) -> float:
    """A size like ``256MB``, ``1GiB``, ``512KB`` or ``256`` (MiB) in MiB (2**20 bytes).

    Like the reports, MB means MiB (2**20 bytes) here, and KB KiB, GB GiB.

    Raises:
        UserError: naming the value and the accepted forms.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(b|kb|kib|mb|mib|gb|gib|)\s*", text.lower())
    if not m:
        raise UserError(f"memory {text!r} is not a size: write it like 256MB, 1GiB or 512KiB")
    return float(m.group(1)) * _SIZE[m.group(2)]


@dataclass
class Option:
    """One (board, variant) of the model with its latest figures and why it fails, if it does."""

    board: str
    variant: str
    run_id: str
    p90_ms: float
    top1: float | None
    peak_mb: float | None
    cost: float | None
    power_w: float | None
    reasons: list[str] = field(default_factory=list)


def latest_rows(results: Path, model: str) -> list[dict[str, Any]]:
    """The newest successful measurement of each (board, variant) of ``model`` in the index."""
    from edgebench.results.index import query, sync

    sync(results)
    rows = query(
        results,
        "SELECT r.board, r.variant, r.run_id, r.p90, r.top1, r.peak_rss, u.started FROM rows r "
        "JOIN runs u ON u.run_id = r.run_id WHERE r.model=? AND r.ok=1 ORDER BY u.started, u.run_id",
        (model,),
    )
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for board, variant, rid, p90, top1, peak, _ in rows:
        latest[(board, variant)] = {"board": board, "variant": variant, "run_id": rid, "p90_ms": p90, "top1": top1,
                                    "peak_mb": None if peak is None else peak / 2**20}  # fmt: skip
    return [latest[k] for k in sorted(latest)]


def choose(
    results: Path,
    model: str,
    inventory: Mapping[str, Board],
    *,
    max_p90_ms: float | None = None,
    min_accuracy: float | None = None,
    max_memory_mb: float | None = None,
    rank: str = "cost",
) -> dict[str, Any]:
    """Rank the (board, variant) options of a model that meet the constraints.

    Returns:
        ``{"model", "constraints", "rank", "chosen": [Option...], "rejected": [Option...]}``
        as plain data; ``chosen`` is best first.

    Raises:
        UserError: when the model has no stored results, or ``rank`` is unknown.
    """
    from edgebench.results.index import query

    if rank not in RANKS:
        raise UserError(f"unknown rank {rank!r}: choose one of {', '.join(RANKS)}")
    rows = latest_rows(results, model)
    if not rows:
        known = [r[0] for r in query(results, "SELECT DISTINCT model FROM rows WHERE ok=1 ORDER BY model")]
        raise UserError(
            f"model {model!r} has no successful results in {results}: "
            + (f"stored models are {', '.join(known)}" if known else "measure it first (edgebench run)")
        )
    chosen: list[Option] = []
    rejected: list[Option] = []
    for r in rows:
        b = inventory.get(r["board"])
        o = Option(**r, cost=b.cost if b else None, power_w=b.power_w if b else None)
        if max_p90_ms is not None and o.p90_ms > max_p90_ms:
            o.reasons.append(f"p90 {o.p90_ms:.3g} ms > {max_p90_ms:g} ms")
        if min_accuracy is not None:
            if o.top1 is None:
                o.reasons.append("top-1 not measured (run with eval data)")
            elif o.top1 < min_accuracy:
                o.reasons.append(f"top-1 {o.top1:.2%} < {min_accuracy:.2%}")
        if max_memory_mb is not None:
            if o.peak_mb is None:
                o.reasons.append("peak memory not measured")
            elif o.peak_mb > max_memory_mb:
                o.reasons.append(f"peak {o.peak_mb:.0f} MB > {max_memory_mb:g} MB")
        if b is None:
            o.reasons.append("board not in the inventory (retired or renamed?)")
        (rejected if o.reasons else chosen).append(o)

    def key(o: Option) -> tuple[float, float]:
        primary = {"cost": o.cost, "power": o.power_w, "latency": o.p90_ms}[rank]
        return (math.inf if primary is None else primary, o.p90_ms)

    chosen.sort(key=key)
    return {
        "model": model,
        "rank": rank,
        "constraints": {"max_p90_ms": max_p90_ms, "min_accuracy": min_accuracy, "max_memory_mb": max_memory_mb},
        "chosen": [asdict(o) for o in chosen],
        "rejected": [asdict(o) for o in rejected],
    }


def _n(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


class Choice:
    """A rich renderable of `choose` output."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The ranked options, then the rejected ones with their reasons."""
        d = self.data
        c = d["constraints"]
        want = [f"p90 <= {c['max_p90_ms']:g} ms" if c["max_p90_ms"] is not None else "",
                f"top-1 >= {c['min_accuracy']:.2%}" if c["min_accuracy"] is not None else "",
                f"peak <= {c['max_memory_mb']:g} MB" if c["max_memory_mb"] is not None else ""]  # fmt: skip
        yield f"[bold]{d['model']}[/bold]: {', '.join(w for w in want if w) or 'no constraints'}; ranked by {d['rank']}"
        if d["chosen"]:
            t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for col in ("#", "board", "variant", "p90 ms", "top-1", "peak MB", "cost", "power W", "run"):
                t.add_column(col, justify="right" if col not in ("board", "variant", "run") else "left")
            for i, o in enumerate(d["chosen"], 1):
                figures = (f"{o['p90_ms']:.3g}", _n(o["top1"], ".2%"), _n(o["peak_mb"], ".0f"), _n(o["cost"], ",.0f"))
                t.add_row(str(i), o["board"], o["variant"], *figures, _n(o["power_w"], ".1f"), o["run_id"])
            yield t
            best = d["chosen"][0]
            yield f"[green]choose {best['board']} with {best['variant']}[/green]"
        else:
            yield "[red]nothing meets the constraints[/red]"
        for o in d["rejected"]:
            yield f"  [dim]{o['board']}/{o['variant']}:[/dim] {'; '.join(o['reasons'])}"
