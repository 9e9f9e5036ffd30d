"""`edgebench nightly`."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click
from rich.console import Console

from edgebench.cli.common import (
    EXIT_CODES,
    console,
    existing_results,
    json_option,
    main,
    print_json,
    results_option,
    writable_results,
)
from edgebench.cli.run import commit_options
from edgebench.errors import ResultsPathError, UserError
from edgebench.fsutil import ensure_writable_dir, is_no_space, unwritable_message
from edgebench.results.accept import accept as do_accept
from edgebench.results.store import RESULTS_FIX
from edgebench.workflows.nightly import load_config, run_nightly


@main.command(epilog=EXIT_CODES)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@results_option
@json_option
@commit_options
def nightly(config: Path, results: Path | str, as_json: bool, commit: str | None, branch: str | None) -> None:
    """The nightly job in one command, from CONFIG (TOML, a [nightly] table): compress (cached),
    deploy and run on all boards with the baseline re-measured paired, store, compare, report
    (terminal with sparklines + HTML + Markdown under RESULTS/nightly/) and gate, as
    `edgebench gate` decides. The baseline is the last accepted state: the pinned
    `baseline`, else the latest of the last passing nightly and the last `edgebench accept`;
    a regression stays red until fixed or accepted, and a first nightly passes its
    regression checks for want of a baseline.
    Every output opens with one verdict line (PASS / FAIL / UNDECIDED and why); piped
    output (CI) gets one plain line per finished measurement. Exit 0 when all went well,
    3 when a board, a variant or the gate failed (undecided included); two nightlies on
    one results folder never overlap (the second exits 1).
    """
    if not config.is_file():
        raise UserError(f"nightly config {config} does not exist: give the path of a TOML file with a [nightly] table")
    cfg = load_config(config)
    store_ = writable_results(results)  # a server: opened for writing now, one line before any work
    if isinstance(results, Path) and results.is_dir():  # a read-only folder: one line before the lock file
        ensure_writable_dir(results, fix=RESULTS_FIX)
    con = Console(stderr=True) if as_json else console()
    try:
        res = run_nightly(
            cfg, store_, log=lambda m: con.print(f"[dim]{m}[/dim]"), console=con, commit=commit, branch=branch
        )
    except OSError as exc:  # a report or a summary that does not fit: one line (the run file is kept)
        if not is_no_space(exc):
            raise
        raise ResultsPathError(unwritable_message(results if isinstance(results, Path) else Path.cwd(), exc)) from None
    if as_json:
        print_json(res.to_dict())
    else:
        con.print(res)
    sys.exit(res.exit_code)


@main.command(epilog=EXIT_CODES)
@click.argument("run")
@click.option("--reason", required=True, help="Why these figures are the new baseline (recorded).")
@click.option("--by", help="Who accepts (default: GITHUB_ACTOR, GITLAB_USER_LOGIN or the login name).")
@results_option
@json_option
def accept(run: str, reason: str, by: str | None, results: Path | str, as_json: bool) -> None:
    """Accept RUN (a run id, latest~N or a run file) as the baseline of later nightlies.

    A nightly compares and gates against the last accepted state, so a slowdown stays
    red night after night until it is fixed or accepted here, with who and why
    (recorded in RESULTS/accepted.json, or on a PostgreSQL store in its table).

    \b
    Example:
      edgebench accept latest --reason "int8 kernels moved to the new runtime: 4 % slower, accepted"
    """
    a = do_accept(writable_results(results) if isinstance(results, str) else existing_results(results), run, reason, by)
    if as_json:
        print_json({"accepted": dataclasses.asdict(a)})
    else:
        console().print(f"accepted run [bold]{a.run_id}[/bold] as the baseline (by {a.by}: {a.why})")
