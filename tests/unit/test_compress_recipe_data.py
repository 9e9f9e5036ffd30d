"""Recipes without data: generated inputs from the model file, passes that need data ask for [data]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from _tiny_onnx import make_tiny_onnx
from edgebench.compress import metrics
from edgebench.compress.recipe import load_recipe
from edgebench.errors import ConfigError, DataError


def recipe(tmp_path: Path, text: str) -> Path:
    make_tiny_onnx(tmp_path / "m.onnx")
    (tmp_path / "r.toml").write_text(text)
    return tmp_path / "r.toml"


MODEL = '[models.m]\nsource = "m.onnx"\n'


def test_no_data_table_generates_eval_inputs_for_passes_that_need_none(tmp_path: Path) -> None:
    r = load_recipe(recipe(tmp_path, MODEL + '[models.m.variants.d]\npasses = [{ pass = "int8-dynamic" }]\n'))
    d = r.models[0].data
    assert isinstance(d.x_eval, np.ndarray) and d.x_eval.shape == (16, 4) and d.y_eval is None
    assert r.warnings == []  # nothing is calibrated on generated data


def test_a_calibrating_pass_asks_for_data(tmp_path: Path) -> None:
    p = recipe(tmp_path, MODEL + '[models.m.variants.s]\npasses = [{ pass = "int8-static" }]\n')
    with pytest.raises(ConfigError, match=r"pass int8-static calibrates or trains on data .* no \[data\] table"):
        load_recipe(p)


def test_generated_source_calibrates_with_a_warning(tmp_path: Path) -> None:
    text = '[data]\nsource = "generated"\ncalib_samples = 5\n' + MODEL
    r = load_recipe(recipe(tmp_path, text + '[models.m.variants.s]\npasses = [{ pass = "int8-static" }]\n'))
    assert metrics.n_samples(r.models[0].data.x_calib) == 5
    assert len(r.warnings) == 1 and "accuracy is unknown" in r.warnings[0]


def test_the_builtin_digits_only_when_named(tmp_path: Path) -> None:
    p = tmp_path / "r.toml"
    p.write_text('[models.digits]\nsource = "edgebench.zoo:digits_cnn"\n')
    with pytest.raises(DataError, match=r"generated data needs a \.onnx or \.tflite file: give \[data\] source"):
        load_recipe(p)


def test_an_integer_input_is_never_guessed(tmp_path: Path) -> None:
    g = helper.make_graph(
        [helper.make_node("Cast", ["sr"], ["y"], to=TensorProto.FLOAT)],
        "g",
        [helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "s.onnx"))
    (tmp_path / "r.toml").write_text('[models.s]\nsource = "s.onnx"\n')
    with pytest.raises(DataError, match=r"input 'sr' is int64 .* not guessed"):
        load_recipe(tmp_path / "r.toml")
