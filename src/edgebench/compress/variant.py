"""`Variant`: a model artifact plus its ``manifest.json``; reading and writing both."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.errors import ModelError
from edgebench.fsutil import atomic_dir, sha256_file, write_json_atomic

MANIFEST_SCHEMA = 1
MANIFEST = "manifest.json"
ARTIFACTS = {"onnx": "model.onnx", "tflite": "model.tflite"}


@dataclass(frozen=True)
class Variant:
    """A variant folder: ``<root>/<model>/<variant>/{model.onnx|model.tflite, manifest.json}``.

    Attributes:
        path: the variant folder.
        manifest: the parsed manifest (see `build_manifest` for its fields).
    """

    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        """The variant's name, such as ``fp32`` or ``int8-static``."""
        return str(self.manifest["variant"])

    @property
    def model(self) -> str:
        """The source model's name."""
        return str(self.manifest["model"])

    @property
    def format(self) -> str:
        """``onnx`` or ``tflite``."""
        return str(self.manifest["format"])

    @property
    def artifact(self) -> Path:
        """The model file."""
        return self.path / str(self.manifest["artifact"])

    @property
    def sha256(self) -> str:
        """Content hash of the artifact."""
        return str(self.manifest["sha256"])


def onnx_signature(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Inputs, outputs (name, shape, dtype) and parameter count of an ONNX file.

    Raises:
        ModelError: if the file is not a readable ONNX model.
    """
    import onnx
    from onnx import helper, numpy_helper

    try:
        m = onnx.load(str(path))
    except Exception as exc:
        raise ModelError(f"{path} is not a readable ONNX model ({type(exc).__name__}): check the file") from None

    def describe(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            t = v.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
            out.append({"name": v.name, "shape": shape, "dtype": helper.tensor_dtype_to_np_dtype(t.elem_type).name})
        return out

    inits = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    params = sum(int(numpy_helper.to_array(i).size) for i in m.graph.initializer)
    return describe(inputs), describe(m.graph.output), params


def build_manifest(
    *,
    model: str,
    variant: str,
    fmt: str,
    artifact: Path,
    parent: str | None,
    passes: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """The manifest of a variant whose artifact is already written.

    Fields: ``schema, model, variant, format, artifact, sha256, bytes, parent, passes``
    (the pass chain, each ``{"pass": name, "params": {...}}``), ``inputs, outputs,
    params`` (for ONNX, read from the file), ``created``, then whatever the pass adds
    (``flops``, ``sparsity``, ``accuracy``, ``fidelity``, ...).
    """
    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "model": model,
        "variant": variant,
        "format": fmt,
        "artifact": artifact.name,
        "sha256": sha256_file(artifact),
        "bytes": artifact.stat().st_size,
        "parent": parent,
        "passes": passes,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if fmt == "onnx":
        inputs, outputs, params = onnx_signature(artifact)
        manifest.update(inputs=inputs, outputs=outputs, params=params)
    manifest.update(extra)
    return manifest


def variant_dir(root: Path, model: str, variant: str) -> Path:
    """Where a variant lives under a variants root."""
    return root / model / variant


def save_variant(final: Path, artifact_src: Path, manifest_fields: dict[str, Any]) -> Variant:
    """Build a variant folder atomically from an artifact file and manifest fields.

    Args:
        final: the variant folder to create (replaced only once complete).
        artifact_src: the model file to move in.
        manifest_fields: keyword arguments for `build_manifest` except ``artifact``.
    """
    fmt = manifest_fields["fmt"]
    with atomic_dir(final) as tmp:
        dest = tmp / ARTIFACTS[fmt]
        shutil.copyfile(artifact_src, dest)
        manifest = build_manifest(artifact=dest, **manifest_fields)
        write_json_atomic(tmp / MANIFEST, manifest)
    return Variant(final, manifest)


def load_variant(path: Path) -> Variant:
    """Read a variant folder.

    Raises:
        ModelError: if the folder has no readable manifest or the artifact is missing.
    """
    mf = path / MANIFEST
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{mf} cannot be read ({exc}): re-create the variant with `edgebench compress`") from None
    v = Variant(path, manifest)
    if not v.artifact.is_file():
        raise ModelError(f"{v.artifact} is missing: re-create the variant with `edgebench compress`")
    return v


def list_variants(root: Path) -> list[Variant]:
    """Every variant under a variants root, sorted by model and variant."""
    if not root.is_dir():
        return []
    return [load_variant(mf.parent) for mf in sorted(root.glob(f"*/*/{MANIFEST}"))]
