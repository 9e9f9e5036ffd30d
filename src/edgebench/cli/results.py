"""`edgebench report`, `compare`, `gate` and `choose`."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group

from edgebench.bench.profile import profiles_in_run
from edgebench.bench.settings import MAX_REPEATS, RunSettings
from edgebench.cli.common import (
    EXIT_CODES,
    FiniteRange,
    boards_callback,
    boards_file_option,
    console,
    existing_results,
    format_option,
    json_option,
    main,
    old_name,
    print_json,
    read_results_option,
    with_schema,
    writable_results,
)
from edgebench.errors import UserError
from edgebench.fsutil import write_text_atomic
from edgebench.model import BoardCost, Comparison
from edgebench.render.choose import ChoiceView
from edgebench.render.compare import ComparisonView
from edgebench.render.gate import GateView, junit_xml
from edgebench.render.html import report_html
from edgebench.render.markdown import comparison_markdown, gate_markdown, report_markdown
from edgebench.render.profile import ProfileSummary
from edgebench.render.report import Report
from edgebench.render.widths import plain_width
from edgebench.results import backend, pg, store
from edgebench.results.analysis import load_report
from edgebench.results.backend import history as index_history
from edgebench.results.backend import open_run
from edgebench.results.choose import choose as do_choose
from edgebench.results.choose import parse_mb, parse_ms
from edgebench.results.compare import compare_paired, compare_runs
from edgebench.results.gate import comparable_history, run_gate
from edgebench.targets.board import LOCAL
from edgebench.targets.inventory import load_inventory
from edgebench.workflows.nightly import run_settings
from edgebench.workflows.run import run_harness

allow_config_option = click.option(
    "--allow-config-change",
    is_flag=True,
    help="Pair measurements whose configuration (batch, input shapes, threads, runtime, board) differs.",
)
output_option = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of stdout.",
)


def _show(renderable: Any, output: Path | None) -> None:
    """Print a rich renderable, or write it as plain text to ``output`` (as wide as piped output: `plain_width`)."""
    if output is None:
        console().print(renderable)
        return

    buf = io.StringIO()
    Console(file=buf, width=plain_width(os.environ), color_system=None).print(renderable)
    _emit(buf.getvalue(), output)


def _emit(text: str, output: Path | None) -> None:

    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        write_text_atomic(output, text)
        click.echo(f"written {output}", err=True)


@main.command(epilog=EXIT_CODES)
@click.argument("run", default="latest")
@read_results_option
@format_option(["table", "markdown", "html"])
@output_option
@json_option
@click.option("--last", default=30, show_default=True, type=click.IntRange(2, 10000), help="Runs shown in trends.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Every warning in full (by default warnings of one kind fold into one line)."
)
def report(
    run: str, results: Path | str, fmt: str, output: Path | None, as_json: bool, last: int, verbose: bool
) -> None:
    """Report one stored run: per model a board x variant table (p50/p90/p99, throughput,
    peak memory, top-1, fidelity, size, speed-up and size ratio against fp32), a verdict per
    variant, the Pareto set of top-1 vs p90 per board, and trends over earlier runs.

    RUN is a run id (or unique prefix), a run file, `latest` (default) or `latest~N`.
    Unreadable run files are skipped with a warning.
    """

    store_ = existing_results(results)
    rep = load_report(store_, run, last=last)  # warnings: one line each (cli.common)
    fmt = "json" if as_json else fmt
    stored = open_run(store_, rep.run_id if backend.is_server(store_) else rep.run_file or rep.run_id)
    profiles = profiles_in_run(stored)  # `run --profile`: shown after the report in every format
    if fmt == "json":
        doc = with_schema(rep.to_json()) | ({"profiles": [p.to_json() for p in profiles]} if profiles else {})
        _emit(json.dumps(doc, indent=1, default=str) + "\n", output)
    elif fmt == "markdown":
        _emit(report_markdown(rep, run_settings(stored), profiles, verbose=verbose), output)
    elif fmt == "html":
        _emit(report_html(rep, store_, run_settings(stored), profiles, verbose=verbose), output)
    else:
        report_view = Report(rep, verbose=verbose)
        _show(Group(report_view, ProfileSummary(profiles, rep, verbose=verbose)) if profiles else report_view, output)


@main.command(epilog=EXIT_CODES)
@click.argument("a")
@click.argument("b", default="latest")
@read_results_option
@format_option(["table", "markdown"])
@output_option
@json_option
@click.option(
    "--alpha",
    default=0.05,
    show_default=True,
    type=FiniteRange(1e-6, 0.5),
    help="Level of each one-sided test (the interval shown is 1 - 2*alpha).",
)
@click.option(
    "--margin",
    default=3.0,
    show_default=True,
    type=FiniteRange(0.1, 100),
    help="Equivalence margin, %: a median change proven within +-margin is 'no change'.",
)
@old_name("--min-effect", "--margin", "margin", type=FiniteRange(0.1, 100))
@allow_config_option
@click.option(
    "--ab",
    is_flag=True,
    help="Measure now, paired: A (a .onnx/.tflite file, a variants folder or a stored run) and B (a file or a "
    "variants folder) timed alternately in the same fresh processes on each board, and decide on the paired "
    "ratios. Stores the run of B (with A's paired figures) in --results.",
)
@click.option(
    "--boards",
    default="local",
    show_default=True,
    callback=boards_callback,
    help="With --ab: comma-separated boards to measure on, no spaces: local,pi4.",
)
@boards_file_option("With --ab: boards file (inventory) [default: $EDGEBENCH_BOARDS or targets/boards.toml].")
@click.option(
    "--repeats",
    type=click.IntRange(2, MAX_REPEATS),
    default=RunSettings().repeats,
    show_default=True,
    help="With --ab: paired processes per variant (and as many of B's own).",
)
@click.option(
    "--min-time",
    type=FiniteRange(0, 86400),
    default=RunSettings().min_time_s,
    show_default=True,
    help="With --ab: seconds of steady state per variant, split between the processes.",
)
def compare(
    a: str,
    b: str,
    results: Path | str,
    fmt: str,
    output: Path | None,
    as_json: bool,
    alpha: float,
    margin: float,
    allow_config_change: bool,
    ab: bool,
    boards: list[str],
    boards_file: Path | None,
    repeats: int,
    min_time: float,
) -> None:
    """Compare run B (default: latest) against run A, per board, model and variant.

    The median decides a row, on the strongest basis at hand (the p50 cell names it):
    `paired` when B was measured with `edgebench run --baseline A` (A's artifact
    re-measured with B's, alternately in the same fresh processes, so a shift of a whole
    run cancels); else `history`: the processes' interval widened by the run-to-run
    spread of 3+ earlier runs of the same configuration; else `one run each`, shown but
    `undecided` (two separate runs cannot see a shift of a whole run). `no change` when
    the whole 90% interval lies within +-margin (two one-sided tests), `slower`/`faster`
    only when it lies wholly beyond the margin. Measurements of a different configuration
    (batch, shapes, threads, runtime, board) are refused unless --allow-config-change. A
    run compared with itself is `no change`. With --ab, A and B are measured now, paired
    (this writes a run of B to --results).

    \b
    Examples:
      edgebench compare latest~1            # the previous run against the latest
      edgebench compare 20261125T0611 latest --margin 5 --format markdown
      edgebench compare --ab old.onnx new.onnx --boards pi4   # two files, measured now, paired
    """

    m = margin / 100
    if ab:
        d = _compare_ab(a, b, results, boards, boards_file, RunSettings(repeats=repeats, min_time_s=min_time), alpha, m)
        _show_comparison(d, "json" if as_json else fmt, output)
        return
    store_ = existing_results(results)
    ra, rb = open_run(store_, a), open_run(store_, b)
    history = comparable_history(rb, index_history(store_, sorted(m_.key for m_ in rb.measurements),
                                                   metrics=("p50",), before=ra.started))  # fmt: skip
    d = compare_runs(ra, rb, alpha=alpha, margin=m, allow_config_change=allow_config_change, history=history)
    for side, r in (("A", ra), ("B", rb)):
        if not r.complete:  # an interrupted run: its figures are real, but some measurements never ran
            why = r.interrupted or "it did not finish"
            click.echo(f"warning: {side} = run {r.run_id} is INCOMPLETE ({why}): it holds only what finished", err=True)
    _show_comparison(d, "json" if as_json else fmt, output)


def _show_comparison(d: Comparison, fmt: str, output: Path | None) -> None:
    if fmt == "json":
        _emit(json.dumps(with_schema(d.to_json()), indent=1) + "\n", output)
    elif fmt == "markdown":
        _emit(comparison_markdown(d), output)
    else:
        _show(ComparisonView(d), output)


def _compare_ab(
    a: str,
    b: str,
    results: Path | str,
    boards: list[str],
    inventory: Path | None,
    settings: RunSettings,
    alpha: float,
    m: float,
) -> Comparison:
    """``compare --ab``: measure B with A as its paired baseline now, and compare on the paired ratios."""
    if b == "latest" or not Path(b).exists():
        raise UserError(
            f"compare --ab: B {b!r} is not a file or folder: give the .onnx/.tflite file or variants to measure"
        )
    out = run_harness(
        variants=Path(b), boards=boards, results=writable_results(results), settings=settings.replace(baseline=a),
        inventory=inventory, console=Console(stderr=True),
    )  # fmt: skip
    if out.run is None:
        raise UserError(f"compare --ab: nothing was measured (see {out.log})")
    if out.exit_code is not None:
        click.get_current_context().exit(out.exit_code)
    return compare_paired(out.run, a, alpha=alpha, margin=m)


@main.command(epilog=EXIT_CODES)
@click.argument("budgets", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_ref", default="latest", show_default=True, help="Run to gate (id, file or latest~N).")
@click.option("--baseline", default=None, help="Baseline run for max_regression_pct (overrides the file's).")
@read_results_option
@json_option
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML here.")
@click.option("--markdown", "md", type=click.Path(dir_okay=False, path_type=Path), help="Also write Markdown here.")
@allow_config_option
def gate(
    budgets: Path,
    run_ref: str,
    baseline: str | None,
    results: Path | str,
    as_json: bool,
    junit: Path | None,
    md: Path | None,
    allow_config_change: bool,
) -> None:
    """Check a run against BUDGETS (TOML; `[[budget]]` tables with model/board/variant globs
    and limits). Exit 0 when every check passes, 3 otherwise; a bad budgets file exits 1.

    \b
    What each limit checks (processes: the --repeats agent processes):
      max_p90_ms, max_p99_ms  p90/p99 of each process; pass when the 90% interval of
                              their geometric mean is within the limit, fail when it is
                              wholly above, else undecided
      max_regression_pct      the MEDIAN against the baseline run (--baseline or the
                              file's `baseline`), Student's t on per-process medians,
                              widened by the spread of 3+ earlier runs in the index
                              measured in the same configuration; pass when the 90%
                              interval of the slowdown is within the limit, fail when
                              wholly beyond, else undecided
      max_peak_mb             peak RSS in MiB (2**20 bytes), the max over the processes
      min_accuracy            top-1 as a fraction in [0, 1] (0.97) or "97 %"
      max_accuracy_drop_pt    top-1 points lost against fp32 on the same board
      max_size_mb             the artifact's size in MiB
      max_sustained_p50_ms,   median of the windows' p50/p99 of a run --sustained timeline
      max_sustained_p99_ms    over the throttled steady state (the last third without
                              throttling); undecided without a timeline
      max_energy_mj           mJ per inference of the widest power domain read; undecided
                              without a sustained run or a power sensor
      fidelity (automatic)    a degraded variant (cosine to its parent below the
                              threshold): fails when no top-1 was measured, passes
                              (named in the verdict line) when it was

    `undecided` (too noisy to place against the limit) fails the gate, and so does a
    budget that matches no result. A baseline measured in another configuration is
    refused unless --allow-config-change.

    \b
    Example budgets.toml:
      baseline = "latest~1"
      [[budget]]
      model = "digits_cnn"
      variant = "int8-*"
      max_p90_ms = 20
      min_accuracy = 0.97
      max_regression_pct = 5
    """

    res = run_gate(existing_results(results), budgets, run_ref, baseline, allow_config_change=allow_config_change)
    if junit:
        write_text_atomic(junit, junit_xml(res))
    if md:
        write_text_atomic(md, gate_markdown(res))
    if as_json:
        print_json(res.to_json())
    else:
        console().print(GateView(res))
    if not res.passed:
        sys.exit(3)


@main.command(epilog=EXIT_CODES)
@click.option("--model", "-m", required=True, help="Model name as stored in results.")
@click.option("--max-p90", help="Latency budget, e.g. 20ms, 0.5s, 800us.")
@click.option("--min-accuracy", type=FiniteRange(0, 1), help="Minimum top-1 (0..1), e.g. 0.97.")
@click.option(
    "--max-memory",
    help="Peak memory budget in MiB, e.g. 256MiB, 1GiB (MB is read as MiB, like every edgebench figure).",
)
@click.option(
    "--rank",
    type=click.Choice(["cost", "power", "latency", "energy"]),
    default="cost",
    show_default=True,
    help="Order of the options that fit (energy: mJ per inference from run --sustained; boards without a power "
    "sensor last).",
)
@boards_file_option()
@read_results_option
@json_option
def choose(
    model: str, max_p90: str | None, min_accuracy: float | None, max_memory: str | None, rank: str,
    boards_file: Path | None, results: Path | str, as_json: bool,
) -> None:  # fmt: skip
    """Choose hardware: rank the boards and variants of MODEL whose latest stored results meet
    the constraints, by board cost, power, latency or energy per inference (cost and power
    from the inventory, energy from a run --sustained on a board with a power sensor),
    and say why each of the others does not qualify. Each constraint is decided as
    `edgebench gate` decides it: a p90 too noisy to place against --max-p90 does not fit.
    Inventory boards without results for MODEL are listed. Exit 1 when nothing fits.
    """

    store_ = existing_results(results)
    inv = {name: BoardCost(b.cost, b.power_w) for name, b in load_inventory(boards_file).items()}
    p90 = parse_ms(max_p90) if max_p90 else None
    memory = parse_mb(max_memory) if max_memory else None
    d = do_choose(store_, model, inv, rank=rank, min_accuracy=min_accuracy, max_p90_ms=p90, max_memory_mb=memory)
    # the built-in board is always in the inventory: only boards someone added are worth a "no results" line
    d = dataclasses.replace(d, unmeasured=tuple(b for b in d.unmeasured if b != LOCAL))
    if as_json:
        print_json(d.to_json())
    else:
        console().print(ChoiceView(d))
        if rank == "energy":  # the ranking's figure, in the order of the table
            for n, o in enumerate(d.chosen, 1):
                mj = o.energy_note if o.energy_mj is None else f"{o.energy_mj:.3g} mJ per inference, {o.energy_note}"
                console().print(f"  {n}. {o.board}/{o.variant}: {mj}", markup=False, highlight=False)
    if not d.chosen:
        sys.exit(1)


@main.group("index")
def index_group() -> None:
    """The results folder's index (index.sqlite): a cache of the run files for trends and history.

    Read-only commands (report, compare, gate, choose) never write it: they catch up in
    memory with run files added since it was written, and read around an index written by
    another edgebench version. `run` and `nightly` keep it up to date.
    """


@index_group.command("rebuild", epilog=EXIT_CODES)
@read_results_option
def index_rebuild(results: Path | str) -> None:
    """Throw the index of the results folder away and build it again from its run files
    (after copying runs in from elsewhere, or an edgebench upgrade). Unreadable files are
    skipped and named."""
    if isinstance(results, str):
        raise UserError(f"{pg.redact(results)} is a server: it has no index to rebuild (it is always up to date)")
    rep = store.rebuild(existing_results(results, read_only=False))
    click.echo(f"indexed {rep.indexed} run file(s) into {results / 'index.sqlite'}")


@main.group("results")
def results_group() -> None:
    """Move run history between a results folder and a PostgreSQL server (both ways, keeping run ids).

    The URL is postgresql://[user@]host[:port]/database[?sslmode=...]; the password comes from
    PGPASSWORD, ~/.pgpass or a service file (PGSERVICE), never the command line.
    """


@results_group.command("push", epilog=EXIT_CODES)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.argument("url")
def results_push(folder: Path, url: str) -> None:
    """Copy the runs of FOLDER (a results folder, or the spool a run that lost its server kept) to the
    server at URL. Idempotent: a run the server holds byte for byte is not copied again, and an
    incomplete run there is replaced by a fuller copy."""
    if not folder.is_dir():
        raise UserError(f"results folder {folder} does not exist: give the folder your runs are stored in")
    if not pg.is_url(url):
        raise UserError(f"{pg.redact(url)} is not a PostgreSQL URL: write it as postgresql://[user@]host[:port]/db")
    with pg.open_store(url) as target:
        rep = pg.push(folder, target)
        click.echo(rep.line(str(folder), str(target)))
    if rep.unreadable:
        for why in rep.unreadable:
            click.echo(f"warning: skipping {' '.join(why.split())}", err=True)


@results_group.command("pull", epilog=EXIT_CODES)
@click.argument("url")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def results_pull(url: str, folder: Path) -> None:
    """Copy the runs stored on the server at URL into FOLDER (made if missing; a read-only session on
    the server), written and indexed as a run writes them. Idempotent: a second pull copies nothing."""
    if not pg.is_url(url):
        raise UserError(f"{pg.redact(url)} is not a PostgreSQL URL: write it as postgresql://[user@]host[:port]/db")
    with pg.open_store(url, read_only=True) as source:
        rep = pg.pull(source, folder)
        click.echo(rep.line(str(source), str(folder)))
    for why in rep.unreadable:
        click.echo(f"warning: skipping {' '.join(why.split())}", err=True)
