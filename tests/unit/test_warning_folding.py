"""Warnings that fit (issue 18, item 7): warnings of one kind fold into one line with a count and the worst
cases in the terminal and Markdown reports; ``verbose`` (and the JSON) keep every one."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from edgebench.model import Run
from edgebench.render.markdown import report_markdown
from edgebench.render.report import Report, fold_warnings
from edgebench.results.analysis import analyze_run
from edgebench.results.trend import left_out_note

RUNS = Path(__file__).parent / "data" / "results_runs"
SHAPES = ["shapes: x:2x3x32x32:float32 -> x:1x3x32x32:float32"]


def text(obj: Any, width: int = 80) -> str:
    con = Console(file=io.StringIO(), width=width, color_system=None)
    con.print(obj)
    return con.file.getvalue()  # type: ignore[attr-defined]


def warning_lines(out: str) -> int:
    """Lines of warnings in a report's text: each ``warning:`` line and the lines it wraps onto."""
    count, inside = 0, False
    for line in out.splitlines():
        inside = line.startswith("warning:") or (inside and not line.startswith(("warning:", "  ")) and bool(line))
        count += inside
    return count


def trend_notes(n: int) -> list[str]:
    """``n`` notes as `with_trends` writes them: series i leaves out i + 1 runs (batch differs for the last)."""
    return [
        left_out_note(("local", f"m{i}", "fp32"), i + 1, ["batch: 2 -> 1"] if i == n - 1 else SHAPES) for i in range(n)
    ]


def test_ten_trend_notes_fold_into_one_line_with_a_count_and_the_worst() -> None:
    notes = trend_notes(10)
    lines = ["the run is incomplete", *notes, "something else"]
    folded = fold_warnings(lines)
    assert folded == [
        "the run is incomplete",
        "trend leaves out 55 earlier run(s) of other configurations (batch, shapes differ) over 10 series (most: "
        "local/m9/fp32 (10), local/m8/fp32 (9), local/m7/fp32 (8) and 7 more; --verbose lists all)",
        "something else",
    ]
    assert fold_warnings(lines, verbose=True) == lines  # --verbose: every one, whole
    assert fold_warnings(notes[:1]) == notes[:1]  # one of a kind stays as it is
    assert len(fold_warnings(notes[:2])) == 1 and "and" not in fold_warnings(notes[:2])[0].split("most:")[1]


def test_a_warning_listing_many_cases_keeps_its_worst() -> None:
    cases = ", ".join(f"local/m/v{i} ({cv}%)" for i, cv in enumerate([12, 88, 15, 145, 49, 30]))
    noisy = f"latency varies a lot (CV above 10%) on {cases}: p99 and the mean are unreliable there; idle the board"
    (got,) = fold_warnings([noisy])
    assert got == ("latency varies a lot (CV above 10%) on 6 variants of local/m, worst v3 (145%), v1 (88%), v4 "
                   "(49%): p99 and the mean are unreliable there; idle the board")  # fmt: skip
    four = noisy.replace(", local/m/v4 (49%), local/m/v5 (30%)", "")  # "and 1 more" takes as much room as the case
    assert fold_warnings([four]) == ["latency varies a lot (CV above 10%) on v0 (12%), v1 (88%), v2 (15%), v3 (145%) "
                                     "of local/m: p99 and the mean are unreliable there; idle the board"]  # fmt: skip
    two_models = four.replace("local/m/v1", "local/n/v1")
    assert fold_warnings([two_models]) == [two_models]  # nothing shared, nothing to fold: as it is
    partial = "partial (the run stopped before all their agent processes ran) on a/m/x (6 of 8), a/n/y (2 of 8), " \
        "a/m/z (3 of 8), a/m/w (7 of 8), a/m/u (5 of 8): their intervals are over fewer processes"  # fmt: skip
    assert fold_warnings([partial])[0].startswith(
        "partial (the run stopped before all their agent processes ran) on 5 variants, worst a/n/y (2 of 8), a/m/z "
        "(3 of 8), a/m/u (5 of 8): "
    )  # the fewest processes are the worst


def _noisy_run() -> Run:
    """A real run whose every variant's samples are made noisy (CV far above 10%), and some processes disagree."""
    doc = json.loads(sorted(RUNS.glob("*.json"))[0].read_text())
    for b in doc["benchmarks"]:
        data = b["stats"]["data"]
        b["stats"]["data"] = [x * (1 + 3 * (i % 7 == 0)) for i, x in enumerate(data)]
    return Run.from_json(doc)


def test_the_reports_warnings_fold_at_80_columns_and_verbose_keeps_them() -> None:
    rep = analyze_run(_noisy_run())
    assert any(w.startswith("latency varies a lot") for w in rep.warnings)
    notes = trend_notes(10)
    rep = dataclasses.replace(rep, warnings=(*rep.warnings, *notes))
    folded, full = text(Report(rep)), text(Report(rep, verbose=True))
    assert full.count("warning: trend of") == 10 and folded.count("warning: trend") == 1
    assert warning_lines(folded) < warning_lines(full) / 3, (warning_lines(folded), warning_lines(full))
    assert "--verbose lists all" in " ".join(folded.split())
    md = report_markdown(rep)
    assert md.count("> ⚠️ trend") == 1 and report_markdown(rep, verbose=True).count("> ⚠️ trend of ") == 10
    assert rep.to_json()["warnings"][-10:] == notes  # the data (report --json) keeps every one


@pytest.mark.parametrize("width", [80, 120])
def test_the_folded_trend_line_is_one_warning_at_any_width(width: int) -> None:
    rep = analyze_run(Run.from_json(json.loads(sorted(RUNS.glob("*.json"))[0].read_text())))
    rep = dataclasses.replace(rep, warnings=tuple(trend_notes(10)))
    out = text(Report(rep), width)
    assert sum(line.startswith("warning:") for line in out.splitlines()) == 1
