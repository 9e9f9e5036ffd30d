"""Plain library entry points: run a pass chain into a variant folder, make many variants at once.

``make_variants`` is what `edgebench demo` uses::

    fp32 = save_variant(...)                       # the exported parent
    variants = make_variants(
        fp32,
        [("fp16", "fp16", {}), ("int8-dynamic", "int8-dynamic", {}), ("int8-static", "int8-static", {})],
        out_root, calib=split.x_train[:256], eval_x=split.x_test, eval_y=split.y_test,
    )
    # a pruned variant needs the PyTorch module (and training data to fine-tune):
    make_variants(fp32, [("pruned-50", "prune-channels", {"ratio": 0.5, "fine_tune_epochs": 3})], out_root,
                  split.x_train[:256], split.x_test, split.y_test,
                  torch_module=model, train=(split.x_train, split.y_train))

On the 8x8 demo CNN the three ONNX quantization variants take well under a second in all.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import zoo
from edgebench.compress import metrics
from edgebench.compress.metrics import one_line
from edgebench.compress.passes import Artifact, Context, Data, Pass, check_chain, get_pass, resolve_params
from edgebench.compress.variant import Variant, save_variant, variant_dir
from edgebench.errors import DataError
from edgebench.fsutil import sha256_file

Chain = list[tuple[Pass[Any], Any]]  # each pass with its parameters (an instance of its parameter dataclass)
QUANTIZING = ("int8-dynamic", "int8-static", "tflite-quantize")  # passes whose point is int8 weights
PROBE = 8  # eval samples a new variant's outputs are compared on with its parent's and siblings'


def resolve_chain(steps: Sequence[tuple[str, Mapping[str, Any]]]) -> Chain:
    """Pass instances with checked parameters from ``[(pass name, params), ...]``.

    Raises:
        ConfigError: on an unknown pass or parameter (lists the valid ones) or a bad value.
    """
    chain: Chain = []
    for name, given in steps:
        p = get_pass(name)
        chain.append((p, resolve_params(p, given)))
    return chain


def export_torch(module: Any, sample: np.ndarray, out: Path) -> Path:
    """Export a torch module to ONNX with a dynamic batch axis (as `edgebench.zoo.export_onnx`)."""
    try:
        return zoo.export_onnx(module, sample, out)
    except RuntimeError as exc:
        raise DataError(
            f"the PyTorch model does not accept inputs of shape {list(sample.shape)} ({one_line(exc, 160)}): "
            "give data that matches the model"
        ) from None


def describe_artifact(
    fmt: str, path: Path, data: Data, ref: np.ndarray | None, min_cosine: float | None = None
) -> dict[str, Any]:
    """Manifest fields measured on the host: params, FLOPs, sparsity, zip size, accuracy, fidelity, degraded
    (an output's cosine to the parent's below ``min_cosine``, default `agent.DEFAULT_MIN_COSINE`)."""
    fields: dict[str, Any] = {"zip_bytes": metrics.zip_bytes(path)}
    if fmt == "onnx":
        m = metrics.load_onnx(path)
        stats = metrics.onnx_weight_stats(m)
        # zeros among int8 weights are rounding, not pruning: not called sparsity
        fields["zero_fraction" if metrics.onnx_int8_weights(m) else "sparsity"] = round(stats["sparsity"], 6)
        inits = {t.name for t in m.graph.initializer}
        names = [i.name for i in m.graph.input if i.name not in inits]
        one = metrics.as_feeds(names, metrics.take(data.x_eval, slice(0, 1)))  # FLOPs at the data's shape
        shapes = {k: list(v.shape) for k, v in one.items()}
        fields["flops"] = metrics.onnx_flops(path, shapes)["flops"]
        if fields["flops"] is not None:
            fields["flops_input_shapes"] = shapes
    else:
        stats = metrics.tflite_weight_stats(path)
        fields["params"] = stats["params"]
        fields["sparsity"] = round(stats["sparsity"], 6)
    out = metrics.run_artifact(fmt, path, data.x_eval)
    acc = metrics.accuracy(out, data.y_eval)
    if acc is not None:
        fields["accuracy"] = acc
    if ref is not None and ref.shape == out.shape:
        fields["fidelity"] = metrics.fidelity(ref, out, min_cosine)
        fields["degraded"] = fields["fidelity"]["degraded"]  # outputs too far from the parent's: not a usable variant
    return fields


def no_gain(
    chain: Chain, fmt: str, path: Path, x_eval: Any, parent: Variant | None, siblings: Sequence[Variant] = ()
) -> list[str]:
    """Why a quantized variant is not a compressed variant (empty when it is one, or was not quantized).

    A quantizer can "succeed" without doing anything useful: no int8 weight (float16 weights it
    does not see, ops it skips), a file larger than its parent (quantization nodes outweigh tiny
    weights), or the very same file or outputs as the parent or another variant.
    """
    if parent is None or not any(p.name in QUANTIZING for p, _ in chain):
        return []
    reasons = []
    if fmt == "onnx":
        int8 = metrics.onnx_int8_weights(metrics.load_onnx(path))
    else:
        int8 = len(metrics.tflite_quantized_tensors(path))
    if not int8:
        reasons.append("no int8 weight in the file")
    size, parent_size = path.stat().st_size, parent.artifact.stat().st_size
    if size > parent_size:
        reasons.append(f"larger than its parent {parent.name} ({size} vs {parent_size} bytes)")
    sha = sha256_file(path)
    probe = metrics.take(x_eval, slice(0, PROBE))
    out = metrics.run_artifact(fmt, path, probe)
    for other in (parent, *siblings):
        if other.sha256 == sha:
            reasons.append(f"the same file as {other.name} (sha256 {sha[:12]})")
        elif other.format == fmt and np.array_equal(metrics.run_artifact(other.format, other.artifact, probe), out):
            reasons.append(f"outputs identical to {other.name}'s")
    return reasons


def build_variant(
    *,
    model: str,
    variant: str,
    source: Artifact,
    chain: Chain,
    data: Data,
    final: Path,
    parent: str | None,
    ref: np.ndarray | None,
    seed: int = 0,
    log: Callable[[str], None] = lambda _m: None,
    extra: dict[str, Any] | None = None,
    parent_variant: Variant | None = None,
    siblings: Sequence[Variant] = (),
    min_cosine: float | None = None,
) -> Variant:
    """Run a chain on ``source`` and write the variant folder ``final`` atomically.

    Args:
        model: the source model's name.
        variant: the variant's name.
        source: the artifact the chain starts from (never modified).
        chain: passes with resolved parameters (see `resolve_chain`).
        data: train / calibration / eval splits.
        final: the variant folder; replaced only once the new one is complete.
        parent: the fp32 parent variant's name (None for the parent itself).
        ref: the parent's outputs on ``data.x_eval`` for fidelity.
        seed: seed for training passes.
        log: one-line progress messages.
        extra: more manifest fields (such as the recipe's input hash).
        parent_variant: the parent's folder, to tell a quantization that gained nothing (`no_gain`).
        siblings: the model's other variants built so far, for the same check.
        min_cosine: the variant is degraded when an output's cosine to the parent's falls below this
            (default `agent.DEFAULT_MIN_COSINE`; a recipe's ``[fidelity] min_cosine``).
    """
    where = f"{model}/{variant}"
    check_chain(source.fmt, chain, where)
    with tempfile.TemporaryDirectory(prefix="edgebench-compress-") as tmp:
        ctx = Context(Path(tmp), data, seed=seed, log=log)
        art = source
        sample = metrics.take(data.x_eval, slice(0, 1))
        for p, params in chain:
            if art.fmt == "torch" and "torch" not in p.accepts:
                art = art.derive("onnx", export_torch(art.module, sample, ctx.new_path(".onnx")))
            log(f"{where}: {p.name}")
            art = p.run(art, params, ctx)
        if art.fmt == "torch":
            art = art.derive("onnx", export_torch(art.module, sample, ctx.new_path(".onnx")))
        assert art.path is not None
        log(f"{where}: measuring on host")
        fields = describe_artifact(art.fmt, art.path, data, ref, min_cosine)
        fields.update(art.facts)
        fields.update(extra or {})
        reasons = no_gain(chain, art.fmt, art.path, data.x_eval, parent_variant, siblings)
        if reasons:
            fields["not_compressed"] = reasons
            log(f"{where}: not a compressed variant: {'; '.join(reasons)}")
        return save_variant(
            final,
            art.path,
            {
                "model": model,
                "variant": variant,
                "fmt": art.fmt,
                "parent": parent,
                "passes": [{"pass": p.name, "params": p.record(params)} for p, params in chain],
                **fields,
            },
        )


def make_variants(
    parent: Variant,
    specs: list[tuple[str, str, dict[str, Any]]],
    out_root: Path,
    calib: np.ndarray,
    eval_x: np.ndarray,
    eval_y: np.ndarray | None = None,
    log: Callable[[str], None] = lambda _m: None,
    *,
    torch_module: Any = None,
    train: tuple[np.ndarray, np.ndarray] | None = None,
    min_cosine: float | None = None,
) -> list[Variant]:
    """Make one variant per spec from an fp32 parent variant (ONNX or TFLite), side by side.

    Args:
        parent: the fp32 variant (its manifest gives the model name).
        specs: ``(variant name, pass name, params)``; params are checked against the pass.
        out_root: variants root; each lands in ``out_root/<model>/<variant>/``.
        calib: calibration inputs (for static quantization).
        eval_x: eval inputs, for accuracy and fidelity against the parent.
        eval_y: eval labels (accuracy is skipped without them).
        log: one-line progress messages.
        torch_module: the parent's PyTorch module; passes that take ``torch`` (prune-channels,
            prune-magnitude with fine-tuning, distill) start from it instead of the parent file.
        train: ``(x, y)`` for passes that train (fine-tuning, distillation).
        min_cosine: the degraded threshold (default `agent.DEFAULT_MIN_COSINE`).

    Returns:
        The new variants, in the order of ``specs``.

    Raises:
        ConfigError: unknown pass or parameter, before any work.
        ModelError: a pass cannot apply to the parent's format, before any work.
    """
    chains = [(name, resolve_chain([(pass_name, params)])) for name, pass_name, params in specs]
    file_src = Artifact(parent.format, parent.artifact)
    torch_src = Artifact("torch", module=torch_module) if torch_module is not None else None

    def source_for(chain: Chain) -> Artifact:
        first = chain[0][0]
        if torch_src is not None and "torch" in first.accepts and (first.name != "prune-magnitude" or train):
            return torch_src
        return file_src

    for name, chain in chains:
        check_chain(source_for(chain).fmt, chain, f"{parent.model}/{name}")
    x_train, y_train = train if train is not None else (calib, None)
    data = Data(x_train=x_train, y_train=y_train, x_calib=calib, x_eval=eval_x, y_eval=eval_y)
    ref = metrics.run_artifact(parent.format, parent.artifact, eval_x)
    built: list[Variant] = []
    for name, chain in chains:
        built.append(
            build_variant(
                model=parent.model,
                variant=name,
                source=source_for(chain),
                chain=chain,
                data=data,
                final=variant_dir(out_root, parent.model, name),
                parent=parent.name,
                ref=ref,
                log=log,
                parent_variant=parent,
                siblings=tuple(built),
                min_cosine=min_cosine,
            )
        )
    return built
