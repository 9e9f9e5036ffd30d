"""A variant its manifest marks degraded is degraded in every decision when the run measured no fidelity (issue 18).

Real run files (tests/unit/data/results_runs, the digits CNN measured for real) with int8-static made 2x
faster and given what `edgebench run` records of its manifest (``compress_fidelity``) and no board-side
fidelity, as a run without ``--eval`` has.
"""

from __future__ import annotations

import io
import json
from html import escape
from pathlib import Path
from typing import Any

from rich.console import Console

from edgebench.model import COSINE_FROM_COMPRESS, BoardCost, Manifest, Measurement, Run, Worth
from edgebench.render.html import report_html
from edgebench.render.markdown import report_markdown
from edgebench.render.report import Report
from edgebench.results import store
from edgebench.results.analysis import analyze_run, fidelity_of
from edgebench.results.choose import choose
from edgebench.results.schema import measurement_to_benchmark

RUNS = Path(__file__).parent / "data" / "results_runs"
DEGRADED = {"cosine": 0.24, "min_cosine": 0.99, "degraded": True, "snr_db": -3.1, "parent": "fp32"}
HOST = "host-side cosine 0.2400 < 0.99 against its parent at compress time"
NO_EVAL = {"accuracy": None, "fidelity": None}  # what a run without --eval records


def with_fields(variant: str, **fields: Any) -> Run:
    """The first real run with ``fields`` set on ``variant``'s measurement (made 2x faster) and on no other."""
    run = json.loads(sorted(RUNS.glob("*.json"))[0].read_text())
    bench = []
    for b in run["benchmarks"]:
        m = {k: v for k, v in b["extra_info"].items() if k != "summary"}
        m["samples_ns"] = [round(x * 1e9 * (0.5 if m["variant"] == variant else 1)) for x in b["stats"]["data"]]
        m.update(NO_EVAL if "accuracy" not in fields else {})
        if m["variant"] == variant:
            m.update(fields)
        bench.append(measurement_to_benchmark(Measurement.from_json(m)).to_json())
    run["benchmarks"] = bench
    return Run.from_json(run)


def text(obj: Any, width: int = 200) -> str:
    con = Console(file=io.StringIO(), width=width, color_system=None)
    con.print(obj)
    return " ".join(con.file.getvalue().split())  # type: ignore[attr-defined]


def row(run: Run, variant: str = "int8-static") -> Any:
    return next(r for r in analyze_run(run).models[0].rows if r.variant == variant)


def test_without_the_manifest_a_faster_unverified_variant_is_worth_it_if_accurate() -> None:
    r = row(with_fields("int8-static"))  # the "before": nothing known of its outputs
    assert r.verdict is Worth.WORTH_IT_IF_ACCURATE and "worth it if its accuracy holds" in (r.verdict_text or "")


def test_a_manifest_degraded_variant_is_degraded_in_the_report_without_eval() -> None:
    run = with_fields("int8-static", compress_fidelity=DEGRADED)
    r = row(run)
    assert r.degraded and r.cosine == 0.24 and r.cosine_source == COSINE_FROM_COMPRESS and r.snr_db is None
    assert r.verdict is Worth.DEGRADED and not r.pareto
    assert r.verdict_text == f"int8-static: 2.0x faster, but its outputs are degraded ({HOST}): not worth it"
    note = "cosine of local/int8-static: host-side, from the manifests at compress time"
    for out in (text(Report(analyze_run(run))), text(Report(analyze_run(run)), width=80)):
        assert "0.2400 degraded" in out and note in out and HOST in out
        assert "worth it if" not in out and ": worth it" not in out
    md, html = report_markdown(analyze_run(run)), report_html(analyze_run(run))
    assert HOST in md and note in md and "| 0.2400 degraded |" in md and "worth it if" not in md
    assert escape(HOST) in html and note in html and "worth it if" not in html


