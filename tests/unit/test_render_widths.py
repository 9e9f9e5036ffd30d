"""At 80 columns the report, compare and gate tables never cut a number: they drop or fold columns."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from edgebench.model import Gate, Run
from edgebench.render.compare import ComparisonView
from edgebench.render.gate import GateView
from edgebench.render.report import COLUMNS, Report
from edgebench.results.analysis import analyze_run
from edgebench.results.compare import compare_runs
from edgebench.results.gate import evaluate, load_budgets

RUNS = sorted((Path(__file__).parent / "data" / "results_runs").glob("*.json"))
NUMBER = re.compile(r"(?<![\w-])[-+]?\d(?:[\d,]*\d)?(?:\.\d+)?(?:e[-+]?\d+)?")


def text(obj: Any, width: int) -> str:
    con = Console(file=io.StringIO(), width=width, color_system=None)
    con.print(obj)
    return con.file.getvalue()  # type: ignore[attr-defined]


def run(i: int) -> Run:
    return Run.from_json(json.loads(RUNS[i].read_text()))


def gate(tmp_path: Path) -> Gate:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text("[[budget]]\nmax_p90_ms = 100\nmin_accuracy = 0.5\n[[budget]]\nmax_peak_mb = 1000\n")
    r = run(1)
    return Gate(r.run_id, evaluate(r, load_budgets(budgets), run(0)))


def views(tmp_path: Path) -> dict[str, Any]:
    return {
        "report": Report(analyze_run(run(0))),
        "compare": ComparisonView(compare_runs(run(0), run(1))),
        "gate": GateView(gate(tmp_path)),
    }


@pytest.mark.parametrize("width", [80, 60])
@pytest.mark.parametrize("name", ["report", "compare", "gate"])
def test_every_number_at_80_columns_is_whole(name: str, width: int, tmp_path: Path) -> None:
    view = views(tmp_path)[name]
    narrow, wide = text(view, width), text(view, 250)
    assert max(len(ln) for ln in narrow.splitlines()) <= width
    assert "…" not in narrow and "..." not in narrow
    whole = set(NUMBER.findall(wide))
    cut = [n for n in NUMBER.findall(narrow) if n not in whole]
    assert cut == [], f"numbers cut at {width} columns: {cut}\n{narrow}"
    assert "not shown at this width" not in wide  # nothing dropped when there is room


def test_report_keeps_the_figures_that_matter_and_says_what_it_dropped() -> None:
    rep = analyze_run(run(0))
    narrow = text(Report(rep), 60)
    by_header = {c.short: c for c in COLUMNS}
    for mm in rep.models:
        for r in mm.rows:
            if r.ok:
                for h in ("p50", "p90", "top-1"):
                    assert by_header[h].cell(r) in narrow
    assert "not shown at this width:" in narrow
    assert "not shown" not in text(Report(rep), 250)
