"""The `edgebench` command line: parses, calls the library, renders. Nothing more."""

from __future__ import annotations

import json
import os
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
    from edgebench.results.analysis import analyze_run
    from edgebench.results.report import Report

    con = Console(stderr=True, width=120) if as_json else console()
    res = run_demo(results, con, epochs=epochs, min_time_s=min_time)
    if as_json:
        print_json({"run_file": str(res.run_file), "seconds": res.seconds, "run": res.run})
        return
    con.print(Report(analyze_run(res.run)))
    con.print(f"variants in [bold]{res.variants[0].path.parent}[/bold]; run stored in [bold]{res.run_file}[/bold]")
    con.print(f"demo took {res.seconds:.1f} s.")
    con.print("Next: `edgebench report --format html -o report.html`, `edgebench --help`.")


# ---- compress commands (owned by the compress work; add commands below this line) ----


@main.command(epilog=EXIT_CODES)
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Variants root (default: the recipe's `out`, else variants/ beside it).",
)
@click.option("--force", is_flag=True, help="Rebuild variants even when their inputs and parameters are unchanged.")
@click.option("--list-passes", is_flag=True, help="List the passes and their parameters, then exit.")
@json_option
def compress(recipe: Path | None, out: Path | None, force: bool, list_passes: bool, as_json: bool) -> None:
    """Make the variants a TOML RECIPE asks for: variants/<model>/<variant>/{model.*, manifest.json}.

    Everything (passes, parameters, files, data) is checked before the first variant is
    written; unchanged variants (same content hash) are skipped; a failing variant leaves
    no folder behind and makes the exit code 1.
    """
    from edgebench.compress.cli_support import list_passes_cmd, run_compress

    if list_passes:
        list_passes_cmd(console(), as_json)
        return
    if recipe is None:
        raise click.UsageError("give a RECIPE (a .toml file) or --list-passes")
    run_compress(recipe, out, force, as_json, Console(stderr=True) if as_json else console())


@main.command(epilog=EXIT_CODES)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("variants"),
    show_default=True,
    help="Variants root folder.",
)
@json_option
def variants(root: Path, as_json: bool) -> None:
    """List the variants under ROOT with size, FLOPs, sparsity, accuracy and fidelity."""
    from edgebench.compress.table import VariantTable, variant_row
    from edgebench.compress.variant import list_variants

    found = list_variants(root)
    if as_json:
        print_json([variant_row(v) for v in found])
        return
    if not found:
        console().print(f"no variants under {root}: make some with `edgebench compress RECIPE`")
        return
    console().print(VariantTable(found))


# ---- targets commands (owned by the targets work; add commands below this line) ----

boards_file_option = click.option(
    "--boards-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Inventory file [default: $EDGEBENCH_BOARDS or targets/boards.toml].",
)


def _boards_path(boards_file: Path | None) -> Path:
    from edgebench.targets.inventory import default_path

    return boards_file if boards_file is not None else default_path()


@main.group(epilog=EXIT_CODES)
def boards() -> None:
    """Register edge boards, list them, and check that they are fit to run jobs.

    Boards live in targets/boards.toml ([[boards]] tables). The built-in `local`
    board (this machine) needs no entry.
    """


@boards.command("list", epilog=EXIT_CODES)
@boards_file_option
@json_option
def boards_list(boards_file: Path | None, as_json: bool) -> None:
    """List the boards in the inventory with their last check."""
    from edgebench.targets.fingerprint import fingerprints_path, load_fingerprints
    from edgebench.targets.inventory import load_inventory
    from edgebench.targets.render import board_dict, boards_table

    path = _boards_path(boards_file)
    inv = load_inventory(boards_file)
    checks = load_fingerprints(fingerprints_path(path))
    if as_json:
        print_json([{**board_dict(b), "last_check": checks.get(b.name)} for b in inv.values()])
        return
    console().print(boards_table(list(inv.values()), checks))


