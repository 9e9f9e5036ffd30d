"""A model file is enough to start: bare .onnx/.tflite files become cached fp32 variants (`run --variants FILE`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _tiny_onnx import make_tiny_onnx
from edgebench.bench.session import load_variants
from edgebench.compress.variant import variants_from_files
from edgebench.errors import ModelError, UserError


def test_a_model_file_becomes_a_cached_fp32_variant(tmp_path: Path) -> None:
    f = make_tiny_onnx(tmp_path / "detector.onnx")
    cache = tmp_path / "cache"
    (v,) = variants_from_files(f, cache) or []
    assert (v.model, v.name, v.format, v.manifest.parent) == ("detector", "fp32", "onnx", None)
    assert v.path.is_relative_to(cache) and v.manifest.extra["source"] == str(f.resolve())
    mtime = (v.path / "manifest.json").stat().st_mtime_ns
    (again,) = variants_from_files(f, cache) or []
    assert again.path == v.path and (v.path / "manifest.json").stat().st_mtime_ns == mtime  # reused, not rewritten
    make_tiny_onnx(f, seed=3)  # a changed file is another variant (another sha256)
    (changed,) = variants_from_files(f, cache) or []
    assert changed.path != v.path and changed.sha256 != v.sha256


def test_a_folder_of_model_files(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    make_tiny_onnx(tmp_path / "models" / "a.onnx")
    make_tiny_onnx(tmp_path / "models" / "b.onnx")
    (tmp_path / "models" / "notes.txt").write_text("not a model")
    got = variants_from_files(tmp_path / "models", tmp_path / "cache") or []
    assert [v.model for v in got] == ["a", "b"]


def test_a_variants_folder_is_left_to_list_variants(tmp_path: Path) -> None:
    assert variants_from_files(tmp_path, tmp_path / "cache") is None  # empty folder: not model files


def test_bad_files_say_what_to_give(tmp_path: Path) -> None:
    txt = tmp_path / "model.txt"
    txt.write_text("hello")
    with pytest.raises(ModelError, match=r"not a variants folder nor a \.onnx/\.tflite file"):
        variants_from_files(txt, tmp_path / "cache")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(ModelError, match=r"broken\.onnx is not a readable ONNX model"):
        variants_from_files(bad, tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("manifest.json"))
    with pytest.raises(UserError, match=r"does not exist: .*a \.onnx/\.tflite file"):
        load_variants(tmp_path / "missing.onnx")


def test_two_files_with_one_name_are_refused(tmp_path: Path) -> None:
    make_tiny_onnx(tmp_path / "m.onnx")
    (tmp_path / "m.tflite").write_bytes(b"1234TFL3")
    with pytest.raises(ModelError, match="several files named m"):
        variants_from_files(tmp_path, tmp_path / "cache")