def test_a_manifest_degraded_variant_is_never_on_the_pareto_front() -> None:
    top1 = {"top1": 0.9933333333333333, "n": 450}  # labelled eval data, but the fp32 reference failed on the host
    run = with_fields("int8-static", accuracy=top1, fidelity={"unknown": "reference failed"})
    assert analyze_run(run).models[0].pareto["local"] == ("int8-static",)  # fastest at the same top-1
    run = with_fields("int8-static", accuracy=top1, fidelity={"unknown": "x"}, compress_fidelity=DEGRADED)
    assert "int8-static" not in analyze_run(run).models[0].pareto["local"]
    assert row(run).verdict is Worth.DEGRADED


def test_a_board_side_cosine_wins_over_the_manifest() -> None:
    r = row(with_fields("int8-static", fidelity={"cosine": 0.999, "min_cosine": 0.99}, compress_fidelity=DEGRADED))
    assert not r.degraded and r.cosine == 0.999 and r.cosine_source == "board"
    assert r.verdict is Worth.WORTH_IT


def test_a_good_host_side_cosine_never_verifies_a_variant() -> None:
    good = {**DEGRADED, "cosine": 0.9995, "degraded": False}
    r = row(with_fields("int8-static", compress_fidelity=good))
    assert not r.degraded and r.verdict is Worth.WORTH_IT_IF_ACCURATE
    assert "host-side cosine 0.9995 against its parent at compress time" in (r.verdict_text or "")


def test_the_run_threshold_re_decides_and_a_bare_flag_stands() -> None:
    lenient = with_fields("int8-static", compress_fidelity=DEGRADED, settings={"min_cosine": 0.2})
    assert not row(lenient).degraded  # `run --min-cosine 0.2`: the manifest's cosine is fine by it
    flag = with_fields("int8-static", compress_fidelity={"degraded": True, "parent": "fp32"})
    r = row(flag)
    assert r.degraded and r.cosine is None and r.verdict is Worth.DEGRADED
    assert "marked degraded by its manifest at compress time" in (r.verdict_text or "")
    assert "degraded" in text(Report(analyze_run(flag)))


def test_choose_never_picks_a_manifest_degraded_variant(tmp_path: Path) -> None:
    top1 = {"top1": 0.9933333333333333, "n": 450}
    store.save_run(tmp_path, with_fields("int8-static", accuracy=top1, compress_fidelity=DEGRADED))
    c = choose(tmp_path, "digits_cnn", {"local": BoardCost(10, 1)}, rank="latency")
    assert "int8-static" not in [o.variant for o in c.chosen] and c.chosen
    [rej] = [o for o in c.rejected if o.variant == "int8-static"]
    assert rej.reasons == (f"degraded: {HOST}",)


def test_the_measurement_carries_the_manifest_fidelity_through_its_file() -> None:
    mf = Manifest.from_json({
        "model": "det", "variant": "int8-dynamic", "format": "onnx", "artifact": "model.onnx", "sha256": "0" * 64,
        "bytes": 10, "parent": "fp32", "degraded": True,
        "fidelity": {"cosine": 0.254, "min_cosine": 0.99, "degraded": True, "snr_db": -1.5, "outputs": []},
    })  # fmt: skip
    assert mf.compress_fidelity == {"cosine": 0.254, "min_cosine": 0.99, "degraded": True, "snr_db": -1.5,
                                    "parent": "fp32"}  # fmt: skip
    assert Manifest.from_json({**mf.to_json(), "fidelity": None}).compress_fidelity is None
    m = Measurement(board="b", model="det", variant="int8-dynamic", ok=False, compress_fidelity=mf.compress_fidelity)
    back = Measurement.from_json(json.loads(json.dumps(m.to_json())))
    assert back == m and fidelity_of(back).degraded
    old = Measurement(board="b", model="det", variant="fp32", ok=False)
    assert "compress_fidelity" not in old.to_json()  # runs without it are written as before
