"""What edgebench decides from runs: budgets and gates, comparisons, report rows, hardware choices."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgebench.model.base import Change, CheckVerdict, JSONObject, Worth

# ------------------------------------------------------------------------------- budgets and gate


# the measurement figures a budget limit is set on (`BudgetLimit.figure`; `results.gate` computes each)
P90_MS = "p90_ms"  # the p90 of each process: geometric mean and its interval
P99_MS = "p99_ms"
PEAK_MB = "peak_mb"  # peak RSS (MiB), the maximum over the processes
TOP1 = "top1"  # top-1 on the eval data, a fraction
TOP1_DROP_PT = "top1_drop_pt"  # top-1 points lost against fp32 on the same board
SIZE_MB = "size_mb"  # the artifact's size (MiB)
P50_CHANGE_PCT = "p50_change_pct"  # the median against the baseline run's (%)
SUSTAINED_P50_MS = "sustained_p50_ms"  # steady state of a `run --sustained` timeline
SUSTAINED_P99_MS = "sustained_p99_ms"
ENERGY_MJ = "energy_mj"  # per inference, from a sustained run's power sensors


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """One budget limit as `Budget` declares it (its field's metadata): everything else is derived from these.

    Attributes:
        name: the key in a ``[[budget]]`` table and the `Budget` field (``max_*``: an upper limit,
            ``min_*``: a lower one).
        description: what it limits, with the unit, as reports show it.
        figure: the measurement figure it is set on (`P90_MS`, `TOP1`, ...).
        upper: the largest value the limit may take (None: any finite number >= 0).
        percent: written as a fraction or a percentage string (``0.97`` or ``"97 %"``).
    """

    name: str
    description: str
    figure: str
    upper: float | None = None
    percent: bool = False

    @property
    def is_min(self) -> bool:
        """A lower limit (the measured figure must be at least the limit)."""
        return self.name.startswith("min_")


def _limit(description: str, figure: str, *, upper: float | None = None, percent: bool = False) -> Any:
    """A `Budget` limit field: optional (None: not set), declared by its metadata (see `BudgetLimit`)."""
    return field(default=None, metadata={"limit": {"description": description, "figure": figure,
                                                   "upper": upper, "percent": percent}})  # fmt: skip


@dataclass(frozen=True, slots=True)
class Budget:
    """One ``[[budget]]`` table: glob patterns for what it covers and the limits it sets.

    Each limit is declared once, here (`BudgetLimit`); `BUDGET_LIMITS`, `LIMITS` and the
    budgets file's validating class (`edgebench.results.gate.BudgetSpec`) are derived from it.
    """

    model: str = "*"
    board: str = "*"
    variant: str = "*"
    max_p90_ms: float | None = _limit("p90 latency (ms)", P90_MS)
    max_p99_ms: float | None = _limit("p99 latency (ms)", P99_MS)
    max_peak_mb: float | None = _limit("peak memory (MiB)", PEAK_MB)
    min_accuracy: float | None = _limit("top-1 accuracy", TOP1, upper=1.0, percent=True)
    max_accuracy_drop_pt: float | None = _limit("top-1 drop vs fp32 (pt)", TOP1_DROP_PT)
    max_size_mb: float | None = _limit("artifact size (MiB)", SIZE_MB)
    max_regression_pct: float | None = _limit("p50 regression vs baseline (%)", P50_CHANGE_PCT)
    max_sustained_p50_ms: float | None = _limit("sustained p50 latency (ms)", SUSTAINED_P50_MS)
    max_sustained_p99_ms: float | None = _limit("sustained p99 latency (ms)", SUSTAINED_P99_MS)
    max_energy_mj: float | None = _limit("energy per inference (mJ)", ENERGY_MJ)

    @property
    def limits(self) -> dict[str, float]:
        """The limits this budget sets, by name (in `LIMITS` order)."""
        return {k: v for k in LIMITS if (v := getattr(self, k)) is not None}

    @classmethod
    def from_json(cls, d: JSONObject) -> Budget:
        """Read a ``[[budget]]`` table (already validated)."""
        return cls(**{k: d[k] for k in (*PATTERNS, *LIMITS) if k in d})

    def to_json(self) -> dict[str, Any]:
        """The table, without the limits it does not set."""
        return {"model": self.model, "board": self.board, "variant": self.variant, **self.limits}


BUDGET_LIMITS: tuple[BudgetLimit, ...] = tuple(
    BudgetLimit(f.name, **f.metadata["limit"]) for f in dataclasses.fields(Budget) if "limit" in f.metadata
)
"""Every budget limit, in the order of `Budget`'s fields."""
LIMITS: dict[str, str] = {lim.name: lim.description for lim in BUDGET_LIMITS}
"""Each limit's name and what it limits (``"max_p90_ms": "p90 latency (ms)"``)."""
PATTERNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Budget) if "limit" not in f.metadata)
"""The fields of a budget that say what it covers (glob patterns): ``model``, ``board``, ``variant``."""


