"""What a run says: per model, board x variant figures, ratios to fp32, verdicts, Pareto sets.

`analyze_run` turns a run into a `Report` (`edgebench.model`); the renderers in
`edgebench.render` only format it. `load_report` loads a stored run and adds its trends.

Sustained runs (``run --sustained``): a variant whose speed-up over fp32 does not survive
sustained load says so in its verdict (`sustained_verdict`): when it throttled and its throttled
steady-state p50 is no faster than fp32's sustained p50 on the same board (fp32's throttled steady
state, else its steady median; faster means by more than `MIN_SLOWDOWN`), its text reads
"int8: 1.7x faster at first, 1.0x after throttling at 3 min 40 s, ...": not worth it (for size,
if it is at most half as large).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench import agent
from edgebench.model import (
    COSINE_FROM_BOARD,
    COSINE_FROM_COMPRESS,
    BoardFidelity,
    Change,
    Histogram,
    Measurement,
    ModelReport,
    Report,
    ReportRow,
    Run,
    Worth,
)
from edgebench.model.base import _num
from edgebench.model.decisions import SustainedRun
from edgebench.results.backend import Results, find_run, list_runs, open_run, read_run, sync, where
from edgebench.results.commit import label as commit_label
from edgebench.results.schema import SchemaError
from edgebench.results.significance import compare_quantile
from edgebench.results.stats import HIGH_CV, PROCESS_SPREAD, is_noisy
from edgebench.results.sustained import (
    MIN_SLOWDOWN,
    SustainedFinding,
    duration_text,
    energy_figure,
    finding_line,
    sustained_findings,
    sustained_p50,
)
from edgebench.results.trend import with_trends

BASELINE = "fp32"
MAX_ACC_DROP_PT = 1.0  # a variant that loses more accuracy than this is not worth it
SMALLER_FOR_SIZE = 0.5  # at equal speed, a variant at most half the size is worth it for size

Key = tuple[str, str, str]


def samples_ms(run: Run) -> dict[Key, np.ndarray]:
    """Raw per-inference samples (ms) of each successful (board, model, variant) of a run."""
    return {b.measurement.key: np.asarray(b.stats["data"], dtype=np.float64) * 1e3 for b in run.benchmarks}


def histogram(ms: np.ndarray, bins: int = 40) -> Histogram:
    """A histogram of latency samples from the minimum to the 99th percentile (the tail is counted apart)."""
    lo, hi = float(ms.min()), float(np.percentile(ms, 99))
    if hi <= lo:
        hi = lo + max(lo * 1e-3, 1e-9)
    counts, _ = np.histogram(ms, bins=bins, range=(lo, hi))
    return Histogram(lo, hi, tuple(int(c) for c in counts), int((ms > hi).sum()))


def pareto(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points not dominated in (lower latency, higher accuracy).

    Args:
        points: ``(name, p90_ms, accuracy)``.
    """
    keep = []
    for name, lat, acc in points:
        dominated = any(
            (lat2 <= lat and acc2 >= acc) and (lat2 < lat or acc2 > acc) for n2, lat2, acc2 in points if n2 != name
        )
        if not dominated:
            keep.append(name)
    return keep


def _fmt_factor(f: float) -> str:
    return f"{f:.1f}x" if f < 10 else f"{f:.0f}x"


def _by(f: float, what: str) -> str:
    """``1.7x faster`` or, under 1.1x, ``4% faster``."""
    return f"{(f - 1) * 100:.0f}% {what}" if f < 1.095 else f"{_fmt_factor(f)} {what}"


def speed_words(speedup: float) -> str:
    """A speed-up (fp32 p50 / variant p50) in the words of the verdicts: ``7.0x slower``, ``1.4x faster``,
    ``4% faster``; the table shows the same figure as ``speedup`` (``0.14x``, `speed_figure`)."""
    if speedup <= 0:
        return "speed unknown"
    return _by(speedup, "faster") if speedup >= 1 else _by(1 / speedup, "slower")


def speed_figure(speedup: float | None) -> str:
    """A speed-up as the report table's speed column shows it (``0.14x``)."""
    return "-" if speedup is None else f"{speedup:.2f}x"


BOARD = COSINE_FROM_BOARD  # a cosine measured on the board in this run (eval data and the fp32 reference)
COMPRESS = COSINE_FROM_COMPRESS  # the variant's manifest: host-side, at compress time (`Measurement.compress_fidelity`)


