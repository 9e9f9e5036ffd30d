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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table

from edgebench.config import load_toml
from edgebench.errors import ConfigError, UserError
from edgebench.results.analysis import BASELINE, samples_ms
from edgebench.results.index import accuracy_of, peak_of
from edgebench.results.schema import measurements
from edgebench.results.significance import budget_check, compare_quantile

KEYS = ("model", "board", "variant")
LIMITS = {
    "max_p90_ms": "p90 latency (ms)",
    "max_p99_ms": "p99 latency (ms)",
    "max_peak_mb": "peak memory (MB)",
    "min_accuracy": "top-1 accuracy",
    "max_accuracy_drop_pt": "top-1 drop vs fp32 (pt)",
    "max_size_mb": "artifact size (MB)",
    "max_regression_pct": "p90 regression vs baseline (%)",
}
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"
STYLE = {PASS: "green", FAIL: "red", UNDECIDED: "yellow"}


@dataclass(frozen=True)
class Check:
    """One budget check of one (model, board, variant)."""

    budget: int
    model: str
    board: str
    variant: str
    check: str
    measured: float | None
    limit: float | None
    margin: float | None
    verdict: str
    note: str = ""


def load_budgets(path: Path) -> dict[str, Any]:
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
    return doc


def _check(
    i: int, key: tuple[str, str, str], name: str, measured: float | None, limit: float, verdict: str, note: str = ""
) -> Check:
    higher_is_better = name.startswith("min_")
    margin = None if measured is None else (measured - limit if higher_is_better else limit - measured)
    return Check(i, key[1], key[0], key[2], name, measured, float(limit), margin, verdict, note)


def _plain(i: int, key: tuple[str, str, str], name: str, measured: float | None, limit: float) -> Check:
    if measured is None:
        return _check(i, key, name, None, limit, FAIL, "not measured")
    ok = measured >= limit if name.startswith("min_") else measured <= limit
    return _check(i, key, name, measured, limit, PASS if ok else FAIL)


