"""Write ``docs/formats.md``: every key of the recipe, nightly, budgets and boards files.

The reference is generated from the classes that validate those files
(`edgebench.config.validate` turns a TOML table into them), so it cannot drift from what
edgebench accepts: the keys, their types, bounds and defaults come from the dataclasses
and their pydantic annotations; descriptions come from the models where they carry one
(the measurement settings' declarations, the inventory's field list, the passes'
parameters) and from `DESCRIPTIONS` below where they do not. Every key also gets an
example (`EXAMPLES`), which ``tests/unit/test_formats_doc.py`` validates with the real
validator, and that test fails when a field has no description or example, when an entry
here names a field that no longer exists, or when ``docs/formats.md`` differs from what
this script writes now.

Usage (from the top of the clone)::

    .venv/bin/python scripts/gen_formats.py          # rewrite docs/formats.md
    .venv/bin/python scripts/gen_formats.py --check  # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import annotated_types

from edgebench.bench.settings import RunSettings
from edgebench.compress.passes import Param, all_passes
from edgebench.compress.recipe import DataSpec, FidelitySpec, ModelSpec, RecipeSpec, VariantSpec
from edgebench.results.gate import BudgetsFile, BudgetSpec
from edgebench.targets.inventory import FIELDS as BOARD_FIELDS
from edgebench.targets.inventory import BoardSpec
from edgebench.targets.lab import POOL_FIELDS, PoolSpec
from edgebench.workflows.nightly import NightlyTable

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "formats.md"
REQUIRED = "**required**"


@dataclass(frozen=True)
class InventoryTop:
    """The boards file's top level (checked by `parse_inventory`, which has no model class for it)."""

    version: int | None = None
    boards: tuple[dict[str, Any], ...] = ()
    pools: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


# ---- what the models do not say themselves: (class name, field) -> one line --------------------------------

DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("RecipeSpec", "models"): "one `[models.<name>]` table per model to compress (see below)",
    ("RecipeSpec", "out"): "variants folder to write, relative to the recipe file (`compress --variants` overrides it)",
    ("RecipeSpec", "seed"): "seed of the data split, calibration subset, generated inputs and training",
    ("RecipeSpec", "threads"): "torch threads for training passes (0: torch's default; 1 is fastest for small models)",
    ("RecipeSpec", "data"): "data for every model: `[data]` (a model's own `[models.<name>.data]` wins)",
    ("RecipeSpec", "fidelity"): "when a variant counts as degraded, for every model: `[fidelity]`",
    ("DataSpec", "source"): 'an .npz with `x` (and `y`), `"digits"` (built in) or `"generated"` (inputs from '
    "the model's signature and `inputs`/`dims`, no labels)",
    ("DataSpec", "eval_fraction"): "for one npz `source`: the share held out for eval",
    ("DataSpec", "calib_samples"): "calibration samples, taken from the train split",
    ("DataSpec", "train"): "a train .npz (`x`, `y`); goes with `eval`, instead of `source`",
    ("DataSpec", "eval"): "an eval .npz (`x`, `y`); goes with `train`",
    ("DataSpec", "calib"): "a calibration .npz (`x`); default: the first `calib_samples` of `train`",
    ("FidelitySpec", "min_cosine"): "a variant is degraded when an output's cosine to its fp32 parent's falls "
    "below this (default 0.99); recorded in the manifest, and `run` judges the variant by it",
    ("ModelSpec", "source"): "a .onnx, .tflite, .keras or .h5 file (relative to the recipe) or a PyTorch "
    "factory `package.module:function`",
    ("ModelSpec", "train_epochs"): "PyTorch factories only: train this many epochs on the data first",
    ("ModelSpec", "weights"): "PyTorch factories only: a state_dict file to load",
    ("ModelSpec", "data"): "this model's own `[data]` table (same keys as `[data]`)",
    ("ModelSpec", "variants"): "one `[models.<name>.variants.<variant>]` table per variant; the fp32 parent is "
    "always made",
    ("ModelSpec", "inputs"): "input specs by input name, as `edgebench run --input NAME=SPEC`; recorded in the "
    "manifests, so `run` uses them",
    ("ModelSpec", "dims"): "sizes of dynamic dimensions by name, as `edgebench run --dim NAME=SIZE`; recorded in "
    "the manifests",
    ("ModelSpec", "fidelity"): "this model's own `[fidelity]` table",
    ("VariantSpec", "passes"): "the passes, applied in order to the fp32 parent: `{ pass = NAME, PARAM = VALUE }` "
    "(parameters below)",
    ("NightlyTable", "boards"): "boards to measure on, by inventory name (`local` is built in)",
    ("NightlyTable", "recipe"): "a recipe compressed first (unchanged variants are reused); or give `variants`",
    ("NightlyTable", "variants"): "a variants folder measured as it is; or give `recipe`",
    ("NightlyTable", "eval"): 'eval data: `"digits"` (built in) or an .npz (relative to this file)',
    ("NightlyTable", "inventory"): "the boards file (default: `$EDGEBENCH_BOARDS`, else targets/boards.toml)",
    ("NightlyTable", "models"): "only these models (default: every model of the recipe or folder)",
    ("NightlyTable", "baseline"): "a pinned baseline run (id); default: the last accepted state",
    ("NightlyTable", "budgets"): "a budgets file to gate the run with, as `edgebench gate` does",
    ("NightlyTable", "trend_runs"): "nightlies shown in the trends",
    ("NightlyTable", "settings"): "measurement settings: the `[nightly.settings]` table (below)",
    ("BudgetsFile", "baseline"): "the run `max_regression_pct` compares with (a run id, a run file or `latest~N`; "
    "`gate --baseline` overrides it)",
    ("BudgetsFile", "budget"): "the budgets: one `[[budget]]` table each (at least one)",
    ("BudgetSpec", "model"): "models it applies to: a name or a glob pattern",
    ("BudgetSpec", "board"): "boards it applies to: a name or a glob pattern",
    ("BudgetSpec", "variant"): "variants it applies to: a name or a glob pattern",
    ("BudgetSpec", "max_p90_ms"): "p90 latency limit (ms): the geometric mean of the processes' p90 and its 90 % "
    "interval",
    ("BudgetSpec", "max_p99_ms"): "p99 latency limit (ms), decided as `max_p90_ms`",
    ("BudgetSpec", "max_peak_mb"): "peak RSS limit in MiB, the maximum over the processes",
    ("BudgetSpec", "min_accuracy"): 'lowest top-1 on the eval data: a fraction in [0, 1] or a string `"97 %"`',
    ("BudgetSpec", "max_accuracy_drop_pt"): "most top-1 points lost against fp32 on the same board",
    ("BudgetSpec", "max_size_mb"): "largest artifact size in MiB",
    ("BudgetSpec", "max_regression_pct"): "largest slowdown of the median against the baseline run, in %",
    ("BudgetSpec", "max_sustained_p50_ms"): "p50 limit (ms) of the steady state of a `run --sustained` timeline",
    ("BudgetSpec", "max_sustained_p99_ms"): "p99 limit (ms) of the steady state of a `run --sustained` timeline",
    ("BudgetSpec", "max_energy_mj"): "energy per inference limit (mJ), where the board reads its power "
    "(`power_command`) during `run --sustained`",
    ("InventoryTop", "version"): "format version (optional; ignored today)",
    ("InventoryTop", "boards"): "the boards: one `[[boards]]` table each",
    ("InventoryTop", "pools"): "pools of boards behind a labgrid coordinator: one `[pools.<name>]` table each",
}