@dataclass(frozen=True, slots=True)
class Fidelity:
    """What is known of a measurement's outputs against its parent's, and where it comes from.

    Attributes:
        cosine: the worst output's cosine (None: unknown).
        min_cosine: the degraded threshold.
        source: `BOARD` or `COMPRESS` (None when nothing is known).
        degraded: below the threshold (for `COMPRESS`, also when the manifest says so without a cosine).
    """

    cosine: float | None
    min_cosine: float
    source: str | None = None
    degraded: bool = False

    def words(self) -> str:
        """``cosine 0.5000 < 0.99 against fp32`` or ``host-side cosine 0.2400 < 0.99 against its parent at
        compress time`` (the threshold only when degraded)."""
        if self.cosine is None and self.source != COMPRESS:
            return "fidelity unknown"
        if self.source != COMPRESS:
            return f"cosine {self.cosine:.4f}" + (f" < {self.min_cosine:g} against fp32" if self.degraded else "")
        if self.cosine is None:
            return "marked degraded by its manifest at compress time"
        below = f" < {self.min_cosine:g}" if self.degraded else ""
        return f"host-side cosine {self.cosine:.4f}{below} against its parent at compress time"


def verdict(
    variant: str,
    speed: Change,
    speedup: float,
    acc_delta_pt: float | None,
    size_ratio: float | None,
    max_drop_pt: float = MAX_ACC_DROP_PT,
    *,
    cosine: float | None = None,
    min_cosine: float = agent.DEFAULT_MIN_COSINE,
    accuracy_unknown: str | None = None,
    fidelity_unknown: str | None = None,
    source: str | None = None,
    flagged: bool = False,
) -> tuple[Worth, str]:
    """The verdict on a variant against fp32 on the same board.

    A degraded variant (``cosine`` below ``min_cosine``, measured on the board or by compress) is never
    worth it; a faster or smaller one whose accuracy and board-side fidelity are both unknown is only
    "worth it if its accuracy holds", and the text says what is unknown.

    Args:
        speed: the significance label of its median latency against fp32.
        speedup: fp32 p50 / variant p50.
        cosine: the worst output's cosine similarity to fp32's (None: not measured).
        accuracy_unknown: why top-1 could not be measured although labels were given.
        fidelity_unknown: why the cosine could not be measured (the host-side fp32 reference failed).
        source: where ``cosine`` comes from: `BOARD` (the default when there is one) or `COMPRESS` (the
            variant's manifest, host-side: it can say degraded, never verify).
        flagged: the manifest marks the variant degraded although it holds no cosine (`COMPRESS` only).

    Returns:
        ``(kind, text)``; text reads like ``int8-static: 1.7x faster, -0.3 pt: worth it``.
    """
    src = source or (BOARD if cosine is not None else None)
    fid = Fidelity(
        cosine, min_cosine, src, (cosine is not None and cosine < min_cosine) or (src == COMPRESS and flagged)
    )
    board_cosine = cosine if src == BOARD else None
    acc = "" if acc_delta_pt is None else f", {acc_delta_pt:+.1f} pt"
    if acc_delta_pt is None and board_cosine is not None:
        acc = f", accuracy unknown, cosine {board_cosine:.4f}"
    too_lossy = acc_delta_pt is not None and acc_delta_pt < -max_drop_pt
    unverified = acc_delta_pt is None and board_cosine is None
    if unverified:
        acc = ", accuracy unknown" + (f" ({accuracy_unknown})" if accuracy_unknown else " (no labelled eval data)")
        if fidelity_unknown:
            acc += ", fidelity unknown (the fp32 reference failed)"
        if src == COMPRESS and not fid.degraded:
            acc += f", {fid.words()}"
    if fid.degraded:
        change = {
            Change.SLOWER: _by(1 / speedup, "slower") if speedup else "slower",
            Change.FASTER: _by(speedup, "faster"),
        }
        how = change.get(speed, "same speed" if speed is Change.NO_CHANGE else "speed undecided")
        return Worth.DEGRADED, (
            f"{variant}: {how}, but its outputs are degraded ({fid.words()})"
            f"{'' if acc_delta_pt is None else acc}: not worth it"
        )
    if speed is Change.SLOWER:
        return Worth.NOT_WORTH_IT, f"{variant}: {_by(1 / speedup, 'slower')} here{acc}: not worth it"
    if speed is Change.FASTER:
        kind = Worth.NOT_WORTH_IT if too_lossy else Worth.WORTH_IT_IF_ACCURATE if unverified else Worth.WORTH_IT
        why = f" (loses more than {max_drop_pt:g} pt)" if too_lossy else ""
        return kind, f"{variant}: {_by(speedup, 'faster')}{acc}: {kind}{why}"
    smaller = size_ratio is not None and size_ratio <= SMALLER_FOR_SIZE
    size = f", {_fmt_factor(1 / size_ratio)} smaller" if smaller and size_ratio else ""
    if speed is Change.NO_CHANGE:
        kind = Worth.NOT_WORTH_IT if too_lossy or not smaller else Worth.WORTH_IT_FOR_SIZE
        if kind is Worth.WORTH_IT_FOR_SIZE and unverified:
            return kind, f"{variant}: same speed{size}{acc}: worth it for size if its accuracy holds"
        return kind, f"{variant}: same speed{size}{acc}: {kind}"
    text = f"{variant}: too noisy to tell (speed {speed_figure(speedup)} at the median){acc}: measure longer"
    return Worth.UNDECIDED, text


