"""Pruning passes: unstructured magnitude pruning (torch or ONNX) and structured channel pruning (torch).

Unstructured zeros do not make dense runtimes faster; what they buy is a smaller
compressed file, so manifests report ``sparsity`` and ``zip_bytes``. Structured pruning
removes whole channels with torch-pruning (which tracks residual adds, BatchNorm and
depthwise convolutions), so the exported graph really has fewer FLOPs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from edgebench import zoo
from edgebench.compress.passes import Artifact, Context, Pass, param
from edgebench.errors import DataError, ModelError


def _labels(ctx: Context, what: str) -> np.ndarray:
    if ctx.data.y_train is None or isinstance(ctx.data.x_train, dict):
        raise DataError(f"{what} needs training data with labels (x and y): add y to the training npz")
    return ctx.data.y_train


def fine_tune(module: Any, ctx: Context, epochs: int, lr: float, what: str) -> None:
    """Train ``module`` in place on the training split (no-op for 0 epochs)."""
    if epochs <= 0:
        return
    y = _labels(ctx, what)
    ctx.log(f"{what}: fine-tuning {epochs} epoch(s)")
    zoo.train(module, ctx.data.x_train, y, epochs=epochs, lr=lr, seed=ctx.seed)


def _prunable(module: Any) -> list[tuple[Any, str]]:
    from torch import nn

    return [(m, "weight") for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear))]


def torch_sparsity(module: Any) -> float:
    """Fraction of exact zeros among the Conv/Linear weights of a torch module."""
    ws = [m.weight.detach() for m, _ in _prunable(module)]
    total = sum(int(w.numel()) for w in ws)
    return sum(int((w == 0).sum()) for w in ws) / total if total else 0.0


@dataclass(frozen=True)
class MagnitudePruneParams:
    """The parameters of `MagnitudePrune`."""

    sparsity: float = param(0.5, "fraction of weights set to zero", lo=0.0, hi=0.99)
    scope: Literal["global", "layer"] = param("global", "rank weights over the whole model or within each layer")
    fine_tune_epochs: int = param(0, "epochs of training with the mask held (torch models only)", lo=0)
    lr: float = param(1e-3, "fine-tuning learning rate", lo=0.0)


class MagnitudePrune(Pass[MagnitudePruneParams]):
    """Zero the smallest weights (L1 magnitude), globally or per layer; optionally fine-tune (torch)."""

    name = "prune-magnitude"
    summary = "unstructured magnitude pruning (zeros; smaller zip, not faster on dense runtimes)"
    accepts = ("torch", "onnx")
    produces = ""

    def needs_data(self, params: MagnitudePruneParams) -> bool:
        """Only to fine-tune."""
        return bool(params.fine_tune_epochs)

    def run(self, src: Artifact, params: MagnitudePruneParams, ctx: Context) -> Artifact:
        """Prune a torch module (with optional fine-tuning) or the weight initializers of an ONNX file.

        The artifact's ``weight_sparsity`` is the fraction of zeros measured in the pruned weights;
        the parameter ``sparsity`` (the target) stays in the manifest's recorded parameters.
        """
        if src.fmt == "onnx":
            if params.fine_tune_epochs:
                raise ModelError(
                    "prune-magnitude cannot fine-tune an ONNX file: set fine_tune_epochs = 0 or give the PyTorch model"
                )
            return self._onnx(src, params, ctx)
        from torch.nn.utils import prune

        module = copy.deepcopy(src.module)
        targets = _prunable(module)
        if params.scope == "global":
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=params.sparsity)
        else:
            for m, n in targets:
                prune.l1_unstructured(m, n, amount=params.sparsity)  # type: ignore[no-untyped-call]
        fine_tune(module, ctx, params.fine_tune_epochs, params.lr, "prune-magnitude")
        for m, n in targets:
            prune.remove(m, n)  # type: ignore[no-untyped-call]
        return src.derive("torch", module=module, weight_sparsity=round(torch_sparsity(module), 6))

    def _onnx(self, src: Artifact, params: MagnitudePruneParams, ctx: Context) -> Artifact:
        import onnx
        from onnx import numpy_helper

        assert src.path is not None
        m = onnx.load(str(src.path))
        weights = {n.input[1] for n in m.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1}
        inits = [i for i in m.graph.initializer if i.name in weights]
        arrays = {i.name: numpy_helper.to_array(i).copy() for i in inits}
        arrays = {k: v for k, v in arrays.items() if v.dtype.kind == "f" and v.ndim >= 2}
        if not arrays:
            raise ModelError(f"{src.path} has no float Conv/Gemm/MatMul weights to prune (already quantized?)")
        s = params.sparsity
        if params.scope == "global":
            allw = np.concatenate([np.abs(a).ravel() for a in arrays.values()])
            k = int(s * allw.size)
            thr = np.partition(allw, k)[k] if k > 0 else -1.0
            for a in arrays.values():
                a[np.abs(a) < thr] = 0
        else:
            for a in arrays.values():
                k = int(s * a.size)
                if k > 0:
                    flat = np.abs(a).ravel()
                    a.ravel()[np.argsort(flat, kind="stable")[:k]] = 0
        for init in m.graph.initializer:
            if init.name in arrays:
                init.CopyFrom(numpy_helper.from_array(arrays[init.name], init.name))
        out = ctx.new_path(".onnx")
        onnx.save(m, str(out))
        total = sum(a.size for a in arrays.values())
        zeros = sum(int((a == 0).sum()) for a in arrays.values())
        return src.derive("onnx", out, weight_sparsity=round(zeros / total, 6))


def output_layers(module: Any, sample: Any) -> list[Any]:
    """The Conv/Linear layers whose output is the model's output (kept whole when pruning)."""
    import torch
    from torch import nn

    seen: list[tuple[Any, Any]] = []
    hooks = [
        m.register_forward_hook(lambda mod, _i, o: seen.append((mod, o)))
        for m in module.modules()
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv1d))
    ]
    with torch.no_grad():
        out = module(sample)
    for h in hooks:
        h.remove()
    outs = out if isinstance(out, (tuple, list)) else [out]
    hits = [mod for mod, o in seen if any(o.shape == t.shape for t in outs)]
    return hits[-1:] if hits else ([seen[-1][0]] if seen else [])


