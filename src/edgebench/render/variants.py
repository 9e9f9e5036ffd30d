"""`VariantTable`: the variants under a root as a rich table (and as plain rows for ``--json``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from edgebench.compress.variant import Variant
from edgebench.render.widths import dropped_note, fit_table


def _kb(n: Any) -> str:
    return f"{n / 1024:.1f}" if isinstance(n, (int, float)) else "-"


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}" if isinstance(x, (int, float)) else "-"


@dataclass(frozen=True, slots=True)
class VariantRow:
    """The fields of a variant shown by `edgebench variants` (`to_json`: its ``--json`` form)."""

    model: str
    variant: str
    format: str
    passes: str
    bytes: int
    zip_bytes: Any
    params: int | None
    flops: int | None
    sparsity: Any
    top1: float | None
    top1_agreement: Any
    max_abs_diff: Any
    cosine: Any  # the worst output's cosine to the parent's
    degraded: Any  # cosine below the threshold: outputs too far from the parent's
    sha256: str
    path: str
    not_compressed: Any  # why a quantized variant gained nothing (None: it did)

    @classmethod
    def of(cls, v: Variant) -> VariantRow:
        """The row of ``v``, from its manifest (the figures its JSON holds, as they are)."""
        m, extra = v.manifest, v.manifest.extra
        fid = extra.get("fidelity") or {}
        return cls(
            model=v.model,
            variant=v.name,
            format=v.format,
            passes=" → ".join(p.name for p in m.passes) or "-",
            bytes=m.bytes,
            zip_bytes=extra.get("zip_bytes"),
            params=m.params,
            flops=m.flops,
            sparsity=extra.get("sparsity", extra.get("weight_sparsity")),
            top1=m.accuracy,
            top1_agreement=fid.get("top1_agreement"),
            max_abs_diff=fid.get("max_abs_diff"),
            cosine=fid.get("cosine"),
            degraded=extra.get("degraded"),
            sha256=v.sha256,
            path=str(v.path),
            not_compressed=extra.get("not_compressed"),
        )

    def to_json(self) -> dict[str, Any]:
        """The row as ``--json`` prints it."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def variant_row(v: Variant) -> dict[str, Any]:
    """The fields of a variant shown by `edgebench variants`, as JSON (``--json``; `VariantRow`)."""
    return VariantRow.of(v).to_json()


def _cosine(r: VariantRow) -> str:
    """The worst output's cosine to the parent's (4 decimals), ``degraded`` when the manifest says so."""
    c = r.cosine
    text = f"{c:.4f}" if isinstance(c, (int, float)) else "-"
    return f"[red]{text} degraded[/red]" if r.degraded else text


def _mflop(r: VariantRow) -> str:
    flops = r.flops
    return f"{flops / 1e6:.2f}" if isinstance(flops, (int, float)) else "-"


COLUMNS: tuple[tuple[str, Callable[[VariantRow], str]], ...] = (
    ("model", lambda r: str(r.model)),
    ("variant", lambda r: str(r.variant)),
    ("fmt", lambda r: str(r.format)),
    ("KiB", lambda r: _kb(r.bytes)),
    ("zip", lambda r: _kb(r.zip_bytes)),
    ("MFLOP", _mflop),
    ("sparse%", lambda r: _pct(r.sparsity)),
    ("top1%", lambda r: _pct(r.top1)),
    ("agree%", lambda r: _pct(r.top1_agreement)),
    ("max|Δ|", lambda r: f"{r.max_abs_diff:.3g}" if isinstance(r.max_abs_diff, float) else "-"),
    ("cosine", _cosine),
)
TEXT = ("model", "variant", "fmt")
DROP_ORDER = ("zip", "sparse%", "agree%", "max|Δ|", "fmt", "MFLOP", "top1%")  # least important first


class VariantTable:
    """Renders variants; agree%, max|Δ| and cosine compare each with its fp32 parent, host-side at compress time
    (``--json`` adds the pass chain); the degraded ones are marked and named under the table."""

    def __init__(self, variants: list[Variant]) -> None:
        self.rows = [VariantRow.of(v) for v in variants]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The table (columns that do not fit the width dropped, least important first), then the degraded."""

        def make(shown: Sequence[str]) -> Table:
            t = Table(title="variants", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0), pad_edge=False)
            for col in shown:  # names fold, figures are never cut
                name = col in ("model", "variant")
                t.add_column(col, justify="left" if col in TEXT else "right", no_wrap=not name, overflow="fold")
            for r in self.rows:
                cells = {h: cell(r) for h, cell in COLUMNS}
                t.add_row(*(cells[h] for h in shown))
            return t

        t, dropped = fit_table(make, [h for h, _ in COLUMNS], DROP_ORDER, console, options)
        yield t
        if dropped:
            yield dropped_note(dropped)
        bad = [f"{r.model}/{r.variant}" for r in self.rows if r.degraded]
        if bad:
            yield (
                f"[red]degraded: {', '.join(bad)}[/red]: their outputs are far from their parent's (cosine below "
                "the recipe's min_cosine, host-side at compress time): reports call them degraded, never worth it"
            )