def _number(d: Mapping[str, Any] | None, *keys: str) -> float | None:
    """The first of ``keys`` in ``d`` that holds a number (bools are not numbers), or None."""
    return _first_number(*((d or {}).get(k) for k in keys))


def _first_number(*values: Any) -> float | None:
    """The first of ``values`` that is a number (bools are not numbers), or None."""
    return next((v for v in map(_num, values) if v is not None), None)


def cosine_of(m: Measurement) -> tuple[float | None, float]:
    """A measurement's worst-output cosine to fp32's on the board (None: not measured) and the threshold it ran with."""
    fid = m.fidelity if isinstance(m.fidelity, BoardFidelity) else None
    settings = m.settings
    cosine = None if fid is None else _first_number(fid.cosine, fid.cosine_mean)  # ``cosine_mean``: older runs
    given = None if settings is None else settings.min_cosine
    threshold = _first_number(None if fid is None else fid.min_cosine, given)
    return cosine, agent.DEFAULT_MIN_COSINE if threshold is None else threshold  # 0 is a threshold too


def fidelity_of(m: Measurement) -> Fidelity:
    """A measurement's fidelity: the board's when this run measured it, else its manifest's (compress time).

    A variant measured without eval data (or whose fp32 reference failed) has no board-side cosine; its
    manifest's, found by compress on the host against its parent, still says whether its outputs are
    usable. A run's ``--min-cosine`` re-decides the manifest's cosine; a manifest flag without a cosine stands.
    """
    cosine, min_cosine = cosine_of(m)
    if cosine is not None:
        return Fidelity(cosine, min_cosine, BOARD, cosine < min_cosine)
    cf = m.compress_fidelity
    if not isinstance(cf, Mapping):
        return Fidelity(None, min_cosine)
    host_cosine = _number(cf, "cosine")
    if host_cosine is None:
        flagged = cf.get("degraded") is True
        return Fidelity(None, min_cosine, COMPRESS if flagged else None, flagged)
    return Fidelity(host_cosine, min_cosine, COMPRESS, host_cosine < min_cosine)


def _row(m: Measurement) -> ReportRow:
    s = m.summary
    figures: dict[str, Any] = {}
    if s is not None:
        figures = {"p50_ms": s.p50_ms, "p90_ms": s.p90_ms, "p99_ms": s.p99_ms, "throughput": s.throughput,
                   "rounds": s.rounds, "cv": s.cv}  # fmt: skip
    fid = m.fidelity if isinstance(m.fidelity, BoardFidelity) else None
    f = fidelity_of(m)
    peak_eval = None if m.memory is None else _num(m.memory.peak_rss_eval)
    unknown = None if m.accuracy is None else m.accuracy.unknown
    return ReportRow(
        board=m.board, variant=m.variant, ok=m.ok, **figures, peak_rss=m.peak_rss, top1=m.top1,
        fidelity=m.fidelity_value, bytes=m.bytes, process_spread=m.process_spread,
        error=None if m.ok else (m.error.message if m.error is not None else "{}"), inputs=m.inputs,
        peak_rss_eval=None if peak_eval is None else int(peak_eval),
        load_ms=None if m.cold_start is None else m.cold_start.load_ms,
        first_inference_ms=None if m.cold_start is None else m.cold_start.first_inference_ms,
        cosine=f.cosine, degraded=f.degraded, min_cosine=f.min_cosine, cosine_source=f.source,
        snr_db=_num(fid.snr_db) if fid is not None and f.source == BOARD else None,
        accuracy_unknown=str(unknown) if unknown else None,
        fidelity_unknown=str(fid.unknown) if fid is not None and fid.unknown else None,
    )  # fmt: skip


