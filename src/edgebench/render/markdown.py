"""Markdown renderings (for pull-request comments): report, comparison, gate."""

from __future__ import annotations

from typing import Any

from edgebench.render.report import _mb, _size, fmt_ms, fmt_pct, fmt_ratio

VERDICT_ICON = {"worth it": "✅", "worth it for size": "📦", "not worth it": "❌", "undecided": "❔"}


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table (pipes in cells escaped)."""

    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report_markdown(d: dict[str, Any]) -> str:
    """The run report as Markdown."""
    state = "complete" if d["complete"] else "**incomplete**"
    out = [f"## edgebench run `{d['run_id']}`", "", f"{d.get('command')}, {d.get('started')}, {state}", ""]
    for mm in d["models"]:
        out += [f"### {mm['model']}", ""]
        rows = []
        for r in mm["rows"]:
            if not r["ok"]:
                rows.append([r["board"], r["variant"], f"failed: {r.get('error')}"] + [""] * 10)
                continue
            rows.append([
                r["board"], r["variant"], fmt_ms(r["p50_ms"]), fmt_ms(r["p90_ms"]), fmt_ms(r["p99_ms"]),
                f"{r['throughput']:,.0f}", _mb(r["peak_rss"]), fmt_pct(r["top1"]), fmt_pct(r["fidelity"]),
                _size(r["bytes"]), fmt_ratio(r["speedup"]), fmt_ratio(r["size_ratio"]), "★" if r.get("pareto") else "",
            ])  # fmt: skip
        hdr = ["board", "variant", "p50 ms", "p90 ms", "p99 ms", "inf/s", "peak MB", "top-1", "fidelity", "size"]
        out += [table([*hdr, "speedup", "size ratio", "Pareto"], rows), ""]
        out += [
            f"- {VERDICT_ICON[r['verdict']]} {r['board']}: {r['verdict_text']}" for r in mm["rows"] if r.get("verdict")
        ]
        out += [f"- Pareto (top-1 vs p90) on {b}: {', '.join(n) or '-'}" for b, n in mm["pareto"].items()]
        out.append("")
    if d.get("trends"):
        out += ["### Trends", ""]
        rows = [
            [t["board"], t["model"], t["variant"], t["metric"], f"`{t['sparkline']}`", ", ".join(t["changes"]) or "-"]
            for t in d["trends"]
        ]
        out += [table(["board", "model", "variant", "metric", "trend", "change points"], rows), ""]
    out += [f"> ⚠️ {w}" for w in d["warnings"]]
    return "\n".join(out).rstrip() + "\n"
