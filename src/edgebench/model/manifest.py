"""A variant's manifest.json: parent, pass chain, sha256, bytes, model facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgebench.model.base import JSONObject, _emit, _extra, _num

# ------------------------------------------------------------------------------- manifest


@dataclass(frozen=True, slots=True)
class PassStep:
    """One step of a variant's pass chain: the pass's name and its parameters."""

    name: str
    params: JSONObject = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: JSONObject) -> PassStep:
        """Read a ``passes`` entry (``{"pass": name, "params": {...}}``)."""
        return cls(name=d["pass"], params=d.get("params") or {})

    def to_json(self) -> dict[str, Any]:
        """The ``passes`` entry."""
        return {"pass": self.name, "params": dict(self.params)}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A model input or output: name, shape (ints, or names of free dims) and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    @classmethod
    def from_json(cls, d: JSONObject) -> TensorSpec:
        """Read an ``inputs``/``outputs`` entry."""
        return cls(name=d["name"], shape=tuple(d["shape"]), dtype=d["dtype"])

    def to_json(self) -> dict[str, Any]:
        """The ``inputs``/``outputs`` entry."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


_MANIFEST_KEYS = (
    "schema", "model", "variant", "format", "artifact", "sha256", "bytes", "parent", "passes", "created",
    "inputs", "outputs", "params",
)  # fmt: skip
MANIFEST_SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a variant's ``manifest.json`` holds.

    ``extra`` carries what a pass adds (``flops``, ``sparsity``, ``accuracy``,
    ``fidelity``, ``zip_bytes``...), in the order it was written, and ``run_defaults``: the
    ``inputs`` and ``dims`` a recipe gave its model, which `edgebench run` measures it with.
    """

    model: str
    variant: str
    format: str
    artifact: str
    sha256: str
    bytes: int
    parent: str | None = None
    passes: tuple[PassStep, ...] = ()
    created: str = ""
    inputs: tuple[TensorSpec, ...] | None = None
    outputs: tuple[TensorSpec, ...] | None = None
    params: int | None = None
    schema: int = MANIFEST_SCHEMA
    extra: JSONObject = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        """Host-side top-1 accuracy the pass measured, or None."""
        a = self.extra.get("accuracy")
        return _num(a.get("top1")) if isinstance(a, Mapping) else _num(a)

    @property
    def min_cosine(self) -> float | None:
        """The threshold this variant's ``degraded`` flag was decided by (``fidelity.min_cosine``), or None.

        `edgebench run` measures the variant with it unless the run gives ``--min-cosine``.
        """
        f = self.extra.get("fidelity")
        return _num(f.get("min_cosine")) if isinstance(f, Mapping) else None

    @property
    def compress_fidelity(self) -> dict[str, Any] | None:
        """What compress found of this variant's outputs against its parent's, host-side, or None.

        ``cosine`` (the worst output's), ``min_cosine`` (the threshold), ``degraded`` (the manifest's flag),
        ``snr_db`` and ``parent``: what `edgebench run` records with a measurement
        (``Measurement.compress_fidelity``) so that a run without eval data still knows a degraded variant.
        """
        f = self.extra.get("fidelity")
        if not isinstance(f, Mapping):
            return None
        flag = self.extra.get("degraded", f.get("degraded"))
        return {
            "cosine": _num(f.get("cosine")),
            "min_cosine": _num(f.get("min_cosine")),
            "degraded": flag if isinstance(flag, bool) else None,
            "snr_db": _num(f.get("snr_db")),
            "parent": self.parent,
        }

    @property
    def run_inputs(self) -> dict[str, str]:
        """The input specs the recipe gave this model (``run_defaults.inputs``, as ``run --input``).

        `edgebench run` uses them for the inputs its own ``--input`` does not name.
        """
        d = self.extra.get("run_defaults")
        ins = d.get("inputs") if isinstance(d, Mapping) else None
        return {str(k): str(v) for k, v in ins.items()} if isinstance(ins, Mapping) else {}

    @property
    def run_dims(self) -> dict[str, int]:
        """The dynamic dims the recipe gave this model (``run_defaults.dims``, as ``run --dim``)."""
        d = self.extra.get("run_defaults")
        dims = d.get("dims") if isinstance(d, Mapping) else None
        return {str(k): int(v) for k, v in dims.items()} if isinstance(dims, Mapping) else {}

    @property
    def flops(self) -> int | None:
        """FLOPs of one inference, when the pass counted them."""
        v = _num(self.extra.get("flops"))
        return None if v is None else int(v)

    @classmethod
    def from_json(cls, d: JSONObject) -> Manifest:
        """Read a ``manifest.json`` document."""
        ins, outs = d.get("inputs"), d.get("outputs")
        return cls(
            model=d["model"],
            variant=d["variant"],
            format=d["format"],
            artifact=d["artifact"],
            sha256=d["sha256"],
            bytes=d["bytes"],
            parent=d.get("parent"),
            passes=tuple(PassStep.from_json(p) for p in d.get("passes") or ()),
            created=d.get("created", ""),
            inputs=None if ins is None else tuple(TensorSpec.from_json(t) for t in ins),
            outputs=None if outs is None else tuple(TensorSpec.from_json(t) for t in outs),
            params=d.get("params"),
            schema=d.get("schema", MANIFEST_SCHEMA),
            extra=_extra(d, _MANIFEST_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        """The ``manifest.json`` document."""
        out: dict[str, Any] = {
            "schema": self.schema,
            "model": self.model,
            "variant": self.variant,
            "format": self.format,
            "artifact": self.artifact,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "parent": self.parent,
            "passes": [p.to_json() for p in self.passes],
            "created": self.created,
        }
        if self.inputs is not None:
            out["inputs"] = [t.to_json() for t in self.inputs]
        if self.outputs is not None:
            out["outputs"] = [t.to_json() for t in self.outputs]
        _emit(out, "params", self.params, frozenset())
        out.update(self.extra)
        return out