def sustained_verdict(
    kind: Worth, text: str, variant: str, speedup: float, size_ratio: float | None,
    fp32: SustainedFinding | None, own: SustainedFinding | None,
) -> tuple[Worth, str]:  # fmt: skip
    """The verdict of a faster variant, told when its speed-up does not survive sustained load.

    When both it and fp32 ran sustained on the board, it throttled, and its throttled p50 is not
    more than `MIN_SLOWDOWN` faster than fp32's sustained p50 (`sustained_p50`), the speed-up in the
    text becomes ``1.7x faster at first, 1.0x after throttling at 3 min 40 s`` and the verdict is
    not worth it (worth it for size when at most half as large). Any other verdict is returned as it is.
    """
    if kind not in (Worth.WORTH_IT, Worth.WORTH_IT_IF_ACCURATE) or fp32 is None or own is None:
        return kind, text
    base, after = sustained_p50(fp32), own.after_p50_ms
    if not own.throttled or own.onset_s is None or base is None or not after:
        return kind, text
    later = base / after
    if later > 1 + MIN_SLOWDOWN:
        return kind, text
    first = _by(speedup, "faster")
    head = f"{variant}: {first}"
    if not text.startswith(head):
        return kind, text
    rest = text[len(head) :].rsplit(": ", 1)[0]  # the accuracy part, without the old verdict
    said = f"{variant}: {first} at first, {later:.1f}x after throttling at {duration_text(own.onset_s)}{rest}"
    if size_ratio is not None and size_ratio <= SMALLER_FOR_SIZE:
        smaller = _fmt_factor(1 / size_ratio)
        return (
            Worth.WORTH_IT_FOR_SIZE,
            f"{said}, {smaller} smaller: worth it for size (its speed-up does not survive sustained load)",
        )
    return Worth.NOT_WORTH_IT, f"{said}: not worth it (its speed-up does not survive sustained load)"


def _against_fp32(
    model: str,
    rows: list[ReportRow],
    samples: Mapping[Key, np.ndarray],
    max_drop_pt: float,
    sustained: Mapping[tuple[str, str], SustainedFinding] | None = None,
) -> list[ReportRow]:
    base = {r.board: r for r in rows if r.variant == BASELINE and r.ok}
    out = []
    for r in rows:
        if r.ok:
            r = dataclasses.replace(r, hist=histogram(samples[(r.board, model, r.variant)]))
        b = base.get(r.board)
        if not r.ok or b is None or r.variant == BASELINE:
            out.append(r)
            continue
        speedup = b.p50_ms / r.p50_ms if r.p50_ms and b.p50_ms is not None else None
        size_ratio = r.bytes / b.bytes if b.bytes and r.bytes else None
        acc = (r.top1 - b.top1) * 100 if b.top1 is not None and r.top1 is not None else None
        chg = compare_quantile(samples[(r.board, model, BASELINE)], samples[(r.board, model, r.variant)], 0.5)
        kind, text = verdict(
            r.variant, chg.label, speedup or 0.0, acc, size_ratio, max_drop_pt,
            cosine=r.cosine, min_cosine=agent.DEFAULT_MIN_COSINE if r.min_cosine is None else r.min_cosine,
            accuracy_unknown=r.accuracy_unknown, fidelity_unknown=r.fidelity_unknown,
            source=r.cosine_source, flagged=r.degraded,
        )  # fmt: skip
        found = sustained or {}
        kind, text = sustained_verdict(kind, text, r.variant, speedup or 0.0, size_ratio,
                                       found.get((r.board, BASELINE)), found.get((r.board, r.variant)))  # fmt: skip
        out.append(
            dataclasses.replace(
                r,
                speedup=speedup,
                size_ratio=size_ratio,
                acc_delta_pt=acc,
                speed=chg.label,
                verdict=kind,
                verdict_text=text,
            )
        )
    return out


def sustained_run(m: Measurement, f: SustainedFinding) -> SustainedRun:
    """A sustained measurement for the report: the finding's values with its energy figure, the timeline's series."""
    assert m.timeline is not None  # sustained_findings keeps only measurements with one
    ws = m.timeline.windows
    e = energy_figure(m.timeline)
    values = f.to_json() | {"energy_mj": e.mj, "energy_domain": e.note}
    return SustainedRun(
        board=m.board, variant=m.variant, values=values, t_s=tuple(w.t_s for w in ws),
        p50_ms=tuple(w.p50_ms for w in ws), p99_ms=tuple(w.p99_ms for w in ws),
        freq_mhz=tuple(w.freq_mhz for w in ws), temp_c=tuple(w.temp_c for w in ws),
    )  # fmt: skip


