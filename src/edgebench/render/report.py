"""The run report as a rich renderable, and the one column spec every report format uses.

`COLUMNS` declares the report table once: header, short header (rich), how a row's
cell reads, and which formats show it. `render.markdown` and `render.html` build
their tables from the same spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from edgebench.model import COSINE_FROM_COMPRESS, MIB, Change, ModelReport, ReportRow, Trend, Worth
from edgebench.model import Report as ReportData
from edgebench.render.widths import dropped_note, fit_table
from edgebench.results.analysis import speed_figure


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / MIB:.1f}"


def _top1(r: ReportRow) -> str:
    return "unknown" if r.accuracy_unknown else fmt_pct(r.top1)


def _cosine(r: ReportRow) -> str:
    """The worst output's cosine to fp32's, 4 decimals (``1.0000`` may still differ), marked when degraded
    (a cosine from the manifest, for want of a board-side one, is named by `fidelity_note`)."""
    if r.cosine is None:
        return "degraded" if r.degraded else "unknown" if r.fidelity_unknown else "-"
    return f"{r.cosine:.4f}" + (" degraded" if r.degraded else "")


def _has_cosine(r: ReportRow) -> object:
    return r.cosine if r.cosine is not None else r.fidelity_unknown or (True if r.degraded else None)


def fidelity_note(mm: ModelReport) -> str | None:
    """The line that says which cosines come from the manifests (host-side, at compress time): those of the
    variants this run measured no fidelity for (no eval data, or a failed reference)."""
    names = [f"{r.board}/{r.variant}" for r in mm.rows if r.ok and r.cosine_source == COSINE_FROM_COMPRESS]
    if not names:
        return None
    return (
        f"cosine of {', '.join(names)}: host-side, from the manifests at compress time (no fidelity measured on "
        "the board in this run: --eval measures it)"
    )


def _snr(r: ReportRow) -> str:
    if r.snr_db is None:
        return "exact" if r.cosine is not None and r.cosine >= 1.0 else "-"
    return f"{r.snr_db:.1f}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.1f} KiB" if n < MIB else f"{n / MIB:.2f} MiB"


def fmt_ms(v: float | None) -> str:
    """A latency in ms with 3 significant digits."""
    if v is None:
        return "-"
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def fmt_pct(v: float | None) -> str:
    """A fraction 0..1 as a percentage."""
    return "-" if v is None else f"{v:.2%}"


def fmt_ratio(v: float | None) -> str:
    """A ratio like ``1.7x`` (a speed-up reads as the verdicts' and the profile lines' `speed_figure`)."""
    return speed_figure(v)


def _throughput(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


@dataclass(frozen=True)
class Column:
    """One column of the report table.

    Attributes:
        header: its header in Markdown and HTML.
        short: its header in the terminal (narrow).
        cell: the plain text of a successful row's cell.
        rich: shown in the terminal (the Pareto mark goes next to the variant there).
        optional: shown only when some row has a value (``cosine``), in every format.
    """

    header: str
    short: str
    cell: Callable[[ReportRow], str]
    rich: bool = True
    optional: Callable[[ReportRow], object] | None = None


COLUMNS = (
    Column("board", "board", lambda r: r.board),
    Column("variant", "variant", lambda r: r.variant),
    Column("p50 ms", "p50", lambda r: fmt_ms(r.p50_ms)),
    Column("p90 ms", "p90", lambda r: fmt_ms(r.p90_ms)),
    Column("p99 ms", "p99", lambda r: fmt_ms(r.p99_ms)),
    Column("inf/s", "inf/s", lambda r: _throughput(r.throughput)),
    Column("peak MiB", "peak MiB", lambda r: _mib(r.peak_rss)),  # the timed configuration's
    Column("eval peak MiB", "eval MiB", lambda r: _mib(r.peak_rss_eval), optional=lambda r: r.peak_rss_eval),
    Column("load ms", "load", lambda r: fmt_ms(r.load_ms), optional=lambda r: r.load_ms),
    Column("first inference ms", "first", lambda r: fmt_ms(r.first_inference_ms), optional=lambda r: r.load_ms),
    Column("top-1", "top-1", _top1),
    Column("cosine", "cos.", _cosine, optional=_has_cosine),
    Column("SNR dB", "SNR", _snr, optional=lambda r: r.cosine),
    Column("size", "size", lambda r: _size(r.bytes)),
    Column("speedup", "speed", lambda r: fmt_ratio(r.speedup)),
    Column("size ratio", "size×", lambda r: fmt_ratio(r.size_ratio)),
    Column("Pareto", "Pareto", lambda r: "★" if r.pareto else "", rich=False),
)


# the terminal table's columns that give way on a narrow console, least important first
DROP_ORDER = ("size×", "SNR", "eval MiB", "first", "inf/s", "load", "p99", "size", "speed", "cos.", "peak MiB")


def shown_columns(rows: Sequence[ReportRow]) -> tuple[Column, ...]:
    """The columns a table of ``rows`` shows in every format: optional ones only when some row has a value."""
    return tuple(c for c in COLUMNS if c.optional is None or any(c.optional(r) is not None for r in rows))


def failure_lines(mm: ModelReport) -> list[str]:
    """One line per failed row, the error whole (shown under the table, never cut by a column); one per row
    whose fidelity is unknown because its fp32 reference failed on the host (measured, but not compared)."""
    return [f"{r.board}/{r.variant} failed: {r.error}" for r in mm.rows if not r.ok] + [
        f"{r.board}/{r.variant} fidelity unknown: {r.fidelity_unknown}" for r in mm.rows if r.ok and r.fidelity_unknown
    ]


def validity(d: ReportData) -> tuple[bool, str]:
    """Whether the run is valid (complete, no failed measurement) and the words for it."""
    failed = sum(not r.ok for mm in d.models for r in mm.rows)
    if not d.complete:
        return False, "not valid: incomplete (some measurements never ran)"
    if failed:
        return False, f"not valid: {failed} measurement(s) failed"
    return True, "valid: complete, no failed measurement"


def speed_class(r: ReportRow) -> str:
    """``good``/``bad`` when the speed-up is a significant change, else ``""``."""
    if r.speedup is None or r.speed not in (Change.FASTER, Change.SLOWER):
        return ""
    return "good" if r.speedup > 1 else "bad"


def commit_words(d: ReportData) -> str:
    """Which commit the run measured, as the report's header says it (``commit 1a2b3c4* on main``)."""
    return commit_text(d.commit, d.branch)


