"""TFLite passes with real TensorFlow, ai-edge-quantizer and the LiteRT interpreter on a tiny Keras model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgebench import data
from edgebench.cli import main
from edgebench.compress import metrics

pytestmark = pytest.mark.tflite


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tf = pytest.importorskip("tensorflow")
    d = tmp_path_factory.mktemp("keras")
    s = data.digits()
    x = np.transpose(np.concatenate([s.x_train, s.x_test]), (0, 2, 3, 1)).copy()  # Keras is channels-last
    y = np.concatenate([s.y_train, s.y_test])
    tf.keras.utils.set_random_seed(0)
    m = tf.keras.Sequential(
        [
            tf.keras.Input((8, 8, 1)),
            tf.keras.layers.Conv2D(8, 3, activation="relu"),
            tf.keras.layers.Flatten(),
            tf.keras.layers.Dense(10),
        ]
    )
    m.compile("adam", tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    m.fit(x, y, epochs=3, verbose=0)
    m.save(d / "k.keras")
    return {"keras": d / "k.keras", "data": data.save_npz(d / "d.npz", x, y)}


def test_keras_modes_and_ai_edge_quantizer(keras_files: dict[str, Path], tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f"""
[data]
source = "{keras_files["data"]}"
calib_samples = 64
[models.k]
source = "{keras_files["keras"]}"
[models.k.variants.dynamic]
passes = [{{ pass = "tflite-convert", mode = "dynamic" }}]
[models.k.variants.float16]
passes = [{{ pass = "tflite-convert", mode = "float16" }}]
[models.k.variants.int8-io]
passes = [{{ pass = "tflite-convert", mode = "int8", int8_io = true }}]
[models.k.variants.aiq-dynamic]
passes = [{{ pass = "tflite-convert" }}, {{ pass = "tflite-quantize", recipe = "dynamic_int8" }}]
[models.k.variants.aiq-weight]
passes = [{{ pass = "tflite-convert" }}, {{ pass = "tflite-quantize", recipe = "weight_only_int8" }}]
[models.k.variants.aiq-static]
passes = [{{ pass = "tflite-convert" }}, {{ pass = "tflite-quantize", recipe = "static_int8", calib_samples = 32 }}]
"""
    )
    res = CliRunner().invoke(main, ["compress", str(recipe), "--out", str(tmp_path / "v"), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["variant"]: r for r in json.loads(res.stdout)["variants"]}
    assert set(rows) == {"fp32", "dynamic", "float16", "int8-io", "aiq-dynamic", "aiq-weight", "aiq-static"}
    fp32 = rows["fp32"]
    assert fp32["format"] == "tflite" and fp32["top1"] > 0.7
    for name, r in rows.items():
        assert (tmp_path / "v" / "k" / name / "model.tflite").is_file()
        if name != "fp32":
            assert r["bytes"] < fp32["bytes"] and r["top1_agreement"] >= 0.9, name
    keras_params = 8 * 9 + 8 + 6 * 6 * 8 * 10 + 10
    manifest = json.loads((tmp_path / "v" / "k" / "fp32" / "manifest.json").read_text())
    assert manifest["params"] >= keras_params  # constant tensors: weights plus a few shape constants
    it = metrics.tflite_interpreter(tmp_path / "v" / "k" / "int8-io" / "model.tflite")
    assert it.get_input_details()[0]["dtype"] == np.int8 and it.get_output_details()[0]["dtype"] == np.int8
    # already-quantized models are reported, not quantized twice
    q = tmp_path / "v" / "k" / "aiq-static" / "model.tflite"
    twice = tmp_path / "twice.toml"
    twice.write_text(
        f'[data]\nsource = "{keras_files["data"]}"\n[models.q]\nsource = "{q}"\n'
        '[models.q.variants.again]\npasses = [{ pass = "tflite-quantize" }]\n'
    )
    res = CliRunner().invoke(main, ["compress", str(twice), "--out", str(tmp_path / "w")])
    assert res.exit_code == 1 and "already quantized" in res.output
    assert not (tmp_path / "w" / "q" / "again").exists()
    # a truncated real .tflite is a one-line model error
    cut = tmp_path / "cut.tflite"
    full = (tmp_path / "v" / "k" / "fp32" / "model.tflite").read_bytes()
    cut.write_bytes(full[: len(full) // 2])
    bad = tmp_path / "cut.toml"
    bad.write_text(f'[data]\nsource = "{keras_files["data"]}"\n[models.c]\nsource = "{cut}"\n')
    res = CliRunner().invoke(main, ["compress", str(bad), "--out", str(tmp_path / "c")])
    assert res.exit_code == 1 and "cut.tflite" in res.output and "TFLite" in res.output
    assert not (tmp_path / "c").exists()


def test_keras_data_shape_mismatch(keras_files: dict[str, Path], tmp_path: Path) -> None:
    nchw = data.save_npz(tmp_path / "nchw.npz", data.digits().x_test, data.digits().y_test)
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[data]\nsource = "{nchw}"\n[models.k]\nsource = "{keras_files["keras"]}"\n')
    res = CliRunner().invoke(main, ["compress", str(recipe), "--out", str(tmp_path / "v")])
    assert res.exit_code == 1
    assert "takes [None, 8, 8, 1]" in res.output and "channels-last" in res.output
    assert not (tmp_path / "v").exists()


def test_ai_edge_quantizer_needs_no_tensorflow(
    keras_files: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from edgebench.compress.api import build_variant, resolve_chain
    from edgebench.compress.passes import Artifact, Data
    from edgebench.compress.sources import load_inputs

    x, y = load_inputs(keras_files["data"])
    d = Data(x_train=x, y_train=y, x_calib=x[:32], x_eval=x[:100], y_eval=y[:100])
    conv = resolve_chain([("tflite-convert", {})])
    fp32 = build_variant(
        model="k", variant="fp32", source=Artifact("keras", keras_files["keras"]), chain=conv, data=d,
        final=tmp_path / "fp32", parent=None, ref=None,
    )  # fmt: skip
    request.getfixturevalue("no_tensorflow")  # from here on, `import tensorflow` fails
    for recipe in ("dynamic_int8", "static_int8"):
        v = build_variant(
            model="k", variant=recipe, source=Artifact("tflite", fp32.artifact),
            chain=resolve_chain([("tflite-quantize", {"recipe": recipe, "calib_samples": 16})]), data=d,
            final=tmp_path / recipe, parent="fp32", ref=None,
        )  # fmt: skip
        assert v.manifest.extra["aiq_recipe"] == recipe and v.manifest.bytes < fp32.manifest.bytes
