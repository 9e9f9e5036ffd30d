"""What every command module shares: the root group, common options, console and JSON output.

One name per concept across commands (`--boards-file`, `--variants`, `--json`, `--format`
spellings), one error prefix (``error:``, usage errors included: exit 2), one parser of
board lists (`comma_list`). A renamed option keeps its old name as a hidden alias
(`old_name`) that still works and says so in one ``warning:`` line on stderr.
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar, overload

import click
from rich.console import Console

from edgebench import __version__
from edgebench.cli import interrupted_line  # defined before the command modules load
from edgebench.errors import EdgebenchError, UserError
from edgebench.model import JSON_SCHEMA as JSON_SCHEMA  # re-exported: the --json objects' version
from edgebench.render.widths import plain_width
from edgebench.results import backend, index, pg

F = TypeVar("F", bound=Callable[..., Any])

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


RESULTS_ENV = "EDGEBENCH_RESULTS"  # the default of --results: a folder or a postgresql:// URL


class ResultsPath(click.Path):
    """``--results``: a folder (a `Path`), or a PostgreSQL URL (``postgresql://...``) kept as text.

    The URL is opened by `existing_results` (read-only commands) or `writable_results`.
    """

    name = "results"
    # the commands that store or read runs on a server (`demo` and `profile` keep theirs in a folder)
    SERVER_COMMANDS = frozenset({"run", "nightly", "accept", "report", "compare", "gate", "choose", "rebuild"})

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The URL as given, or the folder as `click.Path` checks it."""
        if pg.is_url(value):
            command = ctx.command.name if ctx is not None else None
            if command is not None and command not in self.SERVER_COMMANDS:
                self.fail(f"{command} keeps its results in a folder: give --results a folder, not {pg.redact(value)}")
            return str(value)
        return super().convert(value, param, ctx)


results_option = click.option(
    "--results",
    "results",
    type=ResultsPath(file_okay=False, path_type=Path),
    default=Path("results"),
    envvar=RESULTS_ENV,
    show_default=True,
    help="Folder that stores runs (created if missing), or a PostgreSQL server: postgresql://[user@]host[:port]/db "
    "(the password in PGPASSWORD or ~/.pgpass). Default: $EDGEBENCH_RESULTS, else results.",
)
read_results_option = click.option(
    "--results",
    "results",
    type=ResultsPath(file_okay=False, path_type=Path),
    default=Path("results"),
    envvar=RESULTS_ENV,
    show_default=True,
    help="Folder that stores runs (must exist: this command only reads), or a PostgreSQL server: "
    "postgresql://[user@]host[:port]/db (read in a read-only session). Default: $EDGEBENCH_RESULTS, else results.",
)
json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print the result as JSON instead of a table: one object, its "schema" version first.',
)


# -- one name per concept: shared options, and old names kept as hidden aliases --------------------------------


def deprecated(old: str, new: str) -> None:
    """Say once, in one line on stderr, that ``old`` (still working) is now ``new``."""
    click.echo(f"warning: {old} is deprecated, use {new} (the old name still works for now)", err=True)


class OldName(click.Option):
    """The old name of a renamed option: hidden from ``--help``, still works, says which name replaced it.

    `EdgebenchCommand` moves its value to the new option (``target``) after parsing and
    prints the one deprecation line; giving both names is a usage error.
    """

    def __init__(self, param_decls: Sequence[str], *, new: str, target: str, **attrs: Any) -> None:
        old = param_decls[0]
        super().__init__([old, "_old_" + old.lstrip("-").replace("-", "_")], hidden=True, **attrs)
        self.old, self.new, self.target = old, new, target


def old_name(old: str, new: str, target: str, **attrs: Any) -> Callable[[F], F]:
    """Decorator: ``old`` as a hidden alias of the option ``new`` (parameter ``target``); ``attrs`` as its type."""
    return click.option(old, new=new, target=target, cls=OldName, **attrs)


