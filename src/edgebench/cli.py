"""The `edgebench` command line: parses, calls the library, renders. Nothing more."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from edgebench import __version__
from edgebench.errors import UserError

EXIT_CODES = """\b
Exit codes:
  0  success
  1  user or config error (one line names the problem and the fix)
  2  usage error (unknown command or flag, bad argument)
  3  a gate failed (edgebench gate / nightly)
"""

results_option = click.option(
    "--results",
    "results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder that stores runs (created if missing).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")


def console() -> Console:
    """The console results are rendered to."""
    return Console()


def print_json(data: Any) -> None:
    """Print machine-readable output on stdout."""
    click.echo(json.dumps(data, indent=1, default=str))


class EdgebenchGroup(click.Group):
    """A group that turns a `UserError` into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; user errors print ``error: ...`` and exit 1."""
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=EdgebenchGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
def main() -> None:
    """edgebench: how AI models really behave on edge hardware.

    Compress a model into variants, deploy them to boards, measure latency, memory
    and accuracy on the board itself, and compare the results.
    """


@main.command(epilog=EXIT_CODES)
@results_option
@json_option
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(1, 200), help="Training epochs.")
@click.option(
    "--min-time",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 600),
    help="Seconds of steady-state timing per variant.",
)
def demo(results: Path, as_json: bool, epochs: int, min_time: float) -> None:
    """Run the whole job on this machine: train the digits CNN, make its variants,
    measure each on the built-in `local` board, store the run and print the table."""
    from edgebench.demo import run_demo
    from edgebench.results.report import RunTable

    con = Console(stderr=True) if as_json else console()
    res = run_demo(results, con, epochs=epochs, min_time_s=min_time)
    if as_json:
        print_json({"run_file": str(res.run_file), "seconds": res.seconds, "run": res.run})
        return
    con.print(RunTable(res.run))
    con.print(f"run stored in [bold]{res.run_file}[/bold]; demo took {res.seconds:.1f} s")


# ---- compress commands (owned by the compress work; add commands below this line) ----


# ---- targets commands (owned by the targets work; add commands below this line) ----


# ---- bench commands (owned by the bench work; add commands below this line) ----


# ---- results commands (owned by the results work; add commands below this line) ----


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
