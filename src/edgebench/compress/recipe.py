"""Compression recipes (TOML) and `run_recipe`, the engine behind `edgebench compress RECIPE`.

::

    out = "variants"                       # variants root, relative to this file
    seed = 0                               # 0 to 2**32-1
    threads = 0                            # torch threads for training passes, 0 to 1024 (0: torch's default;
                                           # 1 is far faster for small models on a busy machine)

    [data]                                 # an npz with x (and y), "digits" (built in), or "generated"
    source = "digits"                      # ("generated": inputs made from the input specs, no labels)
    eval_fraction = 0.25                   # for one npz: the share held out for eval
    calib_samples = 256                    # calibration samples, taken from the train split
    # or: train = "train.npz", calib = "calib.npz", eval = "eval.npz"

    [fidelity]                             # optional (also per model: [models.M.fidelity])
    min_cosine = 0.99                      # a variant is degraded when an output's cosine to its
                                           # fp32 parent's falls below this (the default 0.99)

    [models.digits]
    source = "edgebench.zoo:digits_cnn"    # or a .onnx / .keras / .h5 / .tflite file
    train_epochs = 8                       # PyTorch factories only: train first
    # weights = "weights.pt"               # PyTorch state_dict to load

    # inputs = { sr = 16000, state = "zeros:batchless" }   # input specs, as `edgebench run --input`
    # dims = { height = 320, width = 320 }                  # dynamic dims, as `edgebench run --dim` (1 to 2**20)
                                           # (both recorded in the manifests' run_defaults: `run`
                                           # measures the variants with them unless it names its own)

    [models.digits.variants.int8-static]
    passes = [{ pass = "int8-static", per_channel = true, max_accuracy_drop = 1.0 }]

    [models.digits.variants.pruned-int8]
    passes = [{ pass = "prune-channels", ratio = 0.5 }, { pass = "int8-static" }]

Every model also gets its ``fp32`` parent variant. Everything is checked (passes,
parameters, formats, files, data) before the first variant is written.

Without a ``[data]`` table, .onnx and .tflite models get generated eval inputs (for fidelity
only) and only passes that need no data may run (fp16, int8-dynamic, tflite-quantize dynamic
and weight-only); a pass that calibrates or trains asks for ``[data]``. The built-in digits
are used only when named (``source = "digits"``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pydantic

from edgebench import __version__, agent
from edgebench import data as builtin_data
from edgebench.compress import metrics, sources
from edgebench.compress.api import Chain, build_variant, resolve_chain
from edgebench.compress.passes import Artifact, Data, check_chain
from edgebench.compress.variant import MANIFEST, Variant, load_variant, variant_dir
from edgebench.config import DimSize, Name, load_toml, validate
from edgebench.errors import ConfigError, UserError
from edgebench.fsutil import ensure_writable_dir
from edgebench.model import MANIFEST_SCHEMA

PARENT = "fp32"


@dataclass
class ModelPlan:
    """One model of a recipe: its source, data and the variants to make."""

    source: sources.Source
    data: Data
    variants: dict[str, Chain]
    inputs: dict[str, str] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    min_cosine: float | None = None  # the degraded threshold; None: `agent.DEFAULT_MIN_COSINE`


@dataclass
class Recipe:
    """A parsed, checked recipe."""

    path: Path
    out: Path
    seed: int
    models: list[ModelPlan]
    threads: int = 0
    warnings: list[str] = field(default_factory=list)  # printed by the CLI before any work

    def count(self) -> int:
        """Variants to consider, fp32 parents included."""
        return sum(1 + len(m.variants) for m in self.models)


@dataclass
class Outcome:
    """What `run_recipe` did for each variant: ``built``, ``skipped`` (unchanged) or ``failed``."""

    built: list[Variant] = field(default_factory=list)
    skipped: list[Variant] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _split(x: Any, y: np.ndarray | None, frac: float, seed: int) -> tuple[Any, Any, Any, Any]:
    n = metrics.n_samples(x)
    idx = np.random.default_rng(seed).permutation(n)
    k = max(1, round(n * frac))
    ev, tr = idx[:k], idx[k:]
    return (
        metrics.take(x, tr),
        (y[tr] if y is not None else None),
        metrics.take(x, ev),
        (y[ev] if y is not None else None),
    )


MAX_THREADS = 1024  # torch threads: more is a typo (2**63-1 ended in a traceback from torch)
MAX_EPOCHS = 100_000
MAX_SAMPLES = 10_000_000
# an input spec as `edgebench run --input` takes it; a TOML number or boolean is taken as written
InputText = Annotated[str, pydantic.BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else str(v))]


@dataclass(frozen=True)
class DataSpec:
    """A ``[data]`` table: the built-in digits, one npz split here, or train/eval(/calib) npz files."""

    source: str | None = None
    eval_fraction: Annotated[float, pydantic.Field(ge=0.01, le=0.9)] | None = None
    calib_samples: Annotated[int, pydantic.Field(ge=1, le=MAX_SAMPLES)] = 256
    train: str | None = None
    eval: str | None = None
    calib: str | None = None

    def __post_init__(self) -> None:
        files = self.train is not None or self.eval is not None
        if files and (self.train is None or self.eval is None):
            raise ValueError(f"field '{'eval' if self.eval is None else 'train'}' is missing: give train and eval")
        if files and (self.source is not None or self.eval_fraction is not None):
            raise ValueError("fields 'source'/'eval_fraction' do not go with 'train'/'eval': keep one of the two")


@dataclass(frozen=True)
class FidelitySpec:
    """A ``[fidelity]`` table: when a variant's outputs are too far from its parent's to be usable."""

    min_cosine: Annotated[float, pydantic.Field(ge=0, le=1)] | None = None  # as `run --min-cosine`


@dataclass(frozen=True)
class VariantSpec:
    """A ``[models.<m>.variants.<v>]`` table: the pass tables, checked against the registry later."""

    passes: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ModelSpec:
    """A ``[models.<m>]`` table."""

    source: str
    train_epochs: Annotated[int, pydantic.Field(ge=0, le=MAX_EPOCHS)] = 0
    weights: str | None = None
    data: DataSpec | None = None
    variants: dict[Name, VariantSpec] = field(default_factory=dict)
    inputs: dict[str, InputText] = field(default_factory=dict)  # NAME = SPEC, as `run --input` (bench.inputs)
    dims: dict[str, DimSize] = field(default_factory=dict)  # NAME = SIZE, as --dim (1 to config.DIM_MAX)
    fidelity: FidelitySpec | None = None  # overrides the recipe's [fidelity]


@dataclass(frozen=True)
class RecipeSpec:
    """A whole recipe file, as written."""

    models: dict[Name, ModelSpec]
    out: str = "variants"
    seed: Annotated[int, pydantic.Field(ge=0, le=2**32 - 1)] = 0  # numpy's seed range
    threads: Annotated[int, pydantic.Field(ge=0, le=MAX_THREADS)] = 0
    data: DataSpec = DataSpec()
    fidelity: FidelitySpec = FidelitySpec()


GENERATED = "generated"
EVAL_GENERATED = 16  # generated eval samples (fidelity only: there are no labels)
InputSpecs = Callable[[dict[str, str], Path], dict[str, Any]]  # recipe inputs -> agent specs (bench.inputs)


def no_data(spec: DataSpec) -> bool:
    """True for a recipe (or model) with no ``[data]`` table at all."""
    return spec.source is None and spec.train is None


def parse_data(spec: DataSpec, base: Path, seed: int) -> Data | None:
    """The data splits described by a ``[data]`` table; None for data made per model (no table, "generated")."""
    if no_data(spec) or spec.source == GENERATED:
        return None
    if spec.train is not None and spec.eval is not None:
        x_tr, y_tr = sources.load_inputs(base / spec.train)
        x_ev, y_ev = sources.load_inputs(base / spec.eval)
        x_ca = sources.load_inputs(base / spec.calib)[0] if spec.calib else x_tr
    else:
        src = spec.source or "digits"
        frac = 0.25 if spec.eval_fraction is None else spec.eval_fraction
        if src == "digits":
            s = builtin_data.digits(frac, seed)
            x_tr, y_tr, x_ev, y_ev = s.x_train, s.y_train, s.x_test, s.y_test
        else:
            x, y = sources.load_inputs(base / src)
            x_tr, y_tr, x_ev, y_ev = _split(x, y, frac, seed)
        x_ca = x_tr
    x_ca = metrics.take(x_ca, slice(0, spec.calib_samples))
    return Data(x_train=x_tr, y_train=y_tr, x_calib=x_ca, x_eval=x_ev, y_eval=y_ev)


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_names(where: str, src: sources.Source, inputs: Mapping[str, str], dims: Mapping[str, int]) -> None:
    """Refuse an ``inputs`` or ``dims`` name the model file does not have (a typo would be ignored silently).

    Raises:
        ConfigError: naming the table, the name, the closest real one and every real one.
    """
    if not (inputs or dims) or src.path is None or src.fmt not in ("onnx", "tflite"):
        return  # a PyTorch factory or Keras model: its inputs are known once exported
    sig = sources.model_signature(src)
    names = [n for n, _, _ in sig]
    for n in inputs:
        if n not in names:
            raise ConfigError(
                f"{where} inputs: no input {n!r} in {src.path.name}{_hint(n, names)}; "
                f"its inputs are: {', '.join(names)}"
            )
    named = sorted({d for _, shape, _ in sig for d in shape if isinstance(d, str) and not agent.unnamed_dim(d)})
    axes = [f"{n}:{i}" for n, shape, _ in sig for i in range(len(shape))]
    unnamed = ["?"] if any(agent.unnamed_dim(d) for _, shape, _ in sig for d in shape) else []
    for d in dims:
        if d not in (*named, *axes, *unnamed):
            raise ConfigError(
                f"{where} dims: no dynamic dimension {d!r} in {src.path.name}{_hint(d, [*named, *axes])}; "
                f"its dims are: {', '.join(named + unnamed) or 'none'} "
                f"(or INPUT:AXIS, e.g. {axes[0] if axes else 'x:1'})"
            )


def parse_passes(spec: VariantSpec, where: str) -> list[tuple[str, dict[str, Any]]]:
    """``[(pass name, params), ...]`` from a variant's ``passes`` array."""
    steps = []
    for i, step in enumerate(spec.passes):
        if not isinstance(step.get("pass"), str):
            raise ConfigError(
                f'{where} field \'passes[{i}]\' must be a table with a "pass" name, e.g. {{ pass = "int8-static" }}'
            )
        steps.append((step["pass"], {k: v for k, v in step.items() if k != "pass"}))
    if not steps:
        raise ConfigError(f"{where} field 'passes' is empty: list at least one pass")
    return steps