def commit_text(commit: str | None, branch: str | None) -> str:
    """A commit as headers say it: ``commit 1a2b3c4* on main``, or ``no commit recorded``."""
    if commit is None:
        return "no commit recorded"
    return f"commit {commit}" + (f" on {branch}" if branch else "")


def commit_span(t: Trend) -> str:
    """The commits of a trend's oldest and newest points, as git writes a range (``1a2b3c4..5d6e7f8*``).

    One word, so that a narrow table never splits it; ``-`` for a point without a commit
    (its label is then its run id).
    """
    labels = ["-" if c == r else c for c, r in zip(t.commits, t.runs, strict=False)]
    if not labels:
        return "-"
    return labels[0] if len(labels) == 1 else f"{labels[0]}..{labels[-1]}"


# ------------------------------------------------------------------------------ warnings that fit

WORST = 3  # the cases a folded warning names; the rest are counted (--verbose and the JSON keep every one)
VERBOSE_HINT = "--verbose lists all"


def _weight(value: str) -> float:
    """How bad a case is, from its figure: ``88%`` -> 88, ``0.35x`` -> its distance from 1, ``2 of 8`` -> 6/8."""
    part = re.fullmatch(r"(\d+) of (\d+)", value.strip())
    if part:  # a partial measurement: the fewer processes, the worse
        done, planned = int(part[1]), int(part[2])
        return 1.0 - done / planned if planned else 0.0
    num = re.search(r"-?\d+(?:\.\d+)?", value)
    if num is None:
        return 0.0
    x = float(num[0])
    return max(x, 1 / x) if value.strip().endswith("x") and x > 0 else x


