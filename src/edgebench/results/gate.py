"""`edgebench gate BUDGETS.toml`: check a run against latency, memory, accuracy and size budgets.

A budgets file::

    baseline = "latest~1"          # optional: run for max_regression_pct (id, file or latest~N)

    [[budget]]
    model = "digits_cnn"           # glob patterns; "*" when left out
    board = "*"
    variant = "int8-*"
    max_p90_ms = 20.0
    max_p99_ms = 50.0
    max_peak_mb = 256
    min_accuracy = 0.97            # top-1 as a fraction in [0, 1], or "97 %"
    max_accuracy_drop_pt = 1.0     # against fp32 on the same board
    max_size_mb = 1.0
    max_regression_pct = 5.0       # p50 against the baseline run
    max_sustained_p50_ms = 25.0    # run --sustained: the steady state under load
    max_sustained_p99_ms = 60.0
    max_energy_mj = 40.0           # per inference, where the board has a power sensor

Which statistic each budget type uses (`edgebench.results.significance` has the why):

* ``max_p90_ms``, ``max_p99_ms``: the p90 / p99 of each agent process (``--repeats``;
  contiguous batches for a one-process run); the geometric mean of those and its 90%
  t interval. ``pass`` when the whole interval is within the limit, ``fail`` when it is
  wholly above, ``undecided`` otherwise.
* ``max_regression_pct``: the **median** (p50) against the baseline run's, processes as
  units (Student's t on logs), widened by the run-to-run spread of earlier runs of the
  same measurement in the same configuration (`ConfigKey`: runs of another batch, shape,
  thread count, runtime version or board are left out) when the results folder holds 3
  or more; ``pass`` when the 90%
  interval of the slowdown is within the limit, ``fail`` when wholly beyond. The tails
  are too noisy from run to run to gate a few percent on (p90 varies ~5x more than p50).
* ``max_peak_mb``: peak RSS in MiB (2**20 bytes, as every report says; the field keeps its
  old name), the maximum over the processes; ``min_accuracy`` and ``max_accuracy_drop_pt``:
  top-1 on the eval set (exact counts); ``max_size_mb``: the artifact's size in MiB. These
  are compared directly.
* ``max_sustained_p50_ms``, ``max_sustained_p99_ms`` (a ``run --sustained`` timeline): the
  median, over the windows of the steady state, of each window's p50 / p99; the steady state
  is the throttled one when the run throttled, else the last third of the run
  (`edgebench.results.sustained.steady_state`, the note says which). ``max_energy_mj``: mJ per
  inference of the widest power domain the board read (`sustained.energy_figure`, the note
  names it). Compared directly; a measurement without a timeline, or (energy) on a board
  without a power sensor, is ``undecided`` naming why: never a pass.

A variant whose outputs are degraded (cosine to its parent's below the threshold: the board's with
eval data, else its manifest's from compress time; `analysis.fidelity_of`) gets a ``fidelity`` check in
every budget that matches it, named in the verdict line (``...; degraded: local/det/fp16``). It fails
when no top-1 was measured (no eval data, or dense outputs): the cosine is then the only evidence of
the outputs, and a gate on latency alone must not pass a variant whose outputs are not usable. It
passes, saying so, when top-1 was measured: the accuracy budgets judge the loss on real labelled data.

The gate passes only when every check passes: undecided is never a silent pass. A
budget that matches no result is a failed check. `check_limit` is the one decision
function; `edgebench choose` uses it too.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from edgebench.config import Name, load_toml, validate
from edgebench.errors import ConfigError
from edgebench.model import LIMITS, MIB, Budget, Budgets, Check, CheckVerdict, Gate, Measurement, Run
from edgebench.model.decisions import (
    BUDGET_LIMITS,
    ENERGY_MJ,
    FIDELITY_CHECK,
    P50_CHANGE_PCT,
    P90_MS,
    P99_MS,
    PATTERNS,
    PEAK_MB,
    SIZE_MB,
    SUSTAINED_P50_MS,
    SUSTAINED_P99_MS,
    TOP1,
    TOP1_DROP_PT,
    BudgetLimit,
)
from edgebench.results import commit
from edgebench.results.analysis import BASELINE, Fidelity, fidelity_of
from edgebench.results.backend import Results, open_run, sync
from edgebench.results.backend import history as index_history
from edgebench.results.compare import config_differences, refuse_config_change
from edgebench.results.significance import (
    ALPHA,
    HISTORY,
    ONE_RUN_EACH,
    PAIRED,
    budget_check,
    process_rounds,
    regression_check,
)
from edgebench.results.sustained import energy_figure, steady_state

PASS, FAIL, UNDECIDED = CheckVerdict.PASS, CheckVerdict.FAIL, CheckVerdict.UNDECIDED
LIMIT = {lim.name: lim for lim in BUDGET_LIMITS}
QUANTILE_OF = {P90_MS: 0.9, P99_MS: 0.99}  # the latency quantile a figure is
QUANTILE = {lim.name: QUANTILE_OF[lim.figure] for lim in BUDGET_LIMITS if lim.figure in QUANTILE_OF}
SUSTAINED = tuple(lim.name for lim in BUDGET_LIMITS if lim.figure in (SUSTAINED_P50_MS, SUSTAINED_P99_MS, ENERGY_MJ))
# the limits `check_limit` decides on the measurement alone (the others need fp32's top-1 or a baseline)
DIRECT = tuple(lim.name for lim in BUDGET_LIMITS if lim.figure not in (TOP1_DROP_PT, P50_CHANGE_PCT))
NO_SUSTAINED = "no sustained run: run --sustained"
Key = tuple[str, str, str]

_PERCENT = re.compile(r"\s*([0-9]*\.?[0-9]+)\s*%\s*")


class _BudgetTable:
    """`BudgetSpec`'s checks and conversion (its fields are made from `Budget`'s declarations)."""

    def __post_init__(self) -> None:
        for lim in BUDGET_LIMITS:
            value = getattr(self, lim.name)
            if lim.percent and value is not None and accuracy_fraction(value) is None:
                shown = f"{value:g}" if isinstance(value, float) else repr(value)
                raise ValueError(
                    f"field '{lim.name}' is {shown}: accuracy limits are fractions in [0, 1]; write 0.97 or \"97 %\""
                )
        if all(getattr(self, k) is None for k in LIMITS):
            raise ValueError(f"sets no limit: add one of {', '.join(LIMITS)}")

    def budget(self) -> Budget:
        """The typed budget (a percentage limit such as ``min_accuracy`` as a fraction)."""
        values = {k: getattr(self, k) for k in (*PATTERNS, *LIMITS)}
        for lim in BUDGET_LIMITS:
            if lim.percent and values[lim.name] is not None:
                values[lim.name] = accuracy_fraction(values[lim.name])
        return Budget(**values)


def _spec_type(lim: BudgetLimit) -> Any:
    """How a limit is written in a budgets file: a finite number within its bounds (a percentage: or a
    string, its range checked by `_BudgetTable` so that every form gets the same message)."""
    if lim.percent:
        return float | str | None
    return Annotated[float, Field(ge=0, le=lim.upper, allow_inf_nan=False)] | None


# names or patterns: printable, one line; a TOML date is refused (it matched nothing)
BudgetSpec: type[_BudgetTable] = dataclasses.make_dataclass(
    "BudgetSpec",
    [(p, Name, dataclasses.field(default="*")) for p in PATTERNS]
    + [(lim.name, _spec_type(lim), dataclasses.field(default=None)) for lim in BUDGET_LIMITS],
    bases=(_BudgetTable,),
    frozen=True,
)
BudgetSpec.__module__ = __name__
BudgetSpec.__doc__ = """One ``[[budget]]`` table as written, checked by `edgebench.config.validate`.