def load_recipe(path: Path, out: Path | None = None, input_specs: InputSpecs | None = None) -> Recipe:
    """Parse and check a recipe: passes, parameters, chain formats, model files and data.

    ``input_specs`` turns a model's ``inputs`` table into agent specs for generated data
    (`edgebench.workflows.recipes.load`, which `compress` and `nightly` both use, passes
    `bench.inputs`' parser; without it only models with no ``inputs`` get generated data).

    Raises:
        ConfigError: bad TOML, unknown table, field, pass or parameter (naming file, table, field).
        ModelError: a file that is not a model, or a pass that cannot apply to the model's format.
        DataError: data that does not fit a model.
    """
    path = Path(path)
    doc = validate(RecipeSpec, load_toml(path), f"{path}:")
    base = path.parent
    root = out if out is not None else base / doc.out
    if not doc.models:
        raise ConfigError(f"{path}: [models] has no models: add a [models.<name>] table")
    cache: dict[DataSpec, Data | None] = {}
    plans = []
    notes: list[str] = []
    for name, model in doc.models.items():
        spec = model.data or doc.data
        if spec not in cache:
            cache[spec] = parse_data(spec, base, doc.seed)
        src = sources.detect(name, model.source, base)
        src.train_epochs = model.train_epochs
        src.weights = base / model.weights if model.weights else None
        variants: dict[str, Chain] = {}
        for vname, vspec in model.variants.items():
            where = f"{path}: [models.{name}.variants.{vname}]"
            if vname == PARENT:
                raise ConfigError(f"{where} is reserved: every model gets its {PARENT} parent; rename the variant")
            steps = parse_passes(vspec, where)
            try:
                chain = resolve_chain(steps)
            except ConfigError as exc:
                raise ConfigError(f"{where} {exc}") from None
            check_chain(src.fmt, chain, where)
            wants = next((p.name for p, params in chain if p.needs_data(params)), None)
            if wants and no_data(spec):
                raise ConfigError(
                    f"{where} pass {wants} calibrates or trains on data and the recipe has no [data] table: add "
                    f'[data] source = "data.npz" (your inputs), "{GENERATED}" (made from the input specs: '
                    'accuracy then unknown) or "digits"'
                )
            variants[vname] = chain
        data = cache[spec]
        check_names(f"{path}: [models.{name}]", src, model.inputs, model.dims)
        if data is None:
            if model.inputs and input_specs is None:
                raise ConfigError(f"{path}: [models.{name}] inputs need `edgebench compress` to make generated data")
            try:
                specs = input_specs(dict(model.inputs), base) if input_specs and model.inputs else {}
            except UserError as exc:  # the spec parser's message, placed in the recipe
                raise type(exc)(f"{path}: [models.{name}] inputs: {exc}") from None
            n_calib = spec.calib_samples if spec.source == GENERATED else 1
            data = sources.generated_data(src, specs, dict(model.dims), n_calib, EVAL_GENERATED, doc.seed)
            if spec.source == GENERATED:
                notes.append(
                    f"model {name!r}: calibration and fidelity use generated inputs: accuracy is unknown, and "
                    "int8 calibrated on them may not fit real data"
                )
        fid = model.fidelity if model.fidelity and model.fidelity.min_cosine is not None else doc.fidelity
        plans.append(ModelPlan(src, data, variants, dict(model.inputs), dict(model.dims), fid.min_cosine))
    for plan in plans:  # files and data last, once the recipe itself is known to be right
        sources.open_source(plan.source, plan.data, doc.seed, train=False)
    return Recipe(path, root, doc.seed, plans, doc.threads, notes)


