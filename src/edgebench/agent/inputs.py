"""The inputs of one inference, made from the job's specs or generated from the model's signature.

The job's ``inputs`` block holds one spec per input name (host side: `edgebench.bench.inputs`):
``{"value": 16000}`` (a constant, broadcast), ``{"range": [lo, hi]}`` (uniform; integers
inclusive), ``{"npy": path}`` (a file shipped with the job), ``{"normal": true}``, and
``"batched": false`` for an input that is not split into samples (a scalar, a state tensor
whose batch axis is not 0). Hand-written with numpy only: this runs on the board.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

from .base import AgentError, first_line, np_module
from .runtimes import Signature

UNNAMED = (None, "", "?", -1)  # how runtimes show a dynamic axis with no name


def unnamed_dim(d: Any) -> bool:
    """True for a dynamic axis with no name (None, '', '?', or a size <= 0)."""
    return d in UNNAMED or (isinstance(d, int) and d <= 0)


def check_dims(signature: Signature, dims: Dict[str, Any]) -> None:
    """Refuse ``?=SIZE`` when the model has unnamed dynamic axes on several axes (it would set them all)."""
    if "?" not in dims:
        return
    axes = ["%s:%d" % (n, i) for n, shape, _ in signature for i, d in enumerate(shape) if unnamed_dim(d)]
    axes = [a for a in axes if a not in dims]
    if len(axes) > 1:
        raise AgentError(
            "bad_input",
            "dim '?' is ambiguous: this model has unnamed dynamic axes %s: give each one as input:axis=SIZE, %s"
            % (", ".join(axes), " ".join("--dim %s=%s" % (a, dims["?"]) for a in axes)),
        )


def concrete_shape(
    name: str, shape: List[Any], dims: Dict[str, Any], batch: int, batched: bool, missing: List[str]
) -> List[int]:
    """The input's shape with every dynamic axis sized; the flags for unsized ones go to ``missing``.

    An axis is sized by ``input:axis`` in ``dims``, then by its name (``?`` for an unnamed one),
    then, for axis 0 of a batched input, by ``batch``.
    """
    out = []
    for i, d in enumerate(shape):
        key = "%s:%d" % (name, i)
        if isinstance(d, int) and d > 0:
            out.append(d)
        elif key in dims:
            out.append(int(dims[key]))
        elif isinstance(d, str) and not unnamed_dim(d) and d in dims:
            out.append(int(dims[d]))
        elif unnamed_dim(d) and "?" in dims:
            out.append(int(dims["?"]))
        elif i == 0 and batched:
            out.append(int(batch))
        else:
            flag = "--dim %s=SIZE" % (key if unnamed_dim(d) else d)
            if flag not in missing:
                missing.append(flag)
            out.append(1)
    return out


def _cast_value(name: str, value: Any, dtype: str) -> Any:
    """``value`` as a ``dtype`` scalar; a value the dtype cannot hold is an error naming the input."""
    np = np_module()
    dt = np.dtype(dtype)
    ok = True
    if dt.kind in "iu":
        ok = not isinstance(value, bool) and float(value) == int(float(value))
        if ok:
            info = np.iinfo(dt)
            ok = int(info.min) <= int(float(value)) <= int(info.max)
    elif dt.kind == "b":
        ok = value in (0, 1, True, False)
    elif dt.kind == "f":
        ok = not isinstance(value, bool) and abs(float(value)) <= float(np.finfo(dt).max)
    if not ok:
        raise AgentError(
            "bad_input",
            "input %r is %s: the value %r cannot be cast to it: give a %s value" % (name, dtype, value, dtype),
        )
    return dt.type(value)


def make_input(
    name: str, shape: List[int], dtype: str, spec: Dict[str, Any], batched: bool, seed: int
) -> Tuple[Any, str]:
    """One input array and how it was made (for the record), from its spec or generated.

    Raises:
        AgentError: a value the dtype cannot hold, a .npy of another shape, or an integer input
            with no spec (its values select behaviour: they are never guessed).
    """
    np = np_module()
    dt = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if "value" in spec:
        v = spec["value"]
        return np.full(shape, _cast_value(name, v, dtype), dtype=dt), "constant %s" % v
    if "range" in spec:
        lo, hi = spec["range"]
        lo_c, hi_c = _cast_value(name, lo, dtype), _cast_value(name, hi, dtype)
        if dt.kind in "iu":
            a = rng.integers(int(lo_c), int(hi_c) + 1, size=shape).astype(dt)
        else:
            a = rng.uniform(float(lo_c), float(hi_c), size=shape).astype(dt)
        return a, "uniform %s..%s, seed %d" % (lo, hi, seed)
    if "npy" in spec:
        path = spec["npy"]
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise AgentError(
                "bad_input", "input %r: %s could not be read: %s" % (name, path, first_line(exc))
            ) from None
        label = spec.get("label") or os.path.basename(path)
        if dt.kind in "iub" and a.dtype.kind == "f":
            raise AgentError(
                "bad_input", "input %r is %s but %s holds %s: save it as %s" % (name, dtype, label, a.dtype.name, dtype)
            )
        if list(a.shape) != list(shape):
            if not (batched and list(a.shape) == list(shape[1:])):
                want = "%s or one sample %s" % (shape, shape[1:]) if batched else str(shape)
                raise AgentError(
                    "bad_input",
                    "input %r: %s has shape %s but the input takes %s: save an array of that shape"
                    % (name, label, list(a.shape), want),
                )
            a = np.broadcast_to(a, shape)
        return np.asarray(a.astype(dt), order="C"), "file %s" % label
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt), "generated: normal(0, 1), seed %d" % seed
    if dt.kind in "iu" and dt.itemsize == 1 and shape:  # 8-bit tensors are quantized data (an image), not settings
        info = np.iinfo(dt)
        a = rng.integers(int(info.min), int(info.max) + 1, size=shape).astype(dt)
        return a, "generated: uniform %d..%d, seed %d" % (info.min, info.max, seed)
    raise AgentError(
        "missing_input",
        "input %r is %s %s and has no value: integer values (a setting, an id, a length) select what the model "
        "does, so they are not guessed: "
        "give one with --input %s=VALUE (a constant, LO..HI or a .npy file)" % (name, dtype, shape, name),
    )


def build_inputs(
    signature: Signature,
    specs: Dict[str, Any],
    dims: Dict[str, Any],
    batch_size: int,
    seed: int = 0,
    given: Optional[Dict[str, Any]] = None,
) -> Tuple[List[Any], List[Dict[str, Any]]]:
    """The inputs of one inference and their records (name, shape, dtype, how made, batched).

    ``specs`` are the job's input specs (names the model lacks are ignored: a run's specs
    apply to every model that has the input); ``given`` are arrays from the eval data, used
    as they are. Every unsized dynamic dimension is reported at once.

    Raises:
        AgentError: missing dims (all of them, as ready-to-paste flags), an ambiguous ``?``,
            or a bad spec (see `make_input`).
    """
    check_dims(signature, dims)
    given = given or {}
    missing = []  # type: List[str]
    shapes = []
    for name, shape, _dtype in signature:
        batched = bool((specs.get(name) or {}).get("batched", True)) and len(shape) > 0
        if name in given:  # its shape is the data's
            shapes.append((batched, list(given[name].shape)))
            continue
        shapes.append((batched, concrete_shape(name, shape, dims, batch_size, batched, missing)))
    if missing:
        names = [n for n, _, _ in signature]
        raise AgentError(
            "missing_dims", "dynamic dimensions of %s have no size: add %s" % (", ".join(names), " ".join(missing))
        )
    arrays, records = [], []
    for (name, _shape, dtype), (batched, shape) in zip(signature, shapes):  # noqa: B905 (runs on Python 3.6)
        if name in given:
            a, how = given[name], "eval data"
        else:
            a, how = make_input(name, shape, dtype, specs.get(name) or {}, batched, seed)
        arrays.append(a)
        records.append({"name": name, "shape": list(a.shape), "dtype": str(a.dtype), "made": how, "batched": batched})
    return arrays, records


VALUE_KEYS = ("value", "range", "npy", "normal")  # a spec with one of these makes the input's values


def has_value(spec: Optional[Dict[str, Any]]) -> bool:
    """Whether an input spec gives the input's values (rather than its eval data)."""
    return any(k in (spec or {}) for k in VALUE_KEYS)
