"""`edgebench compress` and `edgebench variants` end to end: real models, real ONNX Runtime, real digits.

Every bad input the issue names is checked for its message, exit code 1, and that no
variant folder (or temp folder) is left behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from edgebench import data, zoo
from edgebench.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained small digits CNN as ONNX plus train/eval npz files."""
    d = tmp_path_factory.mktemp("digits")
    s = data.digits()
    import torch

    torch.manual_seed(0)  # the initial weights: not whatever this worker's earlier tests left in torch's RNG
    model = zoo.train(zoo.digits_cnn(8), s.x_train, s.y_train, epochs=3)
    onnx_path = zoo.export_onnx(model, s.x_test[:1], d / "cnn.onnx")
    return {
        "onnx": onnx_path,
        "train": data.save_npz(d / "train.npz", s.x_train, s.y_train),
        "eval": data.save_npz(d / "eval.npz", s.x_test, s.y_test),
    }


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def leftovers(out: Path) -> list[str]:
    """Everything under a variants root (empty means nothing was written)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []


def test_recipe_builds_skips_and_lists(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        """
out = "variants"
[data]
source = "digits"
calib_samples = 128
[models.digits]
source = "edgebench.zoo:digits_cnn"
train_epochs = 2
[models.digits.variants.fp16]
passes = [{ pass = "fp16" }]
[models.digits.variants.int8-static]
passes = [{ pass = "int8-static" }]
[models.digits.variants.pruned-int8]
passes = [{ pass = "prune-channels", ratio = 0.5, fine_tune_epochs = 1 }, { pass = "int8-static" }]
[models.digits.variants.sparse]
passes = [{ pass = "prune-magnitude", sparsity = 0.6 }]
"""
    )
    res = run("compress", str(recipe), "--json")
    assert res.exit_code == 0, res.output
    out = tmp_path / "variants" / "digits"
    assert sorted(p.name for p in out.iterdir()) == ["fp16", "fp32", "int8-static", "pruned-int8", "sparse"]
    mf = {p.name: json.loads((p / "manifest.json").read_text()) for p in out.iterdir()}
    fp32 = mf["fp32"]
    assert fp32["parent"] is None and fp32["accuracy"]["top1"] > 0.8 and fp32["flops"] > 0
    for name in ("fp16", "int8-static", "pruned-int8", "sparse"):
        m = mf[name]
        assert m["parent"] == "fp32" and m["input_hash"] and m["sha256"]
        assert set(m["fidelity"]) >= {"top1_agreement", "max_abs_diff", "mean_abs_diff"}
        assert m["accuracy"]["n"] == fp32["accuracy"]["n"]
    assert mf["int8-static"]["bytes"] < fp32["bytes"] / 2.5
    assert [p["pass"] for p in mf["pruned-int8"]["passes"]] == ["prune-channels", "int8-static"]
    assert mf["pruned-int8"]["flops"] < fp32["flops"] / 2  # channels really removed from the graph
    assert mf["sparse"]["sparsity"] > 0.5 and mf["sparse"]["zip_bytes"] < fp32["zip_bytes"]
    stamps = {n: (out / n / "manifest.json").stat().st_mtime_ns for n in mf}

    res = run("compress", str(recipe), "--json")  # unchanged: everything skipped, nothing rewritten
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["variants"]
    assert {r["status"].split(",")[0] for r in rows} == {"skipped"}
    assert stamps == {n: (out / n / "manifest.json").stat().st_mtime_ns for n in mf}

    recipe.write_text(recipe.read_text().replace("sparsity = 0.6", "sparsity = 0.7"))
    rows = json.loads(run("compress", str(recipe), "--json").stdout)["variants"]
    assert {r["variant"]: r["status"].split(",")[0] for r in rows}["sparse"] == "built"
    assert sum(r["status"].split(",")[0] == "built" for r in rows) == 1

    listed = json.loads(run("variants", "--root", str(tmp_path / "variants"), "--json").stdout)
    assert listed["schema"] == 1 and {r["variant"] for r in listed["variants"]} == set(mf)
    table = run("variants", "--root", str(tmp_path / "variants"))
    assert table.exit_code == 0 and "int8-static" in table.output and "pruned-int8" in table.output


def test_list_passes() -> None:
    res = run("compress", "--list-passes", "--json")
    doc = json.loads(res.stdout)
    assert doc["schema"] == 1
    names = {p["pass"] for p in doc["passes"]}
    assert {"int8-static", "prune-channels", "distill", "tflite-quantize"} <= names


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "recipe.toml"
    p.write_text('out = "variants"\n' + body)
    return p


def onnx_recipe(model: Path, data_lines: str, variant: str = '{ pass = "int8-static" }') -> str:
    return f"""