Its fields are `Budget`'s (each limit declared once there, `BudgetLimit`). Limits are finite
and non-negative; ``min_accuracy`` is a fraction in [0, 1] or a string like ``"97 %"`` (a bare
97 is refused rather than read as a percentage).
"""


@dataclass(frozen=True)
class BudgetsFile:
    """A budgets file's top level: an optional baseline and the ``[[budget]]`` tables."""

    baseline: str | None = None
    budget: tuple[dict[str, Any], ...] = ()


def accuracy_fraction(value: float | str) -> float | None:
    """An accuracy limit as a fraction in [0, 1] (``0.97`` or ``"97 %"``), None when it is not one."""
    if isinstance(value, str):
        m = _PERCENT.fullmatch(value)
        if not m:
            return None
        value = float(m.group(1)) / 100
    return float(value) if math.isfinite(value) and 0 <= value <= 1 else None


def load_budgets(path: Path) -> Budgets:
    """Read and validate a budgets file.

    Raises:
        ConfigError: one line naming the file, the budget and the field, with the valid names.
    """
    raw = load_toml(path)
    doc = validate(BudgetsFile, raw, f"{path}:")
    if not doc.budget:
        raise ConfigError(f"{path}: no [[budget]] tables: add at least one (see `edgebench gate --help`)")
    # each table as TOML read it (a date still a date, refused by validate), not as the top level passed it on
    specs = [validate(BudgetSpec, b, f"{path}: [[budget]] #{i}") for i, b in enumerate(raw["budget"], 1)]
    return Budgets(budgets=tuple(s.budget() for s in specs), baseline=doc.baseline)


