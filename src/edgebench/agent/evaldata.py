"""Eval data on the board: the npz's inputs, labels and the parent's reference outputs, and the timed inputs.

A single-input model reads ``x``; a multi-input model one array per input, named after it.
The quick mode's seeded subset cuts the data and the reference outputs the same way.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

from .base import AgentError, first_line, np_module
from .inputs import build_inputs, concrete_shape, has_value, make_input
from .runtimes import Signature


def _fit_array(name: str, want_shape: List[Any], want_dtype: str, a: Any, path: str) -> Any:
    """Check one eval array against one model input (shape after the batch axis, dtype kind)."""
    np = np_module()
    want = want_shape[1:]
    got = list(a.shape[1:])
    if len(want) != len(got) or any(isinstance(w, int) and w > 0 and w != g for w, g in zip(want, got)):  # noqa: B905 (runs on Python 3.6: no strict=)
        raise AgentError(
            "bad_eval_data",
            "eval data %s has samples of shape %s but input %r expects %s: give eval data shaped [N, %s]"
            % (os.path.basename(path), got, name, want, ", ".join(str(w) for w in want)),
        )
    wk, gk = np.dtype(want_dtype).kind, a.dtype.kind
    if wk in "iu" and gk == "f":
        return a  # float data into a quantized input: the runtime adapter quantizes (TFLite) or refuses below
    if wk == "f" and gk in "iub":
        raise AgentError(
            "bad_eval_data",
            "eval data for input %r is %s but the model wants %s: save the eval data as %s"
            % (name, a.dtype.name, want_dtype, want_dtype),
        )
    return a.astype(want_dtype) if a.dtype.name != want_dtype else a


def load_eval(job: Dict[str, Any], signature: Signature) -> Tuple[Optional[List[Any]], Any, Any]:
    """Load the eval inputs (one array per model input), labels and reference outputs.

    A single-input model reads ``x``; a multi-input model reads one array per input,
    named after the input. An input whose job spec gives its values (``--input``) is not
    read: it is made here, one row per sample (or once when not batched). An input is not
    split into samples (batchless) when its spec says ``batched: false``, when the npz
    lists it in a ``batchless`` string array, or when it is 0-d for a 0-d input (a scalar).
    ``limit`` (quick mode) keeps a seeded random subset; the reference outputs (``reference``
    npz with ``outputs``) are cut the same way.

    Returns:
        (inputs or None, labels or None, reference outputs or None); also sets
        ``job["eval"]["n_total"]`` and ``job["eval"]["batched"]`` (one flag per input).
    """
    spec = job.get("eval") or {}
    path = spec.get("path")
    if not path:
        return None, None, None
    np = np_module()
    specs = job.get("inputs") or {}
    names = [s[0] for s in signature]
    base = os.path.basename(path)
    try:
        with np.load(path) as data:
            if len(signature) == 1:
                key = spec.get("x", "x") if spec.get("x", "x") in data.files else names[0]
                keys = [key]
            else:
                keys = [(spec.get("inputs") or {}).get(n, n) for n in names]
            keys = [None if has_value(specs.get(n)) else k for n, k in zip(names, keys)]  # noqa: B905 (Python 3.6)
            absent = [k for k in keys if k is not None and k not in data.files]
            if absent:
                raise AgentError(
                    "bad_eval_data",
                    "eval data %s has no arrays %s (it has %s): save one array per model input %s, or give the "
                    "missing ones with --input NAME=VALUE" % (base, absent, sorted(data.files), names),
                )
            found = dict((k, data[k]) for k in keys if k is not None)
            listed = [str(b) for b in data["batchless"].reshape(-1)] if "batchless" in data.files else []
            ykey = spec.get("y", "y")
            y = data[ykey] if ykey in data.files else None
    except AgentError:
        raise
    except Exception as exc:
        raise AgentError("bad_eval_data", "eval data %s could not be read: %s" % (base, first_line(exc))) from None
    batched = []
    for (name, shape, _dtype), key in zip(signature, keys):  # noqa: B905 (runs on Python 3.6: no strict=)
        flag = (specs.get(name) or {}).get("batched")
        a = found.get(key) if key is not None else None
        if flag is None or len(shape) == 0:  # a 0-d input is one value, never split
            flag = len(shape) > 0 and not (name in listed or key in listed)
        if flag and a is not None and a.ndim == 0:
            raise AgentError(
                "bad_eval_data",
                "eval data %s: array %r is 0-d (one value) but input %r takes %s with a sample axis: save it with one "
                "row per sample (np.full(N, value)), or declare it batchless (--input %s=batchless, or list it in "
                "the npz as batchless=[%r])" % (base, key, name, shape, name, name),
            )
        batched.append(bool(flag))
    rows = [len(found[k]) for k, b in zip(keys, batched) if b and k is not None]  # noqa: B905 (Python 3.6)
    n = rows[0] if rows else (len(y) if y is not None else 1)
    if any(r != n for r in rows) or (y is not None and len(y) != n):
        raise AgentError("bad_eval_data", "eval data %s: arrays have different lengths" % base)
    ref = None
    if spec.get("reference"):
        try:
            with np.load(spec["reference"]) as r:  # ``outputs``, then ``outputs_1``... for a model's later outputs
                ref = [r["outputs"]] + [r["outputs_%d" % k] for k in range(1, len(r.files)) if "outputs_%d" % k in r]
        except Exception as exc:
            raise AgentError("bad_eval_data", "reference outputs could not be read: %s" % first_line(exc)) from None
        if len(ref[0]) != n:
            raise AgentError("bad_eval_data", "reference outputs have %d rows, eval data %d" % (len(ref[0]), n))
    spec["n_total"] = n
    spec["batched"] = batched
    limit = spec.get("limit")
    idx = None
    if limit and int(limit) < n:
        idx = np.sort(np.random.default_rng(int(spec.get("seed", 0))).permutation(n)[: int(limit)])
        y = y[idx] if y is not None else None
        ref = [r[idx] if len(r) == len(ref[0]) else r for r in ref] if ref is not None else None
        n = len(idx)
    if ref is not None and len(ref) == 1:
        ref = ref[0]  # one output: the array itself (several: a list, one per output)
    dims = job.get("dims") or {}
    seed = int(job.get("seed", 0))
    xs = []
    for (name, shape, dtype), key, b in zip(signature, keys, batched):  # noqa: B905 (runs on Python 3.6)
        if key is None:  # made from its spec, n rows
            missing = []  # type: List[str]
            cshape = concrete_shape(name, shape, dims, n, b, missing)
            if missing:
                raise AgentError(
                    "missing_dims", "input %r has dynamic dimensions with no size: add %s" % (name, " ".join(missing))
                )
            xs.append(make_input(name, cshape, dtype, specs[name], b, seed)[0])
            continue
        x = found[key]
        if b:
            x = x[idx] if idx is not None else x
            x = _fit_array(name, shape, dtype, x, path)
        xs.append(x)
    return xs, y, ref


def inputs_for(
    job: Dict[str, Any], signature: Signature, xs: Optional[List[Any]], batch: int
) -> Tuple[List[Any], List[Dict[str, Any]]]:
    """The timed inputs and their records: eval data (first ``batch`` samples) or made from the specs."""
    specs, dims, seed = job.get("inputs") or {}, job.get("dims") or {}, int(job.get("seed", 0))
    if xs is None:
        return build_inputs(signature, specs, dims, batch, seed)
    flags = (job.get("eval") or {}).get("batched") or [True] * len(xs)
    specs = dict(specs)
    given = {}
    for (name, _shape, _dtype), x, b in zip(signature, xs, flags):  # noqa: B905 (runs on Python 3.6: no strict=)
        if has_value(specs.get(name)):
            continue  # made again at the timed batch size, and recorded as made
        if b and len(x) < batch:
            raise AgentError(
                "bad_eval_data",
                "eval data has %d samples, fewer than the batch size %d: lower batch_size" % (len(x), batch),
            )
        given[name] = np_module().asarray(x[:batch] if b else x, order="C")  # (ascontiguousarray makes 0-d 1-d)
        if not b:  # batchless in the eval data: recorded as such
            specs[name] = dict(specs.get(name) or {}, batched=False)
    return build_inputs(signature, specs, dims, batch, seed, given)
