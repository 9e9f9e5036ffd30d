"""The `Pass` base class and its registry (Olive style).

A pass is one compression technique. It declares the formats it accepts and produces
and its parameters (`Param`: type, default, description, choices). Subclasses register
themselves by ``name``; `get_pass` and `resolve_params` fail loudly on unknown names,
listing the valid ones. A pass never mutates its input: ``run`` writes new files into
``ctx.work`` and returns a new `Artifact`.

Formats: ``torch`` (an ``nn.Module`` in memory), ``onnx``, ``keras`` (a .keras/.h5
file) and ``tflite``. A chain ending in ``torch`` is exported to ONNX by the runner.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pydantic

from edgebench.config import validate
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


@dataclass(frozen=True)
class Param:
    """One declared parameter of a pass.

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

    def annotation(self) -> Any:
        """The pydantic type of this parameter: its type, choices and bounds (``None`` allowed when the default is)."""
        item: Any = Literal[self.choices] if self.choices is not None else self.type
        tp: Any = list[item] if self.type is list else item
        if self.type in (int, float) and (self.lo is not None or self.hi is not None):
            tp = Annotated[tp, pydantic.Field(ge=self.lo, le=self.hi)]
        return tp | None if self.default is None else tp

    def check(self, pass_name: str, value: Any) -> Any:
        """The value converted to the declared type, or a `ConfigError` naming the problem."""
        return _checked(pass_name, (self,), {self.name: value})[self.name]


class Pass:
    """Base of every compression technique; subclasses set the class attributes and ``run``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    accepts: ClassVar[tuple[str, ...]] = ()
    produces: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    registry: ClassVar[dict[str, type[Pass]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Pass.registry[cls.name] = cls

    def output_format(self, fmt: str) -> str:
        """The format this pass produces from ``fmt`` (``""`` in ``produces`` keeps it)."""
        return self.produces or fmt

    def run(self, src: Artifact, params: dict[str, Any], ctx: Context) -> Artifact:
        """Apply the technique; never mutate ``src``."""
        raise NotImplementedError


def load_builtin() -> None:
    """Import the modules that define the built-in passes (they register themselves)."""
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


def all_passes() -> dict[str, type[Pass]]:
    """Every registered pass by name."""
    load_builtin()
    return dict(sorted(Pass.registry.items()))


def get_pass(name: str) -> Pass:
    """An instance of the pass called ``name``.

    Raises:
        ConfigError: if no pass has that name (lists the valid ones).
    """
    passes = all_passes()
    if name not in passes:
        raise ConfigError(f"unknown pass {name!r}; valid passes: {', '.join(passes)}")
    return passes[name]()


def resolve_params(p: Pass, given: dict[str, Any]) -> dict[str, Any]:
    """Given parameters checked against the pass's declaration, with defaults filled in.

    Raises:
        ConfigError: on an unknown parameter (lists the valid ones) or a bad value.
    """
    declared = {d.name: d for d in p.params}
    for key in given:
        if key not in declared:
            valid = ", ".join(declared) or "(none)"
            raise ConfigError(f"pass '{p.name}' has no parameter {key!r}; valid parameters: {valid}")
    return _checked(p.name, p.params, given)


def _checked(pass_name: str, params: tuple[Param, ...], given: dict[str, Any]) -> dict[str, Any]:
    """Validate ``given`` with the config adapter (one pydantic model per parameter list, built once)."""
    key = tuple(id(d) for d in params)  # declarations live as long as their pass class
    if key not in _MODELS:
        fields: Any = {d.name: (d.annotation(), d.default) for d in params}
        _MODELS[key] = pydantic.create_model(f"Params_{pass_name}", __config__=_STRICT, **fields)
    return dict(validate(_MODELS[key], given, f"pass '{pass_name}'"))


_STRICT = pydantic.ConfigDict(extra="forbid")
_MODELS: dict[tuple[int, ...], type[pydantic.BaseModel]] = {}


def check_chain(source_fmt: str, chain: list[tuple[Pass, dict[str, Any]]], where: str) -> str:
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


def _hint(p: Pass, fmt: str) -> str:
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
