"""`edgebench nightly CONFIG`: compress (cached) → run on all boards → store → compare → report → gate.

A nightly config (TOML; paths relative to the file)::

    [nightly]
    boards = ["local", "pi4"]          # inventory names
    recipe = "recipe.toml"             # compress recipe (unchanged variants are reused), or
    # variants = "variants"            # a variants root measured as it is
    eval = "digits"                    # eval data: "digits" (built in) or an .npz
    inventory = "boards.toml"          # optional; default targets/boards.toml
    models = ["digits"]                # optional: only these models
    baseline = "20260101T000000Z-ab12cd"   # optional pinned baseline run (else the last accepted state)
    budgets = "budgets.toml"           # optional: gate the run
    trend_runs = 14                    # nightlies shown in trends

    [nightly.settings]                 # measurement settings (edgebench run's)
    min_time_s = 2.0
    inputs = { sr = 16000, state = "zeros:batchless" }   # as `run --input` (README "Inputs and dims")
    dims = { height = 320 }                               # as `run --dim`
    # a recipe's [models.M] inputs and dims reach its variants without these; these win over them

The baseline is the last ACCEPTED state, not last night: the pinned ``baseline``, else
the latest of the last nightly of this config that passed and the last run accepted with
``edgebench accept`` (`edgebench.results.accept`). So a regression stays red every night
until it is fixed or accepted, and the first nightly (no baseline yet) is not red for
want of one. The baseline's artifacts are re-measured paired with the new variants on each
board (``run --baseline``), and the gate is `edgebench gate`'s own function (`gate_run`),
widened by history the same way. The verdict line names any change point the trends
(p50: the statistic the gate decides on) find, with its commit.

One exit code: 0 when everything was measured and the gate passed, 3 when a board or
variant failed or the gate failed (undecided included). A lock in the results folder
keeps two nightlies from overlapping; partial results are kept when boards fail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import json
import os
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field
from rich.console import Console, ConsoleOptions, RenderResult

from edgebench import data
from edgebench.bench.settings import RunSettings
from edgebench.compress.recipe import run_recipe
from edgebench.config import load_toml, validate
from edgebench.errors import ConfigError, NightlyBusy, UserError
from edgebench.fsutil import file_lock, write_text_atomic
from edgebench.model import JSON_SCHEMA, CheckVerdict, Comparison, Gate, Report, Run
from edgebench.render.compare import ComparisonView
from edgebench.render.gate import GateView
from edgebench.render.html import comparison_counts, nightly_html
from edgebench.render.markdown import nightly_markdown
from edgebench.render.report import Report as ReportView
from edgebench.results import backend, pg
from edgebench.results.accept import acceptances
from edgebench.results.analysis import analyze_run
from edgebench.results.backend import Results, runs_by
from edgebench.results.compare import compare_runs
from edgebench.results.gate import gate_run, load_budgets
from edgebench.results.trend import with_trends
from edgebench.workflows import recipes
from edgebench.workflows.run import run_harness, server_folder

NIGHTLY = "nightly"
LOCK = ".nightly.lock"


@dataclass(frozen=True)
class NightlyTable:
    """A nightly config: the ``[nightly]`` table with its ``[nightly.settings]`` (see the module docstring).

    `load_config` validates the whole file into it, settings included, before anything runs, and
    resolves the paths against the file's folder; `path` is that file.
    """

    boards: tuple[str, ...]
    recipe: Path | None = None
    variants: Path | None = None
    eval: str | None = None
    inventory: Path | None = None
    models: tuple[str, ...] | None = None
    baseline: str | None = None
    budgets: Path | None = None
    trend_runs: Annotated[int, Field(ge=2)] = 14
    settings: RunSettings = field(default_factory=RunSettings)

    def __post_init__(self) -> None:
        if not self.boards:
            raise ValueError("field 'boards' must list at least one board name")
        if (self.recipe is None) == (self.variants is None):
            raise ValueError("field 'recipe' or 'variants' must be given (exactly one of them)")

    @property
    def path(self) -> Path:
        """The file the config was read from (`load_config`); its messages name it."""
        got: Path = self.__dict__.get("_path", Path(f"{NIGHTLY}.toml"))
        return got


def load_config(path: Path) -> NightlyTable:
    """Read and check a nightly config, ``[nightly.settings]`` included (as `RunSettings`).

    Raises:
        ConfigError: one line naming the file, the table and the field.
    """
    doc = load_toml(path)
    _check_tables(path, doc)
    try:
        t = validate(NightlyTable, doc.get("nightly", None), f"{path}: [nightly]")
    except ConfigError as exc:  # RunSettings' own checks (an input spec) do not know the file: name it
        if str(exc).startswith(f"{path}:"):
            raise
        raise ConfigError(f"{path}: [nightly.settings] {exc}") from None
    base = path.parent
    resolved = {k: base / v for k in ("recipe", "variants", "inventory", "budgets") if (v := getattr(t, k)) is not None}
    cfg = replace(t, **resolved)
    object.__setattr__(cfg, "_path", path)  # not a key of the table: the file it was read from
    for name in ("recipe", "budgets", "inventory"):
        p = getattr(cfg, name)
        if p is not None and not p.is_file():
            raise ConfigError(f"{path}: [nightly] field '{name}' names {p}, which does not exist: fix the path")
    return cfg


NIGHTLY_TABLES = ("nightly", "nightly.settings")  # every table a nightly file may hold


def _check_tables(path: Path, doc: dict[str, Any]) -> None:
    """Refuse what is outside ``[nightly]`` (a misspelt ``[nigthly.settings]`` would leave the nightly on defaults).

    Raises:
        ConfigError: naming the first unknown table (or key) and the closest valid table.
    """
    for key, value in doc.items():
        if key == "nightly":
            continue
        if not isinstance(value, dict):
            if not isinstance(doc.get("nightly"), dict):
                continue  # no [nightly] table at all: validate says so
            raise ConfigError(f"{path}: key {key!r} is outside any table: put it under [nightly]")
        subs = [k for k, v in value.items() if isinstance(v, dict)]
        name = f"{key}.{subs[0]}" if subs and len(subs) == len(value) else key  # [a.b] alone: name it so
        close = difflib.get_close_matches(name, NIGHTLY_TABLES, n=1, cutoff=0.5)
        hint = f"did you mean [{close[0]}]?" if close else "a nightly file holds [nightly] and [nightly.settings]"
        raise ConfigError(f"{path}: unknown table [{name}]: {hint}")


@contextlib.contextmanager
def nightly_lock(results: Results, name: str = NIGHTLY) -> Iterator[None]:
    """Hold the results folder's nightly lock (released when the process dies, too); on a server,
    the advisory lock of the nightly ``name`` (`edgebench.results.pg.nightly_lock`).

    Raises:
        NightlyBusy: naming the holder, when another nightly runs.
    """
    if isinstance(results, pg.PgStore):
        with pg.nightly_lock(results, name):
            yield
        return

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

    run: Run | None = None
    run_file: Path | str | None = None  # a server: its URL (without password) and the run id
    compress: dict[str, Any] = field(default_factory=dict)
    vs_last: Comparison | None = None
    vs_baseline: Comparison | None = None
    report: Report | None = None
    gate: Gate | None = None
    html: Path | None = None
    markdown: Path | None = None
    problems: list[str] = field(default_factory=list)
    baseline: str | None = None  # the run compared and gated against, and why it is the baseline
    changes: list[str] = field(default_factory=list)  # change points the trends found, with their commits

    @property
    def exit_code(self) -> int:
        """0 when all went well, 3 when something failed (board, variant, gate)."""
        return 3 if self.problems else 0

    @property
    def verdict(self) -> tuple[str, str]:
        """``(PASS | FAIL | UNDECIDED, why)``: the nightly's one-line outcome.

        UNDECIDED when the only problem is a gate whose checks were too noisy to decide
        (none failed); it still exits 3, as the gate counts undecided against the run.
        """
        g = self.gate
        undecided_only = (
            g is not None
            and not g.passed
            and g.counts[CheckVerdict.FAIL] == 0
            and len(self.problems) == 1
            and bool(g.checks)
        )
        changed = f"; change point: {', '.join(self.changes)}" if self.changes else ""
        if undecided_only:
            n_undecided = g.counts[CheckVerdict.UNDECIDED] if g is not None else 0
            return "UNDECIDED", f"the gate could not decide {n_undecided} check(s) (too noisy){changed}"
        if self.problems:
            more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            return "FAIL", f"{self.problems[0]}{more}{changed}"
        n = len(self.run.benchmarks) if self.run else 0
        why = [f"{n} measurement(s), none failed"]
        why.append(f"gate passed ({len(g.checks)} checks)" if g is not None else "no budgets to gate on")
        if self.vs_baseline is not None:
            why.append(f"against the baseline: {comparison_counts(self.vs_baseline)}")
        elif self.vs_last is not None:
            why.append(f"against the last nightly: {comparison_counts(self.vs_last)}")
        return "PASS", "; ".join(why) + changed

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The verdict line, the report with trends, the comparisons, the gate, then the outcome again."""
        verdict, why = self.verdict
        style = {"PASS": "green", "FAIL": "red"}.get(verdict, "yellow")
        yield f"[bold {style}]{verdict}[/]: {why}"
        if self.report:
            yield ReportView(self.report)
        if self.baseline:
            yield f"baseline: {self.baseline}"
        for title, d in (("against the last nightly", self.vs_last), ("against the baseline", self.vs_baseline)):
            if d:
                yield f"[bold]{title}[/bold]"
                yield ComparisonView(d)
        if self.gate is not None:
            yield GateView(self.gate)
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
        """Plain data for JSON, its ``schema`` version first (the run itself is referenced by its file)."""
        return {
            "schema": JSON_SCHEMA,
            "run_id": self.run.run_id if self.run else None,
            "run_file": str(self.run_file) if self.run_file else None,
            "exit_code": self.exit_code,
            "verdict": self.verdict[0],
            "why": self.verdict[1],
            "problems": self.problems,
            "baseline": self.baseline,
            "changes": self.changes,
            "compress": self.compress,
            "vs_last": self.vs_last and self.vs_last.to_json(),
            "vs_baseline": self.vs_baseline and self.vs_baseline.to_json(),
            "gate": self.gate and self.gate.to_json(),
            "html": str(self.html) if self.html else None,
            "markdown": str(self.markdown) if self.markdown else None,
        }