def analyze_run(run: Run, *, max_drop_pt: float = MAX_ACC_DROP_PT) -> Report:
    """The report of a run (see the module docstring)."""
    samples = samples_ms(run)
    found = sustained_findings(run.measurements)
    sustained: dict[str, list[tuple[bool, str]]] = defaultdict(list)
    series: dict[str, list[SustainedRun]] = defaultdict(list)
    for m, f in found:
        sustained[m.model].append((f.throttled, finding_line(m, f)))
        series[m.model].append(sustained_run(m, f))
    by_model: dict[str, list[ReportRow]] = defaultdict(list)
    for m in run.measurements:
        by_model[m.model].append(_row(m))
    models = []
    for model in sorted(by_model):
        rows = sorted(by_model[model], key=lambda r: (r.board, r.variant != BASELINE, r.variant))
        by_key = {(m.board, m.variant): f for m, f in found if m.model == model}
        rows = _against_fp32(model, rows, samples, max_drop_pt, by_key)
        front = {}
        for board in sorted({r.board for r in rows}):
            pts = [
                (r.variant, r.p90_ms, r.top1)
                for r in rows
                if r.board == board
                and r.ok
                and r.top1 is not None
                and r.p90_ms is not None
                and not r.degraded
                and not r.accuracy_unknown  # never a trade-off worth choosing
            ]
            front[board] = tuple(pareto(pts))
        rows = [dataclasses.replace(r, pareto=r.variant in front[r.board]) for r in rows]
        models.append(
            ModelReport(model, tuple(rows), front, tuple(sustained.get(model, ())), tuple(series.get(model, ())))
        )
    noisy = [
        f"{r.board}/{mm.model}/{r.variant} ({r.cv:.0%})" for mm in models for r in mm.rows if r.ok and is_noisy(r.cv)
    ]
    warnings = []
    if noisy:
        warnings.append(
            f"latency varies a lot (CV above {HIGH_CV:.0%}) on {', '.join(noisy)}: p99 and the mean are unreliable "
            "there (idle the board, pin the CPU governor, or raise --min-time)"
        )
    spread = [
        f"{r.board}/{mm.model}/{r.variant} ({r.process_spread:.0%})"
        for mm in models
        for r in mm.rows
        if r.ok and r.process_spread is not None and r.process_spread > PROCESS_SPREAD
    ]
    if spread:
        warnings.append(
            f"the fresh agent processes of a variant disagree (medians more than {PROCESS_SPREAD:.0%} apart) on "
            f"{', '.join(spread)}: a busy board moves each process; to decide across runs, pair them (run "
            "--baseline, compare --ab)"
        )
    partial = [
        f"{m.board}/{m.model}/{m.variant} ({s.repeats} of {s.repeats_planned})"
        for m in run.measurements
        if m.ok and (s := m.settings) is not None and s.repeats_planned is not None
    ]
    if partial:  # a stopped run kept these from fewer processes: wider intervals, never a full measurement
        warnings.append(
            f"partial (the run stopped before all their agent processes ran) on {', '.join(partial)}: "
            "their intervals are over fewer processes; measure again for the full figures"
        )
    if not run.complete:
        why = run.interrupted or "it did not finish"
        warnings.insert(0, f"run {run.run_id} is incomplete ({why}): figures cover what finished")
    return Report(
        run_id=run.run_id,
        command=run.command,
        started=run.started,
        complete=run.complete,
        boards=tuple(sorted(run.boards)),
        models=tuple(models),
        warnings=tuple(warnings),
        commit=commit_label(run.commit_info),
        branch=run.commit_info.get("branch") or None,
    )


def load_report(results: Results, ref: str = "latest", *, last: int = 30) -> Report:
    """The report of a stored run, with trends over the last ``last`` runs from the index.

    Unreadable run files elsewhere in the folder are skipped with a warning.

    Raises:
        RunNotFound: if ``ref`` names no run.
        UserError: if the run's own file cannot be read.
    """
    path = find_run(results, ref)
    sync(results)
    if ref == "latest":  # plain `report`: the newest run that can be read, saying which were skipped
        for older in reversed(list_runs(results)):
            try:
                run = read_run(results, older)
            except SchemaError as exc:
                warnings.warn(f"skipping {exc}", stacklevel=2)
                continue
            if older != path:
                warnings.warn(
                    f"the latest run cannot be read: reporting the newest readable run {run.run_id}", stacklevel=2
                )
            path = older
            break
    run = open_run(results, str(path), "pick another run (edgebench report RUN) or delete the file")
    report = dataclasses.replace(analyze_run(run), run_file=where(results, path))
    return with_trends(report, results, last=last)
