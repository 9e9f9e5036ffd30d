"""`edgebench compare A B`: what changed between two runs, with significance on the raw samples."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from edgebench.results.analysis import samples_ms
from edgebench.results.index import accuracy_of, peak_of
from edgebench.results.schema import measurements
from edgebench.results.significance import ALPHA, MIN_EFFECT, compare_quantile, mann_whitney, overall_label

LABEL_STYLE = {"faster": "green", "slower": "red", "no change": "dim", "undecided": "yellow"}


def compare_runs(
    a: dict[str, Any], b: dict[str, Any], *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT
) -> dict[str, Any]:
    """Compare run B against run A for every (board, model, variant) measured in both.

    Returns:
        ``{"a", "b", "rows": [...], "only_a": [...], "only_b": [...], "failed": [...]}``;
        each row has ``board, model, variant, p50, p90`` (`QuantileChange.to_dict`),
        ``label`` (faster / slower / no change / undecided), ``mw_effect``,
        ``peak_mb_a/b``, ``d_peak_mb``, ``top1_a/b`` and ``d_top1_pt``.
    """
    sa, sb = samples_ms(a), samples_ms(b)
    ma = {(m["board"], m["model"], m["variant"]): m for m in measurements(a)}
    mb = {(m["board"], m["model"], m["variant"]): m for m in measurements(b)}
    rows = []
    for key in sorted(set(sa) & set(sb)):
        effect, p = mann_whitney(sa[key], sb[key])
        p50 = compare_quantile(sa[key], sb[key], 0.5, p=p, alpha=alpha, min_effect=min_effect)
        p90 = compare_quantile(sa[key], sb[key], 0.9, p=p, alpha=alpha, min_effect=min_effect)
        pa, pb = peak_of(ma[key]), peak_of(mb[key])
        ta, tb = accuracy_of(ma[key]), accuracy_of(mb[key])
        rows.append({
            "board": key[0], "model": key[1], "variant": key[2],
            "p50": p50.to_dict(), "p90": p90.to_dict(), "p_value": p, "mw_effect": effect,
            "label": overall_label([p50, p90]),
            "peak_mb_a": None if pa is None else pa / 2**20, "peak_mb_b": None if pb is None else pb / 2**20,
            "d_peak_mb": None if pa is None or pb is None else (pb - pa) / 2**20,
            "top1_a": ta, "top1_b": tb, "d_top1_pt": None if ta is None or tb is None else (tb - ta) * 100,
        })  # fmt: skip
    failed = [
        {"board": k[0], "model": k[1], "variant": k[2], "in": which}
        for which, side, ok in (("A", ma, sa), ("B", mb, sb))
        for k in sorted(side)
        if k not in ok
    ]
    return {
        "a": a["edgebench"]["run_id"],
        "b": b["edgebench"]["run_id"],
        "alpha": alpha,
        "min_effect": min_effect,
        "rows": rows,
        "only_a": [list(k) for k in sorted(set(ma) - set(mb))],
        "only_b": [list(k) for k in sorted(set(mb) - set(ma))],
        "failed": failed,
    }


def _delta(v: float | None, unit: str, digits: int = 1) -> str:
    return "-" if v is None else f"{v:+.{digits}f}{unit}"


def _q(c: dict[str, Any]) -> str:
    return f"{c['a']:.3g}→{c['b']:.3g} ({c['delta_pct']:+.1f}%)"


class Comparison:
    """A rich renderable of `compare_runs` output."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """One row per (board, model, variant); label coloured."""
        d = self.data
        t = Table(
            title=f"B = {d['b']} against A = {d['a']} (ms; Mann-Whitney + quantile CIs, alpha {d['alpha']:g}, "
            f"changes under {d['min_effect']:.0%} count as none)",
            title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0), show_edge=False,
        )  # fmt: skip
        for c in ("board", "model", "variant", "p50 A→B", "p90 A→B", "verdict", "Δpeak MB", "Δtop-1"):
            t.add_column(c, no_wrap=c != "model", justify="right" if c.startswith("Δ") else "left")
        for r in d["rows"]:
            style = LABEL_STYLE[r["label"]]
            t.add_row(
                r["board"], r["model"], r["variant"], _q(r["p50"]), _q(r["p90"]), f"[{style}]{r['label']}[/]",
                _delta(r["d_peak_mb"], ""), _delta(r["d_top1_pt"], " pt", 2),
            )  # fmt: skip
        yield t
        for k in d["only_a"]:
            yield f"[yellow]only in A: {'/'.join(k)}[/yellow]"
        for k in d["only_b"]:
            yield f"[yellow]only in B: {'/'.join(k)}[/yellow]"
        for f in d["failed"]:
            yield f"[red]failed in {f['in']}: {f['board']}/{f['model']}/{f['variant']}[/red]"


def comparison_markdown(d: dict[str, Any]) -> str:
    """`compare_runs` output as Markdown."""
    from edgebench.render.markdown import table

    icon = {"faster": "🟢", "slower": "🔴", "no change": "⚪", "undecided": "🟡"}
    rows = [
        [r["board"], r["model"], r["variant"], _q(r["p50"]), _q(r["p90"]), f"{icon[r['label']]} {r['label']}",
         _delta(r["d_peak_mb"], " MB"), _delta(r["d_top1_pt"], " pt", 2)]
        for r in d["rows"]
    ]  # fmt: skip
    hdr = ["board", "model", "variant", "p50 ms A→B", "p90 ms A→B", "verdict", "Δ peak", "Δ top-1"]
    out = [f"## edgebench compare: `{d['b']}` against `{d['a']}`", "", table(hdr, rows), ""]
    out += [f"- only in A: {'/'.join(k)}" for k in d["only_a"]] + [f"- only in B: {'/'.join(k)}" for k in d["only_b"]]
    out += [f"- failed in {f['in']}: {f['board']}/{f['model']}/{f['variant']}" for f in d["failed"]]
    return "\n".join(out).rstrip() + "\n"