def _worst(cases: Sequence[tuple[str, str]], worst: int) -> str:
    """``a (88%), b (56%), c (49%) and 2 more``: the ``worst`` heaviest cases of ``(subject, value)``, worst first."""
    ranked = sorted(cases, key=lambda c: -_weight(c[1]))
    shown = ranked if len(ranked) <= worst + 1 else ranked[:worst]  # never "and 1 more": it takes as much room
    text = ", ".join(f"{s} ({v})" for s, v in shown)
    return text + (f" and {len(ranked) - len(shown)} more" if len(shown) < len(ranked) else "")


def _listed(cases: Sequence[tuple[str, str]], worst: int) -> str | None:
    """The cases of a warning that lists them, as the report folds them (None: the line is best as it is).

    Names that share their ``board/model`` say it once: ``fp32 (88%), fp16 (56%) of local/digits_cnn``; more
    than ``worst + 1`` cases become a count and the worst: ``9 variants, worst b (1481%), a (1479%), c (1122%)``.
    """
    parents = {s.rpartition("/")[0] for s, _ in cases}
    common = parents.pop() if len(parents) == 1 and all("/" in s for s, _ in cases) else ""
    if len(cases) <= worst + 1 and not common:
        return None
    named = [(s.rpartition("/")[2] if common else s, v) for s, v in cases]
    of = f" of {common}" if common else ""
    if len(cases) <= worst + 1:
        return ", ".join(f"{s} ({v})" for s, v in named) + of
    ranked = sorted(named, key=lambda c: -_weight(c[1]))[:worst]
    return f"{len(cases)} variants{of}, worst " + ", ".join(f"{s} ({v})" for s, v in ranked)


@dataclass(frozen=True)
class Fold:
    """A kind of warning that says one thing about many cases, and how it folds into one line.

    Attributes:
        kind: its name (tests and the log).
        pattern: matches one whole warning of this kind. Either it holds a list of cases (named groups
            ``head``, ``cases`` = ``subject (value)`` items joined by ``, ``, ``tail``), and one line is shortened to
            its worst cases; or it is one case per line (named groups ``subject`` and ``value``), and all lines
            of the kind become one.
        line: for one-case-per-line kinds: the folded line from the matches (oldest first) and the worst cases'
            text (`_worst`).
    """

    kind: str
    pattern: re.Pattern[str]
    line: Callable[[Sequence[re.Match[str]], str], str] | None = None


def _trend_line(ms: Sequence[re.Match[str]], worst: str) -> str:
    total = sum(int(m["value"]) for m in ms)
    fields = sorted({d.split(":")[0].strip() for m in ms for d in m["detail"].split("; ")})
    return (
        f"trend leaves out {total} earlier run(s) of other configurations ({', '.join(fields)} differ) over "
        f"{len(ms)} series (most: {worst}; {VERBOSE_HINT})"
    )


def _overhead_line(ms: Sequence[re.Match[str]], worst: str) -> str:
    return f"{len(ms)} profiles have an overhead outside {ms[0]['band']} (worst: {worst}): {ms[0]['tail']}"


_CASE = r"\S+ \([^()]*\)"
FOLDS: tuple[Fold, ...] = (
    # results.trend.with_trends: one line per series
    Fold(
        "trend",
        re.compile(
            r"trend of (?P<subject>\S+) leaves out (?P<value>\d+) earlier run\(s\) measured in another "
            r"configuration \((?P<detail>.*)\)",
            re.S,
        ),
        _trend_line,
    ),
    # render.profile: one line per profile whose profiled/unprofiled overhead is outside the band
    Fold(
        "overhead",
        re.compile(
            r"profile of (?P<subject>\S+): overhead (?P<value>\S+) is outside (?P<band>\[[^]]*\]): (?P<tail>.*)",
            re.S,
        ),
        _overhead_line,
    ),
    # results.analysis: the CV, process-spread and partial warnings, each one line listing its cases
    Fold("list", re.compile(rf"(?P<head>.+? on )(?P<cases>{_CASE}(?:, {_CASE})*)(?P<tail>: .*)", re.S)),
)


