"""What every command module shares: the root group, common options, console and JSON output."""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console

from edgebench import __version__
from edgebench.cli import interrupted_line  # defined before the command modules load
from edgebench.errors import EdgebenchError, UserError
from edgebench.model import JSON_SCHEMA as JSON_SCHEMA  # re-exported: the --json objects' version
from edgebench.results import index

EXIT_CODES = """\b
Exit codes:
  0  success
  1  user or config error (one line names the problem and the fix)
  2  usage error (unknown command or flag, bad argument)
  3  a gate failed (edgebench gate / nightly)
  130, 143  interrupted by SIGINT (Ctrl-C) / SIGTERM (a run keeps what finished, complete: false)
"""


class FiniteRange(click.FloatRange):
    """A `click.FloatRange` that refuses nan and infinities (click's lets nan through every bound).

    Give it finite bounds, e.g. ``FiniteRange(0, 3600)``: the bound is shown in ``--help``.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The number, or a usage error naming the range."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number in the range {self._describe_range()}", param, ctx)
        return number


results_option = click.option(
    "--results",
    "results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder that stores runs (created if missing).",
)
read_results_option = click.option(
    "--results",
    "results",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder that stores runs (must exist: this command only reads).",
)
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print the result as JSON instead of a table: one object, its "schema" version first.',
)


def existing_results(results: Path, *, read_only: bool = True) -> Path:
    """The results folder of a read-only command, which must already exist (nothing is created).

    Until the command ends, the folder's index is read into memory and never written
    (`edgebench.results.index.read_only`): a read-only command changes nothing on disk.
    ``read_only=False``: only the check (`edgebench index rebuild`, which writes the index).

    Raises:
        UserError: naming the folder and the fix.
    """
    if not results.is_dir():
        raise UserError(
            f"results folder {results} does not exist: give --results the folder your runs are stored in "
            "(`edgebench run --results DIR` makes it)"
        )
    ctx = click.get_current_context(silent=True)
    if ctx is not None and read_only:  # left when the command's context closes
        ctx.with_resource(index.read_only(results))
    return results


def console() -> Console:
    """The console results are rendered to.

    Piped or redirected output gets 120 columns rather than rich's 80, so that tables
    in logs and CI output are not truncated; a terminal keeps its own width.
    """
    con = Console()
    if not con.is_terminal and "COLUMNS" not in os.environ:
        con = Console(width=120)
    return con


def with_schema(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the ``schema`` version first (see `JSON_SCHEMA`)."""
    return {"schema": JSON_SCHEMA, **data}


def print_json(data: dict[str, Any]) -> None:
    """Print machine-readable output on stdout, with the ``schema`` key first (`JSON_SCHEMA`).

    Always an object, never a bare list: a list goes under a named key (``{"boards": [...]}``)
    so that every ``--json`` output can carry its version.
    """
    click.echo(json.dumps(with_schema(data), indent=1, default=str))


@contextmanager
def warning_lines() -> Iterator[None]:
    """Show each Python warning raised inside as one ``warning: ...`` line on stderr, once.

    Every command runs in it (`EdgebenchGroup`), so a damaged run file skipped by any
    read path (report, compare, gate, choose, nightly, trends) is said the same way, in
    one line, and never as Python's ``file.py:135: UserWarning:`` two-liner.
    """
    seen: set[str] = set()

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = " ".join(str(message).split())
        if text not in seen:  # the same file is often read twice (the run, then its trends)
            seen.add(text)
            click.echo(f"warning: {text}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


class EdgebenchGroup(click.Group):
    """A group that turns any `EdgebenchError` into one line on stderr and exit code 1.

    SIGINT and SIGTERM (`edgebench.cli.Terminated`) at any moment: one line, exit 130 / 143.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        """Parse the command line; a signal meanwhile is one line and 130/143 (click would say "Aborted!", 1)."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except KeyboardInterrupt as exc:
            line, code = interrupted_line(exc)
            click.echo(line, err=True)
            sys.exit(code)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; edgebench errors print ``error: ...`` (one line) and exit 1.

        Warnings print as one ``warning: ...`` line each (`warning_lines`).
        """
        try:
            with warning_lines():
                return super().invoke(ctx)
        except EdgebenchError as exc:
            click.echo(f"error: {' '.join(str(exc).split())}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM outside a run's measuring (which stops the harness)
            line, code = interrupted_line(exc)
            click.echo(line, err=True)
            ctx.exit(code)


@click.group(cls=EdgebenchGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgebench")
def main() -> None:
    """edgebench: how AI models really behave on edge hardware.

    Compress a model into variants, deploy them to boards, measure latency, memory
    and accuracy on the board itself, and compare the results.
    """