@dataclass(frozen=True, slots=True)
class Budgets:
    """A budgets file: an optional baseline run and its budgets."""

    budgets: tuple[Budget, ...]
    baseline: str | None = None

    @classmethod
    def from_json(cls, d: JSONObject) -> Budgets:
        """Read a budgets document (already validated)."""
        return cls(budgets=tuple(Budget.from_json(b) for b in d["budget"]), baseline=d.get("baseline"))

    def to_json(self) -> dict[str, Any]:
        """The budgets document."""
        out: dict[str, Any] = {} if self.baseline is None else {"baseline": self.baseline}
        out["budget"] = [b.to_json() for b in self.budgets]
        return out


FIDELITY_CHECK = "fidelity"
"""The gate check of a degraded variant (its outputs' cosine to its parent's below the threshold)."""


@dataclass(frozen=True, slots=True)
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
    verdict: CheckVerdict
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """The check as plain data (``verdict`` as its string)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"verdict": self.verdict.value}


@dataclass(frozen=True, slots=True)
class Gate:
    """The checks of a gate on one run; it passes only when every check passes."""

    run_id: str
    checks: tuple[Check, ...]
    commit: str | None = None  # the gated run's commit: short id, '*' when dirty (`results.commit.label`)
    branch: str | None = None
    baseline: str | None = None  # the run id of the baseline, when the gate had one
    baseline_commit: str | None = None
    baseline_branch: str | None = None

    @property
    def outcome(self) -> CheckVerdict:
        """``pass`` when every check passed, else ``fail`` (undecided counts against the gate)."""
        ok = self.checks and all(c.verdict is CheckVerdict.PASS for c in self.checks)
        return CheckVerdict.PASS if ok else CheckVerdict.FAIL

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return self.outcome is CheckVerdict.PASS

    @property
    def degraded(self) -> tuple[str, ...]:
        """``board/model/variant`` of each gated variant whose outputs are degraded (it has a `FIDELITY_CHECK`:
        failed without a measured top-1, passed with one, as `results.gate.fidelity_check` decides)."""
        return tuple(sorted({f"{c.board}/{c.model}/{c.variant}" for c in self.checks if c.check == FIDELITY_CHECK}))

    @property
    def counts(self) -> dict[CheckVerdict, int]:
        """How many checks have each verdict."""
        return {v: sum(c.verdict is v for c in self.checks) for v in CheckVerdict}

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench gate --json``)."""
        return {
            "run_id": self.run_id,
            "outcome": self.outcome.value,
            "counts": {v.value: n for v, n in self.counts.items()},
            "checks": [c.to_json() for c in self.checks],
            "commit": self.commit,
            "branch": self.branch,
            "baseline": self.baseline,
            "baseline_commit": self.baseline_commit,
            "baseline_branch": self.baseline_branch,
            "degraded": list(self.degraded),
        }


# ------------------------------------------------------------------------------- comparison


