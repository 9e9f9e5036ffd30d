"""Memory figures are MiB (2**20 bytes) and every label says so: compare, report sizes, budgets, choose."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from edgebench.model import LIMITS, MIB, BoardCost, ReportRow, Run
from edgebench.render.compare import COMPARE_COLUMNS, ComparisonView
from edgebench.render.markdown import comparison_markdown
from edgebench.render.report import COLUMNS
from edgebench.results import store
from edgebench.results.choose import choose
from edgebench.results.compare import compare_runs

RUNS = Path(__file__).parent / "data" / "results_runs"


def text(obj: Any) -> str:
    con = Console(file=io.StringIO(), width=200, color_system=None)
    con.print(obj)
    return con.file.getvalue()  # type: ignore[attr-defined]


def runs() -> list[Run]:
    return [Run.from_json(json.loads(p.read_text())) for p in sorted(RUNS.glob("*.json"))]


def test_compare_says_mib() -> None:
    a, b = runs()
    d = compare_runs(a, b)
    assert "Δpeak MiB" in COMPARE_COLUMNS and "Δpeak MiB" in text(ComparisonView(d))
    assert "MB" not in text(ComparisonView(d)).replace("MiB", "")
    row = d.rows[0]
    assert row.d_peak_mb is not None and f"{row.d_peak_mb:+.1f} MiB" in comparison_markdown(d)


def test_report_sizes_budgets_and_choose_say_mib(tmp_path: Path) -> None:
    size = next(c for c in COLUMNS if c.header == "size")
    assert size.cell(ReportRow("b", "v", True, bytes=3 * MIB)) == "3.00 MiB"
    assert size.cell(ReportRow("b", "v", True, bytes=2048)) == "2.0 KiB"
    assert LIMITS["max_peak_mb"] == "peak memory (MiB)" and LIMITS["max_size_mb"] == "artifact size (MiB)"
    store.save_run(tmp_path, runs()[0])
    c = choose(tmp_path, "digits_cnn", {"local": BoardCost(1, 1)}, max_memory_mb=1.0)
    assert c.rejected and all(r.reasons[0].endswith("> 1 MiB") for r in c.rejected), c.rejected
