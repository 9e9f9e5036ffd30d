"""Real runtimes in a real agent process on the local board: ONNX Runtime and TFLite."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from _bench_models import eval_npz, onnx_model, tflite_models, variant

from edgebench.bench.reference import find_parent, reference_outputs
from edgebench.bench.settings import RunSettings
from edgebench.targets.board import Board, local_board
from edgebench.targets.driver import LocalDriver
from edgebench.testing.runs import measure_variant

FAST = RunSettings(warmup_min_iters=3, warmup_min_s=0.0, min_rounds=20, min_time_s=0.05, max_time_s=5.0)


@pytest.fixture(scope="module")
def tflite_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(fp32.tflite, int8.tflite), converted once for the module."""
    return tflite_models(tmp_path_factory.mktemp("tflite"))


@pytest.fixture
def board(tmp_path: Path) -> Board:
    return dataclasses.replace(local_board(), workdir=str(tmp_path / "board"), threads=1)


def test_onnx_accuracy_fidelity_cold_start_memory(tmp_path: Path, board: Board) -> None:
    import onnxruntime as ort

    root = tmp_path / "variants"
    fp32 = variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx", seed=0))
    noisy = variant(root, "tiny", "noisy", onnx_model(tmp_path / "b.onnx", seed=5), parent="fp32")
    data = eval_npz(tmp_path / "e.npz", n=200)
    parent = find_parent(noisy, [fp32, noisy])
    assert parent == fp32
    ref = reference_outputs(fp32, data, tmp_path / "cache")
    m = measure_variant(
        LocalDriver(board), noisy, eval_data=data, settings=FAST.replace(quick=50, seed=2), reference=ref
    )
    assert m["ok"], m["error"]
    assert len(m["samples_ns"]) >= 20 and m["agent_pid"] is not None
    assert m["runtime"]["name"] == "onnxruntime" and m["runtime"]["threads"] == 1
    assert m["cold_start"]["load_ms"] > 0 and m["cold_start"]["first_inference_ms"] > 0
    mem = m["memory"]
    assert 0 < mem["rss_start"] <= mem["rss_before_load"] <= mem["peak_rss"] and mem["rss_after_run"] <= mem["peak_rss"]
    # the agent's figures match the same computation done here on the same quick subset
    with np.load(data) as d:
        x, y = d["x"], d["y"]
    idx = np.sort(np.random.default_rng(2).permutation(200)[:50])
    out_b = ort.InferenceSession(str(noisy.artifact)).run(None, {"x": x[idx]})[0]
    out_a = ort.InferenceSession(str(fp32.artifact)).run(None, {"x": x[idx]})[0]
    acc = m["accuracy"]
    assert acc["quick"] is True and acc["n"] == 50 and acc["n_total"] == 200
    assert acc["top1"] == pytest.approx(float((out_b.argmax(1) == y[idx]).mean()))
    assert acc["top1_ci95"][0] <= acc["top1"] <= acc["top1_ci95"][1]
    fid = m["fidelity"]
    assert fid["top1_agreement"] == pytest.approx(float((out_a.argmax(1) == out_b.argmax(1)).mean()))
    assert fid["max_abs_diff"] == pytest.approx(float(np.abs(out_a - out_b).max()), rel=1e-4)
    assert fid["top1_agreement"] < 1.0  # different weights: the check can fail


def test_onnx_multi_input_and_uint8_input_with_generated_and_eval_data(tmp_path: Path, board: Board) -> None:
    root = tmp_path / "variants"
    multi = variant(root, "multi", "fp32", onnx_model(tmp_path / "m.onnx", kind="multi"))
    m = measure_variant(LocalDriver(board), multi, settings=FAST.replace(batch_size=4))
    assert m["ok"], m["error"]
    assert m["timing"]["input"] == "generated" and m["batch_size"] == 4
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "multi.npz", a=rng.standard_normal((10, 4)).astype(np.float32), b=np.ones((10, 4), np.float32))
    m = measure_variant(LocalDriver(board), multi, eval_data=tmp_path / "multi.npz", settings=FAST)
    assert m["ok"], m["error"]
    assert m["timing"]["input"] == "eval"

    q = variant(root, "q", "u8", onnx_model(tmp_path / "q.onnx", kind="uint8"))
    m = measure_variant(LocalDriver(board), q, settings=FAST)
    assert m["ok"], m["error"]
    # float eval data is never silently cast into a uint8 input
    m = measure_variant(LocalDriver(board), q, eval_data=eval_npz(tmp_path / "f.npz"), settings=FAST)
    assert not m["ok"] and "save the eval data as uint8" in m["error"]["message"]


