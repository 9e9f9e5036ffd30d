"""What a run says: per model, board x variant figures, ratios to fp32, verdicts, Pareto sets.

`analyze_run` turns a run into plain data (JSON-ready); the renderers (rich in
`report.py`, Markdown in `markdown.py`, HTML in `html.py`) only format it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from edgebench.results.index import accuracy_of, fidelity_of, peak_of
from edgebench.results.significance import FASTER, NO_CHANGE, SLOWER, compare_quantile
from edgebench.results.stats import HIGH_CV, PROCESS_SPREAD, is_noisy

BASELINE = "fp32"
MAX_ACC_DROP_PT = 1.0  # a variant that loses more accuracy than this is not worth it
SMALLER_FOR_SIZE = 0.5  # at equal speed, a variant at most half the size is worth it for size


def samples_ms(run: dict[str, Any]) -> dict[tuple[str, str, str], np.ndarray]:
    """Raw per-inference samples (ms) of each successful (board, model, variant) of a run."""
    out = {}
    for b in run["benchmarks"]:
        e = b["extra_info"]
        out[(e["board"], e["model"], e["variant"])] = np.asarray(b["stats"]["data"], dtype=np.float64) * 1e3
    return out


def histogram(ms: np.ndarray, bins: int = 40) -> dict[str, Any]:
    """A histogram of latency samples from the minimum to the 99th percentile (the tail is counted apart)."""
    lo, hi = float(ms.min()), float(np.percentile(ms, 99))
    if hi <= lo:
        hi = lo + max(lo * 1e-3, 1e-9)
    counts, _ = np.histogram(ms, bins=bins, range=(lo, hi))
    return {"lo_ms": lo, "hi_ms": hi, "counts": counts.tolist(), "above": int((ms > hi).sum())}


def pareto(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points not dominated in (lower latency, higher accuracy).

    Args:
        points: ``(name, p90_ms, accuracy)``.
    """
    keep = []
    for name, lat, acc in points:
        dominated = any(
            (lat2 <= lat and acc2 >= acc) and (lat2 < lat or acc2 > acc) for n2, lat2, acc2 in points if n2 != name
        )
        if not dominated:
            keep.append(name)
    return keep


def _fmt_factor(f: float) -> str:
    return f"{f:.1f}x" if f < 10 else f"{f:.0f}x"


def _by(f: float, what: str) -> str:
    """``1.7x faster`` or, under 1.1x, ``4% faster``."""
    return f"{(f - 1) * 100:.0f}% {what}" if f < 1.095 else f"{_fmt_factor(f)} {what}"


def verdict(
    variant: str,
    speed: str,
    speedup: float,
    acc_delta_pt: float | None,
    size_ratio: float | None,
    max_drop_pt: float = MAX_ACC_DROP_PT,
) -> tuple[str, str]:
    """The verdict on a variant against fp32 on the same board.

    Args:
        speed: the significance label of its median latency against fp32.
        speedup: fp32 p50 / variant p50.

    Returns:
        ``(kind, text)``: kind is ``worth it``, ``worth it for size``, ``not worth it`` or
        ``undecided``; text reads like ``int8-static: 1.7x faster, -0.3 pt: worth it``.
    """
    acc = "" if acc_delta_pt is None else f", {acc_delta_pt:+.1f} pt"
    too_lossy = acc_delta_pt is not None and acc_delta_pt < -max_drop_pt
    if speed == SLOWER:
        return "not worth it", f"{variant}: {_by(1 / speedup, 'slower')} here{acc}: not worth it"
    if speed == FASTER:
        kind = "not worth it" if too_lossy else "worth it"
        why = f" (loses more than {max_drop_pt:g} pt)" if too_lossy else ""
        return kind, f"{variant}: {_by(speedup, 'faster')}{acc}: {kind}{why}"
    smaller = size_ratio is not None and size_ratio <= SMALLER_FOR_SIZE
    size = f", {_fmt_factor(1 / size_ratio)} smaller" if smaller and size_ratio else ""
    if speed == NO_CHANGE:
        kind = "not worth it" if too_lossy or not smaller else "worth it for size"
        return kind, f"{variant}: same speed{size}{acc}: {kind}"
    return "undecided", f"{variant}: too noisy to tell ({_fmt_factor(speedup)} at the median){acc}: measure longer"


