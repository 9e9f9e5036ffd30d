"""`edgebench report`, `compare`, `gate` and `choose`."""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from edgebench.cli.common import EXIT_CODES, console, json_option, main, print_json, results_option
from edgebench.fsutil import write_text_atomic
from edgebench.model import BoardCost
from edgebench.render.choose import ChoiceView
from edgebench.render.compare import ComparisonView
from edgebench.render.gate import GateView, junit_xml
from edgebench.render.html import report_html
from edgebench.render.markdown import comparison_markdown, gate_markdown, report_markdown
from edgebench.render.report import Report
from edgebench.results.analysis import load_report
from edgebench.results.choose import choose as do_choose
from edgebench.results.choose import parse_mb, parse_ms
from edgebench.results.compare import compare_runs
from edgebench.results.gate import run_gate
from edgebench.results.store import open_run
from edgebench.targets.inventory import load_inventory


def _warn_lines(caught: list[Any]) -> None:
    """Print collected Python warnings as one ``warning:`` line each on stderr."""
    seen = set()
    for w in caught:
        msg = str(w.message)
        if msg not in seen:
            seen.add(msg)
            click.echo(f"warning: {msg}", err=True)


FORMATS = click.Choice(["table", "markdown", "html", "json"])
format_option = click.option("--format", "fmt", type=FORMATS, default="table", show_default=True, help="Output format.")
output_option = click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (atomically) instead of stdout.",
)


def _show(renderable: Any, output: Path | None) -> None:
    """Print a rich renderable, or write it as plain text (120 columns) to ``output``."""
    if output is None:
        console().print(renderable)
        return

    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(renderable)
    _emit(buf.getvalue(), output)


def _emit(text: str, output: Path | None) -> None:

    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        write_text_atomic(output, text)
        click.echo(f"written {output}", err=True)


@main.command(epilog=EXIT_CODES)
@click.argument("run", default="latest")
@results_option
@format_option
@output_option
@json_option
@click.option("--last", default=30, show_default=True, type=click.IntRange(2, 10000), help="Runs shown in trends.")
def report(run: str, results: Path, fmt: str, output: Path | None, as_json: bool, last: int) -> None:
    """Report one stored run: per model a board x variant table (p50/p90/p99, throughput,
    peak memory, top-1, fidelity, size, speed-up and size ratio against fp32), a verdict per
    variant, the Pareto set of top-1 vs p90 per board, and trends over earlier runs.

    RUN is a run id (or unique prefix), a run file, `latest` (default) or `latest~N`.
    Unreadable run files are skipped with a warning.
    """

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = load_report(results, run, last=last)
    _warn_lines(caught)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        _emit(json.dumps(rep.to_json(), indent=1, default=str) + "\n", output)
    elif fmt == "markdown":
        _emit(report_markdown(rep), output)
    elif fmt == "html":
        _emit(report_html(rep, results), output)
    else:
        _show(Report(rep), output)


@main.command(epilog=EXIT_CODES)
@click.argument("a")
@click.argument("b", default="latest")
@results_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@output_option
@json_option
@click.option("--alpha", default=0.01, show_default=True, type=click.FloatRange(1e-6, 0.5), help="Significance level.")
@click.option(
    "--min-effect",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, 100),
    help="Changes under this % count as none.",
)
def compare(
    a: str, b: str, results: Path, fmt: str, output: Path | None, as_json: bool, alpha: float, min_effect: float
) -> None:
    """Compare run B (default: latest) against run A, per board, model and variant: p50 and p90
    change with a Mann-Whitney test and quantile confidence intervals on the raw samples,
    labelled faster / slower / no change / undecided; peak memory and top-1 deltas.
    """

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ra, rb = open_run(results, a), open_run(results, b)
    _warn_lines(caught)
    d = compare_runs(ra, rb, alpha=alpha, min_effect=min_effect / 100)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        _emit(json.dumps(d.to_json(), indent=1) + "\n", output)
    elif fmt == "markdown":
        _emit(comparison_markdown(d), output)
    else:
        _show(ComparisonView(d), output)


@main.command(epilog=EXIT_CODES)
@click.argument("budgets", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--run", "run_ref", default="latest", show_default=True, help="Run to gate (id, file or latest~N).")
@click.option("--baseline", default=None, help="Baseline run for max_regression_pct (overrides the file's).")
@results_option
@json_option
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML here.")
@click.option("--markdown", "md", type=click.Path(dir_okay=False, path_type=Path), help="Also write Markdown here.")
def gate(
    budgets: Path, run_ref: str, baseline: str | None, results: Path, as_json: bool, junit: Path | None, md: Path | None
) -> None:
    """Check a run against BUDGETS (TOML; `[[budget]]` tables with model/board/variant globs and
    max_p90_ms, max_p99_ms, max_peak_mb, min_accuracy, max_accuracy_drop_pt, max_size_mb,
    max_regression_pct). Exit 0 when every check passes, 3 otherwise. A latency too noisy
    to place against its budget is `undecided` and fails the gate; a budget that matches no
    result fails it too.
    """

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_gate(results, budgets, run_ref, baseline)
    _warn_lines(caught)
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
@click.option("--min-accuracy", type=click.FloatRange(0, 1), help="Minimum top-1 (0..1), e.g. 0.97.")
@click.option("--max-memory", help="Peak memory budget, e.g. 256MB, 1GiB.")
@click.option(
    "--rank",
    type=click.Choice(["cost", "power", "latency"]),
    default="cost",
    show_default=True,
    help="Order of the options that fit.",
)
@click.option(
    "--inventory",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Board inventory (default: targets/boards.toml).",
)
@results_option
@json_option
def choose(
    model: str, max_p90: str | None, min_accuracy: float | None, max_memory: str | None, rank: str,
    inventory: Path | None, results: Path, as_json: bool,
) -> None:  # fmt: skip
    """Choose hardware: rank the boards and variants of MODEL whose latest stored results meet
    the constraints, by board cost, power or latency (cost and power from the inventory),
    and say why each of the others does not qualify.
    """

    inv = {name: BoardCost(b.cost, b.power_w) for name, b in load_inventory(inventory).items()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p90 = parse_ms(max_p90) if max_p90 else None
        memory = parse_mb(max_memory) if max_memory else None
        d = do_choose(results, model, inv, rank=rank, min_accuracy=min_accuracy, max_p90_ms=p90, max_memory_mb=memory)
    _warn_lines(caught)
    if as_json:
        print_json(d.to_json())
    else:
        console().print(ChoiceView(d))
