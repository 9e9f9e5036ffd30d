"""Measurement settings of a run, declared once: defaults, help, flags, ranges, job blocks.

Each `RunSettings` field carries its declaration in ``field(metadata=...)``; `SETTINGS`
reads them back as `Setting` records, and every place that shows or passes a setting is
generated from them: the options of ``edgebench run`` (`edgebench.cli.run`), the pytest
``--edge-*`` options (`edgebench.bench.plugin`), the child pytest's command line
(`edgebench.workflows.run`) and the job blocks the agent reads (`RunSettings.measure_block`,
`RunSettings.device_block`). The defaults the agent itself falls back to
(`agent.DEFAULT_MEASURE`, `agent.DEFAULT_DEVICE`) are the defaults here: the agent runs
without edgebench on the board, so its table is the one source and this module reads it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator

from edgebench import agent
from edgebench.bench.inputs import parse_inputs, parse_spec
from edgebench.config import DIM_MAX, DimSize, validate
from edgebench.errors import ConfigError

WHERE = "measurement settings"


def _setting(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    option: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    metavar: str | None = None,
    job: str | None = None,
    usage_range: bool = False,
    flag_value: Any = None,
    duration: bool = False,
) -> Any:
    """A `RunSettings` field with its declaration (see `Setting` for the arguments).

    Pydantic reads a dataclass field's metadata as ``Field`` arguments: the bounds go there as
    ``ge``/``gt``/``le`` (checked by `edgebench.config.validate`, which also refuses nan and inf),
    the declaration under one key it leaves alone.
    """
    bounds: dict[str, Any] = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le)) if v is not None}
    if isinstance(default, float) or (default is None and (ge, gt, le) != (None, None, None)):
        bounds["allow_inf_nan"] = False  # a float setting (an unset one with bounds is a float or an int)
    meta: dict[str, Any] = {"setting": {
        "help": help, "flag": flag, "option": option, "ge": ge, "gt": gt, "le": le, "metavar": metavar, "job": job,
        "usage_range": usage_range, "flag_value": flag_value, "duration": duration,
    }, **bounds}  # fmt: skip
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


class BadValue(ValueError, argparse.ArgumentTypeError):
    """A flag value out of its setting's range: click (a ValueError) and argparse both show its text."""