def shrink(module: Any, sample: Any, ratio: float, importance: str, global_pruning: bool, ctx: Context | None) -> Any:
    """Remove ``ratio`` of the channels of every prunable layer of ``module`` in place (torch-pruning)."""
    import torch
    import torch_pruning as tp

    imp: Any
    if importance == "taylor":
        imp = tp.importance.GroupTaylorImportance()
    else:
        imp = tp.importance.GroupMagnitudeImportance(p=1 if importance == "l1" else 2)
    pruner = tp.pruner.BasePruner(
        module,
        sample,
        importance=imp,
        pruning_ratio=ratio,
        global_pruning=global_pruning,
        ignored_layers=output_layers(module, sample),
    )
    if importance == "taylor":
        assert ctx is not None
        y = torch.from_numpy(_labels(ctx, "taylor importance")[:256])
        module.zero_grad()
        torch.nn.functional.cross_entropy(module(torch.from_numpy(ctx.data.x_train[:256])), y).backward()  # type: ignore[no-untyped-call]
    pruner.step()
    module.zero_grad()
    return module


@dataclass(frozen=True)
class ChannelPruneParams:
    """The parameters of `ChannelPrune`."""

    ratio: float = param(0.5, "fraction of channels removed from each prunable layer", lo=0.0, hi=0.95)
    importance: Literal["l1", "l2", "taylor"] = param("l1", "channel ranking: filter L1/L2 norm, or Taylor (gradient)")
    global_pruning: bool = param(False, "rank channels across layers instead of within each layer")
    fine_tune_epochs: int = param(8, "epochs of training after pruning to win accuracy back", lo=0)
    lr: float = param(1e-3, "fine-tuning learning rate", lo=0.0)


class ChannelPrune(Pass[ChannelPruneParams]):
    """Physically remove channels (filter-norm or gradient importance), then fine-tune."""

    name = "prune-channels"
    summary = "structured channel pruning with torch-pruning: fewer FLOPs, faster on any runtime"
    accepts = ("torch",)
    produces = "torch"

    def needs_data(self, params: ChannelPruneParams) -> bool:
        """Only to fine-tune."""
        return bool(params.fine_tune_epochs)

    def run(self, src: Artifact, params: ChannelPruneParams, ctx: Context) -> Artifact:
        """Prune a copy of the module, count MACs before and after, fine-tune."""
        import torch
        import torch_pruning as tp

        if isinstance(ctx.data.x_train, dict):
            raise DataError("prune-channels supports single-input models: give x as one array")
        module = copy.deepcopy(src.module).eval()
        sample = torch.from_numpy(ctx.data.x_train[:1])
        macs0, params0 = tp.utils.count_ops_and_params(module, sample)
        shrink(module, sample, params.ratio, params.importance, params.global_pruning, ctx)
        macs1, params1 = tp.utils.count_ops_and_params(module, sample)
        fine_tune(module, ctx, params.fine_tune_epochs, params.lr, "prune-channels")
        facts: dict[str, Any] = {
            "pruning": {
                "macs_before": int(macs0),
                "macs_after": int(macs1),
                "params_before": int(params0),
                "params_after": int(params1),
            }
        }
        return src.derive("torch", module=module.eval(), **facts)
