"""report / compare / gate on run files measured for real, through the library and the CLI."""

from __future__ import annotations

import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from edgebench.cli import main
from edgebench.model import Measurement, Run
from edgebench.render.compare import ComparisonView
from edgebench.render.report import Report
from edgebench.results import store
from edgebench.results.analysis import analyze_run, load_report, pareto
from edgebench.results.compare import compare_runs
from edgebench.results.schema import measurement_to_benchmark
from edgebench.testing.runs import paired_with

RUNS = Path(__file__).parent / "data" / "results_runs"


def text(obj: Any) -> str:
    con = Console(file=io.StringIO(), width=100, color_system=None)
    con.print(obj)
    return con.file.getvalue()  # type: ignore[attr-defined]


def real(i: int) -> dict[str, Any]:
    return json.loads(sorted(RUNS.glob("*.json"))[i].read_text())


def scaled(run: dict[str, Any], factor: float, run_id: str, variants: tuple[str, ...] = ("fp32",)) -> dict[str, Any]:
    """A copy of a run whose samples of ``variants`` are multiplied by ``factor`` (stats recomputed).

    Each measurement also carries paired processes against the original's artifact (as
    ``run --baseline`` records them), at the same ratio.
    """
    out = json.loads(json.dumps(run))
    out["edgebench"]["run_id"] = run_id
    out["edgebench"]["started"] = f"2030-01-01T00:00:{len(run_id) % 60:02d}+00:00"
    bench = []
    for b in out["benchmarks"]:
        m = {k: v for k, v in b["extra_info"].items() if k != "summary"}
        f = factor if m["variant"] in variants else 1.0
        m["samples_ns"] = [round(x * 1e9 * f) for x in b["stats"]["data"]]
        base = Measurement.from_json({**m, "samples_ns": [round(x * 1e9) for x in b["stats"]["data"]]})
        new = paired_with(base, Measurement.from_json(m), f)
        bench.append(measurement_to_benchmark(new).to_json())
    out["benchmarks"] = bench
    return out


@pytest.fixture
def results(tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    for p in RUNS.glob("*.json"):
        shutil.copy(p, tmp_path / "runs")
    return tmp_path


def test_report_table_verdicts_and_pareto_from_real_runs(results: Path) -> None:
    out = text(Report(load_report(results, "latest~1")))
    assert "digits_cnn" in out and "int8-dynamic" in out
    d = analyze_run(Run.from_json(real(0)))
    rows = {r.variant: r for r in d.models[0].rows}
    # the ORT dynamic-quantized CNN is several times slower than fp32 on this CPU: measured, not assumed
    dyn = rows["int8-dynamic"]
    assert dyn.speed == "slower" and dyn.verdict == "not worth it" and dyn.speedup is not None
    assert f"int8-dynamic: {1 / dyn.speedup:.1f}x slower here, +0.0 pt: not worth it" in out
    assert rows["int8-static"].size_ratio == pytest.approx(31614 / 97249)
    front = d.models[0].pareto["local"]
    assert "int8-dynamic" not in front and f"Pareto (top-1 vs p90) on local: {', '.join(front)}" in out
    assert "speed and size against fp32" in out and "latency varies a lot" in out


def test_verdict_worth_it_and_accuracy_loss() -> None:
    run = scaled(real(0), 1.7, "x", ("fp32",))
    for b in run["benchmarks"]:
        if b["extra_info"]["variant"] == "int8-static":
            b["extra_info"]["accuracy"]["top1"] -= 0.003
    rows = {r.variant: r for r in analyze_run(Run.from_json(run)).models[0].rows}
    assert rows["int8-static"].verdict == "worth it"
    assert str(rows["int8-static"].verdict_text).endswith("faster, -0.3 pt: worth it")
    out = text(Report(analyze_run(Run.from_json(run))))
    assert "int8-static: 1." in out and "-0.3 pt: worth it" in out


def test_pareto_set() -> None:
    pts = [("a", 1.0, 0.90), ("b", 2.0, 0.95), ("c", 2.5, 0.94), ("d", 1.0, 0.89)]
    assert pareto(pts) == ["a", "b"]


def test_report_skips_corrupt_and_upgrades_old_files(results: Path) -> None:
    (results / "runs" / "20000101T000000Z-bad.json").write_text("{ truncated")
    (results / "runs" / "20000101T000001Z-empty.json").write_text("")
    res = CliRunner().invoke(main, ["report", "--results", str(results)])
    assert res.exit_code == 0, res.output
    assert "warning: skipping" in res.stderr and "bad.json: not valid JSON" in res.stderr
    assert "int8-static" in res.stdout
    # the corrupt run itself, named explicitly: one line, exit 1
    res = CliRunner().invoke(main, ["report", "20000101T000000Z-bad", "--results", str(results)])
    assert res.exit_code == 1 and "error:" in res.stderr and "bad.json: not valid JSON" in res.stderr


def test_report_formats(results: Path, tmp_path: Path) -> None:
    r = CliRunner()
    js = r.invoke(main, ["report", "--results", str(results), "--json"])
    data = json.loads(js.stdout)
    assert data["models"][0]["model"] == "digits_cnn" and len(data["trends"]) == 3
    md = r.invoke(main, ["report", "--results", str(results), "--format", "markdown"]).stdout
    assert md.startswith("## edgebench run") and "| board | variant | p50 ms" in md and "not worth it" in md
    out = tmp_path / "r.html"
    res = r.invoke(main, ["report", "--results", str(results), "--format", "html", "-o", str(out)])
    assert res.exit_code == 0
    page = out.read_text()
    assert page.count("<svg") >= 5 and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in page and not list(tmp_path.glob(".r.html*"))


def test_report_without_runs_fails_with_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["report", "--results", str(tmp_path)])
    assert res.exit_code == 1 and "holds 0 run(s)" in res.stderr and "Traceback" not in res.output


