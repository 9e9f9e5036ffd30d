"""Input specifications and dynamic dims, host side: parse ``--input NAME=SPEC``, build the job block, check.

A SPEC is one of::

    16000            a constant, broadcast to the input's shape (int, float, true/false)
    0..1             uniform values in [0, 1] (integers: both ends included), seeded by --seed
    normal           standard normal values (float inputs), seeded
    zeros | ones     the constants 0 and 1
    state.npy        a NumPy file: the input's whole shape, or one sample for a batched input
    batchless        no values: only declares that the input is not split into samples

and may end in ``:batchless`` (for example ``state=zeros:batchless``): the input is not
split into samples by batch (a scalar setting, a state tensor whose batch axis is not 0),
so its shape is the model's, with dynamic axes from ``--dim``. A 0-d input is batchless
anyway. A ``.npy`` file travels to the board like an artifact: deployed by its sha256 and
cached there (`edgebench.targets.deploy`), so the job JSON stays small whatever the file's
size and repeated runs do not send it again.

The agent (`edgebench.agent.build_inputs`) makes the arrays; `check_run` runs the same code
on the host against every variant's manifest before any work, so a bad spec or dim is one
line and exit 1 instead of one failure per variant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgebench import agent
from edgebench.compress.variant import Variant
from edgebench.errors import ConfigError, UserError

SUFFIXES = {"batchless": False, "batched": True}
NAMED = {"zeros": 0, "ones": 1, "true": True, "false": False}
FORMS = "a constant (16000), a range (0..1), normal, zeros, ones, a .npy file, or batchless"


@dataclass(frozen=True)
class InputSpec:
    """One parsed spec: exactly one of the value forms, or none (``batched`` alone)."""

    name: str
    text: str
    value: int | float | bool | None = None
    low: int | float | None = None
    high: int | float | None = None
    npy: Path | None = None
    normal: bool = False
    batched: bool | None = None

    def job(self, npy_path: str | None = None) -> dict[str, Any]:
        """The agent's spec (``npy_path``: where the .npy is on the board)."""
        out: dict[str, Any] = {"text": self.text}
        if self.value is not None:
            out["value"] = self.value
        elif self.low is not None:
            out["range"] = [self.low, self.high]
        elif self.npy is not None:
            out["npy"] = npy_path or str(self.npy)
            out["label"] = self.npy.name
        elif self.normal:
            out["normal"] = True
        if self.batched is not None:
            out["batched"] = self.batched
        return out


def _number(text: str) -> int | float | bool | None:
    t = text.strip().lower()
    if t in NAMED:
        return NAMED[t]
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return None


def parse_spec(name: str, text: str, base: Path | None = None) -> InputSpec:
    """Parse one SPEC (see the module docstring); a relative .npy path is taken from ``base`` (cwd).

    Raises:
        ConfigError: naming the input, the spec and the forms it can take.
    """
    body, batched = text.strip(), None
    head, sep, tail = body.rpartition(":")
    if sep and tail.strip().lower() in SUFFIXES:
        body, batched = head.strip(), SUFFIXES[tail.strip().lower()]
    elif body.lower() in SUFFIXES:
        return InputSpec(name, text, batched=SUFFIXES[body.lower()])
    bad = ConfigError(f"input {name!r}: spec {text!r} is not {FORMS}: e.g. --input {name}=16000")
    if not body:
        raise bad
    if body.lower().endswith(".npy"):
        path = Path(body).expanduser()
        return InputSpec(
            name, text, npy=(base or Path.cwd()) / path if not path.is_absolute() else path, batched=batched
        )
    if body.lower() == "normal":
        return InputSpec(name, text, normal=True, batched=batched)
    if ".." in body:
        lo_t, _, hi_t = body.partition("..")
        lo, hi = _number(lo_t), _number(hi_t)
        if lo is None or hi is None or isinstance(lo, bool) or isinstance(hi, bool):
            raise bad
        if lo > hi:
            raise ConfigError(f"input {name!r}: range {body!r} is empty: write it LOW..HIGH, e.g. {hi}..{lo}")
        return InputSpec(name, text, low=lo, high=hi, batched=batched)
    value = _number(body)
    if value is None:
        raise bad
    return InputSpec(name, text, value=value, batched=batched)


def parse_inputs(entries: Iterable[str], base: Path | None = None) -> dict[str, str]:
    """``["sr=16000", "x=0..1"]`` -> ``{"sr": "16000", "x": "0..1"}``, each spec checked.

    A relative ``.npy`` path is made absolute (from ``base``, default the working
    directory), so the run file and the child pytest see the same file.

    Raises:
        ConfigError: an entry not written NAME=SPEC, or a bad spec.
    """
    out: dict[str, str] = {}
    for entry in entries:
        name, sep, text = entry.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise ConfigError(f"input {entry!r}: write it as NAME=SPEC, for example sr=16000 or x=0..1")
        spec = parse_spec(name.strip(), text, base)
        out[name.strip()] = _normalized(spec, text)
    return out


