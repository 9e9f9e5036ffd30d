"""`Variant`: a model artifact plus its ``manifest.json``; reading and writing both."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench.compress.metrics import load_onnx, onnx_weights, tflite_interpreter
from edgebench.config import name_problem, shown_name
from edgebench.errors import ModelError
from edgebench.fsutil import atomic_dir, sha256_file, write_json_atomic
from edgebench.model import Manifest, PassStep, TensorSpec

MANIFEST = "manifest.json"
ARTIFACTS = {"onnx": "model.onnx", "tflite": "model.tflite"}


@dataclass(frozen=True)
class Variant:
    """A variant folder: ``<root>/<model>/<variant>/{model.onnx|model.tflite, manifest.json}``.

    Attributes:
        path: the variant folder.
        manifest: its parsed ``manifest.json``.
    """

    path: Path
    manifest: Manifest

    @property
    def name(self) -> str:
        """The variant's name, such as ``fp32`` or ``int8-static``."""
        return self.manifest.variant

    @property
    def model(self) -> str:
        """The source model's name."""
        return self.manifest.model

    @property
    def format(self) -> str:
        """``onnx`` or ``tflite``."""
        return self.manifest.format

    @property
    def artifact(self) -> Path:
        """The model file."""
        return self.path / self.manifest.artifact

    @property
    def sha256(self) -> str:
        """Content hash of the artifact."""
        return self.manifest.sha256


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
    params = sum(int(numpy_helper.to_array(i).size) for i in onnx_weights(m))  # Constant nodes' weights too
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
) -> Manifest:
    """The manifest of a variant whose artifact is already written.

    ``passes`` is the chain as written in the file (each ``{"pass": name, "params": {...}}``);
    ``inputs, outputs, params`` are read from the file for ONNX; ``extra`` holds what the
    passes add (``flops``, ``sparsity``, ``accuracy``, ``fidelity``, ...).
    """
    inputs = outputs = None
    n_params = None
    if fmt == "onnx":
        ins, outs, n_params = onnx_signature(artifact)
        inputs, outputs = tuple(map(TensorSpec.from_json, ins)), tuple(map(TensorSpec.from_json, outs))
    return Manifest(
        model=model,
        variant=variant,
        format=fmt,
        artifact=artifact.name,
        sha256=sha256_file(artifact),
        bytes=artifact.stat().st_size,
        parent=parent,
        passes=tuple(map(PassStep.from_json, passes)),
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        inputs=inputs,
        outputs=outputs,
        params=n_params,
        extra=extra,
    )


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
        write_json_atomic(tmp / MANIFEST, build_manifest(artifact=dest, **manifest_fields).to_json())
    return load_variant(final)  # as later readers see it (JSON types), so the two compare equal


