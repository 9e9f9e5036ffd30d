"""The nightly HTML/Markdown without a browser: verdict first, title by outcome, trend axes, settings."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from edgebench.model import Check, CheckVerdict, Gate, Run, Trend
from edgebench.render.html import nightly_html, report_html, trend_range, trend_svg
from edgebench.render.markdown import nightly_markdown
from edgebench.results.analysis import analyze_run
from edgebench.results.compare import compare_runs

RUNS = sorted((Path(__file__).parent / "data" / "results_runs").glob("*.json"))


def run(i: int) -> Run:
    return Run.from_json(json.loads(RUNS[i].read_text()))


def test_a_half_percent_change_looks_like_half_a_percent() -> None:
    lo, hi = trend_range([10.0, 10.0, 10.05])
    assert lo <= 9.0 and hi >= 11.0  # the axis spans at least median +-10 %
    assert (10.05 - 10.0) / (hi - lo) < 0.03  # so 0.5 % is under 3 % of the plot's height
    assert trend_range([10.0, 20.0, 20.0]) == (10.0, 22.0)  # a real step keeps its size


def test_trend_axis_is_labelled_in_ms() -> None:
    t = Trend("local", "m", "v", "p90", (1.0, 1.01, 1.0), ("a", "b", "c"), "", ("b",))
    svg = trend_svg(t)
    assert ">p90 (ms)</text>" in svg and svg.count("stroke-dasharray") == 1


def test_nightly_page_says_it_first() -> None:
    rep = analyze_run(run(1))
    g = Gate(rep.run_id, (Check(1, "m", "b", "v", "max_p90_ms", 2.0, 1.0, -1.0, CheckVerdict.FAIL, "too slow"),))
    settings = {"min_time_s": 2.0, "repeats": 3, "dims": {}}
    page = nightly_html(rep, "FAIL", "gate failed: 1 failed", gate=g, vs_last=compare_runs(run(0), run(1)),
                        settings=settings)  # fmt: skip
    assert re.search(r"<title>FAIL: edgebench nightly [^<]+</title>", page)
    body = page.split("<body>", 1)[1].lstrip()
    assert body.startswith('<p id="verdict" class="verdict bad"><b>FAIL</b>: gate failed: 1 failed</p>')
    order = [page.index(s) for s in ('id="verdict"', "Gate: ", "Against the last nightly", "Run report")]
    assert order == sorted(order)
    assert "settings: min_time_s=2.0, repeats=3" in page and "dims" not in page.split("settings:")[1][:60]
    md = nightly_markdown(rep, "FAIL", "gate failed: 1 failed", gate=g, settings=settings)
    assert md.splitlines()[0] == f"# ❌ FAIL: edgebench nightly `{rep.run_id}`: gate failed: 1 failed"


def test_an_invalid_run_is_never_called_complete() -> None:
    rep = dataclasses.replace(analyze_run(run(0)), complete=False)
    page = report_html(rep)
    assert "(not valid)</title>" in page and "not valid: incomplete" in page
    assert "valid: complete" in report_html(analyze_run(run(0)))