def _bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class Number:
    """Parses one flag value of a numeric setting (``edgebench run`` and the pytest ``--edge-*`` options).

    The value must be a finite number of the setting's type within its bounds; the error
    says which, with the range (a usage error: click and argparse show the text).
    """

    def __init__(self, kind: type, ge: float | None, gt: float | None, le: float | None) -> None:
        self.kind, self.ge, self.gt, self.le = kind, ge, gt, le
        self.__name__ = "integer" if kind is int else "float"  # click's and argparse's name for it

    def range_text(self) -> str:
        """``0 to 3600``, ``above 0, at most 604800``, ``at least 0``: the bounds as ``--help`` says them."""
        top = None if self.le is None else _bound(self.le)
        if self.gt is not None:
            return f"above {_bound(self.gt)}" + ("" if top is None else f", at most {top}")
        if self.ge is None:
            return "any" if top is None else f"at most {top}"
        return f"at least {_bound(self.ge)}" if top is None else f"{_bound(self.ge)} to {top}"

    def __call__(self, value: Any) -> Any:
        """The number, or `BadValue` naming the range."""
        try:
            number = self.kind(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or (self.kind is int and isinstance(value, float) and value != number):
            raise BadValue(f"{value!r} is not {'an integer' if self.kind is int else 'a number'}")
        if not math.isfinite(number):
            raise BadValue(f"{value} is not a finite number in the range {self.range_text()}")
        low_ok = (self.ge is None or number >= self.ge) and (self.gt is None or number > self.gt)
        if not low_ok or (self.le is not None and number > self.le):
            raise BadValue(f"{value} is not in the range {self.range_text()}")
        return number


_UNIT_S = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(min|h|m|s)?")


def parse_duration(value: Any) -> float:
    """Seconds from ``600``, ``90s``, ``10m``, ``1h``, ``3m40s`` (a number alone is seconds).

    Raises:
        BadValue: text that is not a duration (naming the forms).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    total, pos, parts = 0.0, 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos or (m.group(2) is None and m.end() != len(text)):
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2) or "s"]
        pos, parts = m.end(), parts + 1
        while pos < len(text) and text[pos] == " ":
            pos += 1
    if not parts or pos != len(text):
        raise BadValue(f"{value!r} is not a duration: write seconds (600) or with a unit (90s, 10m, 1h, 3m40s)")
    return total


class Duration(Number):
    """Parses a duration flag (`parse_duration`), then checks it like a `Number` (finite, in range)."""

    def __init__(self, ge: float | None, gt: float | None, le: float | None) -> None:
        super().__init__(float, ge, gt, le)
        self.__name__ = "duration"

    def __call__(self, value: Any) -> Any:
        """The seconds, or `BadValue` naming the forms or the range."""
        return super().__call__(parse_duration(value))


def _duration_or_none(value: Any) -> Any:
    """A TOML or mapping value of a duration setting: ``"10m"`` -> 600.0; None and numbers pass."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    try:
        return parse_duration(value)
    except BadValue as exc:
        raise ValueError(str(exc)) from None


DurationS = Annotated[float, BeforeValidator(_duration_or_none)]


@dataclass(frozen=True)
class Setting:
    """One measurement setting as the CLI, the pytest plugin and the launcher see it.

    Attributes:
        name: the `RunSettings` field (and the key in a run file's ``settings``).
        type: the parser of one flag's value: a `Number` (finite, in range) for a number, ``str``
            for text (``dims`` and ``inputs`` entries, ``baseline``).
        default: the default value (None: unset).
        help: one line for ``--help`` (without the default: it is added from ``default``).
        flag: the ``edgebench run`` option, or None when ``run`` does not offer it.
        option: the pytest plugin's option (``--edge-...``).
        ge: the value must be at least this ...
        gt: ... or above this ...
        le: ... and at most this (a number that sizes something always has an upper bound).
        metavar: the value's name in ``--help``.
        job: the agent job block the setting goes to (``measure``), if any.
        usage_range: ``edgebench run`` checks the range while parsing (a usage error, exit 2).
        repeatable: the option is given once per entry (``dims``: ``NAME=SIZE``).
        flag_value: the value of the ``edgebench run`` flag given without one (``--profile``), if it may be.
    """

    name: str
    type: Any
    default: Any
    help: str
    flag: str | None
    option: str | None
    ge: float | None
    gt: float | None
    le: float | None
    metavar: str | None
    job: str | None
    usage_range: bool
    repeatable: bool
    flag_value: Any = None

    @property
    def dest(self) -> str:
        """The pytest option's destination name (``--edge-min-time`` -> ``edge_min_time``)."""
        return (self.option or "").lstrip("-").replace("-", "_")

    def help_with_default(self) -> str:
        """The help line with the default, for tools that do not show it themselves."""
        return self.help if self.default in (None, {}) else f"{self.help} (default {self.default})"


M, D = agent.DEFAULT_MEASURE, agent.DEFAULT_DEVICE
# upper bounds of the numbers that size a run (stated in --help): past them a run is a mistake, not a plan
# (settings.repeats = 2**63-1 once grew the harness to 22.8 GB before the kernel killed it)
MAX_REPEATS = 1000
MAX_ROUNDS = 10_000_000  # samples (8 bytes each, and a few more in the run file)
DAY_S, WEEK_S = 86_400, 604_800
MAX_C = 150  # degrees: no board measures above it
SUSTAINED_MARGIN_S = 120.0  # a sustained run leaves the agent this much of its timeout for load, warm-up, steady state
# an input spec as text; a TOML number or boolean (nightly ``inputs = { sr = 16000 }``) is taken as written
SpecText = Annotated[str, BeforeValidator(lambda v: str(v).lower() if isinstance(v, bool) else str(v))]


@dataclass(frozen=True)
class RunSettings:
    """How each variant is measured; every default can be overridden per run.

    The fields are declared with their help, flags and ranges (see `SETTINGS`);
    ``repeats`` fresh agent processes per variant run interleaved round-robin across a
    board's variants, and the steady-state floors (``min_rounds``, ``min_time_s``) apply
    to their total.
    """

    warmup_min_iters: int = _setting(
        int(M["warmup_min_iters"]), "Warm-up: at least this many inferences.",
        flag="--warmup-iters", option="--edge-warmup-iters", ge=0, le=1_000_000, job="measure",
    )  # fmt: skip
    warmup_min_s: float = _setting(
        M["warmup_min_s"], "Warm-up: at least this many seconds.",
        flag="--warmup-time", option="--edge-warmup-time", ge=0, le=3600, job="measure",
    )  # fmt: skip
    min_rounds: int = _setting(
        int(M["min_rounds"]), "Steady state: at least this many samples.",
        flag="--min-rounds", option="--edge-min-rounds", ge=1, le=MAX_ROUNDS, job="measure",
    )  # fmt: skip
    min_time_s: float = _setting(
        M["min_time_s"], "Steady state: at least this many seconds per variant.",
        flag="--min-time", option="--edge-min-time", ge=0, le=DAY_S, job="measure",
    )  # fmt: skip
    max_time_s: float = _setting(
        M["max_time_s"], "Steady state: time cap in seconds (also caps the warm-up).",
        flag="--max-time", option="--edge-max-time", ge=0, le=DAY_S, job="measure",
    )  # fmt: skip
    max_rounds: int = _setting(
        int(M["max_rounds"]),
        "Steady state: sample cap.",
        option="--edge-max-rounds",
        ge=0,
        le=MAX_ROUNDS,
        job="measure",
    )
    batch_size: int = _setting(
        int(M["batch_size"]), "Inputs per inference.",
        flag="--batch-size", option="--edge-batch-size", ge=1, le=65_536, job="measure",
    )  # fmt: skip
    dims: dict[str, DimSize] = _setting(  # noqa: RUF009 (a field with a default_factory)
        {}, "Size of a dynamic input dimension (repeatable): by its name, batch=1, or by input:axis, image:2=320 "
        "(for unnamed axes); every missing one is listed at once. A recipe's [models.M] dims apply to names not "
        "given here.",
        flag="--dim", option="--edge-dim", metavar="NAME=SIZE",
    )  # fmt: skip
    inputs: dict[str, SpecText] = _setting(  # noqa: RUF009 (a field with a default_factory)
        {}, "Value of a model input (repeatable): NAME=16000 (constant), NAME=0..1 (uniform), NAME=normal, "
        "NAME=file.npy (whole shape, or one sample); add :batchless for an input not split by batch (a scalar, "
        "a state tensor), e.g. state=zeros:batchless. Integer inputs are never guessed: give them here (a "
        "recipe's [models.M] inputs apply to inputs not named here).",
        flag="--input", option="--edge-input", metavar="NAME=SPEC",
    )  # fmt: skip
    quick: int | None = _setting(
        None, "Accuracy on a seeded random subset of N samples, with a 95% interval.",
        flag="--quick", option="--edge-quick", ge=1, le=MAX_ROUNDS, metavar="N",
    )  # fmt: skip
    seed: int = _setting(
        0, "Seed of the quick subset and of generated inputs.", option="--edge-seed", ge=0, le=2**32 - 1
    )
    min_cosine: float | None = _setting(
        None, "A variant is degraded when an output's cosine similarity to its fp32 parent's (mean over the eval "
        "samples) falls below this. Default: the threshold its manifest was judged by (a recipe's [fidelity] "
        f"min_cosine), else {agent.DEFAULT_MIN_COSINE}; given, it applies to every variant.",
        flag="--min-cosine", option="--edge-min-cosine", ge=0, le=1, job="measure",
    )  # fmt: skip
    temp_limit_c: float = _setting(
        D["temp_limit_c"], "Warn when the board's hottest thermal zone reaches this temperature (C).",
        option="--edge-temp-limit", ge=0, le=MAX_C,
    )  # fmt: skip
    freq_drop: float = _setting(
        D["freq_drop"],
        "Warn when the CPU frequency fell by more than this fraction.",
        option="--edge-freq-drop",
        ge=0,
        le=1,
    )
    cooldown_s: float | None = _setting(
        None, "Sleep S seconds on the board before each variant.",
        flag="--cooldown", option="--edge-cooldown", ge=0, le=DAY_S, metavar="S",
    )  # fmt: skip
    cooldown_until_c: float | None = _setting(
        None, "Before each variant, wait until the board is at most C degrees.",
        flag="--cooldown-until", option="--edge-cooldown-until", ge=0, le=MAX_C, metavar="C",
    )  # fmt: skip
    cooldown_max_s: float = _setting(
        agent.COOLDOWN_MAX_S,
        "Longest wait for the cool-down temperature (seconds).",
        option="--edge-cooldown-max",
        ge=0,
        le=DAY_S,
    )
    timeout_s: float = _setting(
        900.0, "Kill the agent after this many seconds.", flag="--timeout", option="--edge-timeout", gt=0, le=WEEK_S
    )
    lock_timeout_s: float = _setting(
        600.0,
        "Wait this long for a board another run holds (seconds).",
        option="--edge-lock-timeout",
        ge=0,
        le=WEEK_S,
    )
    profile: int = _setting(
        0, "Then profile each variant over N inferences in a fresh process (--profile alone: 50), for "
        "report --format html|markdown; never latency.",
        flag="--profile", option="--edge-profile", ge=0, le=MAX_ROUNDS, metavar="N", flag_value=50,
    )  # fmt: skip
    repeats: int = _setting(
        8, "Fresh agent processes per variant (compare/gate's units), interleaved across a board's variants; "
        "they split the steady-state floors.",
        flag="--repeats", option="--edge-repeats", ge=1, le=MAX_REPEATS,
    )  # fmt: skip

    sustained_s: DurationS | None = _setting(  # noqa: RUF009 (an Annotated float: the BeforeValidator reads 10m)
        None, "Then run each variant continuously this long in its first process (seconds: 600, 90s, 10m) and record a "
        "timeline per window: inferences, p50/p99, CPU frequency, hottest thermal zone, throttle flags, power where "
        "the board has a sensor; the report says when throttling began and what it cost, and the energy per "
        "inference.",
        flag="--sustained", option="--edge-sustained", gt=0, le=DAY_S, metavar="DURATION", duration=True,
    )  # fmt: skip
    sustained_window_s: DurationS = _setting(  # noqa: RUF009 (as above)
        agent.DEFAULT_SUSTAINED["window_s"], "Length of one window of a --sustained timeline (seconds: 1, 0.5, 2s).",
        option="--edge-sustained-window", gt=0, le=3600, duration=True,
    )  # fmt: skip

    baseline: str | None = _setting(
        None, "Re-measure this baseline with each variant on the same board, paired: A and B timed alternately "
        "in --repeats more fresh processes, so whatever moves a process or a whole run moves both, and compare "
        "and gate decide on the paired ratio. A stored run (id, latest~N, run file; its artifacts are kept under "
        "RESULTS/artifacts), a .onnx/.tflite file or a variants folder.",
        flag="--baseline", option="--edge-baseline", metavar="RUN|FILE",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name, text in self.inputs.items():  # a bad spec fails here, wherever the settings came from
            parse_spec(name, text)
        for s in SETTINGS:  # settings made in code (validate checks the same bounds first, naming the file)
            value = getattr(self, s.name)
            values = value.values() if s.name == "dims" else () if value is None or isinstance(value, dict) else [value]
            bounds = _DIM if s.name == "dims" else s.type
            if not isinstance(bounds, Number):  # text (the baseline)
                continue
            for v in values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise ConfigError(f"{WHERE}: {s.name} must be a finite number, not {v}")
                if bounds.ge is not None and v < bounds.ge:
                    raise ConfigError(f"{WHERE}: {s.name} must be >= {bounds.ge:g}")
                if bounds.gt is not None and v <= bounds.gt:
                    raise ConfigError(f"{WHERE}: {s.name} must be > {bounds.gt:g}")
                if bounds.le is not None and v > bounds.le:
                    raise ConfigError(f"{WHERE}: {s.name} must be <= {bounds.le:g}")
        if self.sustained_s is not None:
            if self.sustained_window_s > self.sustained_s:
                raise ConfigError(
                    f"{WHERE}: the sustained window ({self.sustained_window_s:g} s) is longer than the sustained run "
                    f"({self.sustained_s:g} s): shorten the window or lengthen --sustained"
                )
            if self.sustained_s + SUSTAINED_MARGIN_S > self.timeout_s:
                raise ConfigError(
                    f"{WHERE}: --sustained {self.sustained_s:g} s does not fit in the agent's timeout "
                    f"({self.timeout_s:g} s): raise --timeout to at least {self.sustained_s + SUSTAINED_MARGIN_S:g}"
                )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, where: str = f"{WHERE}:") -> RunSettings:
        """Settings from a mapping; unknown names fail with the list of valid ones (and the closest).

        Args:
            values: the settings by field name.
            where: what the messages start with: the file and table they came from
                (``f"{path}: [nightly.settings]"``), else ``measurement settings:``.

        Raises:
            ConfigError: for an unknown name or a bad value (naming the field and its range).
        """
        values = dict(values or {})
        names = {s.name for s in SETTINGS}
        unknown = sorted(set(values) - names, key=str)
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), sorted(names), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            prefix = "" if where == f"{WHERE}:" else f"{where} "
            raise ConfigError(f"{prefix}unknown {WHERE} {unknown}: valid names are {sorted(names)}{hint}")
        return validate(cls, values, where)

    def replace(self, **changes: Any) -> RunSettings:
        """A copy with some settings changed (validated)."""
        return RunSettings.from_mapping({**dataclasses.asdict(self), **changes})

    def per_process(self) -> RunSettings:
        """The settings of one of the ``repeats`` processes: the steady-state floors split between them.

        Each process gets ``ceil(min_rounds / repeats)`` rounds and ``min_time_s / repeats``
        seconds; warm-up, caps and everything else stay per process.
        """
        n = self.repeats
        per_time = round(self.min_time_s / n, 6)
        return self.replace(min_rounds=math.ceil(self.min_rounds / n), min_time_s=per_time, repeats=1)

    def measure_block(self) -> dict[str, Any]:
        """The job's ``measure`` block."""
        return {s.name: getattr(self, s.name) for s in SETTINGS if s.job == "measure"}

    def device_block(self) -> dict[str, Any]:
        """The job's ``device`` block (limits for warnings, optional cool-down)."""
        block: dict[str, Any] = {"temp_limit_c": self.temp_limit_c, "freq_drop": self.freq_drop}
        if self.cooldown_s or self.cooldown_until_c is not None:
            cd: dict[str, Any] = {"max_s": self.cooldown_max_s}
            if self.cooldown_s:
                cd["seconds"] = self.cooldown_s
            if self.cooldown_until_c is not None:
                cd["until_c"] = self.cooldown_until_c
            block["cooldown"] = cd
        return block

    def sustained_block(self) -> dict[str, Any] | None:
        """The job's ``sustained`` block (``seconds``, ``window_s``), None when the run is not sustained."""
        if self.sustained_s is None:
            return None
        return {"seconds": self.sustained_s, "window_s": self.sustained_window_s}

    def as_dict(self) -> dict[str, Any]:
        """Every setting, for the run file."""
        return dataclasses.asdict(self)


