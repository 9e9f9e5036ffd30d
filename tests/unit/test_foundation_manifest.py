"""Variant folders and their manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebench.compress.variant import list_variants, load_variant, save_variant
from edgebench.errors import ModelError
from edgebench.fsutil import sha256_file


def _fields(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"model": "tiny", "variant": "fp32", "fmt": "onnx", "parent": None, "passes": []}
    base.update(kw)
    return base


def test_manifest_describes_the_artifact(tmp_path: Path, tiny_onnx: Path) -> None:
    v = save_variant(tmp_path / "variants" / "tiny" / "fp32", tiny_onnx, _fields())
    m = json.loads((v.path / "manifest.json").read_text())
    assert m["sha256"] == sha256_file(v.artifact) == sha256_file(tiny_onnx)
    assert m["bytes"] == tiny_onnx.stat().st_size
    assert m["format"] == "onnx" and m["artifact"] == "model.onnx"
    assert m["params"] == 4 * 3 + 3
    assert m["inputs"] == [{"name": "x", "shape": ["batch", 4], "dtype": "float32"}]
    assert m["outputs"] == [{"name": "y", "shape": ["batch", 3], "dtype": "float32"}]
    assert m["schema"] == 1
    assert load_variant(v.path).manifest.to_json() == m
    assert load_variant(v.path).manifest == v.manifest
    assert [x.name for x in list_variants(tmp_path / "variants")] == ["fp32"]


def test_manifest_file_keeps_its_key_order(tmp_path: Path, tiny_onnx: Path) -> None:
    v = save_variant(tmp_path / "v", tiny_onnx, _fields(passes=[{"pass": "fp16", "params": {}}], flops=10))
    keys = list(json.loads((v.path / "manifest.json").read_text()))
    assert keys == [
        "schema", "model", "variant", "format", "artifact", "sha256", "bytes", "parent", "passes", "created",
        "inputs", "outputs", "params", "flops",
    ]  # fmt: skip
    assert v.manifest.flops == 10 and v.manifest.passes[0].name == "fp16"


def test_not_a_model_is_refused_and_leaves_no_folder(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 definitely not protobuf" * 10)
    dest = tmp_path / "variants" / "m" / "fp32"
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        save_variant(dest, junk, _fields())
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


def test_variant_with_missing_artifact_is_reported(tmp_path: Path, tiny_onnx: Path) -> None:
    v = save_variant(tmp_path / "v", tiny_onnx, _fields())
    v.artifact.unlink()
    with pytest.raises(ModelError, match="missing"):
        load_variant(v.path)
