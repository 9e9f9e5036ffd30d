"""The terminal report says which commit was measured: the run's, and each trend point's (short id, * when dirty)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_render_widths import NUMBER, RUNS, text  # one console-capture helper for the render tests

from edgebench.model import Report as ReportData
from edgebench.model import Run, Trend
from edgebench.render.report import Report, commit_span
from edgebench.results.analysis import analyze_run
from edgebench.results.commit import label


def report(commit_info: dict[str, object]) -> ReportData:
    run = Run.from_json(json.loads(RUNS[0].read_text()))
    rep = analyze_run(dataclasses.replace(run, commit_info=commit_info))
    trends = tuple(
        Trend(r.board, mm.model, r.variant, "p90", (1.0, 1.01, 2.0, 2.0), ("r1", "r2", "r3", "r4"), "▁▁|██", ("r3",),
              commits=("aaaaaaa", "bbbbbbb", "ccccccc", "ddddddd*"))
        for mm in rep.models for r in mm.rows if r.ok
    )  # fmt: skip
    return dataclasses.replace(rep, trends=trends)


def test_commit_label() -> None:
    assert label({"id": "1a2b3c4d5e6f", "dirty": True}) == "1a2b3c4*"
    assert label({"id": "1a2b3c4d5e6f", "dirty": None}) == "1a2b3c4"  # unknown is not dirty
    assert label({"id": "unversioned"}) is None and label({}) is None


@pytest.mark.parametrize("width", [250, 80])
def test_header_and_trends_name_the_commits(width: int) -> None:
    rep = report({"id": "1a2b3c4d5e6f", "dirty": True, "branch": "main"})
    assert rep.commit == "1a2b3c4*" and rep.to_json()["commit"] == "1a2b3c4*"
    out = text(Report(rep), width)
    flat = " ".join(out.split())
    assert "commit 1a2b3c4* on main" in flat
    assert max(len(ln) for ln in out.splitlines()) <= width
    trends = out.split("trends of p90 in ms (", 1)[1]  # one metric: named once, in the title
    assert trends.count("aaaaaaa..ddddddd*") == 3  # the oldest and newest point's commit, never split
    assert "ccccccc" in trends and "r3" not in trends  # the change point by its commit, not its run id
    wide = set(NUMBER.findall(text(Report(rep), 250)))
    assert [n for n in NUMBER.findall(out) if n not in wide] == []  # no figure cut


def test_a_run_without_a_commit_says_so() -> None:
    out = text(Report(report({"id": "unversioned"})), 120)
    assert "no commit recorded" in out
    t = Trend("b", "m", "v", "p90", (1.0, 2.0), ("r1", "r2"), "", (), commits=("r1", "abcdef0"))
    assert commit_span(t) == "-..abcdef0"  # the older point has no commit: its label is its run id