# (class name, field) -> an example value; validated by tests/unit/test_formats_doc.py
EXAMPLES: dict[tuple[str, str], Any] = {
    ("RecipeSpec", "models"): {"digits": {"source": "edgebench.zoo:digits_cnn_32"}},
    ("RecipeSpec", "out"): "../variants",
    ("RecipeSpec", "seed"): 0,
    ("RecipeSpec", "threads"): 1,
    ("RecipeSpec", "data"): {"source": "digits"},
    ("RecipeSpec", "fidelity"): {"min_cosine": 0.95},
    ("DataSpec", "source"): "digits",
    ("DataSpec", "eval_fraction"): 0.25,
    ("DataSpec", "calib_samples"): 256,
    ("DataSpec", "train"): "train.npz",
    ("DataSpec", "eval"): "eval.npz",
    ("DataSpec", "calib"): "calib.npz",
    ("FidelitySpec", "min_cosine"): 0.95,
    ("ModelSpec", "source"): "detector.onnx",
    ("ModelSpec", "train_epochs"): 2,
    ("ModelSpec", "weights"): "weights.pt",
    ("ModelSpec", "data"): {"source": "generated"},
    ("ModelSpec", "variants"): {"fp16": {"passes": [{"pass": "fp16"}]}},
    ("ModelSpec", "inputs"): {"sr": 16000, "state": "zeros:batchless"},
    ("ModelSpec", "dims"): {"height": 64, "width": 64},
    ("ModelSpec", "fidelity"): {"min_cosine": 0.98},
    ("VariantSpec", "passes"): [{"pass": "prune-channels", "ratio": 0.5}, {"pass": "int8-static"}],
    ("NightlyTable", "boards"): ["local", "farm-1"],
    ("NightlyTable", "recipe"): "recipe.toml",
    ("NightlyTable", "variants"): "../variants",
    ("NightlyTable", "eval"): "digits",
    ("NightlyTable", "inventory"): "boards.toml",
    ("NightlyTable", "models"): ["digits"],
    ("NightlyTable", "baseline"): "20260101T000000Z-ab12cd",
    ("NightlyTable", "budgets"): "budgets.toml",
    ("NightlyTable", "trend_runs"): 14,
    ("NightlyTable", "settings"): {"repeats": 3, "min_time_s": 0.5},
    ("RunSettings", "warmup_min_iters"): 20,
    ("RunSettings", "warmup_min_s"): 0.5,
    ("RunSettings", "min_rounds"): 100,
    ("RunSettings", "min_time_s"): 0.5,
    ("RunSettings", "max_time_s"): 10.0,
    ("RunSettings", "max_rounds"): 100000,
    ("RunSettings", "batch_size"): 4,
    ("RunSettings", "dims"): {"height": 320},
    ("RunSettings", "inputs"): {"sr": 16000},
    ("RunSettings", "quick"): 200,
    ("RunSettings", "seed"): 1,
    ("RunSettings", "min_cosine"): 0.99,
    ("RunSettings", "temp_limit_c"): 70.0,
    ("RunSettings", "freq_drop"): 0.05,
    ("RunSettings", "cooldown_s"): 5.0,
    ("RunSettings", "cooldown_until_c"): 55.0,
    ("RunSettings", "cooldown_max_s"): 120.0,
    ("RunSettings", "timeout_s"): 300.0,
    ("RunSettings", "lock_timeout_s"): 60.0,
    ("RunSettings", "profile"): 50,
    ("RunSettings", "repeats"): 3,
    ("RunSettings", "baseline"): "latest",
    ("RunSettings", "sustained_s"): "10m",
    ("RunSettings", "sustained_window_s"): 2.0,
    ("BudgetsFile", "baseline"): "latest~1",
    ("BudgetsFile", "budget"): [{"model": "digits", "max_p90_ms": 20.0}],
    ("BudgetSpec", "model"): "digits",
    ("BudgetSpec", "board"): "farm-*",
    ("BudgetSpec", "variant"): "int8-*",
    ("BudgetSpec", "max_p90_ms"): 20.0,
    ("BudgetSpec", "max_p99_ms"): 50.0,
    ("BudgetSpec", "max_peak_mb"): 256,
    ("BudgetSpec", "min_accuracy"): "97 %",
    ("BudgetSpec", "max_accuracy_drop_pt"): 1.0,
    ("BudgetSpec", "max_size_mb"): 0.25,
    ("BudgetSpec", "max_regression_pct"): 5.0,
    ("BudgetSpec", "max_sustained_p50_ms"): 25.0,
    ("BudgetSpec", "max_sustained_p99_ms"): 60.0,
    ("BudgetSpec", "max_energy_mj"): 40.0,
    ("BoardSpec", "name"): "pi4",
    ("BoardSpec", "host"): "192.168.1.20",
    ("BoardSpec", "port"): 2222,
    ("BoardSpec", "user"): "pi",
    ("BoardSpec", "identity_file"): "~/.ssh/id_ed25519",
    ("BoardSpec", "python"): "/usr/bin/python3",
    ("BoardSpec", "workdir"): "/home/pi/edgebench",
    ("BoardSpec", "runtimes"): ["onnxruntime", "tflite"],
    ("BoardSpec", "tags"): {"arch": "aarch64", "cpu": "cortex-a72"},
    ("BoardSpec", "threads"): 4,
    ("BoardSpec", "cpu_affinity"): [2, 3],
    ("BoardSpec", "env"): {"OMP_NUM_THREADS": "4"},
    ("BoardSpec", "runtime_options"): {"onnxruntime": {"providers": ["CPUExecutionProvider"]}},
    ("BoardSpec", "cost"): 75.0,
    ("BoardSpec", "power_w"): 6.4,
    ("BoardSpec", "jump_host"): "pi@gateway:2222",
    ("BoardSpec", "known_hosts"): "~/.ssh/known_hosts",
    ("BoardSpec", "password_env"): "PI_PASSWORD",
    ("BoardSpec", "passphrase_env"): "PI_KEY_PASSPHRASE",
    ("BoardSpec", "connect_timeout"): 20.0,
    ("BoardSpec", "power_command"): "cat /sys/class/hwmon/hwmon0/power1_input",
    ("BoardSpec", "power_pattern"): "(?P<value>[0-9]+)",
    ("InventoryTop", "version"): 1,
    ("InventoryTop", "boards"): [{"name": "pi4", "host": "192.168.1.20"}],
    ("InventoryTop", "pools"): {"rpi-lab": {"tags": {"board": "rpi4"}}},
    ("PoolSpec", "coordinator"): "lab.example.com:20408",
    ("PoolSpec", "tags"): {"board": "rpi4"},
}
# a pool's other keys are a board's: the same examples
EXAMPLES.update(
    {
        ("PoolSpec", f.name): EXAMPLES[("BoardSpec", f.name)]
        for f in dataclasses.fields(PoolSpec)
        if ("BoardSpec", f.name) in EXAMPLES
    }
)

