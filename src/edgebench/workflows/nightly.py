"""`edgebench nightly CONFIG`: compress (cached) → run on all boards → store → compare → report → gate.

A nightly config (TOML; paths relative to the file)::

    [nightly]
    boards = ["local", "pi4"]          # inventory names
    recipe = "recipe.toml"             # compress recipe (unchanged variants are reused), or
    # variants = "variants"            # a variants root measured as it is
    eval = "digits"                    # eval data: "digits" (built in) or an .npz
    inventory = "boards.toml"          # optional; default targets/boards.toml
    models = ["digits"]                # optional: only these models
    baseline = "20260101T000000Z-ab12cd"   # optional pinned baseline run
    budgets = "budgets.toml"           # optional: gate the run
    trend_runs = 14                    # nightlies shown in trends

    [nightly.settings]                 # measurement settings (edgebench run's)
    min_time_s = 2.0

One exit code: 0 when everything was measured and the gate passed, 3 when a board or
variant failed or the gate failed (undecided included). A lock in the results folder
keeps two nightlies from overlapping; partial results are kept when boards fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult

from edgebench.errors import NightlyBusy, UserError
from edgebench.fsutil import file_lock

NIGHTLY = "nightly"
LOCK = ".nightly.lock"


@dataclass
class NightlyConfig:
    """A parsed nightly config."""

    path: Path
    boards: list[str]
    recipe: Path | None
    variants: Path | None
    eval: str | None
    inventory: Path | None
    models: list[str] | None
    baseline: str | None
    budgets: Path | None
    trend_runs: int
    settings: dict[str, Any]


def load_config(path: Path) -> NightlyConfig:
    """Read and check a nightly config.

    Raises:
        ConfigError: naming the file, table and field.
    """
    from edgebench.config import Table, load_toml

    t = Table(path, "nightly", load_toml(path).get("nightly", None))
    base = path.parent

    def opt_path(name: str) -> Path | None:
        v = t.text(name, None)
        return None if v is None else base / v

    boards = t.array("boards")
    if not boards or not all(isinstance(b, str) for b in boards):
        raise t.error("boards", "must list at least one board name")
    cfg = NightlyConfig(
        path=path,
        boards=boards,
        recipe=opt_path("recipe"),
        variants=opt_path("variants"),
        eval=t.text("eval", None),
        inventory=opt_path("inventory"),
        models=t.array("models", None),
        baseline=t.text("baseline", None),
        budgets=opt_path("budgets"),
        trend_runs=t.integer("trend_runs", 14, minimum=2),
        settings=dict(t.table("settings", {}).data),
    )
    t.done()
    if (cfg.recipe is None) == (cfg.variants is None):
        raise t.error("recipe", "or 'variants' must be given (exactly one of them)")
    for name in ("recipe", "budgets", "inventory"):
        p = getattr(cfg, name)
        if p is not None and not p.is_file():
            raise t.error(name, f"names {p}, which does not exist: fix the path")
    return cfg


@contextlib.contextmanager
def nightly_lock(results: Path) -> Iterator[None]:
    """Hold the results folder's nightly lock (released when the process dies, too).

    Raises:
        NightlyBusy: naming the holder, when another nightly runs.
    """

    def busy(holder: str) -> NightlyBusy:
        return NightlyBusy(
            f"another nightly is running on {results} ({holder or 'unknown'}): wait for it to finish; "
            "two nightlies never overlap"
        )

    with file_lock(results / LOCK, busy, owner=f"pid {os.getpid()}"):
        yield


@dataclass
class NightlyResult:
    """What a nightly did; ``exit_code`` is the command's."""

    run: dict[str, Any] | None = None
    run_file: Path | None = None
    compress: dict[str, Any] = field(default_factory=dict)
    vs_last: dict[str, Any] | None = None
    vs_baseline: dict[str, Any] | None = None
    report: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    html: Path | None = None
    markdown: Path | None = None
    problems: list[str] = field(default_factory=list)
    gate_result: Any = None

    @property
    def exit_code(self) -> int:
        """0 when all went well, 3 when something failed (board, variant, gate)."""
        return 3 if self.problems else 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Report with trends, the comparisons, the gate, then the outcome."""
        from edgebench.render.report import Report
        from edgebench.results.compare import Comparison

        if self.report:
            yield Report(self.report)
        for title, d in (("against the last nightly", self.vs_last), ("against the pinned baseline", self.vs_baseline)):
            if d:
                yield f"[bold]{title}[/bold]"
                yield Comparison(d)
        if self.gate_result is not None:
            yield self.gate_result
        for p in self.problems:
            yield f"[red]problem: {p}[/red]"
        where = f"; HTML: {self.html}" if self.html else ""
        verdict = (
            "[green]nightly OK[/green]"
            if not self.problems
            else f"[red]nightly FAILED ({len(self.problems)} problem(s))[/red]"
        )
        yield f"{verdict}{where}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (the run itself is referenced by its file)."""
        return {
            "run_id": self.run["edgebench"]["run_id"] if self.run else None,
            "run_file": str(self.run_file) if self.run_file else None,
            "exit_code": self.exit_code,
            "problems": self.problems,
            "compress": self.compress,
            "vs_last": self.vs_last,
            "vs_baseline": self.vs_baseline,
            "gate": self.gate,
            "html": str(self.html) if self.html else None,
            "markdown": str(self.markdown) if self.markdown else None,
        }