def fold_warnings(lines: Sequence[str], *, verbose: bool = False, worst: int = WORST) -> list[str]:
    """Warnings that fit: each kind of `FOLDS` in one line with a count and its worst cases.

    A warning listing more than ``worst + 1`` cases keeps its ``worst`` heaviest and counts them all, and
    says a ``board/model`` its cases share once (`_listed`); two or more one-case warnings of one kind (ten
    "trend of ... leaves out" lines) become one line, where the first of them stood. Other warnings pass
    unchanged, in order.

    Args:
        lines: the warnings, whole (a report's ``warnings``, the profile lines').
        verbose: return ``lines`` as they are (``--verbose``; the JSON output always keeps them all).
        worst: how many cases a folded line names.
    """
    if verbose:
        return list(lines)
    out: list[str | tuple[Fold, list[re.Match[str]]]] = []
    groups: dict[str, list[re.Match[str]]] = {}
    for text in lines:
        for f in FOLDS:
            m = f.pattern.fullmatch(text)
            if m is None:
                continue
            if f.line is None:  # a list of cases in one line
                listed = _listed(re.findall(r"(\S+) \(([^()]*)\)", m["cases"]), worst)
                out.append(text if listed is None else f"{m['head']}{listed}{m['tail']}")
            elif f.kind in groups:
                groups[f.kind].append(m)
            else:
                groups[f.kind] = [m]
                out.append((f, groups[f.kind]))
            break
        else:
            out.append(text)
    folded = []
    for item in out:
        if isinstance(item, str):
            folded.append(item)
            continue
        f, ms = item
        if len(ms) == 1 or f.line is None:
            folded.append(ms[0].string)
        else:
            folded.append(f.line(ms, _worst([(m["subject"], m["value"]) for m in ms], worst)))
    return folded


KIND_STYLE = {
    Worth.WORTH_IT: "green",
    Worth.WORTH_IT_FOR_SIZE: "cyan",
    Worth.NOT_WORTH_IT: "red",
    Worth.UNDECIDED: "yellow",
    Worth.DEGRADED: "red",
    Worth.WORTH_IT_IF_ACCURATE: "yellow",
}


def sustained_lines(
    notes: Sequence[tuple[bool, str]], *, verbose: bool = False, worst: int = WORST
) -> list[tuple[bool, str]]:
    """The sustained findings under a model's table: those that throttled first; folded past ``worst`` lines.

    With ``verbose`` every line; otherwise the first ``worst`` (throttled ones first) and one line
    counting the rest (``--verbose`` shows them, the JSON keeps them).
    """
    ordered = sorted(notes, key=lambda n: not n[0])
    if verbose or len(ordered) <= worst:
        return list(ordered)
    rest = ordered[worst:]
    more = sum(1 for t, _ in rest if t)
    said = f"... and {len(rest)} more sustained runs ({more} throttled): --verbose shows them"
    return [*ordered[:worst], (more > 0, said)]