@dataclass(frozen=True, slots=True)
class QuantileChange:
    """The change of one quantile from samples A to samples B.

    Attributes:
        q: the quantile (0.5, 0.9, ...).
        a: estimate in A; ``b``: estimate in B (same unit as the samples).
        ratio: ``b / a`` (> 1: B is slower).
        ratio_low, ratio_high: confidence interval of the ratio.
        p: Mann-Whitney two-sided p-value of the whole distributions.
        label: how it moved.
    """

    q: float
    a: float
    b: float
    ratio: float
    ratio_low: float
    ratio_high: float
    p: float
    label: Change
    p_equivalence: float | None = None  # TOST p-value of "within the margin" (see results.significance)
    n_a: int | None = None  # units of replication (processes, else batches) on each side
    n_b: int | None = None
    unit: str | None = None  # "process", "batch" or "pair" (a paired A/B process: its ratio is the unit)
    spread_a: float | None = None  # max/min - 1 of the per-unit values on each side
    spread_b: float | None = None
    basis: str | None = None  # what the interval accounts for: "paired", "history", "one run each", "same run"

    @property
    def delta_pct(self) -> float:
        """The change in percent of A."""
        return (self.ratio - 1.0) * 100.0

    @classmethod
    def from_json(cls, d: JSONObject) -> QuantileChange:
        """Read `to_json` output."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: d[k] for k in names if k != "label" and k in d}, label=Change(d["label"]))

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON, with ``delta_pct``."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {"label": self.label.value, "delta_pct": self.delta_pct}


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    """One (board, model, variant) measured in both runs of a comparison."""

    board: str
    model: str
    variant: str
    p50: QuantileChange
    p90: QuantileChange
    p_value: float
    mw_effect: float
    label: Change
    peak_mb_a: float | None = None
    peak_mb_b: float | None = None
    top1_a: float | None = None
    top1_b: float | None = None
    p99: QuantileChange | None = None
    warnings: tuple[str, ...] = ()
    # fidelity of each side (`results.analysis.fidelity_of`: the board's cosine, else the manifest's)
    cosine_a: float | None = None
    cosine_b: float | None = None
    degraded_a: bool = False
    degraded_b: bool = False
    fidelity_note: str = ""  # one line on what is degraded and why, "" when neither side is

    @property
    def d_peak_mb(self) -> float | None:
        """Change of peak memory, MiB (B - A)."""
        return None if self.peak_mb_a is None or self.peak_mb_b is None else self.peak_mb_b - self.peak_mb_a

    @property
    def d_top1_pt(self) -> float | None:
        """Change of top-1 accuracy, percentage points (B - A)."""
        return None if self.top1_a is None or self.top1_b is None else (self.top1_b - self.top1_a) * 100

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "board": self.board, "model": self.model, "variant": self.variant,
            "p50": self.p50.to_json(), "p90": self.p90.to_json(), "p_value": self.p_value, "mw_effect": self.mw_effect,
            "label": self.label.value, "peak_mb_a": self.peak_mb_a, "peak_mb_b": self.peak_mb_b,
            "d_peak_mb": self.d_peak_mb, "top1_a": self.top1_a, "top1_b": self.top1_b, "d_top1_pt": self.d_top1_pt,
            "p99": None if self.p99 is None else self.p99.to_json(), "warnings": list(self.warnings),
            "cosine_a": self.cosine_a, "cosine_b": self.cosine_b, "degraded_a": self.degraded_a,
            "degraded_b": self.degraded_b, "fidelity_note": self.fidelity_note,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FailedKey:
    """A (board, model, variant) that failed in one run of a comparison (``side`` A or B)."""

    board: str
    model: str
    variant: str
    side: str

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``in`` is the side)."""
        return {"board": self.board, "model": self.model, "variant": self.variant, "in": self.side}


