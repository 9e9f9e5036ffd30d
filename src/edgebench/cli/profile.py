"""`edgebench profile`: where the time goes, per operator and per board; `--diff A B` says why."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from edgebench.bench.profile import (
    DEFAULT_ITERATIONS,
    Profile,
    ProfileDiff,
    chrome_trace,
    diff_profiles,
    profiles_of_run,
)
from edgebench.bench.settings import from_options
from edgebench.cli.common import (
    EXIT_CODES,
    boards_callback,
    boards_file_option,
    console,
    format_option,
    json_option,
    main,
    models_callback,
    results_option,
    with_schema,
)
from edgebench.cli.run import setting_options
from edgebench.render.profile import DiffView, ProfileView, diff_markdown, to_doc, to_markdown
from edgebench.render.widths import plain_width
from edgebench.workflows.profile import load_profile_run, pick, run_profile

FORMATS = ("table", "markdown")


@main.command("profile", epilog=EXIT_CODES)
@click.option(
    "--boards",
    default="local",
    show_default=True,
    callback=boards_callback,
    help="Comma-separated board names from the boards file, no spaces: local,pi4.",
)
@click.option(
    "--variants",
    type=click.Path(path_type=Path),
    help="Variants folder to profile. Without it, the stored profile run (--run) is shown.",
)
@click.option("--eval", "eval_data", type=click.Path(path_type=Path), help="Time these inputs (an .npz with x).")
@results_option
@boards_file_option()
@click.option(
    "--models",
    callback=models_callback,
    help="Comma-separated models to profile (default: all in the variants folder).",
)
@click.option(
    "--iterations",
    default=DEFAULT_ITERATIONS,
    show_default=True,
    type=click.IntRange(1, 100000),
    help="Profiled inferences per variant (after the warm-up and the unprofiled steady state).",
)
@setting_options
@click.option("--run", "run_ref", default="latest", show_default=True, help="Stored profile run to show or diff.")
@click.option(
    "--diff", nargs=2, metavar="A B", help="Compare two profiles: variant, board/variant or board/model/variant."
)
@click.option("--trace", type=click.Path(dir_okay=False, path_type=Path), help="Write a Chrome trace (Perfetto).")
@format_option(FORMATS)
@json_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the report to a file.")
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(1, 1000), help="Operators listed per variant."
)
def profile_cmd(
    boards: list[str],
    variants: Path | None,
    eval_data: Path | None,
    results: Path,
    boards_file: Path | None,
    models: list[str] | None,
    iterations: int,
    run_ref: str,
    diff: tuple[str, str] | None,
    trace: Path | None,
    fmt: str,
    as_json: bool,
    output: Path | None,
    top: int,
    **measure: Any,
) -> None:
    """Profile every variant on every board with the runtime's own profiler, and store the run.

    Each variant runs in one fresh agent process: load, warm-up, an unprofiled steady state
    (the latency reported), then --iterations profiled inferences (ONNX Runtime's profiler;
    TFLite lists its ops and their delegate, without per-op timing). Shows the top operators,
    the totals per op type, the ops that left the requested provider, the overhead of the
    profiler, the coverage and the RSS by phase. `--diff A B` lines two profiles up and names
    the cause of the difference. Exits 1 if a variant could not be profiled (the run is stored).
    """
    con = console()
    fmt = "json" if as_json else fmt
    failed: list[Profile] = []
    if variants is not None:
        err = Console(stderr=True)
        out = run_profile(
            variants=variants, boards=boards, results=results, settings=from_options(measure), iterations=iterations,
            eval_data=eval_data, inventory=boards_file, models=models,
            on_case=lambda m: err.print(f"{'ok' if m.ok else 'FAILED'} {m.board}/{m.model}/{m.variant}"),
        )  # fmt: skip
        profiles, failed = out.profiles, out.failures
        err.print(f"profile run stored in {out.run_file}")
    else:
        profiles = profiles_of_run(load_profile_run(results, run_ref))
    d: ProfileDiff | None = None
    if diff is not None:
        d = diff_profiles(pick(profiles, diff[0]), pick(profiles, diff[1]))
    if trace is not None:
        trace.write_text(json.dumps(chrome_trace([d.a, d.b] if d else profiles)))
    text = _render(profiles, d, fmt, top, con if output is None else None)
    if output is not None:
        output.write_text(text)
        con.print(f"report written to {output}")
    elif text:
        click.echo(text, nl=False)
    if failed:
        what = "; ".join(f"{p.label}: {p.error}" for p in failed)
        click.echo(f"error: {len(failed)} variant(s) could not be profiled ({what})", err=True)
        click.get_current_context().exit(1)


for _param in profile_cmd.params:  # `run --profile N` is the measurement setting; here --iterations says how many
    if isinstance(_param, click.Option) and _param.name == "profile":
        _param.hidden = True


def _render(profiles: list[Profile], d: ProfileDiff | None, fmt: str, top: int, con: Console | None) -> str:
    """The report as text (``table`` printed straight to ``con`` when given, returning "")."""
    if fmt == "json":
        return json.dumps(with_schema(to_doc(profiles, d)), indent=1) + "\n"
    if fmt == "markdown":
        return diff_markdown(d) if d else to_markdown(profiles, top)
    view: Any = DiffView(d) if d else ProfileView(profiles, top)
    if con is not None:
        con.print(view)
        return ""
    rec = Console(record=True, width=plain_width(os.environ), file=io.StringIO(), color_system=None)
    rec.print(view)
    return rec.export_text()
