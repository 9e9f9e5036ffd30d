"""`edgebench demo`: the whole job on the local board."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import click
from rich.console import Console

from edgebench.cli.common import EXIT_CODES, console, json_option, main, print_json, results_option
from edgebench.cli.run import setting_options
from edgebench.render.report import Report
from edgebench.render.widths import plain_width
from edgebench.results.analysis import analyze_run
from edgebench.workflows.demo import run_demo


@main.command(epilog=EXIT_CODES)
@results_option
@json_option
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(1, 200), help="Training epochs.")
@functools.partial(setting_options, only=("min_time_s",))  # run's --min-time: one declaration, one default
def demo(results: Path, as_json: bool, epochs: int, min_time_s: float) -> None:
    """Run the whole job on this machine: train the digits CNN, make its variants,
    measure each on the built-in `local` board, profile them, store the run and print the
    table and why int8-dynamic is slower here."""
    con = Console(stderr=True, width=plain_width(os.environ)) if as_json else console()
    res = run_demo(results, con, epochs=epochs, min_time_s=min_time_s)
    if as_json:
        doc = {"run_file": str(res.run_file), "seconds": res.seconds, "why_slower": res.why_slower}
        print_json({**doc, "run": res.run.to_json()})
        return
    con.print(Report(analyze_run(res.run)))
    if res.why_slower:
        con.print(f"[bold]why int8-dynamic is slower here[/bold] (profile): {res.why_slower}", highlight=False)
    con.print(f"variants in [bold]{res.variants[0].path.parent}[/bold]; run stored in [bold]{res.run_file}[/bold]")
    con.print(f"demo took {res.seconds:.1f} s.")
    con.print("Next: `edgebench report --format html -o report.html` (with the profiles), `edgebench --help`.")
    by = {v.name: v for v in res.variants}
    if "fp32" in by and "int8-static" in by:  # a decision across runs, the way a gate makes it
        a, b = by["fp32"].path, by["int8-static"].path
        con.print(f"Decide a change across runs, paired: `edgebench compare --ab {a} {b}`", highlight=False)