def _eval_data(cfg: NightlyTable, work: Path) -> Path | None:
    if cfg.eval is None:
        return None
    if cfg.eval == "digits":
        split = data.digits()
        return data.save_npz(work / "digits_test.npz", split.x_test, split.y_test)
    p = cfg.path.parent / cfg.eval
    if not p.exists():
        raise UserError(
            f"{cfg.path}: [nightly] field 'eval' names {p}, which does not exist: fix the path or use \"digits\""
        )
    return p


def run_settings(run: Run) -> dict[str, Any]:
    """The measurement settings a run was made with (the run's, else its first measurement's)."""
    got = run.extra.get("settings")
    if isinstance(got, dict):
        return dict(got)
    blocks = (m.settings.to_json() for m in run.measurements if m.settings is not None)
    return next((b for b in blocks if b), {})


def _when(stamp: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _same_config(recorded: Any, path: Path) -> bool:
    return isinstance(recorded, str) and Path(recorded).resolve() == path.resolve()


def accepted_baseline(results: Results, cfg: NightlyTable) -> tuple[str | None, str]:
    """The last accepted state: ``(run id or None, why it is the baseline)``.

    The latest of: the last nightly of this config whose verdict was PASS (at its start)
    and the last `edgebench accept` (at its time). With neither: None (a first nightly).
    """
    events: list[tuple[dt.datetime, str, str]] = []
    for run_id, started, path in reversed(runs_by(results, NIGHTLY)):
        r = backend.load_run(results, path)
        if (
            r is not None
            and r.nightly
            and r.nightly.get("verdict") == "PASS"
            and _same_config(r.nightly.get("config"), cfg.path)
        ):
            events.append((_when(started), run_id, "the last nightly that passed"))
            break
    accepted = acceptances(results)
    events += [(_when(a.at), a.run_id, f"accepted by {a.by} ({a.why})") for a in accepted]
    if not events:
        return None, "no accepted baseline yet (first nightly): this run becomes it if it passes"
    _, run_id, why = max(events)
    return run_id, why


def check_pinned(cfg: NightlyTable, baseline: Run, settings: RunSettings) -> None:
    """Refuse a pinned baseline measured with other settings than the nightly's, before any work.

    Raises:
        ConfigError: naming the field, both values and the fix.
    """
    was = run_settings(baseline)
    now = settings.as_dict()
    for name in ("batch_size", "dims", "inputs"):
        if name in was and was[name] != now.get(name):
            raise ConfigError(
                f"{cfg.path}: [nightly] baseline {baseline.run_id} was measured with {name} {was[name]!r} and this "
                f"nightly measures with {now.get(name)!r}: pin a baseline measured in this configuration, or remove "
                "'baseline' to use the last accepted nightly"
            )


def change_points_text(report: Report) -> list[str]:
    """Each change point of the report's trends: where, the commit, and the step (``+10.2 %``)."""
    out = []
    for t in report.trends or ():
        for rid, label in zip(t.changes, t.change_labels, strict=True):
            i = t.runs.index(rid)
            before = [v for v in t.values[:i] if v is not None]
            after = [v for v in t.values[i:] if v is not None]
            step = ""
            if before and after:
                step = f" ({(statistics.median(after) / statistics.median(before) - 1) * 100:+.1f} %)"
            out.append(f"{t.board}/{t.model}/{t.variant} {t.metric} at {label}{step}")
    return out


def _last_nightly(results: Results, before: str) -> str | None:
    older = [r for r in runs_by(results, NIGHTLY) if r[0] != before]
    return older[-1][0] if older else None


def run_nightly(
    cfg: NightlyTable,
    results: Results,
    log: Callable[[str], None] = lambda _m: None,
    console: Console | None = None,
    commit: str | None = None,
    branch: str | None = None,
) -> NightlyResult:
    """The whole nightly under the lock. See the module docstring.

    Args:
        console: where the measurement progress bar goes (None: no bar).
        commit: the benchmarked project's commit (else the CI's or git's, `edgebench.results.commit`).
        branch: its branch.
        log: one-line progress messages.
    """
    res = NightlyResult()
    settings = cfg.settings  # validated with the file (`load_config`)
    budgets = load_budgets(cfg.budgets) if cfg.budgets else None  # config errors before any work
    if cfg.baseline:
        check_pinned(cfg, backend.open_run(results, cfg.baseline, "pin another baseline"), settings)
    with nightly_lock(results, cfg.path.stem):
        backend.prepare(results)
        work = backend.local_folder(results, server_folder()) / NIGHTLY
        work.mkdir(parents=True, exist_ok=True)
        variants = cfg.variants
        if cfg.recipe is not None:
            log(f"compress: {cfg.recipe}")
            recipe = recipes.load(cfg.recipe)  # as `edgebench compress` loads it (input specs too)
            out = run_recipe(recipe, on_step=log)
            variants = recipe.out
            res.compress = {"built": [f"{v.model}/{v.name}" for v in out.built],
                            "skipped": [f"{v.model}/{v.name}" for v in out.skipped], "failed": out.failed}  # fmt: skip
            res.problems += [f"compress {k}: {why}" for k, why in out.failed.items()]
        assert variants is not None
        base_id, base_why = (cfg.baseline, "pinned in the config") if cfg.baseline else accepted_baseline(results, cfg)
        res.baseline = f"{base_id}, {base_why}" if base_id else base_why
        if base_id:  # re-measured paired with the new variants on each board
            settings = settings.replace(baseline=base_id)
        log(f"run on {', '.join(cfg.boards)}" + (f", paired with baseline {base_id}" if base_id else ""))
        models = None if cfg.models is None else list(cfg.models)
        outcome = run_harness(
            variants=variants, boards=list(cfg.boards), results=results, settings=settings,
            eval_data=_eval_data(cfg, work), inventory=cfg.inventory, models=models,
            console=console, parallel=True, commit=commit, branch=branch,
        )  # fmt: skip
        assert outcome.run is not None and outcome.stored is not None
        nightly = {"config": str(cfg.path), "boards": list(cfg.boards), "baseline": base_id}
        run = replace(outcome.run, command=NIGHTLY, nightly=nightly)
        stored = backend.save_run(results, run)
        res.run, res.run_file = run, stored if isinstance(stored, Path) else backend.where(results, stored)
        for f in run.failures:
            why = f.error.message if f.error is not None else "?"
            res.problems.append(f"{f.board}/{f.model}/{f.variant} failed: {why}")
        if outcome.pytest_exit not in (0, 1) and not run.failures:
            log_file = outcome.log
            res.problems.append(f"the measurement harness exited {outcome.pytest_exit}: see {log_file}")
        last = _last_nightly(results, run.run_id)
        # a damaged measurement in the last or baseline run is skipped with a warning (one line in the CLI)
        baseline = backend.open_run(results, base_id) if base_id else None
        last_run = backend.open_run(results, last) if last and last != base_id else None
        if last_run is not None:  # informational: last night may not be the baseline
            res.vs_last = compare_runs(last_run, run, allow_config_change=True)  # listed in config_changes
        if baseline is not None:
            res.vs_baseline = compare_runs(baseline, run, allow_config_change=True)
        report = with_trends(analyze_run(run), results, last=cfg.trend_runs, command=NIGHTLY)
        res.report = report
        res.changes = change_points_text(report)
        if budgets is not None:
            g = gate_run(results, budgets, run, baseline, first=baseline is None)
            res.gate = g
            if not g.passed:
                n = g.counts
                res.problems.append(
                    f"gate failed: {n[CheckVerdict.FAIL]} failed, {n[CheckVerdict.UNDECIDED]} undecided"
                    + (f"; degraded: {', '.join(g.degraded)}" if g.degraded else "")
                )
        verdict, why = res.verdict
        run = replace(run, nightly={**nightly, "verdict": verdict})  # the next nightly's baseline if PASS
        res.run = run
        backend.save_run(results, run)
        html_doc = nightly_html(
            report, verdict, why, gate=res.gate, vs_last=res.vs_last, vs_baseline=res.vs_baseline,
            settings=run_settings(run),
        )  # fmt: skip
        md_doc = nightly_markdown(
            report, verdict, why, gate=res.gate, vs_last=res.vs_last, vs_baseline=res.vs_baseline,
            settings=run_settings(run),
        )  # fmt: skip
        res.html = work / f"{run.run_id}.html"
        write_text_atomic(res.html, html_doc)
        res.markdown = work / f"{run.run_id}.md"
        write_text_atomic(res.markdown, md_doc)
        write_text_atomic(work / f"{run.run_id}.json", json.dumps(res.to_dict(), indent=1, default=str))
    return res
