"""Throttling as a finding: what a sustained run's timeline says, in one sentence, and its energy.

From the per-window p50 of a `Timeline` (`edgebench.agent.sustained` records it), change
points are found by the same method the nightly's trends use (`edgebench.results.trend.change_points`:
PELT from ``ruptures`` on a spike-filtered series, a BIC penalty scaled to the series' own
noise, a change kept only when the levels differ by more than `MIN_SLOWDOWN`). The first
change to a slower level is the onset of throttling; the steady state before it is the
median p50 of the windows before it, the throttled steady state the median of the last
level's windows, and the cost their ratio. The clock and temperature are the windows'
medians on each side (the temperature at the onset window itself), so that the sentence
says what the board did: "p50 +38 % (0.52 → 0.72 ms) after 3 min 40 s, as the clock fell
from 1800 to 1200 MHz at 81 C". Without a slower level: "no throttling in 10 min (p50
steady within ±2.1 %)", where the spread is the 5th-95th percentile of the windows' p50
around their median.

Energy (`energy_line`): per domain or rail the agent read, mJ per inference and mean W,
with what it covers and how it was sampled; with no source, the agent's reason (`NO_SENSOR`).

What budgets and ``choose`` judge (`steady_state`, `energy_figure`):

* the sustained p50 / p99 is the median, over the windows of the steady state, of each window's
  p50 / p99. The steady state is the throttled one when the run throttled (the windows of the
  slower level the finding reports, ``after_p50_ms``), else the last third of the run: what the
  board settles to under load, never the first minute's burst;
* the energy per inference is the largest mJ per inference among the domains or rails read: the
  widest the board measures (package over core, the input rail over the CPU rail). Domains are
  never added up, since they overlap (RAPL ``core`` is part of ``package``, Jetson's CPU rail part
  of its input rail); the figure names the domain and what it covers.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgebench.model import Measurement
from edgebench.model.measurement import Timeline
from edgebench.results.trend import change_points

MIN_SLOWDOWN = 0.05  # a change of the windows' p50 level smaller than this is not throttling
MIN_WINDOWS = 5  # fewer timed windows judge nothing: with 3, a 9 % rise of one window read as throttling
MIN_LEVEL = 3  # windows a slower level must last to be an onset: a neighbour's 2-window spike is not throttling
MAX_POINTS = 150  # longer timelines are searched in block medians first (`_changes`)
NO_SENSOR = "no power sensor on this board"  # the agent's words (`edgebench.agent.power.NO_SENSOR`)


@dataclasses.dataclass(frozen=True, slots=True)
class SustainedFinding:
    """What one sustained run found: throttling (when, how much, with which clock and temperature) or none.

    Attributes:
        windows: the timeline's windows; ``seconds`` the run's length.
        throttled: a slower level was found; ``onset_window`` / ``onset_s`` where it began.
        before_p50_ms: the steady state before throttling (the whole run's median without it);
            ``after_p50_ms`` the throttled steady state (the last level); ``cost`` after/before - 1.
        freq_before_mhz, freq_after_mhz, temp_c: the clock on each side, the temperature at the onset.
        spread: without throttling, the windows' p50 5th-95th percentile around their median (a fraction).
        sentence: the finding in words; ``energy`` the energy line; ``overhead`` the sensors' share of the run.
    """

    windows: int
    seconds: float
    throttled: bool
    sentence: str
    energy: str
    onset_window: int | None = None
    onset_s: float | None = None
    before_p50_ms: float | None = None
    after_p50_ms: float | None = None
    cost: float | None = None
    freq_before_mhz: float | None = None
    freq_after_mhz: float | None = None
    temp_c: float | None = None
    spread: float | None = None
    overhead: float | None = None
    flags: tuple[str, ...] = ()
    steady: tuple[int, int] | None = None  # windows [a, b) of the steady state `steady_state` judges
    steady_basis: str = ""  # what those windows are: "the throttled steady state" or "the last third ..."

    def to_json(self) -> dict[str, Any]:
        """Plain data for JSON."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["flags"] = list(self.flags)
        out["steady"] = None if self.steady is None else list(self.steady)
        return out


def duration_text(seconds: float) -> str:
    """``3 min 40 s``, ``40 s``, ``1 h 5 min``, ``10 min``: a duration as the finding says it."""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h" + (f" {m} min" if m else "")
    return f"{m} min" + (f" {sec} s" if sec else "")


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return float(np.median(got)) if got else None


def _ms(v: float) -> str:
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def find_throttling(timeline: Timeline) -> SustainedFinding:
    """The finding of one timeline: the onset of throttling and its cost, or how steady the p50 stayed."""
    ws = timeline.windows
    p50 = [w.p50_ms for w in ws]
    seconds = float(timeline.run.get("elapsed_s") or timeline.run.get("seconds") or sum(w.duration_s for w in ws))
    overhead = timeline.sensor_overhead
    energy = energy_line(timeline)
    flags = tuple(sorted({f for w in ws for f in w.flags}))
    base: dict[str, Any] = {
        "windows": len(ws),
        "seconds": seconds,
        "energy": energy,
        "overhead": overhead,
        "flags": flags,
    }
    known = [v for v in p50 if v is not None]
    if not known:
        return SustainedFinding(throttled=False, sentence="no timed windows: nothing to judge", **base)
    if len(known) < MIN_WINDOWS:
        sentence = (
            f"too short to judge throttling ({len(known)} timed windows in {duration_text(seconds)}): "
            f"give --sustained at least {MIN_WINDOWS} windows"
        )
        return SustainedFinding(throttled=False, sentence=sentence, **base)
    cps = _changes(p50)
    bounds = [0, *cps, len(ws)]
    levels = [_median(p50[a:b]) for a, b in itertools.pairwise(bounds)]
    first = levels[0]
    slower = [
        i
        for i, v in enumerate(levels)
        if i and first and v is not None and v > first * (1 + MIN_SLOWDOWN) and bounds[i + 1] - bounds[i] >= MIN_LEVEL
    ]
    onset_i = slower[0] if slower else None
    if onset_i is None or first is None:
        med = float(np.median(known))
        lo, hi = np.percentile(known, [5.0, 95.0])
        spread = max(abs(hi / med - 1), abs(lo / med - 1)) if med else 0.0
        faster = ""
        if len(levels) > 1 and first and levels[-1] is not None and levels[-1] < first:
            faster = f"; p50 fell {1 - levels[-1] / first:.0%} after {duration_text(ws[cps[0]].t_s)}"
        sentence = f"no throttling in {duration_text(seconds)} (p50 steady within ±{spread:.1%}{faster})"
        third = (len(ws) - max(len(ws) // 3, 1), len(ws))
        return SustainedFinding(
            throttled=False, sentence=sentence, spread=spread, before_p50_ms=med, steady=third,
            steady_basis=f"the last third of the run (from {duration_text(ws[third[0]].t_s)}: no throttling)", **base,
        )  # fmt: skip
    onset = bounds[onset_i]
    # the throttled stretch: from the onset through every following level that stays slower (a short last
    # piece PELT cut off the end is part of it); its level is the median of all its windows
    end_i = onset_i
    while end_i + 1 < len(levels) and (levels[end_i + 1] or 0.0) > first * (1 + MIN_SLOWDOWN):
        end_i += 1
    seg = (onset, bounds[end_i + 1])
    after = _median(p50[seg[0] : seg[1]]) or levels[onset_i] or first
    cost = after / first - 1
    f_before = _median([w.freq_mhz for w in ws[:onset]])
    f_after = _median([w.freq_mhz for w in ws[seg[0] : seg[1]]])
    temp = ws[onset].temp_c
    sentence = f"p50 {cost:+.0%} ({_ms(first)} → {_ms(after)} ms) after {duration_text(ws[onset].t_s)}"
    if f_before is not None and f_after is not None and f_after < f_before * 0.98:
        sentence += f", as the clock fell from {f_before:.0f} to {f_after:.0f} MHz"
    elif f_before is not None and f_after is not None:
        sentence += f", with the clock at {f_after:.0f} MHz (not lowered: the cause is not the CPU clock)"
    else:
        sentence += " (the board reports no CPU frequency)"
    if temp is not None:
        sentence += f" at {temp:.0f} C"
    return SustainedFinding(
        throttled=True, sentence=sentence, onset_window=onset, onset_s=ws[onset].t_s, before_p50_ms=first,
        after_p50_ms=after, cost=cost, freq_before_mhz=f_before, freq_after_mhz=f_after, temp_c=temp, steady=seg,
        steady_basis=f"the throttled steady state (from {duration_text(ws[seg[0]].t_s)})", **base,
    )  # fmt: skip


def _changes(p50: Sequence[float | None]) -> list[int]:
    """Change points of the windows' p50 (`change_points`); a long series is searched in blocks, then refined.

    PELT as ``ruptures`` runs it (every split point) grows with the square of the series: 600
    windows take seconds. Past `MAX_POINTS` windows the search runs on block medians and each
    change found is placed at the window, within a block either side, that best splits the
    windows there into two levels (least absolute deviation from each side's median), so the
    onset stays exact to a window.
    """
    n = len(p50)
    if n <= MAX_POINTS:
        return change_points(p50, min_rel=MIN_SLOWDOWN)
    size = -(-n // MAX_POINTS)
    blocks = [_median(p50[i : i + size]) for i in range(0, n, size)]
    found = []
    for cp in change_points(blocks, min_rel=MIN_SLOWDOWN):
        lo, hi = max(0, (cp - 1) * size), min(n, (cp + 1) * size)
        x = list(p50[lo:hi])
        best, best_err = cp * size, float("inf")
        for k in range(1, len(x)):
            a = np.array([v for v in x[:k] if v is not None])
            b = np.array([v for v in x[k:] if v is not None])
            if not a.size or not b.size:
                continue
            err = float(np.sum(np.abs(a - np.median(a))) + np.sum(np.abs(b - np.median(b))))
            if err < best_err:
                best, best_err = lo + k, err
        found.append(best)
    return sorted(set(found))


def energy_line(timeline: Timeline) -> str:
    """Energy per inference and mean power per domain, with what each covers and its sampling; or why none."""
    power: Mapping[str, Any] = timeline.power or {}
    if not power.get("available"):
        return str(power.get("none") or NO_SENSOR)
    parts = []
    for d in power.get("domains") or ():
        name = d.get("name")
        mj, w = d.get("mj_per_inference"), d.get("mean_w")
        if mj is None or w is None:
            parts.append(f"{name}: not read ({d.get('error') or 'no reading'})")
            continue
        parts.append(f"{mj:.3g} mJ per inference, mean {w:.3g} W ({name}: {d.get('covers')}; {d.get('sampling')})")
    return "; ".join(parts) or NO_SENSOR


def sustained_findings(measurements: Sequence[Measurement]) -> list[tuple[Measurement, SustainedFinding]]:
    """The finding of every measurement that ran sustained, in the run's order."""
    return [(m, find_throttling(m.timeline)) for m in measurements if m.timeline is not None]


def finding_line(m: Measurement, f: SustainedFinding) -> str:
    """``board/variant sustained 10 min: finding; energy: ...; sensors read in x % of the run``."""
    head = f"{m.board}/{m.variant} sustained {duration_text(f.seconds)}: {f.sentence}"
    tail = f"energy: {f.energy}"
    if f.overhead is not None:
        tail += f"; sensors read in {f.overhead:.3%} of the run"
    return f"{head}; {tail}"


def sustained_notes(measurements: Sequence[Measurement]) -> dict[str, list[tuple[bool, str]]]:
    """Per model, each sustained measurement's line (`finding_line`) and whether it throttled: the report's notes."""
    out: dict[str, list[tuple[bool, str]]] = {}
    for m, f in sustained_findings(measurements):
        out.setdefault(m.model, []).append((f.throttled, finding_line(m, f)))
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class SteadyState:
    """The sustained figures a budget judges: the median of the steady windows' p50 and p99 (`steady_state`).

    Attributes:
        p50_ms, p99_ms: None when no window of the steady state was timed.
        windows: how many timed windows they are over; ``basis`` which windows (the throttled steady
            state, or the last third of the run without throttling).
    """

    p50_ms: float | None
    p99_ms: float | None
    windows: int
    basis: str

    @property
    def note(self) -> str:
        """``median of 200 windows over the throttled steady state (from 3 min 40 s)``."""
        return f"median of {self.windows} windows over {self.basis}"


def steady_state(timeline: Timeline, finding: SustainedFinding | None = None) -> SteadyState:
    """The sustained p50 and p99 of a timeline (see the module docstring: which windows, which statistic)."""
    f = finding or find_throttling(timeline)
    a, b = f.steady or (0, 0)
    ws = [w for w in timeline.windows[a:b] if w.p50_ms is not None]
    return SteadyState(
        p50_ms=_median([w.p50_ms for w in ws]),
        p99_ms=_median([w.p99_ms for w in ws]),
        windows=len(ws),
        basis=f.steady_basis or "no timed windows",
    )


def sustained_p50(finding: SustainedFinding) -> float | None:
    """The p50 the board settles to: the throttled steady state, else the whole run's median (for verdicts)."""
    return finding.after_p50_ms if finding.throttled else finding.before_p50_ms


@dataclasses.dataclass(frozen=True, slots=True)
class EnergyFigure:
    """One energy per inference to judge (`energy_figure`): its domain and what it covers, or why there is none.

    Attributes:
        mj: mJ per inference (None: ``why`` says why not); ``domain`` and ``covers`` where it was read.
    """

    mj: float | None
    domain: str = ""
    covers: str = ""
    why: str = ""

    @property
    def note(self) -> str:
        """``package-0 (CPU package ..., not DRAM)`` or the reason there is no figure."""
        return f"{self.domain} ({self.covers})" if self.mj is not None else self.why


def energy_figure(timeline: Timeline | None) -> EnergyFigure:
    """The energy per inference of a sustained run: the largest domain's (see the module docstring)."""
    if timeline is None:
        return EnergyFigure(None, why="no sustained run: run --sustained")
    power: Mapping[str, Any] = timeline.power or {}
    if not power.get("available"):
        return EnergyFigure(None, why=str(power.get("none") or NO_SENSOR))
    read = [d for d in power.get("domains") or () if isinstance(d.get("mj_per_inference"), int | float)]
    if not read:
        errors = "; ".join(f"{d.get('name')}: {d.get('error') or 'no reading'}" for d in power.get("domains") or ())
        return EnergyFigure(None, why=f"the power sensors gave no reading ({errors or 'no domains'})")
    top = max(read, key=lambda d: float(d["mj_per_inference"]))
    return EnergyFigure(float(top["mj_per_inference"]), str(top.get("name")), str(top.get("covers") or ""))
