"""The fp32 parent's reference outputs, deployed with a variant's job for on-board fidelity.

The host runs the parent (with the agent's own runtime adapters, in this process) over
the whole eval set once and caches every output (``outputs``, then ``outputs_1``...) in
an npz named by the parent's and the data's sha256. The agent cuts the same quick-mode
subset from it as from the eval data, so the rows always line up, and compares output by
output (`edgebench.agent.fidelity`). Any failure here (data the parent's runtime rejects,
say) is raised as a `DataError` or `ModelError`, for the session to record with the variant.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import agent
from edgebench.bench.inputs import job_block, npy_files
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant, cache_root
from edgebench.errors import DataError, ModelError
from edgebench.fsutil import atomic_write, sha256_file


def default_cache() -> Path:
    """Where reference outputs are cached on the host: ``$XDG_CACHE_HOME/edgebench/reference`` (``~/.cache``)."""
    return cache_root().parent / "reference"


def find_parent(variant: Variant, variants: Sequence[Variant]) -> Variant | None:
    """The variant's parent among ``variants`` (same model, name from the manifest), or None."""
    parent = variant.manifest.parent
    if not parent:
        return None
    for v in variants:
        if v.model == variant.model and (v.name == parent or f"{v.model}/{v.name}" == parent):
            return v
    return None


def compute_outputs(
    variant: Variant, eval_npz: Path, batch_size: int = 32, inputs: Mapping[str, Any] | None = None
) -> list[np.ndarray]:
    """Every output of ``variant`` on every eval sample, float32 (N, ...), computed on the host.

    ``inputs`` is the job's ``inputs``/``dims``/``seed`` (`job_inputs`): the inputs the eval data does
    not hold are made as the agent makes them on the board, so the rows line up.

    Raises:
        ModelError: if the host cannot load the variant.
        DataError: if the eval data does not fit it (the runtime's own error included).
    """
    try:
        model = agent.RUNTIMES[agent.RUNTIME_OF_FORMAT[variant.format]]({})
        model.load(str(variant.artifact))
        sig = model.signature()
        static = sig[0][1][0] if sig and sig[0][1] else None
        batch = static if isinstance(static, int) and static > 0 else batch_size
        job: dict[str, Any] = {**(inputs or {}), "eval": {"path": str(eval_npz)}}
        xs, _y, _ref = agent.load_eval(job, sig)
        if xs is None:
            raise DataError(f"{eval_npz} holds no inputs")
        return agent.evaluate_outputs(model, xs, batch, job["eval"].get("batched"))
    except agent.AgentError as exc:
        cls = DataError if exc.kind == "bad_eval_data" else ModelError
        raise cls(f"reference outputs of {variant.model}/{variant.name}: {exc}") from None
    except (DataError, ModelError):
        raise
    except Exception as exc:  # the runtime rejecting the data (its own exception types): data, not a crash
        raise DataError(
            f"reference outputs of {variant.model}/{variant.name} on {eval_npz.name}: {type(exc).__name__}: "
            f"{agent._first_line(exc)}: give eval data this model takes"
        ) from None


def job_inputs(settings: RunSettings) -> dict[str, Any]:
    """The ``inputs``, ``dims`` and ``seed`` of a job, as `runner.build_job` writes them (none: {})."""
    if not settings.inputs and not settings.dims:
        return {}
    return {"inputs": job_block(settings.inputs), "dims": dict(settings.dims), "seed": settings.seed}


def reference_outputs(
    parent: Variant, eval_npz: Path, cache: Path | None = None, settings: RunSettings | None = None
) -> Path:
    """The parent's outputs on ``eval_npz`` as an npz (``outputs``), computed once and cached.

    ``settings`` (the variant's, `runner.variant_settings`) give the inputs the eval data does not hold.
    """
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    made = job_inputs(settings) if settings is not None else {}
    npys = {n: sha256_file(f) for n, f in npy_files(settings.inputs).items()} if made and settings else {}
    doc = json.dumps({**made, "npy_sha256": npys}, sort_keys=True)  # a .npy's content, not only its path
    key = f"-{hashlib.sha256(doc.encode()).hexdigest()[:12]}" if made else ""
    path = cache / f"ref2-{parent.sha256[:16]}-{sha256_file(eval_npz)[:16]}{key}.npz"  # ref2: every output
    if path.is_file():
        return path
    outputs = compute_outputs(parent, eval_npz, inputs=made)
    arrays = {("outputs" if i == 0 else f"outputs_{i}"): o for i, o in enumerate(outputs)}
    with atomic_write(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
    return path


def describe(parent: Variant | None) -> dict[str, Any] | None:
    """What the fidelity figures are measured against, for the measurement."""
    if parent is None:
        return None
    return {"model": parent.model, "variant": parent.name, "sha256": parent.sha256, "where": "host"}
