"""`edgebench run`: measure variants on boards through the pytest-benchmark harness."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from edgebench.bench.repeats import is_partial
from edgebench.bench.settings import SETTINGS, Setting, from_options
from edgebench.cli.common import (
    EXIT_CODES,
    EdgebenchCommand,
    FiniteRange,
    boards_callback,
    boards_file_option,
    console,
    json_option,
    main,
    models_callback,
    print_json,
    results_option,
    writable_results,
)
from edgebench.render.report import Report
from edgebench.results.analysis import analyze_run
from edgebench.workflows.lab import DEFAULT_WAIT_S, leased_boards
from edgebench.workflows.run import printable, regression_lines, run_harness

F = TypeVar("F", bound=Callable[..., Any])


def _click_type(s: Setting) -> Any:
    if s.usage_range and s.ge is not None:  # checked while parsing: a usage error (exit 2)
        return click.IntRange(min=int(s.ge)) if s.type is int else click.FloatRange(min=s.ge)
    return s.type


def setting_options(fn: F, only: tuple[str, ...] = ()) -> F:
    """The measurement settings `edgebench run` offers, as click options named after their field.

    ``only``: just these settings (``demo`` offers ``min_time_s``, with the same flag, help and default).
    """
    for s in reversed(SETTINGS):
        if s.flag is None or (only and s.name not in only):
            continue
        fn = click.option(
            s.flag, s.name, type=_click_type(s), multiple=s.repeatable, metavar=s.metavar,
            default=None if s.repeatable else s.default, show_default=s.default is not None, help=s.help,
            **({} if s.flag_value is None else {"is_flag": False, "flag_value": s.flag_value}),
        )(fn)  # fmt: skip
    return fn


def commit_options(fn: Any) -> Any:
    """``--commit`` and ``--branch``: which commit of the benchmarked project this run measures."""
    fn = click.option("--branch", help="Branch of the benchmarked project (default: the CI variables, else git).")(fn)
    return click.option(
        "--commit",
        help="Commit of the benchmarked project, recorded in the run's commit_info (default: GITHUB_SHA or "
        "CI_COMMIT_SHA, else `git` in the current folder). Trends have one point per commit.",
    )(fn)


PYTEST_HINT = "pytest's own arguments go after `--`: edgebench run --variants DIR -- --benchmark-compare"


class RunCommand(EdgebenchCommand):
    """`edgebench run`: every option is checked before anything starts; pytest's arguments come after ``--`` only.

    An unknown option is click's usage error (exit 2, with its "did you mean"), never
    passed on to pytest to fail there.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse; refuse an argument before ``--`` that is not an option of `run`."""
        after = args[args.index("--") + 1 :] if "--" in args else []
        try:
            rest = super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            if exc.possibilities:
                raise
            # e.g. --benchmark-compare given before `--`
            raise click.UsageError(f"No such option: {exc.option_name} ({PYTEST_HINT})", ctx) from None
        given = tuple(ctx.params.get("pytest_args") or ())
        before = given[: len(given) - len(after)] if len(after) <= len(given) else ()
        if before:
            raise click.UsageError(f"unexpected argument {before[0]!r} ({PYTEST_HINT})", ctx)
        return rest


@main.command("run", epilog=EXIT_CODES, cls=RunCommand)
@click.option(
    "--boards",
    default="local",
    show_default=True,
    callback=boards_callback,
    help="Comma-separated board names from the boards file, no spaces: local,pi4; pool:NAME (pool:NAME*2 for two) "
    "leases boards of a [pools.NAME] labgrid pool for the run.",
)
@click.option(
    "--wait-timeout",
    type=FiniteRange(0, 7 * 86400),
    default=DEFAULT_WAIT_S,
    metavar="SECONDS",
    help=f"With pool:NAME boards: how long to wait for the lab's places before giving up (exit 1); "
    f"default {DEFAULT_WAIT_S:g} s ({DEFAULT_WAIT_S / 60:g} min).",
)
@click.option(
    "--priority",
    type=FiniteRange(-1e6, 1e6),
    default=0.0,
    show_default=True,
    metavar="NUMBER",
    help="With pool:NAME boards: labgrid's reservation priority (higher is served first).",
)
@click.option(
    "--variants",
    required=True,
    type=click.Path(path_type=Path),
    help="Variants folder (<model>/<variant>/manifest.json), as `edgebench compress` writes it; or a .onnx/.tflite "
    "file, or a folder of them (each measured as an fp32 variant, made on the fly and cached by sha256 in "
    "~/.cache/edgebench/variants), e.g. --variants detector.onnx.",
)
@click.option(
    "--eval", "eval_data", type=click.Path(path_type=Path), help="Eval data: an .npz (x, y) or a folder of <model>.npz."
)
@results_option
@json_option
@boards_file_option()
@click.option(
    "--models",
    callback=models_callback,
    help="Comma-separated models to measure (default: all in the variants folder).",
)
@setting_options
@click.option("--parallel", is_flag=True, help="Measure the boards in parallel (a board's processes stay sequential).")
@click.option("--show-pytest", is_flag=True, help="Stream the harness's pytest output (its benchmark table) to stderr.")
@commit_options
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- PYTEST_ARGS...]")
def run_cmd(
    boards: list[str],
    wait_timeout: float,
    priority: float,
    variants: Path,
    eval_data: Path | None,
    results: Path | str,
    as_json: bool,
    boards_file: Path | None,
    models: list[str] | None,
    parallel: bool,
    show_pytest: bool,
    commit: str | None,
    branch: str | None,
    pytest_args: tuple[str, ...],
    **measure: Any,
) -> None:
    """Measure every variant on every board (pytest-benchmark harness) and store the run.

    Each variant runs in --repeats fresh agent processes on the board, interleaved
    round-robin across the board's variants so drift and per-process states spread over all
    of them: cold start, warm-up, steady state with raw samples (pooled), memory, accuracy
    and fidelity (first process). Arguments after `--` go to pytest (and only those: an
    unknown option before it is a usage error), e.g.
    `-- --benchmark-compare=0001 --benchmark-compare-fail=median:5%`.
    Exits 1 if a measurement failed (the run is still stored), 3 if a
    --benchmark-compare-fail check failed.
    """
    settings = from_options(measure)
    store_in = writable_results(results)  # refused before any place is reserved

    def say(line: str) -> None:  # the lab's waiting and acquired lines
        click.echo(printable(line), err=True)

    with leased_boards(boards, boards_file, priority=priority, wait_timeout=wait_timeout, progress=say) as lab:
        out = run_harness(
            variants=variants, boards=lab.boards, results=store_in, settings=settings,
            eval_data=eval_data, inventory=lab.inventory, models=models, extra=pytest_args, parallel=parallel,
            console=None if show_pytest else Console(stderr=True), show_output=show_pytest, commit=commit,
            branch=branch,
        )  # fmt: skip
    if as_json:
        run = out.run.to_json() if out.run is not None else None
        print_json({"run_file": str(out.stored), "log": str(out.log), "pytest_exit": out.pytest_exit, "run": run})
    else:
        con = console()
        if out.run is not None:
            con.print(Report(analyze_run(out.run)))
        if out.stored is not None:
            con.print(f"run stored in [bold]{out.stored}[/bold] (harness log: {out.log})")
    ctx = click.get_current_context()
    if out.exit_code is not None:  # SIGINT/SIGTERM: what finished is stored, incomplete unless all had
        kept = len(out.run.measurements) if out.run is not None else 0
        partial = sum(is_partial(m) for m in out.run.measurements) if out.run is not None else 0
        some = f" ({partial} partial: from fewer agent processes than --repeats)" if partial else ""
        complete = "true" if out.run is not None and out.run.complete else "false"  # a signal at the very end
        where = f"stored in {out.stored} (complete: {complete})" if out.stored else "nothing stored"
        said = f"interrupted by {signal.Signals(out.exit_code - 128).name}"
        reason = out.run.interrupted if out.run is not None and out.run.interrupted else said
        click.echo(printable(f"error: run {reason}: {kept} finished measurement(s){some} {where}"), err=True)
        ctx.exit(out.exit_code)
    if out.failures:
        what = printable(", ".join(f"{m.board}/{m.model}/{m.variant}" for m in out.failures))
        click.echo(
            f"error: {len(out.failures)} measurement(s) failed ({what}): see the errors in the run table", err=True
        )
        ctx.exit(1)
    if out.regressed:
        for line in regression_lines(out.log.read_text(errors="replace") if out.log else ""):
            click.echo(f"regressed: {line}", err=True)
        click.echo(
            f"error: performance regressed against the compared run (--benchmark-compare-fail); details: {out.log}",
            err=True,
        )
        ctx.exit(3)
    if out.pytest_exit != 0:
        click.echo(f"error: the harness exited {out.pytest_exit}: see its output", err=True)
        ctx.exit(1)