@dataclass(frozen=True, slots=True)
class Comparison:
    """Run B against run A: rows measured in both, what only one has, what failed."""

    a: str
    b: str
    alpha: float
    margin: float  # changes within it are no change
    rows: tuple[ComparisonRow, ...]
    only_a: tuple[tuple[str, str, str], ...] = ()
    only_b: tuple[tuple[str, str, str], ...] = ()
    failed: tuple[FailedKey, ...] = ()
    config_changes: tuple[str, ...] = ()  # configuration differences allowed by --allow-config-change
    commit_a: str | None = None  # each run's commit: short id, '*' when dirty (`results.commit.label`)
    commit_b: str | None = None
    branch_a: str | None = None
    branch_b: str | None = None

    @property
    def degraded(self) -> tuple[tuple[str, str, str], ...]:
        """(board, model, variant) of the rows whose variant is degraded in B."""
        return tuple((r.board, r.model, r.variant) for r in self.rows if r.degraded_b)

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench compare --json``)."""
        return {
            "a": self.a,
            "b": self.b,
            "alpha": self.alpha,
            "rows": [r.to_json() for r in self.rows],
            "only_a": [list(k) for k in self.only_a],
            "only_b": [list(k) for k in self.only_b],
            "failed": [f.to_json() for f in self.failed],
            "margin": self.margin,
            "config_changes": list(self.config_changes),
            "commit_a": self.commit_a,
            "commit_b": self.commit_b,
            "branch_a": self.branch_a,
            "branch_b": self.branch_b,
            "degraded": [list(k) for k in self.degraded],
        }


# ------------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class Histogram:
    """Latency samples binned from the minimum to p99; ``above`` counts the tail beyond."""

    lo_ms: float
    hi_ms: float
    counts: tuple[int, ...]
    above: int

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"lo_ms": self.lo_ms, "hi_ms": self.hi_ms, "counts": list(self.counts), "above": self.above}


COSINE_FROM_BOARD = "board"  # ReportRow.cosine_source: measured on the board in this run (eval data)
COSINE_FROM_COMPRESS = "compress"  # ... the variant's manifest: host-side, at compress time


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One (board, variant) of a model in a run's report, with its ratios to fp32."""

    board: str
    variant: str
    ok: bool
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    throughput: float | None = None
    rounds: int | None = None
    cv: float | None = None
    peak_rss: int | None = None
    top1: float | None = None
    fidelity: float | None = None
    bytes: int | None = None
    process_spread: float | None = None
    error: str | None = None
    hist: Histogram | None = None
    speedup: float | None = None
    size_ratio: float | None = None
    acc_delta_pt: float | None = None
    speed: Change | None = None
    verdict: Worth | None = None
    verdict_text: str | None = None
    pareto: bool = False
    inputs: tuple[JSONObject, ...] | None = None  # the measured inputs (Measurement.inputs)
    peak_rss_eval: int | None = None  # peak RSS (bytes) of the accuracy pass; ``peak_rss`` is the timed one's
    load_ms: float | None = None  # cold start: model load
    first_inference_ms: float | None = None  # cold start: first inference
    cosine: float | None = None  # fidelity: the worst output's cosine similarity to fp32's
    snr_db: float | None = None  # fidelity: the worst output's SNR against fp32's (None: identical or unknown)
    degraded: bool = False  # cosine below ``min_cosine`` (or its manifest marks it degraded, with no board-side cosine)
    cosine_source: str | None = None  # where ``cosine`` comes from: COSINE_FROM_BOARD or COSINE_FROM_COMPRESS
    min_cosine: float | None = None  # the fidelity threshold the measurement ran with
    accuracy_unknown: str | None = None  # why top-1 is unknown (labels given to a non-classifier output)
    fidelity_unknown: str | None = None  # why fidelity is unknown (the host-side fp32 reference failed)

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (enums as their strings)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["hist"] = None if self.hist is None else self.hist.to_json()
        out["speed"] = None if self.speed is None else self.speed.value
        out["verdict"] = None if self.verdict is None else self.verdict.value
        return out


@dataclass(frozen=True, slots=True)
class SustainedRun:
    """One sustained measurement of a model in a report: its finding as values and its timeline as series.

    Attributes:
        board, variant: the measurement.
        values: the finding (`edgebench.results.sustained.SustainedFinding.to_json`: ``onset_s``,
            ``before_p50_ms``, ``after_p50_ms``, ``cost``, ``freq_before_mhz``, ``freq_after_mhz``,
            ``temp_c``, ...) with the energy figure budgets judge (``energy_mj``, ``energy_domain``).
        t_s, p50_ms, p99_ms, freq_mhz, temp_c: per window, for the report's plot (not in the JSON:
            the run file holds the whole timeline).
    """

    board: str
    variant: str
    values: JSONObject
    t_s: tuple[float, ...] = ()
    p50_ms: tuple[float | None, ...] = ()
    p99_ms: tuple[float | None, ...] = ()
    freq_mhz: tuple[float | None, ...] = ()
    temp_c: tuple[float | None, ...] = ()

    @property
    def onset_s(self) -> float | None:
        """When throttling began (s since the run's start), None when it did not."""
        v = self.values.get("onset_s")
        return float(v) if isinstance(v, int | float) and self.values.get("throttled") else None

    def to_json(self) -> dict[str, Any]:
        """The board, the variant and the finding's values (the series stay out)."""
        return {"board": self.board, "variant": self.variant, "values": dict(self.values)}


