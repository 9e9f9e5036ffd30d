"""`VariantTable`: the variants under a root as a rich table (and as plain rows for ``--json``)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from edgebench.compress.variant import Variant


def _kb(n: Any) -> str:
    return f"{n / 1024:.1f}" if isinstance(n, (int, float)) else "-"


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}" if isinstance(x, (int, float)) else "-"


def variant_row(v: Variant) -> dict[str, Any]:
    """The fields of a variant shown by `edgebench variants` (also its ``--json`` form)."""
    m, extra = v.manifest, v.manifest.extra
    fid = extra.get("fidelity") or {}
    return {
        "model": v.model,
        "variant": v.name,
        "format": v.format,
        "passes": " → ".join(p.name for p in m.passes) or "-",
        "bytes": m.bytes,
        "zip_bytes": extra.get("zip_bytes"),
        "params": m.params,
        "flops": m.flops,
        "sparsity": extra.get("sparsity", extra.get("weight_sparsity")),
        "top1": m.accuracy,
        "top1_agreement": fid.get("top1_agreement"),
        "max_abs_diff": fid.get("max_abs_diff"),
        "cosine": fid.get("cosine"),  # the worst output's cosine to the parent's
        "degraded": extra.get("degraded"),  # cosine below the threshold: outputs too far from the parent's
        "sha256": v.sha256,
        "path": str(v.path),
        "not_compressed": extra.get("not_compressed"),  # why a quantized variant gained nothing (None: it did)
    }


class VariantTable:
    """Renders variants; agree% and max|Δ| compare each with its fp32 parent (``--json`` adds the pass chain)."""

    def __init__(self, variants: list[Variant]) -> None:
        self.rows = [variant_row(v) for v in variants]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        t = Table(title="variants", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False)
        for col, just in [
            ("model", "left"), ("variant", "left"), ("fmt", "left"), ("KiB", "right"), ("zip", "right"),
            ("MFLOP", "right"), ("sparse%", "right"), ("top1%", "right"), ("agree%", "right"), ("max|Δ|", "right"),
        ]:  # fmt: skip
            t.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
        for r in self.rows:
            flops = r["flops"]
            t.add_row(
                r["model"],
                r["variant"],
                r["format"],
                _kb(r["bytes"]),
                _kb(r["zip_bytes"]),
                f"{flops / 1e6:.2f}" if isinstance(flops, (int, float)) else "-",
                _pct(r["sparsity"]),
                _pct(r["top1"]),
                _pct(r["top1_agreement"]),
                f"{r['max_abs_diff']:.3g}" if isinstance(r["max_abs_diff"], float) else "-",
            )
        yield t
