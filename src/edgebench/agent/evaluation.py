"""The accuracy pass and fidelity: outputs on the eval set, top-1 with its Wilson interval, agreement with the parent.

The host imports these too (`edgebench.compress.metrics`, `edgebench.bench.reference`), so
that fidelity is computed by one piece of code wherever it is computed. numpy only.
"""

import math
from typing import Any, Dict, List, Optional

from .base import AgentError, np_module
from .runtimes import Signature

DEFAULT_MIN_COSINE = 0.99  # a variant is degraded when an output's cosine to its parent's falls below this


def wilson(k: float, n: int, z: float = 1.96) -> List[float]:
    """Wilson score interval for a proportion k/n (95% by default)."""
    if n <= 0:
        return [0.0, 1.0]
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, centre - half), min(1.0, centre + half)]


def evaluate(model: Any, xs: List[Any], batch_size: int, batched: Optional[List[bool]] = None) -> Any:
    """Run the eval set in batches; returns the first output as float32 (N, -1) (see `evaluate_outputs`)."""
    first = evaluate_outputs(model, xs, batch_size, batched)[0]
    return first.reshape(len(first), -1)


def evaluate_outputs(model: Any, xs: List[Any], batch_size: int, batched: Optional[List[bool]] = None) -> List[Any]:
    """Run the eval set in batches; returns every output as float32, one row per sample (N, ...).

    ``batched`` says which inputs are split into samples (default: all but 0-d arrays);
    the others (scalars, state tensors) go whole into every batch. An output whose first
    axis is not the batch (a state) is kept whole per batch, stacked along its first axis.
    """
    np = np_module()
    outs = []  # type: List[List[Any]]
    flags = batched if batched is not None else [x.ndim > 0 for x in xs]
    n = next((len(x) for x, b in zip(xs, flags) if b), 1)  # noqa: B905 (runs on Python 3.6: no strict=)
    for i in range(0, n, batch_size):
        chunk = [x[i : i + batch_size] if b else x for x, b in zip(xs, flags)]  # noqa: B905 (Python 3.6)
        size = min(batch_size, n - i)
        if size < batch_size:  # static batch models: pad the last chunk
            chunk = [
                np.concatenate([c, np.repeat(c[-1:], batch_size - size, axis=0)]) if b else c
                for c, b in zip(chunk, flags)  # noqa: B905 (runs on Python 3.6: no strict=)
            ]
        res = model.run(model.prepare(chunk))
        for k, o in enumerate(res):
            o = np.asarray(o, dtype=np.float32)
            o = o[:size] if o.ndim and len(o) == batch_size else o.reshape((1, *o.shape))
            if k == len(outs):
                outs.append([])
            outs[k].append(o)
    return [np.concatenate(o) for o in outs]


def output_names(model: Any) -> List[str]:
    """The names of a loaded model's outputs, in order (ONNX Runtime session or TFLite details)."""
    session = getattr(model, "session", None)
    if session is not None:
        return [o.name for o in session.get_outputs()]
    return [str(d.get("name", "output%d" % i)) for i, d in enumerate(getattr(model, "outputs", None) or [])]


def eval_batch_size(
    signature: Signature, batch: int, spec: Dict[str, Any], batched: Optional[List[bool]] = None
) -> int:
    """The batch for the accuracy pass: the model's static batch, else ``eval_batch_size`` (default 32).

    Only batched inputs count (``batched``: one flag per input; 0-d inputs never are).
    """
    flags = batched if batched is not None else [True] * len(signature)
    first = [s[1][0] for s, b in zip(signature, flags) if b and s[1]]  # noqa: B905 (runs on Python 3.6)
    if all(isinstance(d, int) and d > 0 for d in first):
        return batch  # static batch: the timed batch size is the only one the model takes
    return max(batch, int(spec.get("eval_batch_size", 32)))


def is_classifier(shape: Any) -> bool:
    """An output of class scores, ``(N, classes)`` with more than one class: the only kind top-1 fits.

    A dense output (a segmentation or detection map, ``(N, C, H, W)``) never gets a top-1.
    """
    return len(shape) == 2 and int(shape[1]) > 1


def accuracy(logits: Any, y: Any, n_total: int) -> Dict[str, Any]:
    """Top-1 accuracy with its Wilson 95% interval; ``logits`` must be classifier-shaped (`is_classifier`)."""
    np = np_module()
    logits = logits.reshape(len(logits), -1)
    hits = int((logits.argmax(axis=1) == np.asarray(y).reshape(-1)).sum())
    n = len(logits)
    return {
        "top1": hits / n if n else None,
        "top1_ci95": wilson(hits, n),
        "n": n,
        "n_total": n_total,
        "quick": n < n_total,
    }