@boards.command("add", epilog=EXIT_CODES)
@click.argument("name")
@click.option("--host", required=True, help="Host name, address, or a Host alias from ~/.ssh/config.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="SSH port [default: 22 or the ssh config's].")
@click.option("--user", default=None, help="SSH user [default: the ssh config's or yours].")
@click.option("--identity-file", default=None, help="SSH private key (omit to use ssh-agent or the ssh config).")
@click.option("--python", default="python3", show_default=True, help="Python interpreter on the board.")
@click.option("--workdir", default="~/edgebench", show_default=True, help="Folder on the board (absolute or ~/...).")
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(["onnxruntime", "tflite"]),
    help="A runtime installed on the board (repeat) [default: onnxruntime].",
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A label such as arch=aarch64 (repeat).")
@click.option("--known-hosts", default=None, help="known_hosts file for this board [default: ~/.ssh/known_hosts].")
@click.option("--trust", is_flag=True, help="Fetch the host key, show its fingerprint and record it in known_hosts.")
@boards_file_option
def boards_add(
    name: str,
    host: str,
    port: int | None,
    user: str | None,
    identity_file: str | None,
    python: str,
    workdir: str,
    runtimes: tuple[str, ...],
    tags: tuple[str, ...],
    known_hosts: str | None,
    trust: bool,
    boards_file: Path | None,
) -> None:
    """Add board NAME to the inventory (validated before anything is written)."""
    from edgebench.errors import RemoteError
    from edgebench.targets.boards_file import add_board
    from edgebench.targets.hostkeys import trust_host_key
    from edgebench.targets.inventory import parse_board

    path = _boards_path(boards_file)
    raw: dict[str, Any] = {
        "name": name,
        "host": host,
        "python": python,
        "workdir": workdir,
        "runtimes": list(runtimes or ("onnxruntime",)),
    }
    for key, value in (("port", port), ("user", user), ("identity_file", identity_file), ("known_hosts", known_hosts)):
        if value is not None:
            raw[key] = value
    tag_map = {}
    for t in tags:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise UserError(f"--tag {t!r} must be KEY=VALUE, such as arch=aarch64")
        tag_map[key] = value
    if tag_map:
        raw["tags"] = tag_map
    board = parse_board(raw, path, 0)
    if trust:
        try:
            fp, added = trust_host_key(board)
        except RemoteError as exc:
            raise UserError(f"board {name!r}: cannot fetch its host key: {exc}") from None
        where = board.known_hosts or "~/.ssh/known_hosts"
        verb = "recorded in" if added else "already in"
        click.echo(f"host key of {host}:{board.port}: {fp} ({verb} {where})", err=True)
    add_board(path, board)
    hint = "" if trust else "; its host key must be in known_hosts (or add it with --trust)"
    click.echo(f"added board {name!r} to {path}{hint}")


@boards.command("remove", epilog=EXIT_CODES)
@click.argument("names", nargs=-1, required=True)
@boards_file_option
def boards_remove(names: tuple[str, ...], boards_file: Path | None) -> None:
    """Remove boards NAMES from the inventory."""
    from edgebench.targets.boards_file import remove_boards

    path = _boards_path(boards_file)
    remove_boards(path, list(names))
    click.echo(f"removed {', '.join(names)} from {path}")


@boards.command("check", epilog=EXIT_CODES)
@click.argument("names", nargs=-1)
@boards_file_option
@json_option
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(1, 3600), help="Seconds per board.")
def boards_check(names: tuple[str, ...], boards_file: Path | None, as_json: bool, timeout: float) -> None:
    """Connect to boards NAMES (default: all), record their fingerprint, and mark each
    ready / unreachable / unfit with the reason. Exits 1 if any board is not ready."""
    import datetime as dt

    from rich.progress import Progress

    from edgebench.targets.fingerprint import READY, check_boards, fingerprints_path, record_checks
    from edgebench.targets.inventory import load_inventory, resolve_boards
    from edgebench.targets.render import checks_table

    path = _boards_path(boards_file)
    inv = load_inventory(boards_file)
    chosen = resolve_boards(inv, list(names)) if names else list(inv.values())
    err_console = Console(stderr=True)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("checking boards", total=len(chosen))
        checks = check_boards(chosen, timeout=timeout, on_done=lambda _n, _r: progress.advance(task))
    record_checks(fingerprints_path(path), checks, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    if as_json:
        print_json([c.as_dict() for c in checks])
    else:
        console().print(checks_table(checks))
    bad = [c for c in checks if c.status != READY]
    if bad:
        raise UserError("; ".join(f"board {c.name!r} is {c.status}: {c.reason}" for c in bad))


@main.group(epilog=EXIT_CODES)
def farm() -> None:
    """A board farm on this machine: real OpenSSH sshd servers on 127.0.0.x, to try
    the SSH path without hardware. As root with cgroup v1, each board gets its own
    CPU quota and memory limit (a "pi-like" board has half a core and 512 MB)."""


farm_dir_option = click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Farm state folder (keys, workdirs, boards file) [default: ~/.cache/edgebench/farm].",
)


@farm.command("up", epilog=EXIT_CODES)
@click.option("--boards", "n", default=3, show_default=True, type=click.IntRange(1, 50), help="Number of boards.")
@click.option("--no-limits", is_flag=True, help="Do not set CPU/memory limits even when cgroups allow it.")
@farm_dir_option
@json_option
def farm_up_cmd(n: int, no_limits: bool, root: Path | None, as_json: bool) -> None:
    """Start N sshd boards (profiles cycle full, pi-like, mid, tiny) and write a ready boards file."""
    from edgebench.targets.farm import farm_up
    from edgebench.targets.render import farm_table

    f = farm_up(root, n, limits=not no_limits)
    if as_json:
        print_json(
            {
                "root": str(f.root),
                "boards_file": str(f.boards_file),
                "limits": f.limits,
                "limits_note": f.limits_note,
                "boards": [m.__dict__ for m in f.members],
            }
        )
        return
    con = console()
    con.print(farm_table(f.members))
    con.print(("limits: " if f.limits else "[yellow]cannot limit boards[/yellow]: ") + f.limits_note)
    con.print(
        f"boards file: {f.boards_file}\n  export EDGEBENCH_BOARDS={f.boards_file}\n"
        f"  edgebench boards check\n  edgebench farm down{'' if root is None else f' --dir {f.root}'}"
    )


@farm.command("down", epilog=EXIT_CODES)
@farm_dir_option
@json_option
def farm_down_cmd(root: Path | None, as_json: bool) -> None:
    """Stop the farm: kill its sshd servers and sessions, remove its cgroups and folder."""
    from edgebench.targets.farm import farm_down

    stopped = farm_down(root)
    if as_json:
        print_json({"stopped": stopped})
        return
    click.echo(f"stopped {len(stopped)} board(s): {', '.join(stopped)}")


# ---- bench commands (owned by the bench work; add commands below this line) ----


@main.command("run", epilog=EXIT_CODES, context_settings={"ignore_unknown_options": True})
@click.option("--boards", default="local", show_default=True, help="Comma-separated board names from the inventory.")
@click.option(
    "--variants",
    required=True,
    type=click.Path(path_type=Path),
    help="Variants folder (<model>/<variant>/manifest.json), as `edgebench compress` writes it.",
)
@click.option(
    "--eval", "eval_data", type=click.Path(path_type=Path), help="Eval data: an .npz (x, y) or a folder of <model>.npz."
)
@results_option
@json_option
@click.option(
    "--inventory", type=click.Path(path_type=Path), help="Boards inventory file (default targets/boards.toml)."
)
@click.option("--models", help="Comma-separated models to measure (default: all in the variants folder).")
@click.option("--min-time", type=float, help="Steady state: at least this many seconds per variant [2].")
@click.option("--min-rounds", type=int, help="Steady state: at least this many samples [50].")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    help="Fresh agent processes per variant, interleaved across a board's variants; the min-time and "
    "min-rounds floors are split between them [3].",
)
@click.option("--max-time", type=float, help="Steady state: time cap in seconds [30].")
@click.option("--warmup-iters", type=int, help="Warm-up: at least this many inferences [10].")
@click.option("--warmup-time", type=float, help="Warm-up: at least this many seconds [0.2].")
@click.option("--batch-size", type=int, help="Inputs per inference [1].")
@click.option(
    "--dim", "dims", multiple=True, metavar="NAME=SIZE", help="Size of a dynamic input dimension (repeatable)."
)
@click.option("--quick", type=int, metavar="N", help="Accuracy on a random subset of N samples, with a 95% interval.")
@click.option("--cooldown", type=float, metavar="S", help="Sleep S seconds on the board before each variant.")
@click.option(
    "--cooldown-until", type=float, metavar="C", help="Before each variant, wait until the board is at most C degrees."
)
@click.option("--timeout", type=float, help="Kill the agent after this many seconds [900].")
@click.option("--parallel", is_flag=True, help="Measure the boards in parallel (a board's processes stay sequential).")
@click.option("--show-pytest", is_flag=True, help="Stream the harness's pytest output (its benchmark table) to stderr.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def run_cmd(
    boards: str,
    variants: Path,
    eval_data: Path | None,
    results: Path,
    as_json: bool,
    inventory: Path | None,
    models: str | None,
    dims: tuple[str, ...],
    parallel: bool,
    show_pytest: bool,
    pytest_args: tuple[str, ...],
    **measure: Any,
) -> None:
    """Measure every variant on every board (pytest-benchmark harness) and store the run.

    Each variant runs in --repeats fresh agent processes on the board, interleaved
    round-robin across the board's variants so drift and per-process states spread over all
    of them: cold start, warm-up, steady state with raw samples (pooled), memory, accuracy
    and fidelity (first process). Extra arguments after `--` go to
    pytest, e.g. `-- --benchmark-compare=0001 --benchmark-compare-fail=median:5%`.
    Exits 1 if a measurement failed (the run is still stored), 3 if a
    --benchmark-compare-fail check failed.
    """
    from edgebench.bench.launch import run_harness
    from edgebench.bench.settings import RunSettings, parse_dims
    from edgebench.results.analysis import analyze_run
    from edgebench.results.report import Report

    names = {
        "min_time": "min_time_s", "min_rounds": "min_rounds", "max_time": "max_time_s",
        "warmup_iters": "warmup_min_iters", "warmup_time": "warmup_min_s", "batch_size": "batch_size",
        "quick": "quick", "cooldown": "cooldown_s", "cooldown_until": "cooldown_until_c", "timeout": "timeout_s",
        "repeats": "repeats",
    }  # fmt: skip
    values = {names[k]: v for k, v in measure.items() if v is not None}
    settings = RunSettings.from_mapping({**values, "dims": parse_dims(list(dims))})
    split = [n.strip() for n in boards.split(",") if n.strip()] or ["local"]
    model_list = [n.strip() for n in models.split(",") if n.strip()] if models else None
    out = run_harness(
        variants=variants, boards=split, results=results, settings=settings, eval_data=eval_data,
        inventory=inventory, models=model_list, extra=pytest_args, parallel=parallel,
        console=None if show_pytest else Console(stderr=True), show_output=show_pytest,
    )  # fmt: skip
    if as_json:
        print_json({"run_file": str(out.run_file), "log": str(out.log), "pytest_exit": out.pytest_exit, "run": out.run})
    else:
        con = console()
        if out.run is not None:
            con.print(Report(analyze_run(out.run)))
        con.print(f"run stored in [bold]{out.run_file}[/bold] (harness log: {out.log})")
    ctx = click.get_current_context()
    if out.failures:
        what = ", ".join(f"{m['board']}/{m['model']}/{m['variant']}" for m in out.failures)
        click.echo(
            f"error: {len(out.failures)} measurement(s) failed ({what}): see the errors in the run table", err=True
        )
        ctx.exit(1)
    if out.regressed:
        lines = out.log.read_text(errors="replace").splitlines() if out.log else []
        for line in lines[next((i for i, ln in enumerate(lines) if "Performance has regressed" in ln), len(lines)) :]:
            click.echo(line, err=True)
        click.echo("error: performance regressed against the compared run (--benchmark-compare-fail)", err=True)
        ctx.exit(3)
    if out.pytest_exit != 0:
        click.echo(f"error: the harness exited {out.pytest_exit}: see its output", err=True)
        ctx.exit(1)