# what a default of "not set" means where the model leaves it to the code that reads the file
NOT_SET_MEANS: dict[tuple[str, str], str] = {
    ("BoardSpec", "python"): "`python3`",
    ("BoardSpec", "connect_timeout"): "`10.0`",
    ("BoardSpec", "port"): "22 or the ssh config's",
    ("BoardSpec", "user"): "the ssh config's, else yours",
    ("DataSpec", "eval_fraction"): "`0.25`",
}

# fields whose default is a placeholder: the class's own checks require them (tested: leaving one out fails)
REQUIRED_BY_CHECKS: set[tuple[str, str]] = {
    ("BoardSpec", "name"),
    ("BoardSpec", "host"),
    ("NightlyTable", "boards"),
    ("PoolSpec", "tags"),
}


def _settings_help(cls: type, name: str) -> str | None:
    """A measurement setting's declared help (`edgebench.bench.settings`), with its `edgebench run` flag."""
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}.get(name, {})
    setting = meta.get("setting")
    if setting is None:
        return None
    flag = f" (`edgebench run {setting['flag']}`)" if setting.get("flag") else ""
    return f"{setting['help']}{flag}"


def _board_help(cls: type, name: str) -> str | None:
    """A board field's description from the inventory's own list (`FIELDS`)."""
    return BOARD_FIELDS.get(name)


