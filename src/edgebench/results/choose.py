"""`edgebench choose`: which board and variant to buy/ship, from stored results and the inventory.

For a model, the latest successful measurement of every (board, variant) is taken from
the index; candidates that meet every constraint are ranked by board cost, board power
p90 latency, or energy per inference; the others are listed with every reason they fail. A degraded variant (an
output's cosine to its fp32 parent's below the run's ``min_cosine``; without a board-side cosine, its manifest's
from compress) is never a candidate. Each constraint is
decided by `edgebench.results.gate.check_limit`, the function `edgebench gate` uses:
a p90 that gate calls undecided against a limit does not fit here either. Inventory
boards with no result for the model are listed apart.

``--rank energy`` orders by mJ per inference of the option's latest measurement, from its
``run --sustained`` timeline's power sensors (`edgebench.results.sustained.energy_figure`: the
widest domain the board read); an option without a figure (no power sensor on the board, or no
sustained run) still fits, says why in ``energy_note`` and is ranked after every option with one.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

from edgebench.errors import UserError
from edgebench.model import MIB, BoardCost, CheckVerdict, Choice, Measurement, Option, Run
from edgebench.results.analysis import fidelity_of
from edgebench.results.backend import Results, open_run, query, sync
from edgebench.results.gate import check_limit
from edgebench.results.sustained import energy_figure

RANKS = ("cost", "power", "latency", "energy")
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
    """A size like ``256MiB``, ``1GiB``, ``512KiB`` or ``256`` (MiB) in MiB (2**20 bytes).

    Like the reports, MB means MiB (2**20 bytes) here, and KB KiB, GB GiB.

    Raises:
        UserError: naming the value and the accepted forms.
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(b|kb|kib|mb|mib|gb|gib|)\s*", text.lower())
    if not m:
        raise UserError(f"memory {text!r} is not a size: write it like 256MiB, 1GiB or 512KiB")
    return float(m.group(1)) * _SIZE[m.group(2)]


def latest_rows(results: Results, model: str) -> list[Option]:
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
    results: Results,
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
    runs: dict[str, Run] = {}
    limits = {"max_p90_ms": max_p90_ms, "min_accuracy": min_accuracy, "max_peak_mb": max_memory_mb}
    chosen: list[Option] = []
    rejected: list[Option] = []
    for r in rows:
        b = boards.get(r.board)
        m = _measurement(results, runs, r, model)
        reasons = [x for name, lim in limits.items() if lim is not None and (x := _reason(m, name, lim))]
        fid = fidelity_of(m)  # the board's, else the manifest's (a run without eval data)
        if fid.degraded:  # fast because its outputs are wrong: not an option
            reasons.append(f"degraded: {fid.words()}")
        if b is None:
            reasons.append("board not in the inventory (retired or renamed?)")
        cost, power = (None, None) if b is None else (b.cost, b.power_w)
        e = energy_figure(m.timeline)
        o = dataclasses.replace(r, cost=cost, power_w=power, reasons=tuple(reasons), energy_mj=e.mj, energy_note=e.note)
        (rejected if o.reasons else chosen).append(o)
    measured = {r.board for r in rows}
    unmeasured = tuple(sorted(set(boards) - measured))

    def key(o: Option) -> tuple[float, float]:
        primary = {"cost": o.cost, "power": o.power_w, "latency": o.p90_ms, "energy": o.energy_mj}[rank]
        return (math.inf if primary is None else primary, o.p90_ms)

    chosen.sort(key=key)
    return Choice(
        model, rank, max_p90_ms, min_accuracy, max_memory_mb, tuple(chosen), tuple(rejected), unmeasured=unmeasured
    )


def _measurement(results: Results, runs: dict[str, Run], row: Option, model: str) -> Measurement:
    """The stored measurement behind an index row (each run file read once)."""
    if row.run_id not in runs:
        runs[row.run_id] = open_run(results, row.run_id, "delete the file or rebuild the index")
    return next(m for m in runs[row.run_id].measurements if m.key == (row.board, model, row.variant))


_WHAT = {"max_p90_ms": ("p90", "ms", ">"), "min_accuracy": ("top-1", "", "<"), "max_peak_mb": ("peak", "MiB", ">")}


def _reason(m: Measurement, name: str, limit: float) -> str | None:
    """Why ``m`` does not fit ``limit`` (None when it does), from the gate's own decision."""
    c = check_limit(m, name, limit)
    if c.verdict is CheckVerdict.PASS:
        return None
    what, unit, sign = _WHAT[name]
    if c.measured is None:
        return c.note or f"{what} not measured"
    if name == "min_accuracy":
        got, want = f"{c.measured:.2%}", f"{limit:.2%}"
    else:
        got, want = f"{c.measured:.3g} {unit}", f"{limit:g} {unit}"
    if c.verdict is CheckVerdict.UNDECIDED:
        return f"{what} {got} undecided against {want} ({c.note})"
    return f"{what} {got} {sign} {want}"