# ---- results commands (owned by the results work; add commands below this line) ----


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
    import io

    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(renderable)
    _emit(buf.getvalue(), output)


def _emit(text: str, output: Path | None) -> None:
    from edgebench.fsutil import write_text_atomic

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
    import warnings

    from edgebench.results.report import load_report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = load_report(results, run, last=last)
    _warn_lines(caught)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        _emit(json.dumps(rep.data, indent=1, default=str) + "\n", output)
    elif fmt == "markdown":
        from edgebench.results.markdown import report_markdown

        _emit(report_markdown(rep.data), output)
    elif fmt == "html":
        from edgebench.results.html import report_html

        _emit(report_html(rep.data, results), output)
    else:
        _show(rep, output)


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
    import warnings

    from edgebench.results.compare import Comparison, compare_runs, comparison_markdown
    from edgebench.results.report import read_run_or_fail

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ra, rb = read_run_or_fail(results, a), read_run_or_fail(results, b)
    _warn_lines(caught)
    d = compare_runs(ra, rb, alpha=alpha, min_effect=min_effect / 100)
    fmt = "json" if as_json else fmt
    if fmt == "json":
        _emit(json.dumps(d, indent=1) + "\n", output)
    elif fmt == "markdown":
        _emit(comparison_markdown(d), output)
    else:
        _show(Comparison(d), output)


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
    import warnings

    from edgebench.fsutil import write_text_atomic
    from edgebench.results.gate import gate_markdown, junit_xml, run_gate

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_gate(results, budgets, run_ref, baseline)
    _warn_lines(caught)
    if junit:
        write_text_atomic(junit, junit_xml(res))
    if md:
        write_text_atomic(md, gate_markdown(res))
    if as_json:
        print_json(res.to_dict())
    else:
        console().print(res)
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
    import warnings

    from edgebench.results.choose import Choice, parse_mb, parse_ms
    from edgebench.results.choose import choose as do_choose
    from edgebench.targets.inventory import load_inventory

    inv = load_inventory(inventory)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p90 = parse_ms(max_p90) if max_p90 else None
        memory = parse_mb(max_memory) if max_memory else None
        d = do_choose(results, model, inv, rank=rank, min_accuracy=min_accuracy, max_p90_ms=p90, max_memory_mb=memory)
    _warn_lines(caught)
    if as_json:
        print_json(d)
    else:
        console().print(Choice(d))


@main.command(epilog=EXIT_CODES)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@results_option
@json_option
def nightly(config: Path, results: Path, as_json: bool) -> None:
    """The nightly job in one command, from CONFIG (TOML, a [nightly] table): compress (cached),
    deploy and run on all boards, store, compare with the last nightly and the pinned baseline,
    report (terminal with sparklines + HTML + Markdown under RESULTS/nightly/) and gate.
    Exit 0 when all went well, 3 when a board, a variant or the gate failed; two nightlies
    on one results folder never overlap (the second exits 1).
    """
    from edgebench.results.nightly import load_config, run_nightly

    if not config.is_file():
        raise UserError(f"nightly config {config} does not exist: give the path of a TOML file with a [nightly] table")
    cfg = load_config(config)
    con = Console(stderr=True) if as_json else console()
    res = run_nightly(cfg, results, log=lambda m: con.print(f"[dim]{m}[/dim]"), console=con)
    if as_json:
        print_json(res.to_dict())
    else:
        con.print(res)
    sys.exit(res.exit_code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