def test_onnx_graph_optimization_level_from_board_settings(tmp_path: Path, board: Board) -> None:
    v = variant(tmp_path / "v", "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    bad = dataclasses.replace(board, runtime_options={"onnxruntime": {"graph_optimization_level": "max"}})
    m = measure_variant(LocalDriver(bad), v, settings=FAST)
    assert not m["ok"] and "graph_optimization_level 'max': use one of" in m["error"]["message"]
    ok = dataclasses.replace(board, runtime_options={"onnxruntime": {"graph_optimization_level": "disable"}})
    m = measure_variant(LocalDriver(ok), v, settings=FAST.replace(cooldown_s=0.3))
    assert m["ok"] and m["device"]["cooldown"]["waited_s"] >= 0.3  # the optional cool-down ran on the board
    assert m["fingerprint"]["affinity"] and m["fingerprint"]["cpu_count"] >= 1
    gpu = dataclasses.replace(board, runtime_options={"onnxruntime": {"providers": ["CUDAExecutionProvider"]}})
    m = measure_variant(LocalDriver(gpu), v, settings=FAST)
    assert not m["ok"] and m["error"]["kind"] == "runtime_missing"
    assert "execution providers ['CUDAExecutionProvider'] are not available on this board" in m["error"]["message"]


@pytest.mark.tflite
@pytest.mark.slow
def test_tflite_xnnpack_on_and_off(tmp_path: Path, board: Board, tflite_files: tuple[Path, Path]) -> None:
    v = variant(tmp_path / "v", "tiny", "tfl", tflite_files[0], fmt="tflite")
    data = eval_npz(tmp_path / "e.npz", n=30)
    on = measure_variant(LocalDriver(board), v, eval_data=data, settings=FAST)
    assert on["ok"], on["error"]
    assert on["runtime"]["name"] == "tflite:ai_edge_litert" and "xnnpack" in on["runtime"]["providers"]
    off_board = dataclasses.replace(board, runtime_options={"tflite": {"xnnpack": False}})
    off = measure_variant(LocalDriver(off_board), v, eval_data=data, settings=FAST)
    assert off["ok"], off["error"]
    assert "xnnpack" not in off["runtime"]["providers"]
    assert on["accuracy"]["top1"] == off["accuracy"]["top1"]
    tf_board = dataclasses.replace(board, runtime_options={"tflite": {"interpreter": "tensorflow"}})
    via_tf = measure_variant(LocalDriver(tf_board), v, eval_data=data, settings=FAST, timeout=300)
    assert via_tf["ok"], via_tf["error"]
    assert via_tf["runtime"]["name"] == "tflite:tensorflow"
    assert via_tf["accuracy"]["top1"] == on["accuracy"]["top1"]


@pytest.mark.tflite
@pytest.mark.slow
def test_tflite_int8_input_model_and_external_delegate(
    tmp_path: Path, board: Board, tflite_files: tuple[Path, Path]
) -> None:
    """Float eval data goes into an int8-input model through its scale / zero point; accuracy follows fp32."""
    f32 = variant(tmp_path / "v", "tiny", "fp32", tflite_files[0], fmt="tflite")
    i8 = variant(tmp_path / "v", "tiny", "int8", tflite_files[1], fmt="tflite", parent="fp32")
    data = eval_npz(tmp_path / "e.npz", n=200)
    ref = reference_outputs(f32, data, tmp_path / "cache")
    m = measure_variant(LocalDriver(board), i8, eval_data=data, settings=FAST, reference=ref)
    assert m["ok"], m["error"]
    fid = m["fidelity"]
    assert fid["top1_agreement"] >= 0.9 and fid["cosine_mean"] > 0.98  # quantized, not garbage
    assert fid["max_abs_diff"] > 0  # and not silently the fp32 model
    generated = measure_variant(LocalDriver(board), i8, settings=FAST)
    assert generated["ok"] and generated["timing"]["input"] == "generated"
    bad = dataclasses.replace(board, runtime_options={"tflite": {"delegates": ["/nonexistent/libdelegate.so"]}})
    m = measure_variant(LocalDriver(bad), f32, settings=FAST)
    assert not m["ok"] and m["error"]["kind"] == "model_load"
    assert "delegate /nonexistent/libdelegate.so could not be loaded" in m["error"]["message"]
    assert "check its path on the board" in m["error"]["message"]