def boards_file_option(help: str = "Boards file (inventory) [default: $EDGEBENCH_BOARDS or targets/boards.toml].") -> (
    Callable[[F], F]
):  # fmt: skip
    """``--boards-file`` (parameter ``boards_file``), and its old name ``--inventory``."""
    path = click.Path(dir_okay=False, path_type=Path)

    def deco(fn: F) -> F:
        fn = old_name("--inventory", "--boards-file", "boards_file", type=path)(fn)
        return click.option("--boards-file", "boards_file", type=path, default=None, help=help)(fn)

    return deco


def comma_list(value: str, what: str = "board") -> list[str]:
    """The names of a comma-separated list (``--boards local,pi4``), in order.

    The one parser of the name lists of every command (`--boards`, `--models`).

    Raises:
        click.BadParameter: an empty list or item (``local,``: often ``--boards local, pi4``,
            which the shell splits after the comma), an item with whitespace, a duplicate;
            naming the bad item.
    """
    items = value.split(",")
    names = list(dict.fromkeys(i.strip() for i in items if i.strip()))
    fix = f"write the {what} names as one argument, joined by commas without spaces"
    if not names:
        raise click.BadParameter(f"{value!r} names no {what}: {fix}, e.g. local,pi4")
    seen: set[str] = set()
    for n, item in enumerate(items):
        if not item and n == len(items) - 1:
            raise click.BadParameter(
                f"{value!r} ends with a comma (an empty {what} name after {items[n - 1]!r}): {fix} "
                "(a space after a comma makes the rest another argument)"
            )
        if not item:
            where = f"before {items[1]!r}" if n == 0 else f"between {items[n - 1]!r} and {items[n + 1]!r}"
            raise click.BadParameter(f"{value!r} has an empty {what} name {where}: {fix}, e.g. {','.join(names)}")
        if any(c.isspace() for c in item):
            raise click.BadParameter(f"{item!r} in {value!r} has whitespace: {fix}, e.g. {','.join(names)}")
        if item in seen:
            raise click.BadParameter(f"{item!r} is named twice in {value!r}: name each {what} once")
        seen.add(item)
    return items


def boards_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """Click callback of ``--boards``: the board names (`comma_list`); unknown names are the inventory's error."""
    return None if value is None else comma_list(value, "board")


def models_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """Click callback of ``--models``: the model names (`comma_list`), None for all."""
    return None if value is None else comma_list(value, "model")


FORMAT_ALIASES = {"md": "markdown", "text": "table"}


class FormatChoice(click.Choice):  # type: ignore[type-arg]
    """A ``--format`` choice with the same spellings in every command: ``md`` is ``markdown``, ``text`` is
    ``table``, in any case. ``json`` still works but is not listed: `--json` is the one JSON switch
    (`EdgebenchCommand` says so in one line)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The choice ``value`` names, aliases resolved (an unknown one: click's usage error, listing the valid)."""
        text = str(value).lower()
        if text == "json":
            return "json"
        return super().convert(FORMAT_ALIASES.get(text, text), param, ctx)


def format_option(choices: Sequence[str]) -> Callable[[F], F]:
    """``--format`` (parameter ``fmt``) over ``choices``, default ``table``; JSON is ``--json``."""
    listed = ", ".join(f"{a}: {b}" for a, b in FORMAT_ALIASES.items() if b in choices)
    return click.option(
        "--format",
        "fmt",
        type=FormatChoice(list(choices)),
        default="table",
        show_default=True,
        help=f"Output format ({listed}; JSON: --json).",
    )


def _apply_old_names(command: click.Command, ctx: click.Context) -> None:
    """Move the values of old option names to the new ones, one deprecation line each."""
    source = click.core.ParameterSource.COMMANDLINE
    for p in command.params:
        if isinstance(p, OldName) and p.name is not None:
            value = ctx.params.pop(p.name, None)
            if ctx.get_parameter_source(p.name) is not source:
                continue
            if ctx.get_parameter_source(p.target) is source:
                raise click.UsageError(f"give {p.new} once ({p.old} is its old name)", ctx)
            ctx.params[p.target] = value
            ctx.set_parameter_source(p.target, source)
            deprecated(p.old, p.new)
        elif (
            isinstance(p.type, FormatChoice)
            and p.name is not None
            and ctx.params.get(p.name) == "json"
            and ctx.get_parameter_source(p.name) is source
        ):
            deprecated("--format json", "--json")