def accuracy_unknown(name: str, shape: Any, n_total: int) -> Dict[str, Any]:
    """The accuracy block when labels were given but the output is not class scores: unknown, not 0 %."""
    why = "labels were given but output %r is %s, not class scores (N, classes): accuracy is unknown" % (
        name,
        ["N"] + [int(d) for d in list(shape)[1:]],
    )
    return {"top1": None, "unknown": why, "n_total": n_total}


def output_fidelity(out: Any, ref: Any) -> Dict[str, Any]:
    """How close one output is to the parent's: cosine, max / mean abs error, SNR (dB), top-1 agreement.

    Hand-written with numpy only (this runs on the board). Per sample, the cosine of the
    flattened output against the reference (1 when both are all zeros, 0 when one is);
    ``cosine`` is its mean over samples, ``cosine_min`` the worst sample. SNR is
    ``10 log10(sum ref^2 / sum (out - ref)^2)`` over the whole output, None when the two
    are identical (infinite). ``top1_agreement`` only for classifier-shaped outputs.
    """
    np = np_module()
    ref = np.asarray(ref, dtype=np.float32)
    out = np.asarray(out, dtype=np.float32)
    if ref.shape != out.shape:
        raise AgentError(
            "bad_eval_data", "reference outputs are %s but the model gives %s" % (list(ref.shape), list(out.shape))
        )
    n = len(ref)
    a = out.reshape(n, -1).astype(np.float64)
    b = ref.reshape(n, -1).astype(np.float64)
    diff = a - b
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    den = na * nb
    cos = np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.where(na + nb > 0, 0.0, 1.0))
    noise, signal = float((diff * diff).sum()), float((b * b).sum())
    if noise == 0:
        snr = None  # type: Optional[float]
    elif signal == 0:
        snr = -math.inf
    else:
        snr = 10.0 * math.log10(signal / noise)
    result = {
        "shape": ["N"] + [int(d) for d in ref.shape[1:]],
        "cosine": float(cos.mean()) if n else None,
        "cosine_min": float(cos.min()) if n else None,
        "max_abs_diff": float(np.abs(diff).max()) if diff.size else None,
        "mean_abs_diff": float(np.abs(diff).mean()) if diff.size else None,
        "snr_db": None if snr is None or math.isinf(snr) else round(snr, 3),
        "identical": noise == 0,
        "n": n,
    }  # type: Dict[str, Any]
    if is_classifier(ref.shape):
        agree = int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
        result["top1_agreement"] = agree / n if n else None
        result["top1_agreement_ci95"] = wilson(agree, n)
    return result


def fidelity(
    outs: Any, refs: Any, names: Optional[List[str]] = None, min_cosine: Optional[float] = None
) -> Dict[str, Any]:
    """Agreement of these outputs with the parent's reference outputs, per output and worst of all.

    Args:
        outs: the variant's outputs (one array, or a list, one per output, rows = samples).
        refs: the parent's outputs, the same way (a list may be shorter: older references
            hold the first output only).
        names: the outputs' names.
        min_cosine: the variant is ``degraded`` when an output's cosine falls below this
            (default `DEFAULT_MIN_COSINE`).

    Returns:
        ``outputs`` (one `output_fidelity` block each, with its name), the worst figures
        over the outputs (``cosine``, ``cosine_min``, ``snr_db``, ``max_abs_diff``; ``mean_abs_diff``
        and ``top1_agreement`` of the first output), ``min_cosine`` and ``degraded``.
    """
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    refs = refs if isinstance(refs, (list, tuple)) else [refs]
    threshold = DEFAULT_MIN_COSINE if min_cosine is None else float(min_cosine)
    per = []
    for i, (o, r) in enumerate(zip(outs, refs)):  # noqa: B905 (runs on Python 3.6: no strict=)
        block = output_fidelity(o, r)
        block["name"] = names[i] if names and i < len(names) else "output%d" % i
        per.append(block)
    if not per:
        raise AgentError("bad_eval_data", "reference outputs hold no output to compare")
    cosines = [p["cosine"] for p in per if p["cosine"] is not None]
    snrs = [p["snr_db"] for p in per if p["snr_db"] is not None]
    maxes = [p["max_abs_diff"] for p in per if p["max_abs_diff"] is not None]
    mins = [p["cosine_min"] for p in per if p["cosine_min"] is not None]
    worst = min(cosines) if cosines else None
    result = {
        "cosine": worst,
        "cosine_mean": per[0]["cosine"],
        "cosine_min": min(mins) if mins else None,
        "snr_db": min(snrs) if snrs else None,
        "max_abs_diff": max(maxes) if maxes else None,
        "mean_abs_diff": per[0]["mean_abs_diff"],
        "n": per[0]["n"],
        "outputs": per,
        "min_cosine": threshold,
        "degraded": worst is not None and worst < threshold,
    }  # type: Dict[str, Any]
    if "top1_agreement" in per[0]:
        result["top1_agreement"] = per[0]["top1_agreement"]
        result["top1_agreement_ci95"] = per[0]["top1_agreement_ci95"]
    return result