def test_compare_labels_an_injected_slowdown(results: Path) -> None:
    a = real(0)
    b = scaled(a, 1.10, "20300101T000000Z-slow")
    d = compare_runs(Run.from_json(a), Run.from_json(b))
    rows = {r.variant: r for r in d.rows}
    assert rows["fp32"].label == "slower" and rows["fp32"].p50.delta_pct == pytest.approx(10, abs=0.5)
    # the same samples are never flagged; this variant's p90 drifts during its run, so it may be undecided
    assert rows["int8-static"].label in ("no change", "undecided") and rows["int8-static"].p90.delta_pct == 0
    assert rows["int8-dynamic"].label in ("no change", "undecided")
    out = text(ComparisonView(d))
    assert "slower" in out and "(+10." in out and ", paired)" in out
    store.save_run(results, Run.from_json(b))
    res = CliRunner().invoke(main, ["compare", a["edgebench"]["run_id"], "latest", "--results", str(results), "--json"])
    assert json.loads(res.stdout)["rows"][0]["label"] == "slower"


def budgets(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "budgets.toml"
    p.write_text(body)
    return p


def test_gate_passes_and_writes_junit_and_markdown(results: Path, tmp_path: Path) -> None:
    run = real(1)
    fp = next(b for b in run["benchmarks"] if b["extra_info"]["variant"] == "fp32")
    p90 = float(np.percentile(np.asarray(fp["stats"]["data"]) * 1e3, 90))
    b = budgets(tmp_path, f'[[budget]]\nmodel = "digits_cnn"\nvariant = "fp32"\nmax_p90_ms = {p90 * 3}\n'
                "max_peak_mb = 4096\nmin_accuracy = 0.9\nmax_size_mb = 1\n")  # fmt: skip
    junit, md = tmp_path / "g.xml", tmp_path / "g.md"
    res = CliRunner().invoke(
        main, ["gate", str(b), "--results", str(results), "--junit", str(junit), "--markdown", str(md)]
    )
    assert res.exit_code == 0, res.output
    assert "gate PASS: 4 passed, 0 failed, 0 undecided" in res.stdout
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "0"
    assert "✅ **PASS**" in md.read_text()


def test_gate_fails_undecided_and_regressions(results: Path, tmp_path: Path) -> None:
    run = real(1)
    fp = next(b for b in run["benchmarks"] if b["extra_info"]["variant"] == "fp32")
    p90 = float(np.percentile(np.asarray(fp["stats"]["data"]) * 1e3, 90))
    store.save_run(results, Run.from_json(scaled(run, 1.25, "20990101T000000Z-slow")))
    body = f'baseline = "{run["edgebench"]["run_id"]}"\n[[budget]]\nvariant = "fp32"\nmax_p90_ms = {p90 * 1.25}\n'
    b = budgets(tmp_path, body + 'max_regression_pct = 5\n[[budget]]\nvariant = "int8-*"\nmin_accuracy = 0.999\n')
    junit = tmp_path / "g.xml"
    res = CliRunner().invoke(main, ["gate", str(b), "--results", str(results), "--junit", str(junit), "--json"])
    assert res.exit_code == 3, res.output
    d = json.loads(res.stdout)
    by = {(c["variant"], c["check"]): c for c in d["checks"]}
    assert by[("fp32", "max_p90_ms")]["verdict"] == "undecided"  # budget right at the measured p90
    assert by[("fp32", "max_regression_pct")]["verdict"] == "fail"
    assert by[("fp32", "max_regression_pct")]["measured"] == pytest.approx(25, abs=1)
    assert by[("int8-static", "min_accuracy")]["verdict"] == "fail"
    assert by[("int8-static", "min_accuracy")]["margin"] < 0
    fails = ET.parse(junit).getroot().findall("testcase/failure")
    assert {f.get("type") for f in fails} == {"fail", "undecided"}


def test_gate_warns_on_unknown_names_and_fails_loudly_without_matches(results: Path, tmp_path: Path) -> None:
    b = budgets(tmp_path, '[[budget]]\nboard = "jetson-nano"\nmodel = "resnet"\nmax_p90_ms = 5\n')
    res = CliRunner().invoke(main, ["gate", str(b), "--results", str(results)])
    assert res.exit_code == 3
    assert "warning: budget #1: board 'jetson-nano' is not in run" in res.stderr
    assert "model 'resnet' is not in run" in res.stderr and "check the name" in res.stderr
    assert "matches no result" in res.stdout and "gate FAIL" in res.stdout


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ("[[budget]]\nmax_p90 = 5\n", "field 'max_p90' is unknown; valid fields: board, max_accuracy_drop_pt"),
        ("[[budget]]\nmax_p90_ms = -1\n", "field 'max_p90_ms' is -1; it must be >= 0"),
        ("[[budget]]\nmodel = 'x'\n", "sets no limit"),
        ("baseline = 'x'\n", "no [[budget]] tables"),
        ("[[budget]\n", "not valid TOML"),
    ],
)
def test_bad_budgets_file_is_one_line_exit_1(results: Path, tmp_path: Path, body: str, msg: str) -> None:
    b = budgets(tmp_path, body)
    junit = tmp_path / "g.xml"
    res = CliRunner().invoke(main, ["gate", str(b), "--results", str(results), "--junit", str(junit)])
    assert res.exit_code == 1 and msg in res.stderr and str(b) in res.stderr
    assert not junit.exists()


def test_gate_missing_budgets_file(results: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["gate", str(tmp_path / "nope.toml"), "--results", str(results)])
    assert res.exit_code == 1 and "nope.toml does not exist" in res.stderr