@dataclass(frozen=True, slots=True)
class ModelReport:
    """The rows of one model in a run's report, its Pareto set per board, and the findings of its
    sustained runs (``run --sustained``: whether it throttled, the line; `edgebench.results.sustained`);
    ``sustained_runs`` holds the same runs, in the same order, as values and series (`SustainedRun`)."""

    model: str
    rows: tuple[ReportRow, ...]
    pareto: Mapping[str, tuple[str, ...]]
    sustained: tuple[tuple[bool, str], ...] = ()
    sustained_runs: tuple[SustainedRun, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``sustained`` only when the run had sustained measurements; each entry
        with ``board``, ``variant`` and the finding's ``values`` when `sustained_runs` has them)."""
        out: dict[str, Any] = {
            "model": self.model,
            "rows": [r.to_json() for r in self.rows],
            "pareto": {k: list(v) for k, v in self.pareto.items()},
        }
        if self.sustained:
            runs = [s.to_json() for s in self.sustained_runs]
            out["sustained"] = [
                {"throttled": t, "finding": line, **(runs[i] if i < len(runs) else {})}
                for i, (t, line) in enumerate(self.sustained)
            ]
        return out


@dataclass(frozen=True, slots=True)
class Trend:
    """One metric of one (board, model, variant) over the last runs, oldest first."""

    board: str
    model: str
    variant: str
    metric: str
    values: tuple[float | None, ...]
    runs: tuple[str, ...]
    sparkline: str
    changes: tuple[str, ...]  # run ids where a change point starts
    commits: tuple[str, ...] = ()  # x-axis label of each point: short commit id ('*': dirty), else the run id
    config: str | None = None  # digest of the configuration key the series was measured with
    left_out: int = 0  # measurements left out because their configuration differs

    @property
    def change_labels(self) -> tuple[str, ...]:
        """Each change point by its x-axis label (the short commit id, else the run id)."""
        at = dict(zip(self.runs, self.commits or self.runs, strict=False))
        return tuple(at.get(r, r) for r in self.changes)

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return out | {
            "values": list(self.values), "runs": list(self.runs), "changes": list(self.changes),
            "commits": list(self.commits),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Report:
    """What a run says: per model, board x variant figures, verdicts and warnings."""

    run_id: str
    command: str | None
    started: str | None
    complete: bool
    boards: tuple[str, ...]
    models: tuple[ModelReport, ...]
    warnings: tuple[str, ...] = ()
    trends: tuple[Trend, ...] | None = None
    run_file: str | None = None
    commit: str | None = None  # the measured commit: short id, '*' when dirty (`results.commit.label`)
    branch: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench report --json``)."""
        return {
            "run_id": self.run_id,
            "command": self.command,
            "started": self.started,
            "complete": self.complete,
            "commit": self.commit,
            "branch": self.branch,
            "boards": list(self.boards),
            "models": [m.to_json() for m in self.models],
            "warnings": list(self.warnings),
            **({} if self.run_file is None else {"run_file": self.run_file}),
            **({} if self.trends is None else {"trends": [t.to_json() for t in self.trends]}),
        }


# ------------------------------------------------------------------------------- choose


@dataclass(frozen=True, slots=True)
class BoardCost:
    """What a board costs to buy and to run, from the inventory (None when not given)."""

    cost: float | None = None
    power_w: float | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One (board, variant) of a model with its latest figures and why it fails, if it does."""

    board: str
    variant: str
    run_id: str
    p90_ms: float
    top1: float | None
    peak_mb: float | None
    cost: float | None
    power_w: float | None
    reasons: tuple[str, ...] = ()
    energy_mj: float | None = None  # per inference, from a sustained run's power sensors (None: see energy_note)
    energy_note: str = ""  # the domain it covers, or why there is none ("no power sensor on this board")

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Choice:
    """The options of a model that meet the constraints (best first) and the rejected ones."""

    model: str
    rank: str
    max_p90_ms: float | None
    min_accuracy: float | None
    max_memory_mb: float | None
    chosen: tuple[Option, ...]
    rejected: tuple[Option, ...]
    unmeasured: tuple[str, ...] = ()  # inventory boards with no result for the model

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON (``edgebench choose --json``)."""
        return {
            "model": self.model,
            "rank": self.rank,
            "constraints": {
                "max_p90_ms": self.max_p90_ms,
                "min_accuracy": self.min_accuracy,
                "max_memory_mb": self.max_memory_mb,
            },
            "chosen": [o.to_json() for o in self.chosen],
            "rejected": [o.to_json() for o in self.rejected],
            "unmeasured": list(self.unmeasured),
        }
