"""Profile parsing, attribution and rendering; the agent's profile job in-process on a tiny real ONNX model."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from rich.console import Console

from edgebench import agent
from edgebench.bench.profile import (
    COVERAGE_MIN,
    Profile,
    chrome_trace,
    diff_profiles,
    profiles_in_run,
    slower_causes,
    why_slower,
)
from edgebench.bench.settings import from_options
from edgebench.cli.run import setting_options
from edgebench.errors import UserError
from edgebench.model import Measurement, Report, Run
from edgebench.render.html import report_html
from edgebench.render.markdown import report_markdown
from edgebench.render.profile import DiffView, ProfileView, diff_markdown, html_section, to_json, to_markdown
from edgebench.results import schema


def _ev(
    name: str, ts: int, dur: int, cat: str = "Node", op: str = "Conv", provider: str = "CPUExecutionProvider"
) -> Any:
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "ph": "X", "args": {"op_name": op, "provider": provider}}


def test_parse_ort_trace_keeps_the_last_runs_and_skips_fences() -> None:
    events = [
        _ev("model_loading_uri", 0, 5, cat="Session"),
        _ev("model_run", 10, 100, cat="Session"),  # warm-up: dropped
        _ev("conv_kernel_time", 12, 90),
        _ev("model_run", 200, 50, cat="Session"),
        _ev("conv_fence_before", 201, 1),
        _ev("conv_kernel_time", 202, 30),
        _ev("add_kernel_time", 233, 10, op="Add"),
        _ev("model_run", 300, 40, cat="Session"),
        _ev("conv_kernel_time", 302, 20),
        _ev("add_kernel_time", 323, 12, op="Add"),
    ]
    out = agent.parse_ort_trace(events, 2)
    assert [r["node_us"] for r in out["runs"]] == [40, 32]
    assert [(n["name"], n["total_us"], n["count"]) for n in out["nodes"]] == [("conv", 50, 2), ("add", 22, 2)]
    assert out["trace"][0] == {"name": "model_run", "cat": "Session", "ts": 0, "dur": 50}
    assert [e["ts"] for e in out["trace"][1:]] == [2, 33]


def _measurement(
    variant: str, model: str = "m", nodes: list[tuple[str, str, str, int]] | None = None, **kw: Any
) -> Measurement:
    """A stored measurement with a profile block: nodes (name, op type, provider, us per run), 10 runs."""
    nodes = nodes or [("conv1", "Conv", "CPUExecutionProvider", 60), ("relu", "Relu", "CPUExecutionProvider", 10)]
    per_run = sum(n[3] for n in nodes)
    prof = {
        "available": True, "requested_provider": "CPUExecutionProvider", "iterations": 10,
        "nodes": [{"name": n, "op_type": t, "provider": p, "total_us": us * 10, "count": 10} for n, t, p, us in nodes],
        "runs": [{"model_run_us": per_run + 5, "node_us": per_run}] * 10,
        "profiled_samples_ns": [kw.get("profiled_us", 100) * 1000] * 10,
        "unprofiled_p50_ns": kw.get("unprofiled_us", 80) * 1000, "profiled_p50_ns": kw.get("profiled_us", 100) * 1000,
        "overhead_ratio": kw.get("profiled_us", 100) / kw.get("unprofiled_us", 80),
        "memory_timeline": [["load", 0.0, 10 << 20], ["warmup", 0.1, 30 << 20], ["steady", 0.2, 31 << 20]],
        "trace": [{"name": "model_run", "cat": "Session", "ts": 0, "dur": per_run + 5}]
        + [{"name": n, "cat": t, "provider": p, "ts": 1, "dur": us, "tid": 7} for n, t, p, us in nodes],
    }  # fmt: skip
    prof.update(kw.get("override", {}))
    return Measurement.from_json({"board": kw.get("board", "local"), "model": model, "variant": variant, "ok": True,
            "runtime": {"name": "onnxruntime", "version": "1.32.0", "in_use": ["CPUExecutionProvider"]},
            "profile": prof})  # fmt: skip


def test_profile_shares_coverage_and_low_coverage_warning() -> None:
    p = Profile.from_measurement(_measurement("fp32"))
    assert p.coverage == pytest.approx(0.70)  # 70 us of nodes in 100 us profiled
    assert p.nodes[0].share == pytest.approx(0.60) and p.op_types[0].op_type == "Conv"
    assert p.coverage < COVERAGE_MIN and any("coverage 70% < 80%" in w for w in p.warnings)
    assert p.unprofiled_p50_ms == pytest.approx(0.08) and p.overhead_ratio == pytest.approx(1.25)
    assert p.fallback_line() == "0 of 2 nodes fell off CPUExecutionProvider"
    assert p.memory_by_phase() == {"load": 10 << 20, "warmup": 30 << 20, "steady": 31 << 20}
    full = Profile.from_measurement(_measurement("x", profiled_us=72))
    assert full.coverage is not None and full.coverage > COVERAGE_MIN and not full.warnings


def test_diff_names_the_grown_op_types_and_refuses_two_models() -> None:
    fp32 = Profile.from_measurement(_measurement("fp32", unprofiled_us=50, profiled_us=75))
    int8 = Profile.from_measurement(_measurement("int8-dynamic", unprofiled_us=200, profiled_us=300, nodes=[
        ("conv1_quant", "DynamicQuantizeLinear", "CPUExecutionProvider", 120),
        ("conv1", "ConvInteger", "CPUExecutionProvider", 130), ("relu", "Relu", "CPUExecutionProvider", 12),
    ]))  # fmt: skip
    d = diff_profiles(fp32, int8)
    assert d.slow is int8 and d.ratio == pytest.approx(4.0)
    assert d.cause == ("ConvInteger", "DynamicQuantizeLinear") and d.counterpart == ("Conv",)
    assert d.cause_line() == "ConvInteger + DynamicQuantizeLinear: 83% of int8-dynamic vs Conv 80% of fp32"
    assert d.verdict().startswith("int8-dynamic is 4.0x slower than fp32: ConvInteger")
    other = Profile.from_measurement(_measurement("fp32", model="other"))
    with pytest.raises(UserError, match=r"different models \(m, other\)"):
        diff_profiles(fp32, other)


def test_renderings_and_chrome_trace() -> None:
    ps = [Profile.from_measurement(_measurement("fp32")), Profile.from_measurement(_measurement("b", profiled_us=72))]
    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(ProfileView(ps))
    text = buf.getvalue()
    assert "top operators: local/m/fp32" in text and "conv1" in text and "60%" in text and "coverage 70%" in text
    buf = io.StringIO()
    Console(file=buf, width=120, color_system=None).print(DiffView(diff_profiles(ps[0], ps[1])))
    assert "B - A ms" in buf.getvalue()
    assert "| conv1 | Conv | CPUExecutionProvider | 0.060 | 60% |" in to_markdown(ps)
    assert diff_markdown(diff_profiles(ps[0], ps[1])).startswith("# local/m/fp32 vs local/m/b")
    assert json.loads(to_json(ps))["profiles"][0]["coverage"] == pytest.approx(0.7)
    section = html_section(ps)
    assert section.startswith('<section class="profile">') and section.count("<svg") == 1
    assert section.count('fill="#ddd"') == 2  # one stacked bar per variant, its rest grey
    doc = chrome_trace(ps)
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {e["pid"] for e in xs} == {1, 2} and all(isinstance(e["ts"], float) for e in xs)
    json.dumps(doc)


def _ort_job(path: Path, **options: Any) -> dict[str, Any]:
    return {"artifact": str(path), "runtime": "onnxruntime", "runtime_options": {"threads": 1, **options},
            "measure": {"min_time_s": 0.02, "min_rounds": 5, "warmup_min_iters": 2, "warmup_min_s": 0.0},
            "profile": {"iterations": 5, "warmup": 1}}  # fmt: skip


def test_nodes_that_left_the_requested_provider_are_counted(tiny_onnx: Path) -> None:
    # Azure's EP is available in this onnxruntime but takes no standard op: every node falls back to CPU
    res = agent.run_job(_ort_job(tiny_onnx, providers=["AzureExecutionProvider", "CPUExecutionProvider"]))
    assert res["ok"], res["error"]
    p = Profile.from_measurement(Measurement.from_json({"board": "local", "model": "tiny", "variant": "fp32", **res}))
    assert p.requested_provider == "AzureExecutionProvider" and p.nodes
    assert p.fallback_line() == f"{len(p.nodes)} of {len(p.nodes)} nodes did not run on AzureExecutionProvider " \
        "(CPUExecutionProvider)"  # fmt: skip
    assert res["runtime"]["in_use"] == ["AzureExecutionProvider", "CPUExecutionProvider"]


def test_a_runtime_without_a_profiler_says_so(tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort

    # an onnxruntime build without the profiler: InferenceSession has no end_profiling
    owner = next(c for c in ort.InferenceSession.__mro__ if "end_profiling" in c.__dict__)
    monkeypatch.delattr(owner, "end_profiling")
    res = agent.run_job(_ort_job(tiny_onnx))
    assert not res["ok"] and res["error"]["kind"] == "profiler_missing"
    assert res["error"]["message"].startswith("not available on this board: onnxruntime ")
    assert res["runtime"]["in_use"] == ["CPUExecutionProvider"]  # the model loaded: only the profiler is missing
    p = Profile.from_measurement(Measurement.from_json({"board": "b1", "model": "tiny", "variant": "fp32", **res}))
    assert not p.ok and p.error is not None and p.error.startswith("not available on this board")


def test_tflite_missing_op_details_is_not_available(monkeypatch: pytest.MonkeyPatch) -> None:
    class Model:
        name, version, providers = "tflite:tflite_runtime", "2.1.0", ["xnnpack"]
        interp = object()

    with pytest.raises(agent.AgentError, match=r"^not available on this board: tflite:tflite_runtime 2.1.0"):
        agent._profile_tflite(Model())


def _run(command: str, *fields: dict[str, Any]) -> Run:
    """A stored run of ``command`` whose measurements have these fields (``profile``, ``profile_error``; one each)."""
    run = schema.new_run(command)
    for i, given in enumerate(fields):
        m = Measurement(board="local", model="m", variant=f"v{i}", ok=True, samples_ns=(1000, 1100, 1200), **given)
        run = schema.add_measurement(run, m)
    return run


def test_profiles_in_run_only_what_run_profile_stored() -> None:
    prof = _measurement("v0").profile
    assert profiles_in_run(_run("run", {}, {})) == []  # a run without --profile carries none
    got = profiles_in_run(_run("run", {"profile": prof}, {"profile_error": "agent killed"}, {}))
    assert [(p.variant, p.ok) for p in got] == [("v0", True), ("v1", False)]
    assert got[1].error == "profile failed: agent killed"
    assert got[0].unprofiled_p50_ms == pytest.approx(0.08)  # the profile process's own figure, beside the latency
    assert len(profiles_in_run(_run("profile", {}, {"profile": prof}))) == 2  # a profile run: every case


def test_why_slower_from_profiles() -> None:
    fp32 = Profile.from_measurement(_measurement("fp32", unprofiled_us=50))
    dyn = Profile.from_measurement(_measurement("int8-dynamic", unprofiled_us=200, profiled_us=250, nodes=[
        ("conv1", "ConvInteger", "CPUExecutionProvider", 130), ("relu", "Relu", "CPUExecutionProvider", 12),
    ]))  # fmt: skip
    assert why_slower([fp32, dyn]) == "int8-dynamic is 4.0x slower than fp32: ConvInteger: 52% of int8-dynamic " \
        "vs Conv 60% of fp32"  # fmt: skip
    assert slower_causes([fp32, dyn]) == [why_slower([fp32, dyn])]  # the report names each slower variant's cause
    # the HTML names the case; without the run's report its ratio is the profiled processes' and says so
    assert "<b>local/m/int8-dynamic: 4.0x slower than fp32 in one profiled process each" in html_section([fp32, dyn])
    assert why_slower([fp32]) is None and why_slower([dyn, fp32], slow="fp32", fast="int8-dynamic") is None
    other = Profile.from_measurement(_measurement("int8-dynamic", model="other", unprofiled_us=200))
    assert why_slower([fp32, other]) is None  # two models: nothing to explain


def test_report_html_and_markdown_carry_the_profile_section() -> None:
    ps = [Profile.from_measurement(_measurement("fp32")), Profile.from_measurement(_measurement("b", profiled_us=72))]
    rep = Report(run_id="r1", command="run", started=None, complete=True, boards=("local",), models=())
    page = report_html(rep, profiles=ps)
    assert page.count('<section class="profile">') == 1 and page.count("<h3>local/m/") == 2 and "conv1" in page
    assert '<section class="profile">' not in report_html(rep)
    md = report_markdown(rep, profiles=ps)
    assert "### Where the time goes (profiles)" in md and "top operators: Conv conv1 60%" in md
    assert "Where the time goes" not in report_markdown(rep)


def test_run_profile_flag_alone_means_50() -> None:
    @click.command()
    @setting_options
    def cmd(**kw: Any) -> None:
        click.echo(from_options(kw).profile)

    assert CliRunner().invoke(cmd, ["--profile"]).output == "50\n"
    assert CliRunner().invoke(cmd, ["--profile", "7", "--repeats", "2"]).output == "7\n"
    assert CliRunner().invoke(cmd, []).output == "0\n"