def usage_error_line(exc: click.ClickException) -> str:
    """A click error as the one ``error: ...`` line every edgebench error is.

    ``did you mean`` as edgebench says it, and the command's ``--help`` for usage errors.
    """
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    possible = list(getattr(exc, "possibilities", None) or ())  # closest first
    renamed = {p.old: p.new for p in ctx.command.params if isinstance(p, OldName)} if ctx is not None else {}
    possible = list(dict.fromkeys(renamed.get(p, p) for p in possible))  # an old name suggests the new one
    if isinstance(exc, click.NoSuchOption):  # one wording whatever click's version says
        text = f"No such option: {exc.option_name}"
    else:
        text = " ".join((exc.message.rstrip(".") if possible else exc.format_message()).split())
    if possible:
        text += f" (did you mean {possible[0]}?)"
    if ctx is not None:
        text = f"{text.rstrip('.')}; see `{ctx.command_path} --help`"
    return f"error: {text}"


def _fail(exc: click.ClickException) -> NoReturn:
    """Show a click error (one line, or the help for a bare group) and exit with its code."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `edgebench boards`: the help, as click shows it
        exc.show()
    else:
        click.echo(usage_error_line(exc), err=True)
    sys.exit(exc.exit_code)


class EdgebenchCommand(click.Command):
    """A command whose old option names (`OldName`) still work and say their new name."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse, then move old names' values to the new options (`_apply_old_names`)."""
        rest = super().parse_args(ctx, args)
        _apply_old_names(self, ctx)
        return rest


def _open_server(url: str, *, read_only: bool) -> pg.PgStore:
    """Open the server store for the command (closed when its context closes)."""
    got = pg.open_store(url, read_only=read_only)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(got.close)
    return got


def writable_results(results: Path | str) -> backend.Results:
    """The results store of a writing command (`run`, `nightly`): a folder as given (made when the run
    starts), or a server opened for writing now, so that an unreachable server, a user who may not
    write or a too new schema fail in one line before anything is measured.

    Raises:
        ResultsServerError: the server cannot be used for writing (one line, the URL without its password).
    """
    if isinstance(results, str):
        return _open_server(results, read_only=False)
    return results


@overload
def existing_results(results: Path, *, read_only: bool = True) -> Path: ...
@overload
def existing_results(results: Path | str, *, read_only: bool = True) -> backend.Results: ...
def existing_results(results: Path | str, *, read_only: bool = True) -> backend.Results:
    """The results folder of a read-only command, which must already exist (nothing is created).

    Until the command ends, the folder's index is read into memory and never written
    (`edgebench.results.index.read_only`): a read-only command changes nothing on disk.
    ``read_only=False``: only the check (`edgebench index rebuild`, which writes the index).
    A PostgreSQL URL is opened as a server store, in a read-only session unless ``read_only=False``.

    Raises:
        UserError: naming the folder and the fix.
        ResultsServerError: the server cannot be used (one line, the URL without its password).
    """
    if isinstance(results, str):
        return _open_server(results, read_only=read_only)
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

    A terminal keeps its own width; piped or redirected output (a CI log) gets
    `plain_width`: ``$COLUMNS`` when set, else 80 columns, which the tables fit by
    folding names and dropping their least important columns (`edgebench.render.widths`).
    """
    con = Console()
    if not con.is_terminal:
        con = Console(width=plain_width(os.environ))
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

    A usage error (unknown command or option, bad value) is one ``error: ...`` line too,
    exit 2. SIGINT and SIGTERM (`edgebench.cli.Terminated`) at any moment: one line, exit 130 / 143.
    Its commands are `EdgebenchCommand` and its subgroups `EdgebenchGroup`.
    """

    command_class = EdgebenchCommand
    group_class = type

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        """Parse the command line; a signal meanwhile is one line and 130/143 (click would say "Aborted!", 1)."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:
            _fail(exc)
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
        except click.ClickException as exc:  # a subcommand's usage error: one line, exit 2
            _fail(exc)
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
