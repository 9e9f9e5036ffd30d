"""The `Pass` base class and its registry (Olive style).

A pass is one compression technique. It declares the formats it accepts and produces,
and its parameters once, as a frozen dataclass named in its base class::

    @dataclass(frozen=True)
    class PruneParams:
        sparsity: float = param(0.5, "fraction of weights set to zero", lo=0.0, hi=0.99)
        scope: Literal["global", "layer"] = param("global", "rank weights globally or per layer")

    class MagnitudePrune(Pass[PruneParams]):
        def run(self, src: Artifact, params: PruneParams, ctx: Context) -> Artifact:
            ... params.sparsity ...                       # mypy checks the attribute and its type

The field's type gives the parameter's type (``Literal`` for choices, ``tuple[str, ...]`` for
a list), `param` its default, description and bounds; `Pass.params` (the `Param` records
``--list-passes`` and ``docs/formats.md`` show) is read from the dataclass. Parameters are
checked by `edgebench.config.validate`, the one validator of every config file.

Subclasses register themselves by ``name``; `get_pass` and `resolve_params` fail loudly on
unknown names, listing the valid ones. A pass never mutates its input: ``run`` writes new
files into ``ctx.work`` and returns a new `Artifact`.

Formats: ``torch`` (an ``nn.Module`` in memory), ``onnx``, ``keras`` (a .keras/.h5
file) and ``tflite``. A chain ending in ``torch`` is exported to ONNX by the runner.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np

from edgebench.config import fields_of, validate
from edgebench.errors import ConfigError, ModelError

FORMATS = ("torch", "onnx", "keras", "tflite")
BUILTIN_MODULES = (
    "edgebench.compress.quantize",
    "edgebench.compress.tflite",
    "edgebench.compress.prune",
    "edgebench.compress.distill",
)

Inputs = Any  # np.ndarray, or dict[str, np.ndarray] for models with several inputs


@dataclass
class Artifact:
    """What flows between passes: a model in one format plus what passes learned about it.

    Attributes:
        fmt: one of `FORMATS`.
        path: the model file (onnx, keras, tflite).
        module: the torch module (fmt ``torch``).
        facts: manifest fields passes add (``sparsity``, ``notes``, ``distill``, ...).
    """

    fmt: str
    path: Path | None = None
    module: Any = None
    facts: dict[str, Any] = field(default_factory=dict)

    def derive(self, fmt: str, path: Path | None = None, module: Any = None, **facts: Any) -> Artifact:
        """A new artifact that keeps this one's facts and adds ``facts``."""
        merged = {**self.facts, **facts}
        notes = list(self.facts.get("notes", [])) + list(facts.get("notes", []))
        if notes:
            merged["notes"] = notes
        return Artifact(fmt, path, module, merged)


@dataclass
class Data:
    """The data a chain may use: train (fine-tuning), calib (calibration), eval (accuracy)."""

    x_train: Inputs
    y_train: np.ndarray | None
    x_calib: Inputs
    x_eval: Inputs
    y_eval: np.ndarray | None


@dataclass
class Context:
    """Where and with what a pass runs.

    Attributes:
        work: a private folder for the pass's output files.
        data: the model's data splits.
        seed: random seed for training passes.
        log: called with one-line progress messages.
    """

    work: Path
    data: Data
    seed: int = 0
    log: Callable[[str], None] = lambda _msg: None
    counter: list[int] = field(default_factory=lambda: [0])

    def new_path(self, suffix: str) -> Path:
        """A fresh file name in ``work``."""
        self.counter[0] += 1
        return self.work / f"step{self.counter[0]}{suffix}"


def label(path: Path, ctx: Context) -> str:
    """How messages name a model file: its path, or "the output of the previous pass" for temp files."""
    return "the output of the previous pass" if ctx.work in path.parents else str(path)


def param(default: Any, help: str, *, lo: float | None = None, hi: float | None = None) -> Any:
    """A field of a pass's parameter dataclass.

    Args:
        default: used when the recipe omits it (``None``: "not set"; a tuple for a list).
        help: one line saying what it does (``--list-passes``, ``docs/formats.md``).
        lo: minimum for numbers (pydantic reads it from the field's metadata as ``ge``).
        hi: maximum for numbers (``le``).
    """
    bounds = {k: v for k, v in (("ge", lo), ("le", hi)) if v is not None}
    return field(default=default, metadata={"description": help, **bounds})