def analyze_run(run: dict[str, Any], *, max_drop_pt: float = MAX_ACC_DROP_PT) -> dict[str, Any]:
    """The report data of a run (see the module docstring)."""
    eb = run["edgebench"]
    samples = samples_ms(run)
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    from edgebench.results.schema import measurements

    for m in measurements(run):
        s = m.get("summary") or {}
        row: dict[str, Any] = {
            "board": m.get("board"),
            "variant": m.get("variant"),
            "ok": bool(m.get("ok")),
            "p50_ms": s.get("p50_ms"),
            "p90_ms": s.get("p90_ms"),
            "p99_ms": s.get("p99_ms"),
            "throughput": s.get("throughput"),
            "rounds": s.get("rounds"),
            "cv": s.get("cv"),
            "peak_rss": peak_of(m),
            "top1": accuracy_of(m),
            "fidelity": fidelity_of(m),
            "bytes": m.get("bytes"),
            "process_spread": m.get("process_spread"),
        }
        if not row["ok"]:
            err = m.get("error") or {}
            row["error"] = err.get("message", str(err)) if isinstance(err, dict) else str(err)
        by_model[str(m.get("model"))].append(row)
    models = []
    for model in sorted(by_model):
        rows = sorted(by_model[model], key=lambda r: (r["board"], r["variant"] != BASELINE, r["variant"]))
        base = {r["board"]: r for r in rows if r["variant"] == BASELINE and r["ok"]}
        for r in rows:
            if r["ok"]:
                r["hist"] = histogram(samples[(r["board"], model, r["variant"])])
            b = base.get(r["board"])
            r["speedup"] = r["size_ratio"] = r["acc_delta_pt"] = r["verdict"] = r["verdict_text"] = None
            if not r["ok"] or b is None or r is b:
                continue
            r["speedup"] = b["p50_ms"] / r["p50_ms"] if r["p50_ms"] else None
            if b["bytes"] and r["bytes"]:
                r["size_ratio"] = r["bytes"] / b["bytes"]
            if b["top1"] is not None and r["top1"] is not None:
                r["acc_delta_pt"] = (r["top1"] - b["top1"]) * 100
            chg = compare_quantile(
                samples[(r["board"], model, BASELINE)], samples[(r["board"], model, r["variant"])], 0.5
            )
            r["speed"] = chg.label
            r["verdict"], r["verdict_text"] = verdict(
                r["variant"], chg.label, r["speedup"] or 0.0, r["acc_delta_pt"], r["size_ratio"], max_drop_pt
            )
        front = {}
        for board in sorted({r["board"] for r in rows}):
            pts = [
                (r["variant"], r["p90_ms"], r["top1"])
                for r in rows
                if r["board"] == board and r["ok"] and r["top1"] is not None
            ]
            front[board] = pareto(pts)
            for r in rows:
                if r["board"] == board:
                    r["pareto"] = r["variant"] in front[board]
        models.append({"model": model, "rows": rows, "pareto": front})
    noisy = [
        f"{r['board']}/{mm['model']}/{r['variant']} ({r['cv']:.0%})"
        for mm in models
        for r in mm["rows"]
        if r["ok"] and is_noisy(r)
    ]
    warnings = []
    if noisy:
        warnings.append(
            f"latency varies a lot (CV above {HIGH_CV:.0%}) on {', '.join(noisy)}: p99 and the mean are unreliable "
            "there; idle the board, pin the CPU governor to performance, or raise --min-time"
        )
    spread = [
        f"{r['board']}/{mm['model']}/{r['variant']} ({r['process_spread']:.0%})"
        for mm in models
        for r in mm["rows"]
        if r["ok"] and (r.get("process_spread") or 0.0) > PROCESS_SPREAD
    ]
    if spread:
        warnings.append(
            f"the fresh agent processes of a variant disagree (medians more than {PROCESS_SPREAD:.0%} apart) on "
            f"{', '.join(spread)}: a per-process state moves those figures; set threads per board in boards.toml, "
            "idle the board, or raise --repeats"
        )
    if not eb.get("complete"):
        why = eb.get("interrupted") or "it did not finish"
        warnings.insert(0, f"run {eb['run_id']} is incomplete ({why}): figures cover what finished")
    return {
        "run_id": eb["run_id"],
        "command": eb.get("command"),
        "started": eb.get("started"),
        "complete": bool(eb.get("complete")),
        "boards": sorted(eb.get("boards") or {}),
        "models": models,
        "warnings": warnings,
    }
