"""Input specs: host-side parsing (`edgebench.bench.inputs`) and the agent's input building."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgebench import agent
from edgebench.bench.inputs import job_block, parse_inputs, parse_spec
from edgebench.bench.settings import from_options
from edgebench.compress.sources import load_inputs
from edgebench.errors import ConfigError, DataError

Sig = list[tuple[str, list[Any], str]]
VAD: Sig = [("input", [1, 512], "float32"), ("state", [2, 1, 64], "float32"), ("sr", [], "int64")]


def test_spec_forms() -> None:
    assert parse_spec("sr", "16000").value == 16000
    assert parse_spec("x", "0.5").value == 0.5
    assert parse_spec("flag", "true").value is True
    s = parse_spec("x", "-1..1")
    assert (s.low, s.high, s.batched) == (-1, 1, None)
    s = parse_spec("state", "zeros:batchless")
    assert (s.value, s.batched) == (0, False)
    assert parse_spec("x", "normal").normal
    s = parse_spec("state", "batchless")
    assert s.batched is False and s.job() == {"text": "batchless", "batched": False}
    s = parse_spec("state", "st/state.npy:batchless", Path("/data"))
    assert s.npy == Path("/data/st/state.npy") and s.batched is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "spec 'fast' is not a constant (16000), a range (0..1)"),
        ("1..", "spec '1..' is not"),
        ("5..1", "range '5..1' is empty: write it LOW..HIGH, e.g. 1..5"),
        (":batchless", "is not"),
    ],
)
def test_bad_specs_name_the_input_and_the_forms(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="input 'x'") as exc:
        parse_spec("x", text)
    assert message in str(exc.value)


def test_run_options_carry_specs_with_absolute_npy_paths(tmp_path: Path) -> None:
    specs = parse_inputs(["sr=16000", "state=s.npy:batchless"], tmp_path)
    assert specs == {"sr": "16000", "state": f"{tmp_path / 's.npy'}:batchless"}
    with pytest.raises(ConfigError, match="write it as NAME=SPEC"):
        parse_inputs(["sr"])
    settings = from_options({"inputs": ("sr=16000",), "dims": ("batch=1",)})
    assert settings.inputs == {"sr": "16000"} and settings.dims == {"batch": 1}
    block = job_block(settings.inputs)
    assert block == {"sr": {"text": "16000", "value": 16000}}


def test_constants_broadcast_and_are_recorded() -> None:
    specs = {"sr": {"value": 16000}, "state": {"value": 0, "batched": False}}
    arrays, records = agent.build_inputs(VAD, specs, {}, 1, seed=3)
    assert arrays[2].shape == () and arrays[2].dtype == np.int64 and int(arrays[2]) == 16000
    assert arrays[1].shape == (2, 1, 64) and not arrays[1].any()
    assert records[0] == {
        "name": "input", "shape": [1, 512], "dtype": "float32", "made": "generated: normal(0, 1), seed 3",
        "batched": True,
    }  # fmt: skip
    assert records[2]["made"] == "constant 16000" and records[2]["batched"] is False


def test_an_integer_input_is_never_guessed() -> None:
    with pytest.raises(agent.AgentError) as exc:
        agent.build_inputs(VAD, {}, {}, 1)
    assert exc.value.kind == "missing_input"
    assert "input 'sr' is int64 [] and has no value" in str(exc.value) and "--input sr=VALUE" in str(exc.value)
    with pytest.raises(agent.AgentError, match="--input ids=VALUE"):  # a wide integer input: ids, not data
        agent.build_inputs([("ids", ["batch", 128], "int64")], {}, {}, 1)
    with pytest.raises(agent.AgentError, match="--input q=VALUE"):  # an 8-bit scalar is a setting
        agent.build_inputs([("q", [], "uint8")], {}, {}, 1)
    [img], [rec] = agent.build_inputs([("img", ["batch", 4], "uint8")], {}, {}, 2)  # 8-bit tensor: quantized data
    assert img.shape == (2, 4) and rec["made"] == "generated: uniform 0..255, seed 0"


def test_ranges_are_uniform_and_integer_ranges_inclusive() -> None:
    sig: Sig = [("x", ["batch", 1000], "float32"), ("k", ["batch", 1000], "int32")]
    (x, k), rec = agent.build_inputs(sig, {"x": {"range": [0, 1]}, "k": {"range": [3, 5]}}, {}, 2, seed=1)
    assert x.shape == (2, 1000) and x.min() >= 0 and x.max() <= 1
    assert set(np.unique(k)) == {3, 4, 5} and rec[1]["made"] == "uniform 3..5, seed 1"


@pytest.mark.parametrize(
    ("sig", "spec", "message"),
    [
        ([("sr", [], "int64")], {"value": 16000.5}, "input 'sr' is int64: the value 16000.5 cannot be cast to it"),
        ([("q", [1, 4], "uint8")], {"value": 300}, "input 'q' is uint8: the value 300 cannot be cast"),
        ([("h", [1, 4], "float16")], {"value": 1e6}, "input 'h' is float16: the value 1000000.0 cannot be cast"),
        ([("q", [1, 4], "int8")], {"range": [-1, 200]}, "the value 200 cannot be cast"),
    ],
)
def test_values_the_dtype_cannot_hold(sig: Sig, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(agent.AgentError, match="cannot be cast") as exc:
        agent.build_inputs(sig, {sig[0][0]: spec}, {}, 1)
    assert message in str(exc.value)


def test_npy_whole_shape_one_sample_or_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.arange(4, dtype=np.float32))
    np.save(tmp_path / "bad.npy", np.zeros((3,), np.float32))
    np.save(tmp_path / "f.npy", np.zeros((2, 4), np.float32))
    sig: Sig = [("x", ["batch", 4], "float32")]
    [a], rec = agent.build_inputs(sig, {"x": {"npy": str(tmp_path / "one.npy")}}, {}, 3)
    assert a.shape == (3, 4) and (a[2] == np.arange(4)).all() and rec[0]["made"] == "file one.npy"
    with pytest.raises(agent.AgentError, match=r"bad.npy has shape \[3\] but the input takes \[2, 4\] or one sample"):
        agent.build_inputs(sig, {"x": {"npy": str(tmp_path / "bad.npy")}}, {}, 2)
    with pytest.raises(agent.AgentError, match="holds float32: save it as int64"):
        agent.build_inputs([("k", [2, 4], "int64")], {"k": {"npy": str(tmp_path / "f.npy")}}, {}, 1)


def test_every_missing_dim_at_once_and_the_ambiguous_question_mark() -> None:
    sig: Sig = [("img", ["batch", 3, "height", "width"], "float32"), ("y", [None, None], "float32")]
    with pytest.raises(agent.AgentError) as exc:
        agent.build_inputs(sig, {}, {}, 1)
    assert exc.value.kind == "missing_dims"
    assert "add --dim height=SIZE --dim width=SIZE --dim y:1=SIZE" in str(exc.value)
    with pytest.raises(agent.AgentError, match=r"dim '\?' is ambiguous.*--dim y:0=5 --dim y:1=5"):
        agent.build_inputs(sig, {}, {"height": 2, "width": 2, "?": 5}, 1)
    arrays, _ = agent.build_inputs(sig, {}, {"height": 2, "width": 3, "y:1": 7}, 4)
    assert [a.shape for a in arrays] == [(4, 3, 2, 3), (4, 7)]
    # a batchless input's axis 0 is not the batch: it needs a size like any other axis
    with pytest.raises(agent.AgentError, match="--dim s:0=SIZE"):
        agent.build_inputs([("s", [None, 8], "float32")], {"s": {"batched": False}}, {}, 4)


def test_eval_npz_with_a_scalar_and_a_batchless_state(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    rng = np.random.default_rng(0)
    np.savez(
        path, input=rng.standard_normal((5, 512)).astype(np.float32), state=np.ones((2, 1, 64), np.float32),
        sr=np.int64(16000), batchless=np.array(["state"]), y=np.ones(5, np.int64),
    )  # fmt: skip
    job: dict[str, Any] = {"eval": {"path": str(path)}}
    xs, _y, _ = agent.load_eval(job, VAD)
    assert xs is not None and [x.shape for x in xs] == [(5, 512), (2, 1, 64), ()]
    assert job["eval"]["batched"] == [True, False, False] and job["eval"]["n_total"] == 5
    arrays, rec = agent._inputs_for(job, VAD, xs, 1)
    assert [a.shape for a in arrays] == [(1, 512), (2, 1, 64), ()]
    assert [r["batched"] for r in rec] == [True, False, False] and {r["made"] for r in rec} == {"eval data"}


def test_eval_npz_0d_array_for_a_batched_input_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "e.npz"
    np.savez(path, x=np.float32(1.0))
    with pytest.raises(agent.AgentError) as exc:
        agent.load_eval({"eval": {"path": str(path)}}, [("x", ["batch", 4], "float32")])
    assert "array 'x' is 0-d (one value) but input 'x' takes ['batch', 4] with a sample axis" in str(exc.value)
    assert "--input x=batchless" in str(exc.value)


def test_eval_with_a_spec_made_input_and_a_batchless_one() -> None:
    """evaluate() splits batched inputs into chunks and passes batchless ones whole."""

    class Echo:
        def prepare(self, arrays: list[Any]) -> list[Any]:
            return arrays

        def run(self, feed: list[Any]) -> list[Any]:
            x, state, sr = feed
            assert state.shape == (2, 1, 64) and sr.shape == ()
            return [x[:, :2] + float(sr)]

    xs = [np.zeros((5, 512), np.float32), np.zeros((2, 1, 64), np.float32), np.array(16000)]
    out = agent.evaluate(Echo(), xs, 1, [True, False, False])
    assert out.shape == (5, 2) and (out == 16000).all()


def test_compress_data_with_a_0d_array_is_one_line(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2), np.float32), sr=np.int64(16000))
    with pytest.raises(DataError) as exc:
        load_inputs(tmp_path / "d.npz")
    msg = str(exc.value)
    assert "array 'sr' is 0-d (one value) but compress data holds one row per sample" in msg
    assert "\n" not in msg and 'inputs = { sr = "VALUE" }' in msg
