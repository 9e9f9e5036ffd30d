"""Decisions across separate invocations, for real: `run --baseline`, `compare --ab`, `accept`, the nightly's baseline.

Every command here is a separate `edgebench` process, as CI runs them; the agents are the
real ones, on the built-in local board and on a real sshd farm board on loopback. The
models are an opset-11 export with its weights as ``Constant`` nodes and a dynamic batch
axis (not our usual opset-17 initializer graphs), a copy of it, and one with more work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgebench.targets.farm import Farm

pytestmark = [pytest.mark.slow]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.2", "--repeats", "3"]


def constant_chain(path: Path, layers: int, *, input_name: str = "x", width: int = 128) -> Path:
    """A MatMul+Relu chain exported the way other frameworks do: opset 11, weights as Constant nodes, dim 0 dynamic."""
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
    nodes = [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w, "wv"))]
    x = input_name
    for i in range(layers):
        nodes += [helper.make_node("MatMul", [x, "w"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        x = f"r{i}"
    graph = helper.make_graph(
        nodes,
        "exported",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", width])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", width])],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    return path


def eb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_baseline_pairs_the_stored_run_and_compare_decides_on_it(tmp_path: Path) -> None:
    a = constant_chain(tmp_path / "a" / "m.onnx", 16)
    same = tmp_path / "same" / "m.onnx"
    same.parent.mkdir()
    same.write_bytes(a.read_bytes())
    slow = constant_chain(tmp_path / "slow" / "m.onnx", 24)  # 50 % more work
    res = tmp_path / "res"
    args = ["--dim", "N=16", "--results", str(res), *FAST, "--json"]
    base = eb("run", "--variants", str(a.parent), *args, cwd=tmp_path)
    assert base.returncode == 0, base.stderr
    base_id = Path(json.loads(base.stdout)["run_file"]).stem
    kept = list((res / "artifacts").glob("*.onnx"))
    assert len(kept) == 1  # the measured artifact is kept by sha256 for later pairing
    labels = {}
    for name, folder in (("same", same.parent), ("slow", slow.parent)):
        ref = "latest" if name == "same" else base_id  # "latest" is named before the new run exists
        out = eb("run", "--variants", str(folder), "--baseline", ref, *args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        run = json.loads(out.stdout)["run"]
        info = run["benchmarks"][0]["extra_info"]
        assert info["paired"]["baseline_run"] == base_id
        assert len(info["paired"]["processes"]) == 3 and info["paired"]["error"] is None
        assert {p["first"] for p in info["paired"]["processes"]} == {"a", "b"}  # the order alternates
        new_id = Path(json.loads(out.stdout)["run_file"]).stem
        cmp_ = eb("compare", base_id, new_id, "--results", str(res), "--json", cwd=tmp_path)
        assert cmp_.returncode == 0, cmp_.stderr
        (row,) = json.loads(cmp_.stdout)["rows"]
        assert row["p50"]["basis"] == "paired" and row["p50"]["unit"] == "pair"
        labels[name] = (row["label"], row["p50"]["ratio"])
    # an identical rerun is never called slower or faster; 50 % more work is clearly slower
    assert labels["same"][0] in ("no change", "undecided"), labels
    assert labels["slow"][0] == "slower" and labels["slow"][1] > 1.2, labels
    # without --baseline the two runs are one run each: shown, undecided
    plain = eb("run", "--variants", str(slow.parent), *args, cwd=tmp_path)
    cmp_ = eb("compare", base_id, Path(json.loads(plain.stdout)["run_file"]).stem, "--results", str(res), cwd=tmp_path)
    assert "undecided" in cmp_.stdout and "one run each" in " ".join(cmp_.stdout.split())


@pytest.mark.ssh
def test_compare_ab_on_a_farm_board(farm: Farm, tmp_path: Path) -> None:
    a = constant_chain(tmp_path / "a.onnx", 12)
    b = constant_chain(tmp_path / "b.onnx", 18)
    board = farm.boards[0].name
    out = eb(
        "compare", "--ab", str(a), str(b), "--boards", board, "--boards-file", str(farm.boards_file),
        "--results", str(tmp_path / "res"), "--repeats", "3", "--min-time", "0.3", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    (row,) = d["rows"]
    assert d["a"] == str(a) and row["board"] == board and row["p50"]["basis"] == "paired"
    assert row["p50"]["n_a"] == 3 and row["label"] == "slower" and row["p50"]["ratio_low"] > 1.03
    assert row["p90"]["unit"] == "pair"  # tails are paired too


def test_bad_input_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    a = constant_chain(tmp_path / "a.onnx", 4)
    other = constant_chain(tmp_path / "other.onnx", 4, input_name="image")
    res = tmp_path / "res"
    # compare --ab of two models with different inputs: refused before measuring, naming the input
    out = eb("compare", "--ab", str(a), str(other), "--results", str(res), cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
    assert "input 'x' is float32 in the baseline and absent in other/fp32" in out.stderr
    assert not (res / "runs").exists() or not list((res / "runs").iterdir())
    # accept of a run that does not exist
    ok = eb("run", "--variants", str(a), "--dim", "N=4", "--results", str(res), *FAST, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    before = snapshot(res)
    out = eb("accept", "20990101T000000Z-nope", "--reason", "x", "--results", str(res), cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "run '20990101T000000Z-nope'" in out.stderr
    assert snapshot(res) == before and not (res / "accepted.json").exists()
    # a nightly whose pinned baseline was measured in another configuration (batch 1 vs 2)
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "a.onnx").write_bytes(a.read_bytes())
    (tmp_path / "nightly.toml").write_text(
        '[nightly]\nboards = ["local"]\nvariants = "v"\nbaseline = "latest"\n'
        "[nightly.settings]\nbatch_size = 2\ndims = { N = 4 }\n"
    )
    out = eb("nightly", "nightly.toml", "--results", str(res), cwd=tmp_path)
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "was measured with batch_size 1 and this nightly measures with 2" in out.stderr
    assert snapshot(res) == before


def test_accept_makes_the_baseline_and_a_regression_stays_red_until_then(tmp_path: Path) -> None:
    fast = constant_chain(tmp_path / "fast" / "m.onnx", 8)
    slow = constant_chain(tmp_path / "slow" / "m.onnx", 16)  # twice the work
    v = tmp_path / "v"
    v.mkdir()
    (tmp_path / "budgets.toml").write_text("[[budget]]\nmax_regression_pct = 10\n")
    (tmp_path / "nightly.toml").write_text(
        '[nightly]\nboards = ["local"]\nvariants = "v"\nbudgets = "budgets.toml"\n'
        "[nightly.settings]\nmin_time_s = 0.2\nrepeats = 3\ndims = { N = 16 }\n"
    )
    res = tmp_path / "res"
    verdicts = []
    for night, model in enumerate((fast, slow, slow), 1):
        (v / "m.onnx").write_bytes(model.read_bytes())
        out = eb("nightly", "nightly.toml", "--results", str(res), "--json", "--commit", f"n{night}", cwd=tmp_path)
        assert out.returncode in (0, 3), out.stderr
        verdicts.append(json.loads(out.stdout))
    assert verdicts[0]["verdict"] == "PASS" and verdicts[0]["baseline"].startswith("no accepted baseline yet")
    first = verdicts[0]["run_id"]
    # the regression is red on the night it lands AND the night after (the baseline stays night 1)
    assert [d["verdict"] for d in verdicts[1:]] == ["FAIL", "FAIL"]
    assert all(d["baseline"] == f"{first}, the last nightly that passed" for d in verdicts[1:])
    acc = eb("accept", verdicts[2]["run_id"], "--reason", "twice the layers, on purpose", "--by", "ci-bot",
             "--results", str(res), cwd=tmp_path)  # fmt: skip
    assert acc.returncode == 0, acc.stderr
    out = eb("nightly", "nightly.toml", "--results", str(res), "--json", "--commit", "n4", cwd=tmp_path)
    d = json.loads(out.stdout)
    assert d["verdict"] == "PASS", d["why"]
    assert d["baseline"] == f"{verdicts[2]['run_id']}, accepted by ci-bot (twice the layers, on purpose)"