[data]
{data_lines}
[models.m]
source = "{model}"
[models.m.variants.v]
passes = [{variant}]
"""


def bad_cases(files: dict[str, Path], tmp: Path) -> dict[str, tuple[str, list[str]]]:
    good_data = f'train = "{files["train"]}"\neval = "{files["eval"]}"'
    text = tmp / "notes.onnx"
    text.write_text("this is not a model\n")
    cut = tmp / "cut.onnx"
    full = files["onnx"].read_bytes()
    cut.write_bytes(full[: len(full) // 3])
    cut_tfl = tmp / "cut.tflite"
    cut_tfl.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 40)
    s = data.digits()
    small = data.save_npz(tmp / "small.npz", s.x_test[:, :, :4, :4].copy(), s.y_test)
    f64 = data.save_npz(tmp / "f64.npz", s.x_test.astype(np.float64), s.y_test)
    calib = data.save_npz(tmp / "calib.npz", np.zeros((16, 1, 8, 9), np.float32))
    return {
        "not a model": (onnx_recipe(text, good_data), ["notes.onnx", "not a readable ONNX model"]),
        "truncated onnx": (onnx_recipe(cut, good_data), ["cut.onnx", "not a readable ONNX model", "complete"]),
        "truncated tflite": (
            onnx_recipe(cut_tfl, good_data, '{ pass = "tflite-quantize" }'),
            ["cut.tflite", "not a readable TFLite model", "truncated"],
        ),
        "data shape": (
            onnx_recipe(files["onnx"], f'train = "{small}"\neval = "{small}"'),
            ["shape [450, 1, 4, 4]", "takes ['batch', 1, 8, 8]", "reshape"],
        ),
        "data dtype": (
            onnx_recipe(files["onnx"], f'train = "{f64}"\neval = "{f64}"'),
            ["float64", "takes float32", "astype"],
        ),
        "calibration shape": (
            onnx_recipe(files["onnx"], good_data + f'\ncalib = "{calib}"'),
            ["calibration data", "[16, 1, 8, 9]", "reshape"],
        ),
        "unknown pass": (
            onnx_recipe(files["onnx"], good_data, '{ pass = "int4" }'),
            ["unknown pass 'int4'", "valid passes:", "int8-static", "[models.m.variants.v]"],
        ),
        "unknown parameter": (
            onnx_recipe(files["onnx"], good_data, '{ pass = "int8-static", bits = 4 }'),
            ["no parameter 'bits'", "valid parameters:", "per_channel"],
        ),
        "pass cannot apply": (
            onnx_recipe(files["onnx"], good_data, '{ pass = "prune-channels" }'),
            ["prune-channels", "cannot apply to a onnx model", "package.module:factory"],
        ),
        "torch data shape": (
            '[data]\nsource = "digits"\n[models.t]\nsource = "edgebench.zoo:resnet18_like"\n'
            '[models.t.variants.q]\npasses = [{ pass = "int8-static" }]\n',
            ["edgebench.zoo:resnet18_like", "does not accept", "[450, 1, 8, 8]"],
        ),
        "unknown recipe field": (
            '[data]\nsource = "digits"\nepochs = 3\n[models.t]\nsource = "x.onnx"\n',
            ["'epochs' is unknown"],
        ),
    }


CASES = [
    "not a model", "truncated onnx", "truncated tflite", "data shape", "data dtype", "calibration shape",
    "unknown pass", "unknown parameter", "pass cannot apply", "torch data shape", "unknown recipe field",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_fails_with_one_line_and_leaves_nothing(
    case: str, digits_files: dict[str, Path], tmp_path: Path
) -> None:
    body, expected = bad_cases(digits_files, tmp_path)[case]
    recipe = write(tmp_path, body)
    res = CliRunner().invoke(main, ["compress", str(recipe)])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    err = res.output.strip().splitlines()[-1]
    assert err.startswith("error: ")
    for part in expected:
        assert part in err, f"{part!r} not in {err!r}"
    assert leftovers(tmp_path / "variants") == []


@pytest.mark.usefixtures("no_tensorflow")
def test_missing_tensorflow_for_keras(tmp_path: Path) -> None:
    keras = tmp_path / "model.keras"
    keras.write_bytes(b"PK\x03\x04 not needed: the import fails first")
    recipe = write(tmp_path, f'[data]\nsource = "digits"\n[models.k]\nsource = "{keras}"\n')
    res = CliRunner().invoke(main, ["compress", str(recipe)])
    assert res.exit_code == 1
    assert "needs TensorFlow" in res.output and "pip install 'edgebench[tflite]'" in res.output
    assert leftovers(tmp_path / "variants") == []


def test_failing_variant_leaves_no_folder_and_exit_1(digits_files: dict[str, Path], tmp_path: Path) -> None:
    """An already-quantized model: the fp32 parent is written, the int8 variant is refused, exit 1."""
    from onnxruntime.quantization import quantize_dynamic

    q = tmp_path / "q.onnx"
    quantize_dynamic(digits_files["onnx"], q)
    recipe = write(tmp_path, onnx_recipe(q, f'train = "{digits_files["train"]}"\neval = "{digits_files["eval"]}"'))
    res = CliRunner().invoke(main, ["compress", str(recipe)])
    assert res.exit_code == 1
    assert "already quantized" in res.output and "quantizing twice" in res.output
    assert leftovers(tmp_path / "variants") == ["m", "m/fp32", "m/fp32/manifest.json", "m/fp32/model.onnx"]
