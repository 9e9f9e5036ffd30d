"""A recipe's ``[models.M] inputs`` and ``dims`` reach the measurement of its variants (issue 10), through
`edgebench nightly` with no ``[nightly.settings] inputs`` and through `edgebench run` with none of its own.

The model is the stateful one of `_thirdparty_models` with its signal axis dynamic (``N``, runs only at 512): a
scalar int64 ``sr`` selects an ``If`` branch (16000: class 1, else class 0), and ``state`` [2, 1, 64] has its batch
axis at 1. The recipe gives ``sr = 16000``, ``state = "state.npy:batchless"`` (next to the recipe, while the
nightly runs in another folder) and ``dims = { N = 512 }``; nothing else does. With eval labels all 1, top-1
accuracy says which branch ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from _thirdparty_models import stateful_model
from edgebench.cli import main
from edgebench.targets.farm import Farm

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.1", "--min-rounds", "10", "--warmup-time", "0", "--repeats", "1", "--json"]
RECIPE = """out = "variants"
[models.vad]
source = "vad.onnx"
inputs = { sr = 16000, state = "state.npy:batchless" }
dims = { N = 512 }
[models.vad.variants.fp16]
passes = [{ pass = "fp16" }]
"""
NIGHTLY = """[nightly]
boards = ["local"]
recipe = "recipe.toml"
[nightly.settings]
min_time_s = 0.2
repeats = 1
warmup_min_s = 0
min_rounds = 10
"""


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The nightly's folder, its --json document and its stored run."""
    tmp = tmp_path_factory.mktemp("defaults")
    stateful_model(tmp / "vad.onnx", heavy=2, signal="N")
    np.save(tmp / "state.npy", np.zeros((2, 1, 64), np.float32))
    (tmp / "recipe.toml").write_text(RECIPE)
    (tmp / "nightly.toml").write_text(NIGHTLY)
    res = CliRunner().invoke(main, ["nightly", str(tmp / "nightly.toml"), "--results", str(tmp / "r"), "--json"])
    [run_file] = (tmp / "r" / "runs").glob("*.json")
    return {"tmp": tmp, "code": res.exit_code, "out": res.output, "run": json.loads(run_file.read_text())}


def _by_variant(run_doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["extra_info"]["variant"]: b["extra_info"] for b in run_doc["benchmarks"]}


def _made(m: dict[str, Any]) -> dict[str, str]:
    return {i["name"]: i["made"] for i in m["inputs"]}


def test_a_nightly_measures_with_the_recipes_inputs_and_dims(made: dict[str, Any]) -> None:
    assert made["code"] == 0, made["out"]
    mf = json.loads((made["tmp"] / "variants" / "vad" / "fp16" / "manifest.json").read_text())
    state = f"{made['tmp'] / 'state.npy'}:batchless"  # absolute: the run need not start in the recipe's folder
    assert mf["run_defaults"] == {"inputs": {"sr": "16000", "state": state}, "dims": {"N": 512}}
    assert Path.cwd() != made["tmp"]
    ms = _by_variant(made["run"])
    assert set(ms) == {"fp32", "fp16"} and made["run"]["edgebench"]["failures"] == []
    for m in ms.values():  # without the recipe's inputs, sr (an int64 scalar) would fail: it is never guessed
        assert m["ok"] is True
        rec = {i["name"]: i for i in m["inputs"]}
        assert rec["sr"]["made"] == "constant 16000" and rec["sr"]["shape"] == [] and not rec["sr"]["batched"]
        assert rec["state"]["made"] == "file state.npy" and rec["state"]["shape"] == [2, 1, 64]
        assert rec["input"]["shape"] == [1, 512]  # the recipe's dims = { N = 512 }
    assert made["run"]["edgebench"]["settings"]["inputs"] == {}  # the nightly itself gave none


def _run(made: dict[str, Any], results: str, *args: str, evaluate: bool = True) -> dict[str, dict[str, Any]]:
    tmp = made["tmp"]
    ev = tmp / "vad-eval.npz"  # signals, the state stored whole (listed as batchless), labels all 1; no sr
    np.savez(
        ev, input=np.random.default_rng(1).standard_normal((6, 512)).astype(np.float32),
        state=np.zeros((2, 1, 64), np.float32), batchless=np.array(["state"]), y=np.ones(6, np.int64),
    )  # fmt: skip
    cmd = [EDGEBENCH, "run", "--variants", "variants", "--models", "vad", "--results", results]
    cmd += ["--eval", str(ev)] if evaluate else []
    res = subprocess.run([*cmd, *FAST, *args], capture_output=True, text=True, timeout=300, cwd=tmp)
    assert res.returncode == 0, res.stderr
    return _by_variant(json.loads(res.stdout)["run"])


def test_run_takes_the_manifests_inputs_eval_data_and_explicit_inputs_first(made: dict[str, Any]) -> None:
    ms = _run(made, "given")  # sr from the manifest, input and state from the eval data
    fp32 = ms["fp32"]
    assert fp32["accuracy"]["top1"] == 1.0  # the 16000 branch ran
    assert _made(fp32) == {"input": "eval data", "state": "eval data", "sr": "constant 16000"}
    assert ms["fp16"]["fidelity"]["degraded"] is False
    ms = _run(made, "explicit", "--input", "sr=8000")  # the run's own --input wins
    assert ms["fp32"]["accuracy"]["top1"] == 0.0 and _made(ms["fp32"])["sr"] == "constant 8000"


@pytest.mark.ssh
def test_a_farm_board_gets_the_recorded_inputs_and_the_npy(made: dict[str, Any], farm: Farm) -> None:
    board = ["--boards-file", str(farm.boards_file), "--boards", farm.boards[0].name]
    ms = _run(made, "farm-eval", *board)
    assert ms["fp32"]["board"] == farm.boards[0].name and ms["fp32"]["accuracy"]["top1"] == 1.0  # sr 16000 there
    ms = _run(made, "farm-made", *board, evaluate=False)  # the recorded state.npy travels to the board
    assert _made(ms["fp16"]) == {"input": "generated: normal(0, 1), seed 0", "state": "file state.npy",
                                 "sr": "constant 16000"}  # fmt: skip


def test_a_recorded_npy_that_is_gone_is_one_line_naming_the_manifest(made: dict[str, Any]) -> None:
    tmp = made["tmp"]
    (tmp / "state.npy").rename(tmp / "state.moved")
    try:
        cmd = [EDGEBENCH, "run", "--variants", "variants", "--results", "gone", *FAST]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp)
    finally:
        (tmp / "state.moved").rename(tmp / "state.npy")
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert res.returncode == 1 and len(lines) == 1 and not (tmp / "gone").exists(), res.stderr
    assert "state.npy could not be read" in lines[0] and "manifest.json: give --input state=SPEC" in lines[0]
