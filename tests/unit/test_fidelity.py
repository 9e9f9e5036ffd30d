"""Fidelity per output (agent), verdicts on degraded and unverified variants (analysis), host reference failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from edgebench import agent
from edgebench.bench import reference
from edgebench.compress.variant import save_variant
from edgebench.errors import DataError
from edgebench.model import Change, Worth
from edgebench.results.analysis import verdict


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


def test_per_output_figures_against_numpy_and_top1_only_for_class_scores() -> None:
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((6, 4, 8, 8)).astype(np.float32)
    scores = rng.standard_normal((6, 10)).astype(np.float32)
    noisy = [dense + rng.normal(0, 0.5, dense.shape).astype(np.float32), scores.copy()]
    f = agent.fidelity(noisy, [dense, scores], ["mask", "logits"])
    d, s = f["outputs"]
    assert d["name"] == "mask" and d["shape"] == ["N", 4, 8, 8] and "top1_agreement" not in d
    assert d["cosine"] == pytest.approx(float(_cos(noisy[0], dense).mean()), rel=1e-6)
    snr = 10 * np.log10((dense.astype(np.float64) ** 2).sum() / ((noisy[0] - dense).astype(np.float64) ** 2).sum())
    assert d["snr_db"] == pytest.approx(float(snr), abs=1e-3)
    assert d["max_abs_diff"] == pytest.approx(float(np.abs(noisy[0] - dense).max()), rel=1e-6)
    assert s["top1_agreement"] == 1.0 and s["identical"] and s["snr_db"] is None and s["cosine"] == pytest.approx(1)
    assert f["cosine"] == d["cosine"] and f["degraded"] is (d["cosine"] < 0.99) and "top1_agreement" not in f


def test_degraded_threshold_and_accuracy_unknown_for_a_dense_output() -> None:
    ref = np.ones((3, 2, 4, 4), np.float32)
    assert agent.fidelity(ref * 1.001, ref)["degraded"] is False  # a scale keeps the cosine at 1
    flipped = ref.copy()
    flipped[:, 0] = -1
    assert agent.fidelity(flipped, ref)["degraded"] is True
    assert agent.fidelity(flipped, ref, min_cosine=-1.0)["degraded"] is False
    acc = agent.accuracy_unknown("mask", ref.shape, 3)
    assert acc["top1"] is None and "not class scores" in acc["unknown"] and "'mask'" in acc["unknown"]
    assert not agent.is_classifier((3, 2, 4, 4)) and not agent.is_classifier((3, 1)) and agent.is_classifier((3, 5))


def test_verdict_never_worth_it_when_degraded_and_says_when_accuracy_is_unknown() -> None:
    kind, text = verdict("fp16", Change.FASTER, 1.7, None, 0.5, cosine=0.04)
    assert kind is Worth.DEGRADED and "degraded (cosine 0.0400 < 0.99" in text and text.endswith("not worth it")
    kind, text = verdict("int8", Change.FASTER, 1.7, None, 0.3)
    assert kind is Worth.WORTH_IT_IF_ACCURATE and "accuracy unknown" in text
    kind, text = verdict("int8", Change.FASTER, 1.7, None, 0.3, cosine=0.9995)
    assert kind is Worth.WORTH_IT and "accuracy unknown, cosine 0.9995" in text
    kind, text = verdict("int8", Change.NO_CHANGE, 1.0, None, 0.3, accuracy_unknown="labels for a dense map")
    assert kind is Worth.WORTH_IT_FOR_SIZE and "if its accuracy holds" in text and "labels for a dense map" in text


def test_host_reference_turns_a_runtime_rejection_into_a_data_error(tmp_path: Path) -> None:
    """A model whose Reshape cannot take the data: the runtime's own exception becomes one DataError."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(np.array([-1, 3], np.int64), "shape")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(tmp_path / "m.onnx"))
    v = save_variant(
        tmp_path / "v" / "m" / "fp32",
        tmp_path / "m.onnx",
        {"model": "m", "variant": "fp32", "fmt": "onnx", "parent": None, "passes": []},
    )
    np.savez(tmp_path / "e.npz", x=np.ones((4, 5), np.float32))  # 5 values per row: no [-1, 3] reshape of a batch of 4
    with pytest.raises(DataError, match=r"reference outputs of m/fp32 on e\.npz: .*give eval data this model takes"):
        reference.reference_outputs(v, tmp_path / "e.npz", tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.npz"))  # nothing half-written
