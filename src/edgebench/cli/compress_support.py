"""What `edgebench compress` does between parsing and printing: progress bar, summary, exit status."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgebench.cli.common import print_json
from edgebench.compress.passes import describe_passes
from edgebench.compress.recipe import run_recipe
from edgebench.errors import UserError
from edgebench.render.variants import variant_row
from edgebench.workflows import recipes


def list_passes_cmd(con: Console, as_json: bool) -> None:
    """Print every pass with its formats and parameters."""
    passes = describe_passes()
    if as_json:
        print_json({"passes": passes})
        return
    t = Table(title="passes")
    for c in ("pass", "takes → makes", "parameters (default)"):
        t.add_column(c)
    for p in passes:
        ps = "\n".join(f"{d['name']} ({d['type']} = {d.get('default')!r}): {d['help']}" for d in p["params"])
        t.add_row(f"{p['pass']}\n[dim]{p['summary']}[/dim]", f"{', '.join(p['accepts'])} → {p['produces']}", ps)
    con.print(t)


def run_compress(recipe_path: Path, out: Path | None, force: bool, as_json: bool, con: Console) -> None:
    """Check the recipe, make its variants with a progress bar, print a summary.

    Raises:
        UserError: a bad recipe, model or data (before any work), or failed variants (after the rest ran).
    """
    logging.getLogger().setLevel(logging.ERROR)  # ONNX Runtime's quantizer logs advice at WARNING
    recipe = recipes.load(recipe_path, out)
    for note in recipe.warnings:
        click.echo(f"warning: {note}", err=True)
    status: dict[str, str] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=con, transient=False) as progress, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = progress.add_task("compress", total=recipe.count())

        def step(msg: str) -> None:
            progress.update(task, description=msg[:70])

        def done(key: str, how: str) -> None:
            status[key] = how
            progress.advance(task)

        res = run_recipe(recipe, force=force, on_step=step, on_done=done)
        progress.update(task, description="compress: done")
    rows: list[dict[str, Any]] = []
    for v in res.built + res.skipped:
        row = variant_row(v)
        how = status.get(f"{v.model}/{v.name}", "built")
        if row["degraded"]:  # built, but its outputs are far from its parent's
            how = f"{how}, DEGRADED"
            row["error"] = f"degraded: cosine {row['cosine']:.4f} to its parent's outputs"
        if row["not_compressed"]:  # built, but not counted as a compressed variant: say why
            how, row["error"] = f"{how}, no gain", "not compressed: " + "; ".join(row["not_compressed"])
        rows.append({**row, "status": how})
    for key, err in res.failed.items():
        model, _, name = key.partition("/")
        rows.append({"model": model, "variant": name, "status": "failed", "error": err})
    if as_json:
        print_json({"out": str(recipe.out), "variants": rows})
    else:
        t = Table(title=f"variants in {recipe.out}", box=box.SIMPLE_HEAD, show_edge=False)
        for c in ("model", "variant", "status", "KiB", "top-1 %", "cosine", "note"):
            t.add_column(c)
        for r in rows:
            top1 = r.get("top1")
            cos = r.get("cosine")
            t.add_row(
                r["model"],
                r["variant"],
                r["status"],
                f"{r['bytes'] / 1024:.1f}" if r.get("bytes") else "-",
                f"{100 * top1:.2f}" if isinstance(top1, float) else "-",
                f"{cos:.4f}" if isinstance(cos, float) else "-",
                r.get("error", ""),
            )
        con.print(t)
    if res.failed:
        first = next(iter(res.failed.items()))
        raise UserError(f"{len(res.failed)} variant(s) failed, first {first[0]}: {first[1]}")