def _check(
    i: int, key: Key, name: str, measured: float | None, limit: float, verdict: CheckVerdict, note: str = ""
) -> Check:
    higher_is_better = name.startswith("min_")
    margin = None if measured is None else (measured - limit if higher_is_better else limit - measured)
    return Check(i, key[1], key[0], key[2], name, measured, float(limit), margin, verdict, note)


def _plain(i: int, key: Key, name: str, measured: float | None, limit: float, missing: str = "not measured") -> Check:
    if measured is None:
        return _check(i, key, name, None, limit, FAIL, missing)
    ok = measured >= limit if name.startswith("min_") else measured <= limit
    return _check(i, key, name, measured, limit, PASS if ok else FAIL)


def check_limit(m: Measurement, name: str, limit: float, *, i: int = 0, alpha: float = ALPHA) -> Check:
    """One limit on one successful measurement: the decision `gate` and `choose` share.

    Args:
        name: a limit of `DIRECT` (one that needs nothing but the measurement: every limit but
            ``max_accuracy_drop_pt`` and ``max_regression_pct``); its `BudgetLimit.figure` says what is measured.
        i: the budget's number, for the check.
    """
    key = m.key
    figure = LIMIT[name].figure if name in DIRECT else None
    if figure in QUANTILE_OF:
        samples = np.asarray(m.samples_ns, dtype=np.float64) / 1e6
        if samples.size == 0:
            return _check(i, key, name, None, limit, FAIL, "no latency samples")
        rounds = process_rounds(m)
        v, est, lo, hi = budget_check(samples, QUANTILE_OF[figure], float(limit), rounds, alpha=alpha)
        unit = f"{len(rounds)} processes" if rounds else "batches of 1 process"
        note = f"{1 - 2 * alpha:.0%} CI {lo:.3g}..{hi:.3g} over {unit}"
        if v is UNDECIDED:
            note += "; too noisy to decide: raise --repeats or --min-time"
        return _check(i, key, name, est, limit, v, note)
    if figure == PEAK_MB:
        peak = m.peak_rss
        return _plain(i, key, name, None if peak is None else peak / MIB, limit)
    if figure == TOP1:
        return _plain(i, key, name, m.top1, limit, "top-1 not measured (run with eval data)")
    if figure == SIZE_MB:
        return _plain(i, key, name, None if m.bytes is None else m.bytes / MIB, limit)
    if name in SUSTAINED:
        return sustained_check(m, name, limit, i=i)
    raise ValueError(f"check_limit does not decide {name!r}")


