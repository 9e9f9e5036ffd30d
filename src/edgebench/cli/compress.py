"""`edgebench compress` and `edgebench variants`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from edgebench.cli.common import EXIT_CODES, console, json_option, main, old_name, print_json
from edgebench.cli.compress_support import list_passes_cmd, run_compress
from edgebench.compress.metrics import FLOPS_DEFINITION
from edgebench.compress.variant import list_variants
from edgebench.errors import UserError
from edgebench.render.variants import VariantTable, variant_row


@main.command(epilog=EXIT_CODES)
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--variants",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Variants folder to write (default: the recipe's `out`, else variants/ beside it).",
)
@old_name("--out", "--variants", "out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rebuild variants even when their inputs and parameters are unchanged.")
@click.option("--list-passes", is_flag=True, help="List the passes and their parameters, then exit.")
@json_option
def compress(recipe: Path | None, out: Path | None, force: bool, list_passes: bool, as_json: bool) -> None:
    """Make the variants a TOML RECIPE asks for: variants/<model>/<variant>/{model.*, manifest.json}.

    Everything (passes, parameters, files, data) is checked before the first variant is
    written; unchanged variants (same content hash) are skipped; a failing variant leaves
    no folder behind and makes the exit code 1.
    """
    if list_passes:
        list_passes_cmd(console(), as_json)
        return
    if recipe is None:
        raise click.UsageError("give a RECIPE (a .toml file) or --list-passes")
    run_compress(recipe, out, force, as_json, Console(stderr=True) if as_json else console())


@main.command(epilog="MFLOP: " + FLOPS_DEFINITION + ".\n\n" + EXIT_CODES)
@click.option(
    "--variants",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("variants"),
    show_default=True,
    help="Variants folder, as `edgebench compress` writes it.",
)
@old_name("--root", "--variants", "root", type=click.Path(file_okay=False, path_type=Path))
@json_option
def variants(root: Path, as_json: bool) -> None:
    """List the variants in the --variants folder with size, FLOPs, sparsity, accuracy and fidelity."""
    if not root.is_dir():  # read-only: a mistyped path is an error, never a new folder
        raise UserError(f"variants folder {root} does not exist: give --variants the folder `edgebench compress` wrote")
    found = list_variants(root)
    if as_json:
        print_json({"root": str(root), "variants": [variant_row(v) for v in found]})
        return
    if not found:
        console().print(f"no variants under {root}: make some with `edgebench compress RECIPE`")
        return
    console().print(VariantTable(found))