def _declared() -> tuple[Setting, ...]:
    hints = typing.get_type_hints(RunSettings)
    out = []
    for f in dataclasses.fields(RunSettings):
        hint = hints[f.name]
        repeatable = typing.get_origin(hint) is dict
        scalar = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        meta = dict(f.metadata["setting"])
        duration = meta.pop("duration")
        kind = scalar[0]
        parse: Any = str
        if duration:
            parse = Duration(meta["ge"], meta["gt"], meta["le"])
            meta["help"] += f" Range: {parse.range_text()}."
        elif not repeatable and kind in (int, float):
            parse = Number(kind, meta["ge"], meta["gt"], meta["le"])
            meta["help"] += f" Range: {parse.range_text()}."
        out.append(Setting(name=f.name, type=parse, default=default, repeatable=repeatable, **meta))
    return tuple(out)


_DIM = Number(int, 1, None, DIM_MAX)
SETTINGS: tuple[Setting, ...] = _declared()


def parse_dims(specs: list[str] | tuple[str, ...]) -> dict[str, int]:
    """``["batch=4", "seq=128"]`` -> ``{"batch": 4, "seq": 128}``.

    Raises:
        ConfigError: naming the bad entry and the expected form.
    """
    out: dict[str, int] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise ConfigError(f"dimension {spec!r}: write it as NAME=SIZE, for example seq=128")
        try:
            out[name.strip()] = _DIM(value)
        except BadValue as exc:
            raise ConfigError(f"dimension {spec!r}: {exc}") from None
    return out


def dims_argv(dims: Mapping[str, int]) -> list[str]:
    """``{"seq": 128}`` -> ``["seq=128"]``: the inverse of `parse_dims`."""
    return [f"{name}={size}" for name, size in dims.items()]


def from_options(values: Mapping[str, Any]) -> RunSettings:
    """Settings from parsed options by field name (``None``: unset; ``dims`` as ``NAME=SIZE`` entries).

    Raises:
        ConfigError: for a bad value (``inputs`` as ``NAME=SPEC`` entries, see `edgebench.bench.inputs`).
    """
    chosen = {k: v for k, v in values.items() if v is not None and k not in ("dims", "inputs")}
    return RunSettings.from_mapping({
        **chosen, "dims": parse_dims(list(values.get("dims") or ())),
        "inputs": parse_inputs(list(values.get("inputs") or ())),
    })  # fmt: skip
