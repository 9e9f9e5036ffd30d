"""Unit tests for the pass registry, parameter checking, chain formats and the config helpers."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pytest
from pydantic import Field

from edgebench.compress.passes import all_passes, check_chain, get_pass, resolve_params
from edgebench.compress.quantize import Int8StaticParams
from edgebench.config import load_toml, validate
from edgebench.errors import ConfigError, ModelError
from edgebench.model import Manifest

BUILTIN = {
    "fp16", "int8-dynamic", "int8-static", "tflite-convert", "tflite-quantize",
    "prune-magnitude", "prune-channels", "distill",
}  # fmt: skip


def test_builtin_passes_register_with_documented_params() -> None:
    passes = all_passes()
    assert set(passes) >= BUILTIN
    for name, cls in passes.items():
        assert cls.summary and cls.accepts, name
        for p in cls.params:
            assert p.help, f"{name}.{p.name} has no description"
        defaults = {p.name: p.default for p in cls.params if p.default is not None}
        # every default is valid for its own declaration, and is what an empty table gives
        assert resolve_params(cls(), defaults) == resolve_params(cls(), {}) == cls.params_type()


def test_params_are_a_typed_dataclass_recorded_as_json() -> None:
    p = get_pass("int8-static")
    got = resolve_params(p, {"op_types": ["Conv", "MatMul"], "calib_samples": 8})
    assert isinstance(got, Int8StaticParams) and got.op_types == ("Conv", "MatMul") and got.calib_samples == 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.calib_samples = 9  # type: ignore[misc]
    record = p.record(got)  # the manifest's params: every key, lists as lists, in declaration order
    assert list(record) == [d.name for d in p.params]
    assert record["op_types"] == ["Conv", "MatMul"] and record["max_accuracy_drop"] is None
    assert json.loads(json.dumps(record)) == record
    fp16 = get_pass("fp16")
    assert fp16.record(resolve_params(fp16, {"op_block_list": ["Resize"]})) == {
        "keep_io_types": True,
        "op_block_list": ["Resize"],
    }  # a list of strings (it was refused as a list of lists before)
    with pytest.raises(ConfigError, match=r"pass 'fp16' field 'op_block_list\[1\]' must be a string, not integer"):
        resolve_params(fp16, {"op_block_list": ["Resize", 3]})


def test_pass_params_are_read_from_the_dataclass() -> None:
    declared = {d.name: d for d in get_pass("int8-dynamic").params}
    ops = declared["op_types"]
    assert ops.type is list and ops.default == [] and ops.choices is not None and "MatMul" in ops.choices
    assert declared["weight_type"].type is str and declared["weight_type"].choices == ("qint8", "quint8")
    drop = {d.name: d for d in get_pass("int8-static").params}["max_accuracy_drop"]
    assert (drop.type, drop.default, drop.lo, drop.hi) == (float, None, 0.0, 100.0)


def test_needs_data_follows_the_parameters() -> None:
    def needs(name: str, **given: object) -> bool:
        p = get_pass(name)
        return bool(p.needs_data(resolve_params(p, given)))

    assert needs("int8-static") and needs("distill") and not needs("fp16") and not needs("int8-dynamic")
    assert needs("tflite-quantize", recipe="static_int8") and not needs("tflite-quantize")
    assert needs("tflite-convert", mode="int8") and not needs("tflite-convert", mode="float16")
    assert needs("prune-magnitude", fine_tune_epochs=1) and not needs("prune-magnitude")
    assert needs("prune-channels") and not needs("prune-channels", fine_tune_epochs=0)


def test_unknown_pass_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_pass("int4-magic")
    msg = str(err.value)
    assert "'int4-magic'" in msg and "int8-static" in msg and "prune-channels" in msg


def test_unknown_parameter_lists_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_params(get_pass("int8-static"), {"per_chanel": True})
    msg = str(err.value)
    assert "'per_chanel'" in msg and "per_channel" in msg and "calibrate_method" in msg


def test_parameter_values_are_checked_and_defaults_filled() -> None:
    p = get_pass("int8-static")
    got = resolve_params(p, {"calibrate_method": "Entropy"})
    assert got.calibrate_method == "Entropy" and got.per_channel is True and got.max_accuracy_drop is None
    with pytest.raises(ConfigError, match="valid values: MinMax, Entropy, Percentile"):
        resolve_params(p, {"calibrate_method": "Median"})
    with pytest.raises(ConfigError, match="field 'per_channel' must be true or false, not string"):
        resolve_params(p, {"per_channel": "yes"})
    with pytest.raises(ConfigError, match="field 'calib_samples' must be an integer, not boolean"):
        resolve_params(p, {"calib_samples": True})
    with pytest.raises(ConfigError, match=r"is 0; it must be >= 1"):
        resolve_params(p, {"calib_samples": 0})
    got = resolve_params(get_pass("prune-magnitude"), {"sparsity": 0}).sparsity
    assert got == 0.0 and isinstance(got, float)  # a TOML integer is accepted where a float is declared


def test_pass_that_cannot_apply_is_refused_before_work() -> None:
    chain = [(get_pass("prune-channels"), {})]
    with pytest.raises(ModelError) as err:
        check_chain("onnx", chain, "m/v")
    msg = str(err.value)
    assert "prune-channels" in msg and "onnx" in msg and "package.module:factory" in msg


def test_torch_chain_exports_to_onnx_between_passes() -> None:
    chain = [(get_pass("prune-channels"), {}), (get_pass("int8-static"), {})]
    assert check_chain("torch", chain, "m/v") == "onnx"
    assert check_chain("keras", [(get_pass("tflite-convert"), {}), (get_pass("tflite-quantize"), {})], "x") == "tflite"


@pytest.mark.usefixtures("no_tensorflow")
def test_missing_tensorflow_names_the_extra() -> None:
    from edgebench.compress import tflite

    with pytest.raises(tflite.MissingDependency) as err:
        tflite.load_keras(Path("model.keras"))
    assert "edgebench[tflite]" in str(err.value) and "TensorFlow" in str(err.value)


def test_kd_loss_matches_the_formula() -> None:
    import torch

    from edgebench.compress.distill import kd_loss

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 10, generator=g), torch.randn(5, 10, generator=g)
    y = torch.tensor([0, 3, 9, 2, 2])
    alpha, temp = 0.3, 4.0
    ps, pt = torch.softmax(s / temp, 1), torch.softmax(t / temp, 1)
    kl = (pt * (pt.log() - ps.log())).sum(1).mean()
    ce = -torch.log_softmax(s, 1)[torch.arange(5), y].mean()
    want = alpha * ce + (1 - alpha) * temp**2 * kl
    assert float(kd_loss(s, t, y, alpha, temp)) == pytest.approx(float(want), rel=1e-5)
    assert float(kd_loss(s, t, y, 1.0, temp)) == pytest.approx(float(ce), rel=1e-5)


def test_fidelity_and_accuracy() -> None:
    from edgebench.compress.metrics import accuracy, fidelity

    ref = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]], np.float32)
    out = np.array([[1.0, 0.5], [1.0, 0.0], [2.0, 1.0]], np.float32)
    f = fidelity(ref, out)
    assert f["top1_agreement"] == pytest.approx(2 / 3)
    assert f["max_abs_diff"] == pytest.approx(1.0)
    assert f["mean_abs_diff"] == pytest.approx(2.5 / 6)
    acc = accuracy(out, np.array([0, 0, 1]))
    assert acc is not None and acc["top1"] == pytest.approx(2 / 3)
    assert accuracy(out, None) is None


@dataclass(frozen=True)
class _Sub:
    lr: Annotated[float, Field(ge=0, le=1)] = 0.1


@dataclass(frozen=True)
class _Model:
    source: str
    epochs: int = 0
    mode: Literal["a", "b"] = "a"
    sub: _Sub = _Sub()
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.epochs == 7:
            raise ValueError("field 'epochs' may not be 7: pick another")


def test_config_errors_name_file_table_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "r.toml"
    bad.write_text("[data\nsource = 1\n")
    with pytest.raises(ConfigError, match=r"r\.toml is not valid TOML"):
        load_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "none.toml")
    where = f"{bad}: [models.m]"
    with pytest.raises(ConfigError, match=r"r\.toml: \[models\.m\] field 'epochs' must be an integer, not string"):
        validate(_Model, {"epochs": "3", "source": "s"}, where)
    with pytest.raises(ConfigError, match=r"field 'source' is missing"):
        validate(_Model, {"epochs": 3}, where)
    with pytest.raises(ConfigError, match=r"field 'mode' is 'x'; valid values: a, b"):
        validate(_Model, {"source": "s", "mode": "x"}, where)
    with pytest.raises(ConfigError, match=r"field 'extra' is unknown; valid fields: epochs, mode, source, sub, tags$"):
        validate(_Model, {"source": "s", "extra": 1}, where)
    assert validate(_Model, {"source": "s", "sub": {"lr": 1}}, where).sub.lr == 1.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"source": "s", "sorce": 1},
            "field 'sorce' is unknown; valid fields: epochs, mode, source, sub, tags; did you mean 'source'?",
        ),
        ({"source": "s", "sub": {"lr": 2}}, ".sub] field 'lr' is 2; it must be <= 1.0"),
        ({"source": "s", "sub": {"rate": 2}}, ".sub] field 'rate' is unknown; valid fields: lr"),
        ({"source": "s", "sub": 3}, "field 'sub' must be a table, not integer"),
        ({"source": "s", "tags": ["a", 1]}, "field 'tags[1]' must be a string, not integer"),
        ({"source": "s", "epochs": True}, "field 'epochs' must be an integer, not boolean"),
        ({"source": "s", "epochs": 7}, "] field 'epochs' may not be 7: pick another"),
        (["source"], "] must be a table, not array"),
    ],
)
def test_validate_gives_one_friendly_line(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(_Model, data, "r.toml: [models.m]")
    assert str(info.value).startswith("r.toml: [models.m")
    assert str(info.value).endswith(message)
    assert "\n" not in str(info.value)


def test_validate_keeps_toml_types_and_fills_tuples() -> None:
    m = validate(_Model, {"source": "s", "tags": ["x", "y"], "sub": {"lr": 0}}, "w")
    assert m == _Model(source="s", tags=("x", "y"), sub=_Sub(lr=0.0))
    assert isinstance(m.sub.lr, float)


def test_factory_specs_fail_with_the_fix() -> None:
    from edgebench.compress.distill import load_factory

    with pytest.raises(ConfigError, match=r"package\.module:factory"):
        load_factory("edgebench.zoo")
    with pytest.raises(ConfigError, match=r"cannot import .edgebench\.nope."):
        load_factory("edgebench.nope:f")
    with pytest.raises(ConfigError, match="has no callable 'nope'"):
        load_factory("edgebench.zoo:nope")


def test_make_variants_checks_every_spec_before_work(tmp_path: Path) -> None:
    from edgebench.compress.api import make_variants
    from edgebench.compress.variant import Variant

    parent = Variant(tmp_path / "m" / "fp32", Manifest("m", "fp32", "onnx", "x", "", 0))
    x = np.zeros((2, 1, 8, 8), np.float32)
    with pytest.raises(ConfigError, match="valid passes"):
        make_variants(parent, [("a", "fp16", {}), ("b", "int3", {})], tmp_path, x, x)
    with pytest.raises(ModelError, match="cannot apply to a onnx model"):
        make_variants(parent, [("a", "fp16", {}), ("b", "distill", {})], tmp_path, x, x)
    assert list(tmp_path.iterdir()) == []