def evaluate(run: dict[str, Any], budgets: dict[str, Any], baseline: dict[str, Any] | None = None) -> list[Check]:
    """Every check of every budget against a run.

    Unknown board or model names in budgets (no glob match in the run) give a warning;
    the budget then matches nothing, which is a failed check.
    """
    ms = {(m["board"], m["model"], m["variant"]): m for m in measurements(run)}
    samples = samples_ms(run)
    base_samples = samples_ms(baseline) if baseline else {}
    checks: list[Check] = []
    for i, b in enumerate(budgets["budget"], 1):
        pat = {k: str(b.get(k, "*")) for k in KEYS}
        for field, pos in (("board", 0), ("model", 1), ("variant", 2)):
            names = sorted({k[pos] for k in ms})
            if not fnmatch.filter(names, pat[field]):
                warnings.warn(
                    f"budget #{i}: {field} {pat[field]!r} is not in run {run['edgebench']['run_id']} "
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
            nothing = (None, None, None, FAIL, note)
            checks.append(Check(i, pat["model"], pat["board"], pat["variant"], "matches a result", *nothing))
            continue
        for key in keys:
            m = ms[key]
            if not m.get("ok"):
                err = m.get("error") or {}
                msg = err.get("message", str(err)) if isinstance(err, dict) else str(err)
                checks.append(
                    Check(i, key[1], key[0], key[2], "measured", None, None, None, FAIL, f"failed: {msg}"[:200])
                )
                continue
            s = samples[key]
            for name, q in (("max_p90_ms", 0.9), ("max_p99_ms", 0.99)):
                if name in b:
                    v, est, lo, hi = budget_check(s, q, float(b[name]))
                    note = f"95% CI {lo:.3g}..{hi:.3g}" + (
                        "; too noisy to decide: measure longer" if v == UNDECIDED else ""
                    )
                    checks.append(_check(i, key, name, est, b[name], v, note))
            if "max_peak_mb" in b:
                peak = peak_of(m)
                checks.append(_plain(i, key, "max_peak_mb", None if peak is None else peak / 2**20, b["max_peak_mb"]))
            if "min_accuracy" in b:
                checks.append(_plain(i, key, "min_accuracy", accuracy_of(m), b["min_accuracy"]))
            if "max_size_mb" in b:
                size = m.get("bytes")
                checks.append(_plain(i, key, "max_size_mb", None if size is None else size / 2**20, b["max_size_mb"]))
            if "max_accuracy_drop_pt" in b:
                fp = ms.get((key[0], key[1], BASELINE))
                acc, ref = accuracy_of(m), accuracy_of(fp) if fp else None
                if acc is None or ref is None:
                    checks.append(_check(i, key, "max_accuracy_drop_pt", None, b["max_accuracy_drop_pt"], FAIL,
                                         f"needs top-1 of this variant and of {BASELINE} on {key[0]}"))  # fmt: skip
                else:
                    checks.append(_plain(i, key, "max_accuracy_drop_pt", (ref - acc) * 100, b["max_accuracy_drop_pt"]))
            if "max_regression_pct" in b:
                lim = float(b["max_regression_pct"])
                if key not in base_samples:
                    why = "no baseline run given" if baseline is None else "not in the baseline run"
                    checks.append(_check(i, key, "max_regression_pct", None, lim, FAIL, why))
                    continue
                c = compare_quantile(base_samples[key], s, 0.9)
                hi, lo = (c.ratio_high - 1) * 100, (c.ratio_low - 1) * 100
                v = PASS if hi <= lim else FAIL if lo > lim else UNDECIDED
                note = f"95% CI {lo:+.1f}..{hi:+.1f}%" + (
                    "; too noisy to decide: measure longer" if v == UNDECIDED else ""
                )
                checks.append(_check(i, key, "max_regression_pct", c.delta_pct, lim, v, note))
    return checks


def outcome(checks: list[Check]) -> str:
    """``pass`` when every check passed, else ``fail`` (undecided counts against the gate)."""
    return PASS if checks and all(c.verdict == PASS for c in checks) else FAIL


class GateResult:
    """The checks of a gate, rendering themselves as a table."""

    def __init__(self, run_id: str, checks: list[Check]) -> None:
        self.run_id = run_id
        self.checks = checks

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return outcome(self.checks) == PASS

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        counts = {v: sum(c.verdict == v for c in self.checks) for v in (PASS, FAIL, UNDECIDED)}
        return {
            "run_id": self.run_id,
            "outcome": outcome(self.checks),
            "counts": counts,
            "checks": [asdict(c) for c in self.checks],
        }

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """A table of measured / budget / margin per check, then the outcome."""
        t = Table(title=f"gate on run {self.run_id}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  padding=(0, 0), show_edge=False)  # fmt: skip
        for col in ("#", "board", "model", "variant", "check", "measured", "budget", "margin", "verdict", "note"):
            t.add_column(
                col, justify="right" if col in ("measured", "budget", "margin") else "left", no_wrap=col != "note"
            )
        for c in self.checks:
            figures = (_n(c.measured), _n(c.limit), _n(c.margin, True))
            verdict = f"[{STYLE[c.verdict]}]{c.verdict}[/]"
            t.add_row(str(c.budget), c.board, c.model, c.variant, c.check, *figures, verdict, c.note)
        yield t
        for c in self.checks:
            if c.check == "matches a result":
                yield f"[red]error: {c.note}: fix its model/board/variant patterns or measure that combination[/red]"
        d = self.to_dict()
        style = STYLE[d["outcome"]]
        n = d["counts"]
        yield f"[{style}]gate {d['outcome'].upper()}[/]: {n[PASS]} passed, {n[FAIL]} failed, {n[UNDECIDED]} undecided"


def _n(v: float | None, sign: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.4g}" if sign else f"{v:.4g}"


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one test case per check; fail and undecided are failures."""
    cases = []
    for c in result.checks:
        name = quoteattr(f"{c.check}[{c.board}/{c.model}/{c.variant}]")
        body = ""
        if c.verdict != PASS:
            msg = f"{c.verdict}: measured {_n(c.measured)}, budget {_n(c.limit)}. {c.note}".strip()
            body = f"<failure type={quoteattr(c.verdict)} message={quoteattr(msg)}>{escape(msg)}</failure>"
        cls = quoteattr(f"edgebench.gate.budget{c.budget}")
        cases.append(f'  <testcase classname={cls} name={name} time="0">{body}</testcase>')
    fails = sum(c.verdict != PASS for c in result.checks)
    head = f'<testsuite name="edgebench gate" tests="{len(result.checks)}" failures="{fails}" errors="0">'
    return '<?xml version="1.0" encoding="utf-8"?>\n' + head + "\n" + "\n".join(cases) + "\n</testsuite>\n"


def gate_markdown(result: GateResult) -> str:
    """The gate as Markdown, for a pull-request comment."""
    from edgebench.render.markdown import table

    icon = {PASS: "✅", FAIL: "❌", UNDECIDED: "❔"}
    d = result.to_dict()
    rows = [[str(c.budget), c.board, c.model, c.variant, c.check, _n(c.measured), _n(c.limit), _n(c.margin, True),
             f"{icon[c.verdict]} {c.verdict}", c.note] for c in result.checks]  # fmt: skip
    hdr = ["#", "board", "model", "variant", "check", "measured", "budget", "margin", "verdict", "note"]
    n = d["counts"]
    head = f"## edgebench gate: {icon[d['outcome']]} **{d['outcome'].upper()}** (run `{result.run_id}`)"
    return f"{head}\n\n{n[PASS]} passed, {n[FAIL]} failed, {n[UNDECIDED]} undecided\n\n{table(hdr, rows)}\n"


def run_gate(results: Path, budgets_path: Path, run_ref: str = "latest", baseline_ref: str | None = None) -> GateResult:
    """Load the budgets, the run and the baseline run, and evaluate every check.

    Raises:
        UserError: for a missing or invalid budgets file or an unknown run.
    """
    from edgebench.results.schema import SchemaError
    from edgebench.results.store import find_run, read_run

    budgets = load_budgets(budgets_path)

    def load(ref: str) -> dict[str, Any]:
        path = find_run(results, ref)
        try:
            return read_run(path)
        except SchemaError as exc:
            raise UserError(f"{exc}: gate another run") from None

    run = load(run_ref)
    base_ref = baseline_ref or budgets.get("baseline")
    baseline = load(str(base_ref)) if base_ref else None
    return GateResult(run["edgebench"]["run_id"], evaluate(run, budgets, baseline))