def load_variant(path: Path) -> Variant:
    """Read a variant folder.

    Raises:
        ModelError: if the folder has no readable manifest or the artifact is missing.
    """
    mf = path / MANIFEST
    try:
        manifest = Manifest.from_json(json.loads(mf.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{mf} cannot be read ({exc}): re-create the variant with `edgebench compress`") from None
    for key in ("model", "variant", "parent"):
        name = getattr(manifest, key)
        if key == "parent" and name is None:
            continue
        if not isinstance(name, str):
            raise ModelError(f"{mf}: field '{key}' must be a string: re-create the variant with `edgebench compress`")
        # names are printed in logs and tables: a newline in one would forge a line (a CI annotation, a verdict)
        problem = name_problem(name)
        if problem is not None:
            raise ModelError(
                f"{mf}: field '{key}' {shown_name(name)} {problem}; re-create the variant with `edgebench compress`"
            )
        # names become file names (eval data <model>.npz, results): a path in one would escape its folder
        if key != "parent" and (name in (".", "..") or any(c in name for c in "/\\")):
            raise ModelError(
                f"{mf}: {key} name {name!r} is not a plain name: re-create the variant with `edgebench compress`"
            )
    art = manifest.artifact
    if not art or Path(art).is_absolute() or Path(art).name != art or art in (".", ".."):
        raise ModelError(
            f"{mf}: artifact {art!r} is not a file in the variant folder: re-create it with `edgebench compress`"
        )
    v = Variant(path, manifest)
    if v.artifact.is_symlink() and not v.artifact.resolve().is_relative_to(path.resolve()):
        raise ModelError(
            f"{v.artifact} links outside the variant folder: re-create the variant with `edgebench compress`"
        )
    if not v.artifact.is_file():
        raise ModelError(f"{v.artifact} is missing: re-create the variant with `edgebench compress`")
    return v


_HASHED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256: a run deploys a file once per board


def check_artifact(v: Variant) -> None:
    """Check that the artifact is the file its manifest describes (sha256).

    Raises:
        ModelError: the file changed after `edgebench compress` wrote the manifest.
    """
    st = v.artifact.stat()
    key = (str(v.artifact.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(v.artifact)
    if _HASHED[key] != v.sha256:
        raise ModelError(
            f"{v.artifact} changed after its manifest was written (sha256 {_HASHED[key][:12]}..., manifest "
            f"{v.sha256[:12]}...): re-create the variant with `edgebench compress` (or restore the file)"
        )


def list_variants(root: Path) -> list[Variant]:
    """Every variant under a variants root, sorted by model and variant; or the one variant folder ``root`` is."""
    if not root.is_dir():
        return []
    if (root / MANIFEST).is_file():  # <root>/<model>/<variant> itself
        return [load_variant(root)]
    return [load_variant(mf.parent) for mf in sorted(root.glob(f"*/*/{MANIFEST}"))]


MODEL_FILES = {".onnx": "onnx", ".tflite": "tflite"}  # what `run --variants` takes besides a variants folder


def cache_root() -> Path:
    """Where fp32 variants made on the fly from bare model files are kept (by the file's sha256):
    ``$XDG_CACHE_HOME/edgebench/variants``, by default ``~/.cache/edgebench/variants``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgebench" / "variants"


def variant_for_file(path: Path, cache: Path | None = None, model: str | None = None) -> Variant:
    """The fp32 variant of a bare .onnx or .tflite file: made on first use, then reused while the file is unchanged.

    It lives in ``<cache>/<sha256[:16]>/<model>/fp32/``, so two files with the same name never share one.

    Raises:
        ModelError: the file is not a model edgebench reads (named, with the fix).
    """
    fmt = MODEL_FILES.get(path.suffix.lower())
    if fmt is None:
        raise ModelError(
            f"{path} is not a variants folder nor a .onnx/.tflite file: give a model file, a folder of them, "
            "or the folder `edgebench compress` wrote"
        )
    name = model or path.stem
    problem = name_problem(name)
    if problem is not None:  # the model is named after the file: its name is printed in every log line
        raise ModelError(f"{path}: the model name {shown_name(name)} {problem}; rename the file")
    sha = sha256_file(path)
    folder = (cache or cache_root()) / sha[:16] / name / "fp32"
    if (folder / MANIFEST).is_file():
        try:
            v = load_variant(folder)
            if v.sha256 == sha:
                return v
        except ModelError:
            pass  # a broken cache entry is made again
    if fmt == "onnx":
        load_onnx(path)  # a file that is not a model fails here, naming itself
    else:
        tflite_interpreter(path)
    return save_variant(
        folder,
        path,
        {"model": name, "variant": "fp32", "fmt": fmt, "parent": None, "passes": [], "source": str(path.resolve())},
    )


def variants_from_files(path: Path, cache: Path | None = None) -> list[Variant] | None:
    """fp32 variants for a model file, or for the model files in a folder that holds no variants; else None.

    Raises:
        ModelError: a file that is not a model, or two files that would make the same model name.
    """
    if path.is_file():
        return [variant_for_file(path, cache)]
    if not path.is_dir() or (path / MANIFEST).is_file() or any(path.glob(f"*/*/{MANIFEST}")):
        return None
    files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in MODEL_FILES)
    if not files:
        return None
    stems = [f.stem for f in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise ModelError(
            f"{path} holds several files named {twice[0]} (.onnx and .tflite): each file becomes a model named "
            "after it; rename one"
        )
    return [variant_for_file(f, cache) for f in files]