def _normalized(spec: InputSpec, text: str) -> str:
    """The spec as stored: the text as written, with an absolute .npy path."""
    if spec.npy is None:
        return text.strip()
    return str(spec.npy) + ("" if spec.batched is None else ":" + ("batched" if spec.batched else "batchless"))


def parse_all(specs: Mapping[str, str]) -> dict[str, InputSpec]:
    """Every spec of a settings ``inputs`` mapping, parsed."""
    return {name: parse_spec(name, text) for name, text in specs.items()}


def npy_files(specs: Mapping[str, str]) -> dict[str, Path]:
    """The .npy files the specs name (input name -> path), to deploy with the job."""
    return {n: s.npy for n, s in parse_all(specs).items() if s.npy is not None}


def job_block(specs: Mapping[str, str], board_paths: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The job's ``inputs`` block; ``board_paths`` maps an input to its deployed .npy."""
    paths = board_paths or {}
    return {n: s.job(paths.get(n)) for n, s in parse_all(specs).items()}


def _signature(v: Variant) -> agent.Signature | None:
    """The variant's inputs: from its manifest (ONNX), else from the interpreter's input details on the host
    (TFLite, read with the agent's own adapter); None when the host cannot load it (the board then checks)."""
    ins = v.manifest.inputs
    if ins is not None:
        return [(t.name, list(t.shape), t.dtype) for t in ins]
    try:
        model = agent.RUNTIMES[agent.RUNTIME_OF_FORMAT[v.format]]({"xnnpack": False})  # no delegate INFO line
        model.load(str(v.artifact))
        return list(model.signature())
    except Exception:  # no LiteRT on the host, or a file it cannot load: the agent reports that on the board
        return None


def _hint(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(set(choices)), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_run(
    specs: Mapping[str, str], dims: Mapping[str, int], batch_size: int, seed: int, variants: list[Variant], *,
    eval_given: bool,
) -> None:  # fmt: skip
    """Check input specs and dims against every variant with a known signature, before any work.

    Reports, as one line each: an input no model has and a dim no model has (with the
    closest real name), an ambiguous ``?``, a value the input's dtype cannot hold, a .npy
    of the wrong shape, and (without eval data, whose arrays give the shapes) every
    dynamic dimension left without a size, as ready-to-paste ``--dim`` flags. An integer
    input with no spec is not an error here: it is recorded for its variant by the agent.

    Raises:
        UserError: naming the input or dim and the fix.
    """
    sigs = [(v, s) for v in variants if (s := _signature(v)) is not None]
    if not sigs:
        return  # no signature the host can read: the agent checks on the board
    names = {n for _, s in sigs for n, _, _ in s}
    for name in specs:
        if name not in names:
            raise UserError(
                f"--input {name}: no model has an input named {name!r}{_hint(name, names)}: "
                f"the inputs are {', '.join(sorted(names))}"
            )
    dim_names = {str(d) for _, s in sigs for _, shape, _ in s for d in shape if isinstance(d, str) and d != "?"}
    axes = {f"{n}:{i}" for _, s in sigs for n, shape, _ in s for i in range(len(shape))}
    unnamed = any(agent.unnamed_dim(d) for _, s in sigs for _, shape, _ in s for d in shape)
    for d in dims:
        if d in dim_names or d in axes or (d == "?" and unnamed):
            continue
        known = sorted(dim_names) + ([] if not unnamed else ["?"])
        raise UserError(
            f"--dim {d}={dims[d]}: no model has a dynamic dimension {d!r}{_hint(d, [*known, *axes])}: "
            f"the dims are {', '.join(known) or 'none'} (or input:axis=SIZE, e.g. {min(axes)}=SIZE)"
        )
    missing: list[str] = []
    for v, sig in sigs:
        mf = v.manifest  # with the inputs and dims its recipe recorded, as the run adds them (runner.variant_settings)
        try:
            agent.build_inputs(sig, job_block({**mf.run_inputs, **specs}), {**mf.run_dims, **dims}, batch_size, seed)
        except agent.AgentError as exc:
            if exc.kind == "missing_input":
                continue  # recorded for this variant by the agent
            if exc.kind == "missing_dims":
                if not eval_given:
                    missing += [f for f in str(exc).split(": add ", 1)[-1].split(" --dim ") if f]
                continue
            recorded = [n for n in mf.run_inputs if n not in specs and f"input {n!r}" in str(exc)]
            where = (
                f" (the spec its recipe recorded in {v.path / 'manifest.json'}: give --input {recorded[0]}=SPEC, "
                "or run `edgebench compress` again)" if recorded else ""
            )  # fmt: skip
            raise UserError(f"model {v.model} ({v.name}): {exc}{where}") from None
    if missing:
        flags = list(dict.fromkeys("--dim " + f.removeprefix("--dim ") for f in missing))
        raise UserError(f"dynamic dimensions have no size: add {' '.join(flags)} (or give --eval data)")
