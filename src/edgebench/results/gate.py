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
    min_accuracy = 0.97            # top-1, 0..1
    max_accuracy_drop_pt = 1.0     # against fp32 on the same board
    max_size_mb = 1.0
    max_regression_pct = 5.0       # p90 against the baseline run

Each check is ``pass``, ``fail`` or ``undecided`` (latency too noisy to tell on which
side of the budget it is). The gate passes only when every check passes: undecided is
never a silent pass. A budget that matches no result is a failed check.
"""

from __future__ import annotations

import fnmatch
import warnings
from pathlib import Path
from typing import Any

from edgebench.config import load_toml
from edgebench.errors import ConfigError
from edgebench.model import LIMITS, MIB, Budget, Budgets, Check, CheckVerdict, Gate, Run
from edgebench.results.analysis import BASELINE, samples_ms
from edgebench.results.significance import budget_check, compare_quantile
from edgebench.results.store import open_run

KEYS = ("model", "board", "variant")
PASS, FAIL, UNDECIDED = CheckVerdict.PASS, CheckVerdict.FAIL, CheckVerdict.UNDECIDED


def load_budgets(path: Path) -> Budgets:
    """Read and validate a budgets file.

    Raises:
        ConfigError: naming the file, the budget and the field, with the valid names.
    """
    doc = load_toml(path)
    unknown = set(doc) - {"baseline", "budget"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}: valid are 'baseline' and [[budget]] tables"
        )
    budgets = doc.get("budget")
    if not isinstance(budgets, list) or not budgets:
        raise ConfigError(f"{path}: no [[budget]] tables: add at least one (see `edgebench gate --help`)")
    for i, b in enumerate(budgets, 1):
        bad = set(b) - set(KEYS) - set(LIMITS)
        if bad:
            valid = ", ".join((*KEYS, *LIMITS))
            raise ConfigError(f"{path}: [[budget]] #{i}: unknown field(s) {sorted(bad)}; valid fields: {valid}")
        for k in KEYS:
            if not isinstance(b.get(k, "*"), str):
                raise ConfigError(f"{path}: [[budget]] #{i}: {k} must be a string (a glob pattern)")
        for k in LIMITS:
            v = b.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ConfigError(f"{path}: [[budget]] #{i}: {k} must be a non-negative number, not {v!r}")
        if not set(b) & set(LIMITS):
            raise ConfigError(f"{path}: [[budget]] #{i} sets no limit: add one of {', '.join(LIMITS)}")
    return Budgets.from_json(doc)


def _check(
    i: int,
    key: tuple[str, str, str],
    name: str,
    measured: float | None,
    limit: float,
    verdict: CheckVerdict,
    note: str = "",
) -> Check:
    higher_is_better = name.startswith("min_")
    margin = None if measured is None else (measured - limit if higher_is_better else limit - measured)
    return Check(i, key[1], key[0], key[2], name, measured, float(limit), margin, verdict, note)


def _plain(i: int, key: tuple[str, str, str], name: str, measured: float | None, limit: float) -> Check:
    if measured is None:
        return _check(i, key, name, None, limit, FAIL, "not measured")
    ok = measured >= limit if name.startswith("min_") else measured <= limit
    return _check(i, key, name, measured, limit, PASS if ok else FAIL)


def evaluate(run: Run, budgets: Budgets, baseline: Run | None = None) -> tuple[Check, ...]:
    """Every check of every budget against a run.

    Unknown board or model names in budgets (no glob match in the run) give a warning;
    the budget then matches nothing, which is a failed check.
    """
    ms = {m.key: m for m in run.measurements}
    samples = samples_ms(run)
    base_samples = samples_ms(baseline) if baseline else {}
    checks: list[Check] = []
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
            checks += _checks_of(i, b, key, run, ms, samples, base_samples, baseline is not None)
    return tuple(checks)


def _checks_of(
    i: int,
    b: Budget,
    key: tuple[str, str, str],
    run: Run,
    ms: dict[tuple[str, str, str], Any],
    samples: dict[tuple[str, str, str], Any],
    base_samples: dict[tuple[str, str, str], Any],
    has_baseline: bool,
) -> list[Check]:
    """The checks of one budget on one measured (board, model, variant)."""
    m = ms[key]
    if not m.ok:
        msg = m.error.message if m.error is not None else "{}"
        return [Check(i, key[1], key[0], key[2], "measured", None, None, None, FAIL, f"failed: {msg}"[:200])]
    out: list[Check] = []
    s = samples[key]
    for name, q, lim in (("max_p90_ms", 0.9, b.max_p90_ms), ("max_p99_ms", 0.99, b.max_p99_ms)):
        if lim is not None:
            v, est, lo, hi = budget_check(s, q, float(lim))
            note = f"95% CI {lo:.3g}..{hi:.3g}" + ("; too noisy to decide: measure longer" if v is UNDECIDED else "")
            out.append(_check(i, key, name, est, lim, v, note))
    if b.max_peak_mb is not None:
        peak = m.peak_rss
        out.append(_plain(i, key, "max_peak_mb", None if peak is None else peak / MIB, b.max_peak_mb))
    if b.min_accuracy is not None:
        out.append(_plain(i, key, "min_accuracy", m.top1, b.min_accuracy))
    if b.max_size_mb is not None:
        out.append(_plain(i, key, "max_size_mb", None if m.bytes is None else m.bytes / MIB, b.max_size_mb))
    if b.max_accuracy_drop_pt is not None:
        fp = ms.get((key[0], key[1], BASELINE))
        acc, ref = m.top1, fp.top1 if fp else None
        if acc is None or ref is None:
            out.append(_check(i, key, "max_accuracy_drop_pt", None, b.max_accuracy_drop_pt, FAIL,
                              f"needs top-1 of this variant and of {BASELINE} on {key[0]}"))  # fmt: skip
        else:
            out.append(_plain(i, key, "max_accuracy_drop_pt", (ref - acc) * 100, b.max_accuracy_drop_pt))
    if b.max_regression_pct is not None:
        lim = float(b.max_regression_pct)
        if key not in base_samples:
            why = "not in the baseline run" if has_baseline else "no baseline run given"
            out.append(_check(i, key, "max_regression_pct", None, lim, FAIL, why))
            return out
        c = compare_quantile(base_samples[key], s, 0.9)
        hi, lo = (c.ratio_high - 1) * 100, (c.ratio_low - 1) * 100
        v = PASS if hi <= lim else FAIL if lo > lim else UNDECIDED
        note = f"95% CI {lo:+.1f}..{hi:+.1f}%" + ("; too noisy to decide: measure longer" if v is UNDECIDED else "")
        out.append(_check(i, key, "max_regression_pct", c.delta_pct, lim, v, note))
    return out


def run_gate(results: Path, budgets_path: Path, run_ref: str = "latest", baseline_ref: str | None = None) -> Gate:
    """Load the budgets, the run and the baseline run, and evaluate every check.

    Raises:
        UserError: for a missing or invalid budgets file or an unknown run.
    """
    budgets = load_budgets(budgets_path)
    run = open_run(results, run_ref, "gate another run")
    base_ref = baseline_ref or budgets.baseline
    baseline = open_run(results, str(base_ref), "gate another run") if base_ref else None
    return Gate(run.run_id, evaluate(run, budgets, baseline))