@dataclass(frozen=True)
class NoParams:
    """The parameters of a pass that takes none."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of a pass, as read from its parameter dataclass (for listings and docs).

    Attributes:
        name: the key in a recipe.
        type: ``bool``, ``int``, ``float``, ``str`` or ``list`` (of strings).
        default: used when the recipe omits it (``None`` means "not set").
        help: one line saying what it does.
        choices: allowed values (for ``str``, or the items of a ``list``).
        lo: minimum for numbers.
        hi: maximum for numbers.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    lo: float | None = None
    hi: float | None = None


def declared(params_type: type[Any]) -> tuple[Param, ...]:
    """The `Param` records of a parameter dataclass, in field order."""
    hints = typing.get_type_hints(params_type)
    out = []
    for f in dataclasses.fields(params_type):
        tp: Any = hints[f.name]
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # X | None
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        kind: type = list if typing.get_origin(tp) is tuple else tp
        item = typing.get_args(tp)[0] if kind is list else tp
        choices = typing.get_args(item) if typing.get_origin(item) is Literal else None
        if choices is not None and kind is not list:
            kind = type(choices[0])
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        out.append(
            Param(f.name, kind, default, f.metadata["description"], choices, f.metadata.get("ge"), f.metadata.get("le"))
        )
    return tuple(out)


P = TypeVar("P")


class Pass(Generic[P]):
    """Base of every compression technique; subclasses name their parameter dataclass (``Pass[Params]``),
    set the class attributes and ``run``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    accepts: ClassVar[tuple[str, ...]] = ()
    produces: ClassVar[str] = ""
    params_type: ClassVar[type[Any]] = NoParams  # from ``Pass[...]`` in the class's bases
    params: ClassVar[tuple[Param, ...]] = ()  # read from ``params_type``
    registry: ClassVar[dict[str, type[Pass[Any]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            args = typing.get_args(base)
            if (
                typing.get_origin(base) is Pass
                and args
                and isinstance(args[0], type)
                and dataclasses.is_dataclass(args[0])
            ):
                cls.params_type = args[0]
                cls.params = declared(args[0])
        if cls.name:
            Pass.registry[cls.name] = cls

    def output_format(self, fmt: str) -> str:
        """The format this pass produces from ``fmt`` (``""`` in ``produces`` keeps it)."""
        return self.produces or fmt

    def parse(self, given: Mapping[str, Any]) -> P:
        """``given`` checked against the parameter dataclass, with defaults filled in (see `resolve_params`)."""
        valid = fields_of(self.params_type)
        for key in given:
            if key not in valid:
                raise ConfigError(
                    f"pass '{self.name}' has no parameter {key!r}; valid parameters: {', '.join(valid) or '(none)'}"
                )
        made: P = validate(self.params_type, given, f"pass '{self.name}'")
        return made

    def record(self, params: P) -> dict[str, Any]:
        """The parameters as the manifest records them (and the recipe hashes them): lists as lists."""
        values = {f.name: getattr(params, f.name) for f in dataclasses.fields(self.params_type)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def needs_data(self, params: P) -> bool:
        """Whether the pass calibrates or trains on data with these parameters (most run on the model alone)."""
        return False

    def run(self, src: Artifact, params: P, ctx: Context) -> Artifact:
        """Apply the technique; never mutate ``src``."""
        raise NotImplementedError


def load_builtin() -> None:
    """Import the modules that define the built-in passes (they register themselves)."""
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


def all_passes() -> dict[str, type[Pass[Any]]]:
    """Every registered pass by name."""
    load_builtin()
    return dict(sorted(Pass.registry.items()))


def get_pass(name: str) -> Pass[Any]:
    """An instance of the pass called ``name``.

    Raises:
        ConfigError: if no pass has that name (lists the valid ones).
    """
    passes = all_passes()
    if name not in passes:
        raise ConfigError(f"unknown pass {name!r}; valid passes: {', '.join(passes)}")
    return passes[name]()


def resolve_params(p: Pass[P], given: Mapping[str, Any]) -> P:
    """Given parameters checked against the pass's declaration, with defaults filled in.

    Raises:
        ConfigError: on an unknown parameter (lists the valid ones) or a bad value.
    """
    return p.parse(given)


def check_chain(source_fmt: str, chain: Sequence[tuple[Pass[Any], Any]], where: str) -> str:
    """The format at the end of a chain, or a `ModelError` if a pass cannot apply.

    Args:
        source_fmt: the format the chain starts from.
        chain: passes with their resolved parameters.
        where: names the model and variant in messages.
    """
    fmt = source_fmt
    for p, _params in chain:
        if fmt == "torch" and "torch" not in p.accepts and "onnx" in p.accepts:
            fmt = "onnx"  # the runner exports to ONNX in between
        if fmt not in p.accepts:
            raise ModelError(
                f"{where}: pass '{p.name}' cannot apply to a {fmt} model (it takes {', '.join(p.accepts)}): "
                f"{_hint(p, fmt)}"
            )
        fmt = p.output_format(fmt)
    return "onnx" if fmt == "torch" else fmt


def _hint(p: Pass[Any], fmt: str) -> str:
    if "torch" in p.accepts and fmt in ("onnx", "tflite", "keras"):
        return "give the PyTorch model as `package.module:factory` instead, or put this pass before any export"
    return "use a pass made for this format (see `edgebench compress --list-passes`)"


def describe_passes() -> list[dict[str, Any]]:
    """Every pass with its formats and parameters, for `--list-passes` and docs."""
    out = []
    for name, cls in all_passes().items():
        out.append(
            {
                "pass": name,
                "summary": cls.summary,
                "accepts": list(cls.accepts),
                "produces": cls.produces or "same",
                "params": [
                    {k: v for k, v in dataclasses.asdict(d).items() if v is not None} | {"type": d.type.__name__}
                    for d in cls.params
                ],
            }
        )
    return out
