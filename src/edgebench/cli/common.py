"""What every command module shares: the root group, common options, console and JSON output."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from edgebench import __version__
from edgebench.errors import EdgebenchError

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
    """The console results are rendered to.

    Piped or redirected output gets 120 columns rather than rich's 80, so that tables
    in logs and CI output are not truncated; a terminal keeps its own width.
    """
    con = Console()
    if not con.is_terminal and "COLUMNS" not in os.environ:
        con = Console(width=120)
    return con


def print_json(data: Any) -> None:
    """Print machine-readable output on stdout."""
    click.echo(json.dumps(data, indent=1, default=str))


class EdgebenchGroup(click.Group):
    """A group that turns any `EdgebenchError` into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; edgebench errors print ``error: ...`` (one line) and exit 1."""
        try:
            return super().invoke(ctx)
        except EdgebenchError as exc:
            click.echo(f"error: {' '.join(str(exc).split())}", err=True)
            ctx.exit(1)


@click.group(cls=EdgebenchGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
def main() -> None:
    """edgebench: how AI models really behave on edge hardware.

    Compress a model into variants, deploy them to boards, measure latency, memory
    and accuracy on the board itself, and compare the results.
    """