class Report:
    """The report of one run, rendering itself: per model a board x variant table, verdicts,
    Pareto sets, trends, warnings.

    Args:
        data: `edgebench.results.analysis.analyze_run` output (with trends from
            `edgebench.results.trend.with_trends`, or not).
        verbose: every warning whole; by default each kind folds into one line (`fold_warnings`).
        sustained: per model, the sustained runs' findings (`edgebench.results.sustained.sustained_notes`:
            whether it throttled, the line), shown under the model's table (`sustained_lines`).
    """

    def __init__(
        self,
        data: ReportData,
        *,
        verbose: bool = False,
        sustained: Mapping[str, Sequence[tuple[bool, str]]] | None = None,
    ) -> None:
        self.data, self.verbose = data, verbose
        self.sustained = dict(sustained or {})

    def model_table(self, mm: ModelReport, shown: Sequence[str] | None = None) -> Table:
        """The board x variant table of one model (``shown``: the short headers to show; all by default)."""
        t = Table(
            title=f"{mm.model} (latency in ms; speed and size against fp32 on the same board; *: Pareto)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, 0),
            collapse_padding=True,
            show_edge=False,
        )
        cols = [c for c in shown_columns(mm.rows) if c.rich]
        cols = [c for c in cols if shown is None or c.short in shown]
        for c in cols:  # names fold, figures are never cut (render.widths drops columns instead)
            name = c.short in ("board", "variant")
            t.add_column(c.short, no_wrap=not name, overflow="fold", justify="left" if name else "right")
        for r in mm.rows:
            if not r.ok:
                t.add_row(r.board, r.variant, "[red]failed (below)[/red]")  # the error is printed under the table
                continue
            cells = []
            for c in cols:
                text = c.cell(r)
                if c.header == "variant" and r.pareto:
                    text += "*"
                elif c.header == "cosine" and r.degraded:
                    text = f"[red]{text}[/red]"
                elif c.header == "speedup" and speed_class(r):
                    text = f"[{'green' if speed_class(r) == 'good' else 'red'}]{text}[/]"
                elif c.header == "size ratio" and r.size_ratio is not None:
                    text = f"[{'green' if r.size_ratio < 1 else 'red'}]{text}[/]"
                cells.append(text)
            t.add_row(*cells)
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Header, per model table + verdicts + Pareto sets, trends, warnings."""
        d = self.data
        ok, valid = validity(d)
        state = valid if ok else f"[yellow]{valid}[/yellow]"
        yield f"[bold]run {d.run_id}[/bold] ({d.command}, {d.started}, {escape(commit_words(d))}, {state})"
        for mm in d.models:
            every = [c.short for c in COLUMNS if c.rich]
            table, dropped = fit_table(partial(self.model_table, mm), every, DROP_ORDER, console, options)
            yield table
            if dropped:
                yield dropped_note(dropped)
            for line in failure_lines(mm):
                yield Text(f"  {line}", style="red")  # plain text: an error's brackets are not markup
            note = fidelity_note(mm)
            if note:
                yield Text(f"  {note}", style="yellow")
            found = self.sustained.get(mm.model) or mm.sustained
            for throttled, line in sustained_lines(found, verbose=self.verbose):
                yield Text(f"  {line}", style="yellow" if throttled else "")  # plain text: names are not markup
            for r in mm.rows:
                if r.verdict_text and r.verdict is not None:
                    yield f"  [{KIND_STYLE[r.verdict]}]{r.board}: {r.verdict_text}[/]"
            for board, names in mm.pareto.items():
                yield f"  Pareto (top-1 vs p90) on {board}: {', '.join(names) or '-'}"
        if d.trends:
            trends = d.trends

            def trend_table(shown: Sequence[str]) -> Table:
                t = Table(
                    title=f"trends{of} (one point per commit, oldest → newest; | marks a change point; *: dirty)",
                    title_justify="left",
                )
                for c in shown:
                    t.add_column(c, no_wrap=c in ("points", "trend", "last"), overflow="fold")
                for tr in trends:
                    cells = {
                        "board": tr.board, "model": tr.model, "variant": tr.variant, "metric": tr.metric,
                        "points": str(len(tr.values)), "commits": commit_span(tr),
                        "trend": tr.sparkline, "last": fmt_ms(tr.values[-1]) if tr.values else "-",
                        "change points": ", ".join(tr.change_labels) or "-",
                    }  # fmt: skip
                    t.add_row(*(cells[c] for c in shown))
                return t

            metrics = {tr.metric for tr in trends}
            one = metrics.pop() if len(metrics) == 1 else None  # one metric: said once, in the title
            of = "" if one is None else f" of {one}" + (" in ms" if one in ("p50", "p90", "p99", "mean") else "")
            every = ["board", "model", "variant", *([] if of else ["metric"]), "points", "commits", "trend", "last",
                     "change points"]  # fmt: skip
            table, dropped = fit_table(trend_table, every, ("points", "metric", "model"), console, options)
            yield table
            if dropped:
                yield dropped_note(dropped)
        for w in fold_warnings(d.warnings, verbose=self.verbose):
            yield Text(f"warning: {w}", style="yellow")  # plain text: a name's brackets are not markup
