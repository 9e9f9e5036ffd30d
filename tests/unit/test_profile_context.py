"""Profiles in context (issue 18, item 6): every profile line names board, model and variant, gives the run's
speed ratio (the table's and the verdict's), says when a ratio comes from the profiled processes alone, says why
a variant has no profile, and warns of an overhead outside [0.95, 1.5]."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from edgebench.bench.profile import Profile
from edgebench.model import Change, Measurement, ModelReport, Report, ReportRow, Run, Worth
from edgebench.render.markdown import report_markdown
from edgebench.render.profile import (
    OVERHEAD_BAND,
    ProfileSummary,
    html_section,
    overhead_warning,
    profile_lines,
)
from edgebench.render.report import Report as ReportView
from edgebench.render.report import fmt_ratio
from edgebench.results.analysis import analyze_run, speed_words, verdict
from edgebench.workflows.demo import why_slower

RUNS = Path(__file__).parent / "data" / "results_runs"


def text(obj: Any, width: int = 80) -> str:
    con = Console(file=io.StringIO(), width=width, color_system=None)
    con.print(obj)
    return con.file.getvalue()  # type: ignore[attr-defined]


def block(
    unprofiled_us: float = 80, profiled_us: float = 100, nodes: list[tuple[str, str, int]] | None = None
) -> dict[str, Any]:
    """A stored profile block (ONNX Runtime, per-node timing): nodes (name, op type, us per run), 10 runs."""
    nodes = nodes or [("conv1", "Conv", 60), ("relu", "Relu", 10)]
    per_run = sum(n[2] for n in nodes)
    return {
        "available": True, "requested_provider": "CPUExecutionProvider", "iterations": 10,
        "nodes": [{"name": n, "op_type": t, "provider": "CPUExecutionProvider", "total_us": us * 10, "count": 10}
                  for n, t, us in nodes],
        "runs": [{"model_run_us": per_run + 5, "node_us": per_run}] * 10,
        "profiled_samples_ns": [profiled_us * 1000] * 10,
        "unprofiled_p50_ns": unprofiled_us * 1000, "profiled_p50_ns": profiled_us * 1000,
        "overhead_ratio": profiled_us / unprofiled_us,
    }  # fmt: skip


def prof(model: str, variant: str, board: str = "local", **kw: Any) -> Profile:
    return Profile.from_measurement(Measurement.from_json({
        "board": board, "model": model, "variant": variant, "ok": True, "profile": block(**kw),
        "runtime": {"name": "onnxruntime", "version": "1.32.0", "in_use": ["CPUExecutionProvider"]},
    }))  # fmt: skip


def tflite(model: str, variant: str) -> Profile:
    return Profile.from_measurement(Measurement.from_json({
        "board": "local", "model": model, "variant": variant, "ok": True,
        "runtime": {"name": "tflite", "version": "2.16", "in_use": ["xnnpack"]},
        "profile": {"available": False, "note": "this runtime gives no per-op timing", "iterations": 10,
                    "ops": [{"name": "conv", "op_type": "CONV_2D", "delegate": "xnnpack"}],
                    "unprofiled_p50_ns": 40_000, "profiled_p50_ns": 41_000, "overhead_ratio": 1.025},
    }))  # fmt: skip


def row(variant: str, p50: float, base_p50: float | None = None, speed: Change | None = None, **kw: Any) -> ReportRow:
    """A report row; with ``base_p50`` its speed-up and verdict against fp32, as `analyze_run` makes them."""
    if base_p50 is None:
        return ReportRow(board="local", variant=variant, ok=True, p50_ms=p50, **kw)
    sp = base_p50 / p50
    label = speed or (Change.FASTER if sp > 1 else Change.SLOWER)
    kind, words = verdict(variant, label, sp, None, None)
    return ReportRow(board="local", variant=variant, ok=True, p50_ms=p50, speedup=sp, speed=label, verdict=kind,
                     verdict_text=words, **kw)  # fmt: skip


def report(*models: tuple[str, list[ReportRow]]) -> Report:
    return Report(run_id="r1", command="run", started=None, complete=True, boards=("local",),
                  models=tuple(ModelReport(m, tuple(rows), {}) for m, rows in models))  # fmt: skip


FOUR = report(
    ("cnn", [row("fp32", 1.0), row("int8-dynamic", 7.0, 1.0), row("int8-static", 1 / 1.4, 1.0)]),
    ("det", [row("fp32", 2.0), row("fp16", 2.02, 2.0, Change.NO_CHANGE),
             ReportRow(board="local", variant="broken", ok=False, error="NoSuchOp")]),
    ("lone", [row("a", 0.5), row("b", 0.25)]),  # no fp32: nothing to compare with
    ("tfl", [row("fp32", 0.05), row("int8", 0.04, 0.05)]),
)  # fmt: skip
PROFILES = [
    prof("cnn", "fp32", unprofiled_us=100, profiled_us=110),
    # its own process measured 2.7x slower; the run measured 7.0x: the line gives the run's
    prof("cnn", "int8-dynamic", unprofiled_us=270, profiled_us=300,
         nodes=[("q", "DynamicQuantizeLinear", 100), ("c", "ConvInteger", 150)]),
    # the run measured 1.4x faster; this process alone 1.0x, and its overhead is 0.62x: noisy
    prof("cnn", "int8-static", unprofiled_us=100, profiled_us=62),
    prof("det", "fp32", unprofiled_us=200, profiled_us=220),
    prof("det", "fp16", unprofiled_us=205, profiled_us=70),  # overhead 0.34x
    prof("lone", "a"), prof("lone", "b"),
    prof("tfl", "fp32"), tflite("tfl", "int8"),
]  # fmt: skip


def test_every_variant_of_a_profiled_run_has_a_line_naming_board_model_and_variant() -> None:
    lines = profile_lines(PROFILES, FOUR)
    labels = [x.label for x in lines]
    every = [f"local/{mm.model}/{r.variant}" for mm in FOUR.models for r in mm.rows]
    assert labels == every  # the report's order, the failed measurement too
    for x in lines:
        assert x.head.startswith(x.label + ": ")
    by = {x.label: x for x in lines}
    assert by["local/det/broken"].head == "local/det/broken: not profiled: its measurement failed"
    assert by["local/lone/b"].speedup is None and "no fp32 of lone on local" in by["local/lone/b"].head
    tfl = by["local/tfl/int8"]
    assert tfl.source == "run" and "no op type explains it (no per-operator timing)" not in tfl.head  # faster
    assert any(d.startswith("ops, not timed (this runtime gives no per-op timing): CONV_2D x1") for d in tfl.details)


def test_a_profile_line_gives_the_runs_ratio_the_table_and_the_verdict_give() -> None:
    by = {x.label: x for x in profile_lines(PROFILES, FOUR)}
    rows = {r.variant: r for r in FOUR.models[0].rows}
    dyn = by["local/cnn/int8-dynamic"]
    assert dyn.source == "run" and dyn.speedup == rows["int8-dynamic"].speedup
    # the verdict's words and the table's figure, in the profile line
    assert speed_words(1 / 7.0) == "7.0x slower" and "7.0x slower here" in str(rows["int8-dynamic"].verdict_text)
    assert dyn.head.startswith(
        f"local/cnn/int8-dynamic: 7.0x slower than fp32 in the run ({fmt_ratio(1 / 7.0)} in its table): "
        "ConvInteger: 50% of int8-dynamic vs Conv 55% of fp32"
    )
    assert "2.7x" not in dyn.head  # the one profiled process's ratio is not the line's figure...
    assert "one profiled process each: 0.37x (the run's 0.14x pools all its processes)" in dyn.details  # ...said
    static = by["local/cnn/int8-static"]
    assert static.head == "local/cnn/int8-static: 1.4x faster than fp32 in the run (1.40x in its table)"
    fp16 = by["local/det/fp16"]  # no change in the run: the verdict's words
    assert fp16.head.startswith("local/det/fp16: same speed as fp32 in the run (0.99x in its table)")
    assert rows["int8-static"].verdict is Worth.WORTH_IT_IF_ACCURATE


def test_an_undecided_pair_reads_as_its_verdict() -> None:
    rep = report(("cnn", [row("fp32", 1.0), row("int8-static", 1 / 1.02, 1.0, Change.UNDECIDED)]))
    (verdict_text,) = [r.verdict_text for r in rep.models[0].rows if r.verdict_text]
    assert verdict_text == "int8-static: too noisy to tell (speed 1.02x at the median), accuracy unknown (no " \
        "labelled eval data): measure longer"  # fmt: skip
    line = {x.label: x for x in profile_lines(PROFILES[:3], rep)}["local/cnn/int8-static"]
    assert line.head == "local/cnn/int8-static: too noisy to tell against fp32 in the run (1.02x in its table)"


def test_without_a_run_ratio_the_line_says_it_comes_from_one_profiled_process() -> None:
    alone = {x.label: x for x in profile_lines(PROFILES)}  # no report: the profiles alone
    dyn = alone["local/cnn/int8-dynamic"]
    assert dyn.source == "profile" and dyn.speedup == pytest.approx(100 / 270)
    assert dyn.head.startswith("local/cnn/int8-dynamic: 2.7x slower than fp32 in one profiled process each "
                               "(no run measurements given): ConvInteger")  # fmt: skip
    failed_base = report(("cnn", [ReportRow(board="local", variant="fp32", ok=False, error="x"),
                                  row("int8-dynamic", 7.0)]))  # fmt: skip
    dyn = {x.label: x for x in profile_lines(PROFILES[:2], failed_base)}["local/cnn/int8-dynamic"]
    assert dyn.source == "profile" and "(fp32's measurement failed in the run)" in dyn.head


def test_failed_and_missing_profiles_say_so() -> None:
    failed = Profile.from_measurement(Measurement("local", "cnn", "int8-static", ok=True, profile_error="agent killed"))
    lines = profile_lines([PROFILES[0], failed], report(("cnn", list(FOUR.models[0].rows))))
    heads = [x.head for x in lines]
    assert heads[2] == "local/cnn/int8-static: profile failed: agent killed"
    # int8-dynamic was measured but has no profile (the run stopped before it)
    assert heads[1] == "local/cnn/int8-dynamic: not profiled: no profile was recorded (the run stopped before it)"


@pytest.mark.parametrize(("ratio", "warned"), [(0.35, True), (0.62, True), (0.83, True), (0.95, False),
                                               (1.2, False), (1.5, False), (1.503, False), (1.51, True)])  # fmt: skip
def test_an_overhead_outside_the_band_is_warned(ratio: float, warned: bool) -> None:
    p = prof("m", "v", unprofiled_us=100, profiled_us=100 * ratio)
    w = overhead_warning(p)
    assert (w is not None) is warned and OVERHEAD_BAND == (0.95, 1.5)
    if warned:
        assert w == (
            f"profile of local/m/v: overhead {ratio:.2f}x is outside [0.95, 1.5]: the profiled figures are noisy "
            "(a busy board, or a model too fast for the profiler)"
        )
        assert "\n" not in w


def test_the_summary_at_80_columns_names_every_case_and_folds_overhead_warnings() -> None:
    out = text(ProfileSummary(PROFILES, FOUR))
    flat = " ".join(out.split())
    for mm in FOUR.models:
        for r in mm.rows:
            assert f"local/{mm.model}/{r.variant}:" in flat
    warnings = [ln for ln in out.splitlines() if ln.strip().startswith("warning:")]
    assert len(warnings) == 1  # two noisy profiles, one line
    assert "2 profiles have an overhead outside [0.95, 1.5] (worst: local/det/fp16 (0.34x), local/cnn/int8-static " \
           "(0.62x))" in flat  # fmt: skip
    assert "op types: Conv" in flat
    verbose = text(ProfileSummary(PROFILES, FOUR, verbose=True))
    assert len([ln for ln in verbose.splitlines() if ln.strip().startswith("warning:")]) == 2


def test_markdown_and_html_carry_the_lines_in_context() -> None:
    md = report_markdown(FOUR, profiles=PROFILES)
    assert "- **local/cnn/int8-dynamic: 7.0x slower than fp32 in the run (0.14x in its table)" in md
    assert "- ❌ local/det/broken: not profiled: its measurement failed" in md
    assert md.count("> ⚠️ 2 profiles have an overhead outside [0.95, 1.5]") == 1
    assert report_markdown(FOUR, profiles=PROFILES, verbose=True).count("> ⚠️ profile of local/") == 2
    page = html_section(PROFILES, report=FOUR)
    assert "<b>local/cnn/int8-dynamic: 7.0x slower than fp32 in the run" in page
    assert "<b>local/det/broken: not profiled" in page


def _with_profiles(run: dict[str, Any], blocks: dict[str, dict[str, Any]]) -> Run:
    for b in run["benchmarks"]:
        if b["extra_info"]["variant"] in blocks:
            b["extra_info"]["profile"] = blocks[b["extra_info"]["variant"]]
    return Run.from_json(run)


def test_the_demo_line_is_the_reports_line_with_the_runs_ratio() -> None:
    doc = json.loads(sorted(RUNS.glob("*.json"))[0].read_text())
    assert {b["extra_info"]["model"] for b in doc["benchmarks"]} == {"digits_cnn"}
    run = _with_profiles(doc, {  # the profiled processes measured 2.7x, whatever the run did
        "fp32": block(unprofiled_us=100, profiled_us=110),
        "int8-dynamic": block(unprofiled_us=270, profiled_us=300, nodes=[("c", "ConvInteger", 250)]),
    })  # fmt: skip
    rows = {r.variant: r for r in analyze_run(run).models[0].rows}
    sp = rows["int8-dynamic"].speedup
    assert sp is not None and sp < 1 and rows["int8-dynamic"].speed is Change.SLOWER
    line = why_slower(run)
    assert line is not None
    assert line.startswith(f"local/digits_cnn/int8-dynamic: {speed_words(sp)} than fp32 in the run "
                           f"({fmt_ratio(sp)} in its table): ConvInteger")  # fmt: skip
    assert f"{speed_words(sp)} here" in str(rows["int8-dynamic"].verdict_text)  # the verdict's figure
    table = text(ReportView(analyze_run(run)), width=160)
    assert re.search(rf"int8-dynamic .* {re.escape(fmt_ratio(sp))}", table)  # the table's figure
    noisy = _with_profiles(json.loads(sorted(RUNS.glob("*.json"))[0].read_text()), {
        "fp32": block(unprofiled_us=100, profiled_us=110),
        "int8-dynamic": block(unprofiled_us=270, profiled_us=95, nodes=[("c", "ConvInteger", 80)]),
    })  # fmt: skip
    noisy_line = why_slower(noisy)
    assert noisy_line is not None and noisy_line.splitlines()[1].startswith(
        "warning: profile of local/digits_cnn/int8-dynamic: overhead 0.35x"
    )
