"""Degraded variants and unknown fidelity in the decisions: never on a Pareto front, never chosen, said so.

Real run files (tests/unit/data/results_runs, the digits CNN measured for real) with one variant's
fidelity or accuracy changed as a measurement would record it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from edgebench.model import BoardCost, Measurement, Run, Worth
from edgebench.render.html import report_html
from edgebench.render.markdown import report_markdown
from edgebench.render.report import Report
from edgebench.results import store
from edgebench.results.analysis import analyze_run
from edgebench.results.choose import choose
from edgebench.results.schema import measurement_to_benchmark

RUNS = Path(__file__).parent / "data" / "results_runs"
REF_ERROR = "reference outputs of digits_cnn/fp32 on eval.npz: InvalidArgument: Got invalid dimensions: give eval data"


def with_fields(variant: str, **fields: Any) -> Run:
    """The first real run with ``fields`` (fidelity, accuracy...) set on ``variant``'s measurement, which is
    made 2x faster than measured (so that it is on the Pareto front unless something keeps it off)."""
    run = json.loads(sorted(RUNS.glob("*.json"))[0].read_text())
    bench = []
    for b in run["benchmarks"]:
        m = {k: v for k, v in b["extra_info"].items() if k != "summary"}
        m["samples_ns"] = [round(x * 1e9 * (0.5 if m["variant"] == variant else 1)) for x in b["stats"]["data"]]
        if m["variant"] == variant:
            m.update(fields)
        bench.append(measurement_to_benchmark(Measurement.from_json(m)).to_json())
    run["benchmarks"] = bench
    return Run.from_json(run)


def text(obj: Any) -> str:
    con = Console(file=io.StringIO(), width=200, color_system=None)
    con.print(obj)
    return con.file.getvalue()  # type: ignore[attr-defined]


def test_a_degraded_variant_is_off_the_pareto_front() -> None:
    base = analyze_run(with_fields("int8-static"))
    assert base.models[0].pareto["local"] == ("int8-static",)  # fastest at the same top-1: the front
    d = analyze_run(with_fields("int8-static", fidelity={"cosine": 0.5, "min_cosine": 0.99}))
    row = next(r for r in d.models[0].rows if r.variant == "int8-static")
    assert row.degraded and row.verdict is Worth.DEGRADED and not row.pareto
    assert "int8-static" not in d.models[0].pareto["local"]
    out = text(Report(d))
    assert "int8-static*" not in out and "degraded (cosine 0.5000 < 0.99" in out


def test_accuracy_unknown_is_off_the_pareto_front() -> None:
    why = "labels were given but output 'y' is ['N', 4, 8, 8], not class scores (N, classes): accuracy is unknown"
    d = analyze_run(with_fields("int8-static", accuracy={"top1": None, "unknown": why}))
    assert "int8-static" not in d.models[0].pareto["local"]
    assert "unknown" in text(Report(d))


def test_choose_never_picks_a_degraded_variant(tmp_path: Path) -> None:
    store.save_run(tmp_path, with_fields("int8-static", fidelity={"cosine": 0.6, "min_cosine": 0.99}))
    c = choose(tmp_path, "digits_cnn", {"local": BoardCost(10, 1)}, rank="latency")
    assert "int8-static" not in [o.variant for o in c.chosen] and c.chosen
    [rej] = [o for o in c.rejected if o.variant == "int8-static"]
    assert rej.reasons == ("degraded: cosine 0.6000 < 0.99 against fp32",)


def test_a_failed_host_reference_is_data_shown_by_every_report() -> None:
    d = analyze_run(with_fields("int8-static", fidelity={"unknown": REF_ERROR}))
    row = next(r for r in d.models[0].rows if r.variant == "int8-static")
    assert row.ok and row.fidelity_unknown == REF_ERROR and row.cosine is None and not row.degraded
    line = f"local/int8-static fidelity unknown: {REF_ERROR}"
    out = " ".join(text(Report(d)).split())
    assert line in out and " unknown " in out  # the cosine column is shown, reading "unknown"
    assert line in report_markdown(d) and "| unknown |" in report_markdown(d)
    assert "fidelity unknown: reference outputs of digits_cnn/fp32" in report_html(d)
    assert json.loads(json.dumps(d.to_json()))["models"][0]["rows"][2]["fidelity_unknown"] == REF_ERROR