def run_defaults(plan: ModelPlan) -> dict[str, Any]:
    """The manifest's ``run_defaults``: the model's ``inputs`` and ``dims``, which `edgebench run` measures its
    variants with unless the run's own ``--input``/``--dim`` name them ({} when the recipe gives none)."""
    out = {"inputs": dict(plan.inputs), "dims": dict(plan.dims)}
    return {"run_defaults": {k: v for k, v in out.items() if v}} if plan.inputs or plan.dims else {}


def variant_hash(
    source_hash: str, data_hash: str, chain: Chain, seed: int, min_cosine: float | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """The content hash that decides whether a variant must be rebuilt (a new threshold re-marks degraded,
    new ``run_defaults`` are written to the manifest)."""
    doc: dict[str, Any] = {
        "source": source_hash,
        "data": data_hash,
        "passes": [[p.name, p.record(params)] for p, params in chain],
        "seed": seed,
        "schema": MANIFEST_SCHEMA,
        "edgebench": __version__,
    }
    if min_cosine is not None:  # only when given: recipes without [fidelity] keep their variants' hashes
        doc["min_cosine"] = min_cosine
    if defaults:  # likewise: only recipes with inputs or dims
        doc.update(defaults)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _current(folder: Path, h: str) -> Variant | None:
    if not (folder / MANIFEST).is_file():
        return None
    try:
        v = load_variant(folder)
    except UserError:
        return None
    return v if v.manifest.extra.get("input_hash") == h else None


def run_recipe(
    recipe: Recipe,
    *,
    force: bool = False,
    on_step: Callable[[str], None] = lambda _m: None,
    on_done: Callable[[str, str], None] = lambda _n, _s: None,
) -> Outcome:
    """Make every variant of a recipe, skipping the unchanged ones.

    A failing variant is recorded in ``Outcome.failed`` and the others go on; its folder
    is not created (or the previous one is kept).

    Args:
        recipe: from `load_recipe`.
        force: rebuild even unchanged variants.
        on_step: one-line progress messages.
        on_done: called with (``model/variant``, ``built|skipped|failed``).
    """
    res = Outcome()
    ensure_writable_dir(recipe.out, "variants folder")
    if recipe.threads:
        import torch

        torch.set_num_threads(recipe.threads)
    for plan in recipe.models:
        src, name = plan.source, plan.source.name
        s_hash, d_hash = src.content_hash(), sources.data_hash(plan.data)
        todo: list[tuple[str, Chain]] = [(PARENT, []), *plan.variants.items()]
        defaults = run_defaults(plan)
        hashes = {v: variant_hash(s_hash, d_hash, chain, recipe.seed, plan.min_cosine, defaults) for v, chain in todo}
        current = {v: None if force else _current(variant_dir(recipe.out, name, v), hashes[v]) for v, _ in todo}
        art: Artifact | None = None
        ref: np.ndarray | None = None
        parent: Variant | None = None
        siblings: list[Variant] = []
        for vname, chain in todo:
            key = f"{name}/{vname}"
            cur = current[vname]
            if cur is not None:
                siblings.append(cur)
                res.skipped.append(cur)
                on_done(key, "skipped")
                continue
            try:
                if art is None:
                    on_step(f"{name}: loading the source model")
                    art = sources.open_source(src, plan.data, recipe.seed)
                if ref is None and vname != PARENT:
                    parent = load_variant(variant_dir(recipe.out, name, PARENT))
                    ref = metrics.run_artifact(parent.format, parent.artifact, plan.data.x_eval)
                full = chain if vname != PARENT else _parent_chain(art)
                v = build_variant(
                    model=name,
                    variant=vname,
                    source=art,
                    chain=full,
                    data=plan.data,
                    final=variant_dir(recipe.out, name, vname),
                    parent=None if vname == PARENT else PARENT,
                    ref=ref,
                    seed=recipe.seed,
                    log=on_step,
                    extra={"input_hash": hashes[vname], "source": src.spec, **defaults},
                    parent_variant=parent,
                    siblings=[s for s in siblings if s.name != PARENT],
                    min_cosine=plan.min_cosine,
                )
                siblings.append(v)
                res.built.append(v)
                on_done(key, "built")
            except UserError as exc:
                res.failed[key] = str(exc)
                on_done(key, "failed")
            except Exception as exc:  # one variant's crash is data, not the end of the run
                tail = traceback.format_exc().strip().splitlines()[-1]
                res.failed[key] = f"{type(exc).__name__} in a pass: {tail[:300]}"
                on_done(key, "failed")
            if vname == PARENT and key in res.failed:
                for other, _ in todo[1:]:
                    if current[other] is None:
                        res.failed[f"{name}/{other}"] = f"skipped: the {PARENT} parent failed"
                        on_done(f"{name}/{other}", "failed")
                break
    return res


def _parent_chain(art: Artifact) -> Chain:
    """The fp32 parent: Keras models are converted to float32 TFLite; others are used (or exported) as is."""
    if art.fmt == "keras":
        return resolve_chain([("tflite-convert", {"mode": "float32"})])
    return []