def _pool_help(cls: type, name: str) -> str | None:
    """A pool field's description from lab's list (`POOL_FIELDS`), else the board field's it is the default of."""
    if name in POOL_FIELDS:
        return POOL_FIELDS[name]
    return f"as in `[[boards]]`: {BOARD_FIELDS[name]}" if name in BOARD_FIELDS else None


# where a class's own descriptions come from (the others use DESCRIPTIONS)
OWN_HELP: dict[str, Callable[[type, str], str | None]] = {
    "RunSettings": _settings_help,
    "BoardSpec": _board_help,
    "PoolSpec": _pool_help,
}


@dataclass(frozen=True)
class Section:
    """One table of a file format, documented from its validating class."""

    heading: str
    cls: type
    note: str = ""


@dataclass(frozen=True)
class Format:
    """One config file: its sections and the example files that show a whole one."""

    title: str
    anchor: str
    intro: str
    examples: tuple[str, ...]
    sections: tuple[Section, ...]


FORMATS = (
    Format(
        "Recipe",
        "recipe",
        "What `edgebench compress RECIPE` makes: each model of the recipe and its variants, written to "
        "`<out>/<model>/<variant>/{model.onnx|model.tflite, manifest.json}`. Paths are relative to the recipe "
        "file. Everything is checked before the first variant is written.",
        ("examples/recipe.toml", "examples/detector.toml"),
        (
            Section("top level", RecipeSpec),
            Section(
                "`[data]` and `[models.<name>.data]`",
                DataSpec,
                "Give `source`, or `train` and `eval` (with an optional `calib`). Without a `[data]` table, "
                "only the passes that need no data run, on generated inputs (fidelity only).",
            ),
            Section("`[fidelity]` and `[models.<name>.fidelity]`", FidelitySpec),
            Section("`[models.<name>]`", ModelSpec),
            Section("`[models.<name>.variants.<variant>]`", VariantSpec),
        ),
    ),
    Format(
        "Nightly",
        "nightly",
        "What `edgebench nightly CONFIG` runs: compress (cached), measure on every board with the last accepted "
        "state re-measured paired, store, compare, report and gate, with one exit code. Paths are relative to "
        "the file. Only the `[nightly]` and `[nightly.settings]` tables may appear.",
        ("examples/nightly.toml",),
        (
            Section(
                "`[nightly]`",
                NightlyTable,
                "Give exactly one of `recipe` and `variants`.",
            ),
            Section(
                "`[nightly.settings]`",
                RunSettings,
                "The measurement settings of `edgebench run` by field name (the flag of each, where `run` has "
                "one, is named). A recipe's `inputs` and `dims` reach its variants without these; these win over them.",
            ),
        ),
    ),
    Format(
        "Budgets",
        "budgets",
        "What `edgebench gate BUDGETS` (and a nightly's `budgets`) checks: each `[[budget]]` applies its limits "
        "to every measurement whose model, board and variant match its patterns. A budget that matches no "
        "result is a failed check.",
        ("examples/budgets.toml", "examples/budgets-strict.toml"),
        (
            Section("top level", BudgetsFile),
            Section("`[[budget]]`", BudgetSpec, "Every budget sets at least one limit (a `max_*` or `min_*` key)."),
        ),
    ),
    Format(
        "Boards",
        "boards",
        "The board inventory: `targets/boards.toml`, the file `$EDGEBENCH_BOARDS` names, or `--inventory FILE`. "
        "`edgebench boards add` and `boards remove` edit it (keeping comments) and `edgebench farm up` writes "
        "one for its boards. The built-in `local` board needs no entry. An `identity_file` must exist when the "
        "file is read.",
        ("examples/boards.toml",),
        (
            Section("top level", InventoryTop),
            Section("`[[boards]]`", BoardSpec, "`name` and `host` are required; `name` may not be `local`."),
            Section(
                "`[pools.<name>]`",
                PoolSpec,
                "A pool is every place of a labgrid coordinator whose tags match `tags`; its other keys are the "
                "defaults each of its boards gets (the `[[boards]]` rules apply). A pool's name may not be a "
                "board's.",
            ),
        ),
    ),
)


