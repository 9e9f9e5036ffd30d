"""docs/formats.md is what scripts/gen_formats.py makes from the config models, and every key in it is described.

The generator documents the recipe, nightly, budgets and boards files from the classes that
validate them; these tests fail when the page is stale, when a field of one of those classes
has no description or example (a new field must get one), when the generator describes a
field that no longer exists, when an example is refused by the real validator, or when a key
documented as required is not.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from edgebench.bench.settings import RunSettings
from edgebench.compress.passes import all_passes, get_pass, resolve_params
from edgebench.compress.recipe import RecipeSpec
from edgebench.config import validate
from edgebench.errors import ConfigError
from edgebench.results.gate import load_budgets
from edgebench.targets.inventory import TOP_LEVEL, BoardSpec, parse_inventory
from edgebench.workflows import recipes
from edgebench.workflows.nightly import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


gen = _load("gen_formats", ROOT / "scripts" / "gen_formats.py")
make_detector = _load("make_detector", EXAMPLES / "make_detector.py")

SECTIONS = [s for f in gen.FORMATS for s in f.sections]
FIELDS = [(s.cls, f.name) for s in SECTIONS for f in dataclasses.fields(s.cls)]

# a valid table of each class, which each field's example is put into (None removes a key)
BASE: dict[str, dict[str, Any]] = {
    "RecipeSpec": {"models": {"m": {"source": "m.onnx"}}},
    "DataSpec": {},
    "FidelitySpec": {},
    "ModelSpec": {"source": "m.onnx"},
    "VariantSpec": {"passes": [{"pass": "fp16"}]},
    "NightlyTable": {"boards": ["local"], "recipe": "recipe.toml"},
    "RunSettings": {},
    "BudgetsFile": {},
    "BudgetSpec": {"max_p90_ms": 10.0},
    "BoardSpec": {"name": "b", "host": "h"},
    "InventoryTop": {},
    "PoolSpec": {"tags": {"board": "rpi4"}},
}
COMPANIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("DataSpec", "train"): {"eval": "eval.npz"},
    ("DataSpec", "eval"): {"train": "train.npz"},
    ("DataSpec", "calib"): {"train": "train.npz", "eval": "eval.npz"},
    ("NightlyTable", "variants"): {"recipe": None},
    ("BoardSpec", "power_pattern"): {"power_command": "cat /sys/class/hwmon/hwmon0/power1_input"},
    ("PoolSpec", "power_pattern"): {"power_command": "cat /sys/class/hwmon/hwmon0/power1_input"},
}


def _check(cls: type, table: dict[str, Any]) -> None:
    """Validate ``table`` as edgebench reads that kind of table (raises ConfigError)."""
    if cls is RunSettings:
        RunSettings.from_mapping(table)
    elif cls is gen.InventoryTop:
        parse_inventory("\n".join(f"{k} = {gen.toml_value(v)}" for k, v in table.items()), Path("boards.toml"))
    else:
        validate(cls, table, "example:")
    for variant in [table] if cls.__name__ == "VariantSpec" else []:  # and the pass tables against the registry
        for p in variant["passes"]:
            params = {k: v for k, v in p.items() if k != "pass"}
            resolve_params(get_pass(p["pass"]), params)


def test_formats_md_is_what_the_generator_makes_now() -> None:
    current = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
    assert current == gen.render(), "docs/formats.md is stale: run .venv/bin/python scripts/gen_formats.py"
    assert gen.main(["--check"]) == 0


def test_every_documented_key_is_in_the_page_with_a_description_and_an_example() -> None:
    missing = [f"{c.__name__}.{n}" for c, n in FIELDS if not gen.description(c, n)]
    assert not missing, f"fields without a description (add them to DESCRIPTIONS in scripts/gen_formats.py): {missing}"
    no_example = [f"{c.__name__}.{n}" for c, n in FIELDS if (c.__name__, n) not in gen.EXAMPLES]
    assert not no_example, f"fields without an example (add them to EXAMPLES in scripts/gen_formats.py): {no_example}"
    page = gen.render()
    for cls, name in FIELDS:
        assert f"| `{name}` |" in page, f"{cls.__name__}.{name} is not in the page"
    for name, cls in all_passes().items():  # and every pass with every parameter
        assert f"#### `{name}`" in page
        for p in cls.params:
            assert f"| `{p.name}` | " in page and p.help.replace("|", "\\|") in page


def test_the_generator_describes_no_field_that_does_not_exist() -> None:
    known = {(c.__name__, n) for c, n in FIELDS}
    for table in ("DESCRIPTIONS", "EXAMPLES", "NOT_SET_MEANS"):
        stale = sorted(set(getattr(gen, table)) - known)
        assert not stale, f"{table} in scripts/gen_formats.py names fields that no longer exist: {stale}"
    assert known >= gen.REQUIRED_BY_CHECKS


def test_the_sections_cover_the_classes_that_validate_each_file() -> None:
    covered = {s.cls for s in SECTIONS}
    # every nested table of the recipe is documented in a section of its own
    for cls in list(covered):
        for f in dataclasses.fields(cls):
            hint = str(f.type)
            for other in ("DataSpec", "FidelitySpec", "ModelSpec", "VariantSpec"):
                if other in hint:
                    assert other in {c.__name__ for c in covered}, (
                        f"{cls.__name__}.{f.name} holds an undocumented {other}"
                    )
    assert {"RecipeSpec", "NightlyTable", "RunSettings", "BudgetsFile", "BudgetSpec", "BoardSpec"} <= {
        c.__name__ for c in covered
    }
    # the boards file's top level has no class of its own: the generator's stand-in has exactly its keys
    assert tuple(f.name for f in dataclasses.fields(gen.InventoryTop)) == TOP_LEVEL


@pytest.mark.parametrize(("cls", "name"), FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FIELDS])
def test_each_example_is_accepted_by_the_real_validator(cls: type, name: str) -> None:
    table = {**BASE[cls.__name__], name: gen.EXAMPLES[(cls.__name__, name)]}
    for k, v in COMPANIONS.get((cls.__name__, name), {}).items():
        if v is None:
            table.pop(k)
        else:
            table[k] = v
    _check(cls, table)


def test_an_example_the_validator_refuses_fails_the_check() -> None:
    """The check above can fail: a wrong type is refused by the same call."""
    with pytest.raises(ConfigError, match="port"):
        _check(BoardSpec, {**BASE["BoardSpec"], "port": "22"})
    with pytest.raises(ConfigError, match="no parameter 'ratoi'"):
        _check(gen.VariantSpec, {"passes": [{"pass": "prune-channels", "ratoi": 0.5}]})


def test_keys_documented_as_required_are_required() -> None:
    fields = {(c, f.name): f for c in {s.cls for s in SECTIONS} for f in dataclasses.fields(c)}
    required = [(c, n) for c, n in FIELDS if gen.default_text(c, fields[(c, n)]) == gen.REQUIRED]
    assert {("BoardSpec", "host"), ("RecipeSpec", "models")} <= {(c.__name__, n) for c, n in required}
    for cls, name in required:
        table = dict(BASE[cls.__name__])
        table.pop(name, None)
        if cls.__name__ == "VariantSpec":
            table = {}
        with pytest.raises(ConfigError):
            _check(cls, table)


def test_each_pass_example_is_accepted_by_the_pass() -> None:
    for name, cls in all_passes().items():
        first = next((p for p in cls.params if p.default not in (None, "", [])), None)
        given = {} if first is None else {first.name: first.default}
        resolve_params(get_pass(name), given)
        assert f'{{ pass = "{name}"' in gen.render()


def test_the_example_files_load_with_the_real_loaders(tmp_path: Path) -> None:
    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    assert make_detector.main(["-o", str(folder / "detector.onnx")]) == 0
    digits = recipes.load(folder / "recipe.toml")
    assert [m.source.name for m in digits.models] == ["digits"]
    assert sorted(digits.models[0].variants) == ["fp16", "int8-dynamic", "int8-static", "pruned-50"]
    assert digits.out.resolve() == (tmp_path / "variants").resolve()  # variants/ at the top of the clone
    detector = recipes.load(folder / "detector.toml")
    assert detector.models[0].dims == {"batch": 1, "height": 64, "width": 64}
    nightly = load_config(folder / "nightly.toml")
    assert nightly.recipe == folder / "recipe.toml" and nightly.budgets == folder / "budgets.toml"
    if not isinstance(nightly.settings, RunSettings):  # a table as written, or already the settings
        RunSettings.from_mapping(nightly.settings)
    assert len(load_budgets(folder / "budgets.toml").budgets) == 3
    assert len(load_budgets(folder / "budgets-strict.toml").budgets) == 1
    import tomllib

    boards = tomllib.loads((folder / "boards.toml").read_text())["boards"]
    assert [b["name"] for b in boards] == ["farm-1", "farm-2", "farm-3"]
    for b in boards:
        validate(BoardSpec, b, "examples/boards.toml:")
    assert SECTIONS[0].cls is RecipeSpec  # the recipe files' top level is the class the page documents first


def test_make_detector_writes_an_opset_11_model_with_constant_weights_and_dynamic_dims(tmp_path: Path) -> None:
    import onnx

    out = tmp_path / "d.onnx"
    assert make_detector.main(["-o", str(out)]) == 0
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 11 and not model.graph.initializer
    assert {n.op_type for n in model.graph.node} >= {"Constant", "Conv", "Resize", "Sigmoid"}
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    out_dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == ["batch", 1, "height", "width"]


def test_make_detector_says_in_one_line_when_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "d.onnx"
    assert make_detector.main(["-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "-o" in err[0]
    assert not out.parent.exists()
