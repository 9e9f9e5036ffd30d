"""Host side: settings, job building from board settings, the measurement dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgebench.bench.runner import add_noise_warning, build_job, from_agent
from edgebench.bench.settings import RunSettings, parse_dims
from edgebench.compress.variant import Variant, save_variant
from edgebench.errors import ConfigError
from edgebench.model import Measurement, Settings
from edgebench.results.stats import summarize
from edgebench.targets.board import Board
from edgebench.targets.driver import LocalDriver
from edgebench.testing.runs import measure_variant


def _variant(tmp_path: Path, onnx: Path, name: str = "fp32", parent: str | None = None) -> Variant:
    return save_variant(
        tmp_path / "variants" / "tiny" / name,
        onnx,
        {"model": "tiny", "variant": name, "fmt": "onnx", "parent": parent, "passes": []},
    )


def test_settings_validate_and_name_valid_fields() -> None:
    with pytest.raises(ConfigError, match=r"unknown measurement settings \['min_tme'\]: valid names are .*min_time_s"):
        RunSettings.from_mapping({"min_tme": 1})
    with pytest.raises(ConfigError, match="min_rounds must be >= 1"):
        RunSettings(min_rounds=0)
    s = RunSettings.from_mapping({"min_time_s": 0.5, "cooldown_until_c": 50})
    assert s.measure_block()["min_time_s"] == 0.5
    assert s.device_block()["cooldown"] == {"max_s": 300.0, "until_c": 50}
    assert parse_dims(["seq=128", "h = 8"]) == {"seq": 128, "h": 8}
    with pytest.raises(ConfigError, match="NAME=SIZE"):
        parse_dims(["seq"])


def test_job_takes_threads_and_runtime_options_from_the_board(tmp_path: Path, tiny_onnx: Path) -> None:
    v = _variant(tmp_path, tiny_onnx)
    board = Board(
        name="pi",
        host="10.0.0.2",
        threads=2,
        runtime_options={"onnxruntime": {"graph_optimization_level": "basic", "providers": ["CPUExecutionProvider"]}},
    )
    s = RunSettings(quick=100, dims={"seq": 8})
    job = build_job(board, v, s, artifact="/a/model.onnx", eval_path="/a/e.npz", reference_path="/a/r.npz")
    assert job["runtime"] == "onnxruntime"
    assert job["runtime_options"] == {
        "threads": 2,
        "graph_optimization_level": "basic",
        "providers": ["CPUExecutionProvider"],
    }
    assert job["eval"] == {"path": "/a/e.npz", "seed": 0, "limit": 100, "reference": "/a/r.npz"}
    assert job["dims"] == {"seq": 8} and job["measure"]["min_rounds"] == 50


def _agent_out(samples: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "ok": True,
        "error": None,
        "timing": {
            "load_ns": 5_000_000,
            "first_inference_ns": 700_000,
            "batch_size": 1,
            "samples_ns": samples,
            "settings": {},
        },
        "memory": {"rss_before_load": 100, "rss_after_load": 350, "peak_rss": 400},
        "host": {"hostname": "h", "machine": "aarch64"},
        "runtime": {"name": "onnxruntime", "version": "1.0"},
        **extra,
    }


def test_measurement_dict_cold_start_memory_and_variation_warning() -> None:
    board = Board(name="b")
    base = Measurement(board="b", model="m", variant="v", ok=False, batch_size=1, settings=Settings())
    steady = from_agent(base, board, _agent_out([1000] * 50)).to_json()
    assert steady["ok"] and steady["cold_start"] == {"load_ms": 5.0, "first_inference_ms": 0.7}
    assert steady["memory"]["load_delta"] == 250 and "fresh agent process" in steady["memory"]["definition"]
    assert steady["fingerprint"]["machine"] == "aarch64" and steady["fingerprint"]["runtime"] == "onnxruntime 1.0"
    assert not steady["warnings"]
    assert not add_noise_warning(from_agent(base, board, _agent_out([1000] * 50))).warnings
    noisy = add_noise_warning(from_agent(base, board, _agent_out([1000] * 40 + [9000] * 10))).to_json()
    assert summarize(noisy["samples_ns"]).cv > 0.1
    assert any("latency varies a lot" in w for w in noisy["warnings"])


def test_ok_without_samples_becomes_a_failure() -> None:
    base = Measurement(board="b", model="m", variant="v", ok=False, batch_size=1, settings=Settings())
    m = from_agent(base, Board(name="b"), _agent_out([])).to_json()
    assert m["ok"] is False and m["error"]["kind"] == "no_samples"


def test_wrong_runtime_for_the_board_is_recorded_without_running(tmp_path: Path, tiny_onnx: Path) -> None:
    v = _variant(tmp_path, tiny_onnx)
    board = Board(name="tfl-only", workdir=str(tmp_path / "board"), runtimes=("tflite",))
    m = measure_variant(LocalDriver(board), v, settings={"min_time_s": 0.01})
    assert m["ok"] is False and m["error"]["kind"] == "runtime_missing"
    assert "board tfl-only has no onnxruntime runtime" in m["error"]["message"]
    assert "install it on the board" in m["error"]["message"]
    assert not (tmp_path / "board" / "cache").exists()  # nothing was deployed