def sustained_check(m: Measurement, name: str, limit: float, *, i: int = 0) -> Check:
    """A `SUSTAINED` limit on one measurement: decided on its timeline, undecided (saying why) without one.

    The sustained p50 / p99 is `edgebench.results.sustained.steady_state`'s (over the throttled steady
    state, else the last third of the run); the energy `energy_figure`'s (the widest domain read). No
    timeline, no timed window or no power sensor is ``undecided``: a budget that cannot be judged never passes.
    """
    key = m.key
    if m.timeline is None:
        return _check(i, key, name, None, limit, UNDECIDED, NO_SUSTAINED)
    figure = LIMIT[name].figure
    if figure == ENERGY_MJ:
        e = energy_figure(m.timeline)
        if e.mj is None:
            return _check(i, key, name, None, limit, UNDECIDED, e.why)
        return dataclasses.replace(_plain(i, key, name, e.mj, limit), note=f"mJ per inference of {e.note}")
    st = steady_state(m.timeline)
    value = st.p50_ms if figure == SUSTAINED_P50_MS else st.p99_ms
    if value is None:
        return _check(i, key, name, None, limit, UNDECIDED, "the sustained run timed no window")
    return dataclasses.replace(_plain(i, key, name, value, limit), note=st.note)


def evaluate(
    run: Run,
    budgets: Budgets,
    baseline: Run | None = None,
    *,
    history: Mapping[Key, Sequence[float]] | None = None,
    allow_config_change: bool = False,
    first: bool = False,
) -> tuple[Check, ...]:
    """Every check of every budget against a run.

    Unknown board or model names in budgets (no glob match in the run) give a warning;
    the budget then matches nothing, which is a failed check.

    Args:
        history: earlier runs' medians (ms) per (board, model, variant), for
            ``max_regression_pct`` (see the module docstring).
        allow_config_change: compare with a baseline measured in another configuration;
            without it such a ``max_regression_pct`` check fails naming the fields.
    """
    ms = {m.key: m for m in run.measurements}
    base = {m.key: m for m in baseline.measurements if m.ok} if baseline else {}
    checks: list[Check] = []
    if not run.complete:  # part of a run never passes a gate: what did not finish is unknown
        why = run.interrupted or "it did not finish"
        note = f"run {run.run_id} is INCOMPLETE ({why}): a gate never passes part of a run; run it again"
        checks.append(Check(0, "*", "*", "*", "run complete", None, None, None, UNDECIDED, note))
    for what in run.dropped or ():  # a measurement skipped as damaged on reading is as unknown as one never run
        note = f"reading run {run.run_id} skipped {what}: a gate never passes a damaged run; run it again"
        checks.append(Check(0, "*", "*", "*", "run readable", None, None, None, UNDECIDED, note))
    for i, b in enumerate(budgets.budgets, 1):
        pat = {"board": b.board, "model": b.model, "variant": b.variant}
        for field, pos in (("board", 0), ("model", 1), ("variant", 2)):
            names = sorted({k[pos] for k in ms})
            if not fnmatch.filter(names, pat[field]):
                warnings.warn(
                    f"budget #{i}: {field} {pat[field]!r} is not in run {run.run_id} "
                    f"(it has: {', '.join(names) or 'nothing'}): check the name",
                    stacklevel=2,
                )
        keys = [
            k for k in sorted(ms)
            if fnmatch.fnmatchcase(k[0], pat["board"]) and fnmatch.fnmatchcase(k[1], pat["model"])
            and fnmatch.fnmatchcase(k[2], pat["variant"])
        ]  # fmt: skip
        if not keys:
            where = "/".join(pat[k] for k in ("board", "model", "variant"))
            note = f"budget #{i} ({where}) matches no result in the run"
            checks.append(Check(i, b.model, b.board, b.variant, "matches a result", None, None, None, FAIL, note))
            continue
        for key in keys:
            has_base = "first" if first and baseline is None else baseline is not None
            checks += _checks_of(i, b, ms[key], ms, base, has_base, history or {}, allow_config_change)
    return tuple(checks)