# ---- rendering ------------------------------------------------------------------------------------------------


def toml_value(v: Any) -> str:
    """``v`` written as a TOML value (inline tables for mappings)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        items = ", ".join(f"{_toml_key(str(k))} = {toml_value(x)}" for k, x in v.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("-", "").replace("_", "").isalnum() else json.dumps(k)


def _bounds(metadata: typing.Iterable[Any]) -> list[str]:
    """``>= 0``, ``<= 1024``, ... from pydantic ``Field`` metadata (annotated-types objects)."""
    out = []
    for m in metadata:
        for item in getattr(m, "metadata", [m]):
            if isinstance(item, annotated_types.Ge):
                out.append(f">= {_num(item.ge)}")
            elif isinstance(item, annotated_types.Gt):
                out.append(f"> {_num(item.gt)}")
            elif isinstance(item, annotated_types.Le):
                out.append(f"<= {_num(item.le)}")
            elif isinstance(item, annotated_types.Lt):
                out.append(f"< {_num(item.lt)}")
    return out


def _num(x: Any) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def type_text(tp: Any) -> str:
    """A TOML-ish description of an annotation: ``integer (>= 0, <= 1024)``, ``array of strings``, ..."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        inner = type_text(args[0])
        bounds = _bounds(args[1:])
        return f"{inner} ({', '.join(bounds)})" if bounds else inner
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        return " or ".join(type_text(a) for a in kept)
    if origin in (tuple, list):
        item = args[0] if args else Any
        return f"array of {_plural(type_text(item))}"
    if origin is dict:
        value = args[1] if len(args) > 1 else Any
        return "table" if value is Any else f"table of {_plural(type_text(value))}"
    if origin is typing.Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if dataclasses.is_dataclass(tp):
        return "table"
    names = {int: "integer", float: "number", str: "string", bool: "boolean", Path: "string"}
    if tp is Any:
        return "any value"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(text: str) -> str:
    head, sep, rest = text.partition(" (")
    if head in ("table", "array"):
        plural = head + "s"
    elif head.startswith(("table of", "array of", "any")):
        plural = head
    elif " or " in head:
        plural = " or ".join(p + "s" for p in head.split(" or "))
    else:
        plural = head + "s"
    return plural + sep + rest


def default_text(cls: type, f: dataclasses.Field[Any]) -> str:
    """The default as a TOML value, ``not set`` for None, **required** when there is none."""
    if (cls.__name__, f.name) in REQUIRED_BY_CHECKS:
        return REQUIRED
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return REQUIRED
    if value is None:
        means = NOT_SET_MEANS.get((cls.__name__, f.name))
        return f"not set ({means})" if means else "not set"
    if dataclasses.is_dataclass(value):
        return "empty table"
    return f"`{toml_value(value)}`"


def description(cls: type, name: str) -> str | None:
    """The field's description: the model's own where it has one, else `DESCRIPTIONS`."""
    own = OWN_HELP.get(cls.__name__)
    text = own(cls, name) if own is not None else None
    return text if text else DESCRIPTIONS.get((cls.__name__, name))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return "`` " + text + " ``" if "`" in text else f"`{text}`"


def section_rows(section: Section) -> list[str]:
    """The Markdown table of one section: key, type, default, description, example."""
    cls = section.cls
    hints = typing.get_type_hints(cls, include_extras=True)
    rows = ["| key | type | default | description | example |", "| --- | --- | --- | --- | --- |"]
    for f in dataclasses.fields(cls):
        key = (cls.__name__, f.name)
        tp = hints[f.name]
        bounds = _metadata_bounds(f)
        kind = type_text(tp) + (f" ({', '.join(bounds)})" if bounds and "(" not in type_text(tp) else "")
        desc = description(cls, f.name) or ""
        example = _code(f"{f.name} = {toml_value(EXAMPLES[key])}") if key in EXAMPLES else ""
        row = [f"`{f.name}`", kind, default_text(cls, f), desc, example]
        rows.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return rows