def _eval_data(cfg: NightlyConfig, work: Path) -> Path | None:
    if cfg.eval is None:
        return None
    if cfg.eval == "digits":
        from edgebench import data

        split = data.digits()
        return data.save_npz(work / "digits_test.npz", split.x_test, split.y_test)
    p = cfg.path.parent / cfg.eval
    if not p.exists():
        raise UserError(
            f"{cfg.path}: [nightly] field 'eval' names {p}, which does not exist: fix the path or use \"digits\""
        )
    return p


def _last_nightly(results: Path, before: str) -> str | None:
    from edgebench.results.index import runs_by

    older = [r for r in runs_by(results, NIGHTLY) if r[0] != before]
    return older[-1][0] if older else None


def run_nightly(
    cfg: NightlyConfig,
    results: Path,
    log: Callable[[str], None] = lambda _m: None,
    console: Console | None = None,
) -> NightlyResult:
    """The whole nightly under the lock. See the module docstring.

    Args:
        console: where the measurement progress bar goes (None: no bar).
        log: one-line progress messages.
    """
    from edgebench.bench.settings import RunSettings
    from edgebench.fsutil import write_text_atomic
    from edgebench.render.html import report_html
    from edgebench.render.markdown import report_markdown
    from edgebench.render.report import attach_trends, read_run_or_fail
    from edgebench.results import store
    from edgebench.results.analysis import analyze_run
    from edgebench.results.compare import compare_runs, comparison_markdown
    from edgebench.results.gate import GateResult, evaluate, gate_markdown, load_budgets
    from edgebench.workflows.run import run_harness

    res = NightlyResult()
    settings = RunSettings.from_mapping(cfg.settings)
    budgets = load_budgets(cfg.budgets) if cfg.budgets else None  # config errors before any work
    with nightly_lock(results):
        store.prepare(results)
        work = results / NIGHTLY
        work.mkdir(exist_ok=True)
        variants = cfg.variants
        if cfg.recipe is not None:
            from edgebench.compress.recipe import load_recipe, run_recipe

            log(f"compress: {cfg.recipe}")
            recipe = load_recipe(cfg.recipe)
            out = run_recipe(recipe, on_step=log)
            variants = recipe.out
            res.compress = {"built": [f"{v.model}/{v.name}" for v in out.built],
                            "skipped": [f"{v.model}/{v.name}" for v in out.skipped], "failed": out.failed}  # fmt: skip
            res.problems += [f"compress {k}: {why}" for k, why in out.failed.items()]
        assert variants is not None
        log(f"run on {', '.join(cfg.boards)}")
        outcome = run_harness(
            variants=variants, boards=cfg.boards, results=results, settings=settings, eval_data=_eval_data(cfg, work),
            inventory=cfg.inventory, models=cfg.models, console=console, parallel=True,
        )  # fmt: skip
        run = outcome.run
        assert run is not None and outcome.run_file is not None
        eb = run["edgebench"]
        eb["command"] = NIGHTLY
        eb["nightly"] = {"config": str(cfg.path), "boards": cfg.boards, "baseline": cfg.baseline}
        res.run, res.run_file = run, store.save_run(results, run)
        for f in eb["failures"]:
            why = (f.get("error") or {}).get("message", "?")
            res.problems.append(f"{f['board']}/{f['model']}/{f['variant']} failed: {why}")
        if outcome.pytest_exit not in (0, 1) and not eb["failures"]:
            log_file = results / "logs" / f"{eb['run_id']}.log"
            res.problems.append(f"the measurement harness exited {outcome.pytest_exit}: see {log_file}")
        last = _last_nightly(results, eb["run_id"])
        md = [f"# edgebench nightly `{eb['run_id']}`", ""]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if last:
                res.vs_last = compare_runs(read_run_or_fail(results, last), run)
                md.append(comparison_markdown(res.vs_last))
            baseline = read_run_or_fail(results, cfg.baseline) if cfg.baseline else None
            if baseline is not None:
                res.vs_baseline = compare_runs(baseline, run)
                md.append(comparison_markdown(res.vs_baseline))
        data = attach_trends(analyze_run(run), results, last=cfg.trend_runs, command=NIGHTLY)
        res.report = data
        if budgets is not None:
            g = GateResult(
                eb["run_id"], evaluate(run, budgets, baseline or (read_run_or_fail(results, last) if last else None))
            )
            res.gate, res.gate_result = g.to_dict(), g
            md.append(gate_markdown(g))
            if not g.passed:
                n = res.gate["counts"]
                res.problems.append(f"gate failed: {n['fail']} failed, {n['undecided']} undecided")
        md.insert(2, report_markdown(data))
        res.html = work / f"{eb['run_id']}.html"
        write_text_atomic(res.html, report_html(data))
        res.markdown = work / f"{eb['run_id']}.md"
        write_text_atomic(res.markdown, "\n".join(md))
        write_text_atomic(work / f"{eb['run_id']}.json", json.dumps(res.to_dict(), indent=1, default=str))
    return res