def _checks_of(
    i: int,
    b: Budget,
    m: Measurement,
    ms: Mapping[Key, Measurement],
    base: Mapping[Key, Measurement],
    has_baseline: bool | str,
    history: Mapping[Key, Sequence[float]],
    allow_config_change: bool,
) -> list[Check]:
    """The checks of one budget on one measured (board, model, variant)."""
    key = m.key
    if not m.ok:
        msg = m.error.message if m.error is not None else "{}"
        return [Check(i, key[1], key[0], key[2], "measured", None, None, None, FAIL, f"failed: {msg}"[:200])]
    out = [check_limit(m, name, lim, i=i) for name, lim in b.limits.items() if name in DIRECT]
    if b.max_accuracy_drop_pt is not None:
        fp = ms.get((key[0], key[1], BASELINE))
        acc, ref = m.top1, fp.top1 if fp else None
        if acc is None or ref is None:
            out.append(_check(i, key, "max_accuracy_drop_pt", None, b.max_accuracy_drop_pt, FAIL,
                              f"needs top-1 of this variant and of {BASELINE} on {key[0]}"))  # fmt: skip
        else:
            out.append(_plain(i, key, "max_accuracy_drop_pt", (ref - acc) * 100, b.max_accuracy_drop_pt))
    if b.max_regression_pct is not None:
        out.append(_regression(i, key, m, base.get(key), float(b.max_regression_pct), has_baseline,
                               history.get(key, ()), allow_config_change))  # fmt: skip
    fid = fidelity_of(m)
    if fid.degraded:
        out.append(fidelity_check(i, key, fid, m.top1))
    return out


def fidelity_check(i: int, key: Key, fid: Fidelity, top1: float | None = None) -> Check:
    """The `FIDELITY_CHECK` of a degraded variant: measured = its cosine, budget = the threshold.

    A variant whose outputs are far from its parent's (the board's cosine with eval data, else its
    manifest's from compress time, `analysis.fidelity_of`) gets this check in every budget that matches
    it, so the gate's table, JSON, JUnit and verdict line name it. Its verdict:

    * ``fail`` when no top-1 was measured (no eval data, or outputs that are not class scores, such as
      a detector's map): the cosine is then the only evidence of what the outputs are worth, and a
      gate on speed, size or memory alone must not pass a variant whose outputs are not usable;
    * ``pass`` when top-1 was measured on the board: the budget's accuracy limits (``min_accuracy``,
      ``max_accuracy_drop_pt``) judge the loss on real labelled data, and the gate does not overrule a
      measured top-1 with the cosine proxy; the check still says the report calls it degraded.
    """
    margin = None if fid.cosine is None else fid.cosine - fid.min_cosine
    limit = fid.min_cosine if fid.cosine is not None else None
    if top1 is not None:
        note = (
            f"degraded: {fid.words()}; top-1 {top1:.2%} was measured with eval data, so the accuracy "
            "budgets (min_accuracy, max_accuracy_drop_pt) decide, not the cosine"
        )
        return Check(i, key[1], key[0], key[2], FIDELITY_CHECK, fid.cosine, limit, margin, PASS, note)
    note = (
        f"degraded: {fid.words()}; no top-1 measured, so its outputs are not usable whatever its speed: fix the "
        "compression, leave it out of this budget's variants, or set the threshold ([fidelity] min_cosine in "
        "the recipe, run --min-cosine)"
    )
    return Check(i, key[1], key[0], key[2], FIDELITY_CHECK, fid.cosine, limit, margin, FAIL, note)


def _regression(
    i: int,
    key: Key,
    m: Measurement,
    ref: Measurement | None,
    lim: float,
    has_baseline: bool | str,
    history: Sequence[float],
    allow_config_change: bool,
) -> Check:
    """The ``max_regression_pct`` check: the median against the baseline's (``has_baseline`` "first": none yet)."""
    name = "max_regression_pct"
    if ref is None and has_baseline == "first":
        return _check(i, key, name, None, lim, PASS, "no accepted baseline yet (first nightly): this run becomes it")
    if ref is None:
        return _check(
            i, key, name, None, lim, FAIL, "not in the baseline run" if has_baseline else "no baseline run given"
        )
    diffs = config_differences(ref, m)
    if diffs and not allow_config_change:
        note = f"configuration changed ({'; '.join(diffs)}): pass --allow-config-change to compare anyway"
        return _check(i, key, name, None, lim, FAIL, note)
    v, c = regression_check(ref, m, lim, history=history)
    lo, hi = (c.ratio_low - 1) * 100, (c.ratio_high - 1) * 100
    if c.basis == PAIRED:
        note = f"p50 {1 - 2 * ALPHA:.0%} CI {lo:+.1f}..{hi:+.1f}% over {c.n_a} paired processes (baseline re-measured)"
    else:
        note = f"p50 {1 - 2 * ALPHA:.0%} CI {lo:+.1f}..{hi:+.1f}% over {c.n_a}+{c.n_b} {c.unit}es"
    if c.basis == HISTORY:
        note += f", widened by {len(history)} earlier runs"
    if c.basis == ONE_RUN_EACH:
        note += (
            "; undecided, one run each: a whole run's shift is invisible between two runs: measure with "
            "`edgebench run --baseline BASELINE` (paired) or keep 3+ earlier runs"
        )
    elif v is UNDECIDED:
        note += "; too noisy to decide: raise --repeats or --min-time"
    return _check(i, key, name, c.delta_pct, lim, v, note)


