"""`edgebench choose`: which board and variant to buy/ship, from stored results and the inventory.

For a model, the latest successful measurement of every (board, variant) is taken from
the index; candidates that meet every constraint are ranked by board cost, board power
or p90 latency; the others are listed with every reason they fail.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path

from edgebench.errors import UserError
from edgebench.model import MIB, BoardCost, Choice, Option
from edgebench.results.index import query
from edgebench.results.store import sync

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


def latest_rows(results: Path, model: str) -> list[Option]:
    """The newest successful measurement of each (board, variant) of ``model`` in the index (no costs)."""
    sync(results)
    rows = query(
        results,
        "SELECT r.board, r.variant, r.run_id, r.p90, r.top1, r.peak_rss, u.started FROM rows r "
        "JOIN runs u ON u.run_id = r.run_id WHERE r.model=? AND r.ok=1 ORDER BY u.started, u.run_id",
        (model,),
    )
    latest: dict[tuple[str, str], Option] = {}
    for board, variant, rid, p90, top1, peak, _ in rows:
        latest[(board, variant)] = Option(board, variant, rid, p90, top1, None if peak is None else peak / MIB,
                                          cost=None, power_w=None)  # fmt: skip
    return [latest[k] for k in sorted(latest)]


def choose(
    results: Path,
    model: str,
    boards: Mapping[str, BoardCost],
    *,
    max_p90_ms: float | None = None,
    min_accuracy: float | None = None,
    max_memory_mb: float | None = None,
    rank: str = "cost",
) -> Choice:
    """Rank the (board, variant) options of a model that meet the constraints.

    Args:
        boards: the inventory's boards with their cost and power; a measured board
            missing here is rejected (retired or renamed).

    Returns:
        The options that meet every constraint, best first, and the others with their reasons.

    Raises:
        UserError: when the model has no stored results, or ``rank`` is unknown.
    """
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
        b = boards.get(r.board)
        reasons = []
        if max_p90_ms is not None and r.p90_ms > max_p90_ms:
            reasons.append(f"p90 {r.p90_ms:.3g} ms > {max_p90_ms:g} ms")
        if min_accuracy is not None:
            if r.top1 is None:
                reasons.append("top-1 not measured (run with eval data)")
            elif r.top1 < min_accuracy:
                reasons.append(f"top-1 {r.top1:.2%} < {min_accuracy:.2%}")
        if max_memory_mb is not None:
            if r.peak_mb is None:
                reasons.append("peak memory not measured")
            elif r.peak_mb > max_memory_mb:
                reasons.append(f"peak {r.peak_mb:.0f} MB > {max_memory_mb:g} MB")
        if b is None:
            reasons.append("board not in the inventory (retired or renamed?)")
        cost, power = (None, None) if b is None else (b.cost, b.power_w)
        o = dataclasses.replace(r, cost=cost, power_w=power, reasons=tuple(reasons))
        (rejected if o.reasons else chosen).append(o)

    def key(o: Option) -> tuple[float, float]:
        primary = {"cost": o.cost, "power": o.power_w, "latency": o.p90_ms}[rank]
        return (math.inf if primary is None else primary, o.p90_ms)

    chosen.sort(key=key)
    return Choice(model, rank, max_p90_ms, min_accuracy, max_memory_mb, tuple(chosen), tuple(rejected))