def _metadata_bounds(f: dataclasses.Field[Any]) -> list[str]:
    """Bounds declared in a dataclass field's metadata (the measurement settings declare theirs there)."""
    out = []
    for k, op in (("ge", ">="), ("gt", ">"), ("le", "<=")):
        if f.metadata.get(k) is not None:
            out.append(f"{op} {_num(f.metadata[k])}")
    return out


def pass_rows() -> list[str]:
    """One table per compression pass: its parameters (from the pass registry) and an example."""
    lines: list[str] = []
    for name, cls in all_passes().items():
        produces = cls.produces or "the same format"
        lines += ["", f"#### `{name}`", "", f"{cls.summary}. Takes {', '.join(cls.accepts)}, makes {produces}.", ""]
        example: dict[str, Any] = {"pass": name}
        if cls.params:
            lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
            for p in cls.params:
                lines.append(
                    "| "
                    + " | ".join(_cell(c) for c in (f"`{p.name}`", _param_type(p), _param_default(p), p.help))
                    + " |"
                )
            first = next((p for p in cls.params if p.default not in (None, "", [])), None)
            if first is not None:
                example[first.name] = first.default
        else:
            lines.append("No parameters.")
        lines += ["", f"Example: {_code('passes = [' + toml_value(example) + ']')}"]
    return lines


def _param_type(p: Param) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array of strings"}
    text = names.get(p.type, p.type.__name__)
    extra = []
    if p.choices:
        extra.append("one of " + ", ".join(json.dumps(c) for c in p.choices))
    if p.lo is not None:
        extra.append(f">= {_num(p.lo)}")
    if p.hi is not None:
        extra.append(f"<= {_num(p.hi)}")
    return f"{text} ({', '.join(extra)})" if extra else text


def _param_default(p: Param) -> str:
    return "not set" if p.default is None else f"`{toml_value(p.default)}`"


def render() -> str:
    """The whole of ``docs/formats.md`` as this script makes it now."""
    out = [
        "# Config file formats",
        "",
        "<!-- generated by scripts/gen_formats.py from the classes that validate these files: do not edit by "
        "hand; run `.venv/bin/python scripts/gen_formats.py` (tests/unit/test_formats_doc.py checks it) -->",
        "",
        "Every key edgebench reads from a recipe, a nightly config, a budgets file and a boards file, with its "
        "type, default and an example; whole files are in [`examples/`](../examples). The rules are the same for "
        'every file (`edgebench.config`): an unknown key is an error that lists the valid keys (with a "did '
        'you mean"); types are strict as TOML writes them (`"3"` is not an integer, `1` is not a boolean; an '
        "integer is accepted for a number); `nan` and `inf` are refused; names (boards, models, variants, "
        "budget patterns) are one printable line. The first problem is one line naming the file, the table "
        "and the key, and the command exits 1.",
        "",
        "Contents: " + ", ".join(f"[{f.title}](#{f.anchor})" for f in FORMATS) + ", [Passes](#passes).",
    ]
    for fmt in FORMATS:
        files = ", ".join(f"[`{e}`](../{e})" for e in fmt.examples)
        out += ["", f'<a id="{fmt.anchor}"></a>', "", f"## {fmt.title}", "", fmt.intro, "", f"Example: {files}."]
        for section in fmt.sections:
            out += ["", f"### {section.heading}", ""]
            if section.note:
                out += [section.note, ""]
            out += section_rows(section)
        if fmt.anchor == "recipe":
            out += [
                "",
                '<a id="passes"></a>',
                "",
                "### Passes",
                "",
                "The tables of a variant's `passes` array: `pass` names the pass, the other keys are its "
                "parameters (`edgebench compress --list-passes` prints the same). A pass that calibrates or "
                "trains needs a `[data]` table.",
            ]
            out += pass_rows()
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/formats.md, or with ``--check`` say whether it is up to date (exit 1 when not)."""
    parser = argparse.ArgumentParser(description="Write docs/formats.md from the config models.")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/formats.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run .venv/bin/python scripts/gen_formats.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