def comparable_history(run: Run, rows: Mapping[Key, Sequence[Mapping[str, Any]]]) -> dict[Key, list[float]]:
    """The earlier medians of each measurement of ``run`` that were measured in its configuration.

    Args:
        rows: `edgebench.results.index.history` rows (``run_id``, ``p50``, ``config``) per key.

    Returns:
        Per key, the ``p50`` of the rows from other runs whose `ConfigKey` is comparable
        with the measurement's in ``run``: a run of another batch, shape, thread count,
        runtime version or board says nothing about this configuration's run-to-run spread.
    """
    ms = {m.key: m for m in run.measurements}
    return {
        k: [
            r["p50"] for r in got
            if r["run_id"] != run.run_id and (k not in ms or ms[k].config_key.comparable(r["config"]))
        ]
        for k, got in rows.items()
    }  # fmt: skip


def run_gate(
    results: Results,
    budgets_path: Path,
    run_ref: str = "latest",
    baseline_ref: str | None = None,
    *,
    allow_config_change: bool = False,
) -> Gate:
    """Load the budgets, the run and the baseline run, and evaluate every check.

    The history for ``max_regression_pct`` is the medians of the runs indexed up to the
    baseline's start (the last 30) that were measured in the gated run's configuration
    (`comparable_history`).

    Raises:
        UserError: for a missing or invalid budgets file, an unknown run, or (without
            ``allow_config_change``) a baseline measured in another configuration.
    """
    budgets = load_budgets(budgets_path)
    run = open_run(results, run_ref, "gate another run")
    base_ref = baseline_ref or budgets.baseline
    baseline = open_run(results, str(base_ref), "gate another run") if base_ref else None
    if baseline is not None and not allow_config_change:
        mb = {m.key: m for m in baseline.measurements}
        pairs = [(m.key, d) for m in run.measurements if m.key in mb and (d := config_differences(mb[m.key], m))]
        refuse_config_change(pairs, f"gate {run.run_id} against {baseline.run_id}")
    return gate_run(results, budgets, run, baseline, allow_config_change=allow_config_change)


def gate_run(
    results: Results,
    budgets: Budgets,
    run: Run,
    baseline: Run | None,
    *,
    allow_config_change: bool = False,
    first: bool = False,
) -> Gate:
    """The gate of a loaded run: THE decision `edgebench gate` and the nightly share.

    ``max_regression_pct`` is decided on B's paired processes when ``run`` re-measured the
    baseline's artifacts (``run --baseline``; the nightly always does), else on the
    processes widened by the run-to-run spread of the runs indexed before the baseline
    (`comparable_history`), else undecided ("one run each").

    Args:
        first: there is no baseline yet (a first nightly): regression checks pass, saying so.
    """
    hist: dict[Key, list[float]] = {}
    if baseline is not None and any(b.max_regression_pct is not None for b in budgets.budgets):
        mb = {m.key: m for m in baseline.measurements}
        sync(results, warn=False)
        got = index_history(results, sorted(mb), metrics=("p50",), before=baseline.started)
        hist = comparable_history(run, got)
    checks = evaluate(run, budgets, baseline, history=hist, allow_config_change=allow_config_change, first=first)
    return gate_of(run, checks, baseline)


def gate_of(run: Run, checks: Sequence[Check], baseline: Run | None = None) -> Gate:
    """The gate of ``run`` with its checks, naming the gated run's and the baseline's commits."""
    (c, b), (bc, bb) = commit.of(run.commit_info), commit.of(baseline.commit_info if baseline else {})
    return Gate(run.run_id, tuple(checks), c, b, baseline.run_id if baseline else None, bc, bb)
