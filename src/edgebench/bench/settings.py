"""Measurement settings of a run: defaults, validation, and the job blocks they become."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgebench.errors import ConfigError


@dataclass(frozen=True)
class RunSettings:
    """How each variant is measured; every default can be overridden per run.

    Attributes:
        warmup_min_iters: warm-up lasts at least this many inferences ...
        warmup_min_s: ... and at least this many seconds.
        min_rounds: steady state collects at least this many samples ...
        min_time_s: ... over at least this many seconds ...
        max_time_s: ... and stops at this time cap (also caps the warm-up).
        max_rounds: hard cap on the number of samples.
        batch_size: inputs per inference.
        dims: sizes of dynamic input dimensions, by dim name or ``"input:axis"``.
        quick: evaluate accuracy on a seeded random subset of this many samples.
        seed: seed of the quick subset.
        temp_limit_c: warn when the board's hottest thermal zone reaches this.
        freq_drop: warn when the CPU frequency fell by more than this fraction.
        cooldown_s: sleep this long on the board before loading each variant.
        cooldown_until_c: or wait on the board until the temperature is at most this.
        cooldown_max_s: longest wait for ``cooldown_until_c``.
        timeout_s: the agent is killed after this many seconds.
        lock_timeout_s: how long to wait for a board another run holds.
        repeats: fresh agent processes per variant, interleaved round-robin across a board's
            variants; the steady-state floors (``min_rounds``, ``min_time_s``) apply to their total.
    """

    warmup_min_iters: int = 10
    warmup_min_s: float = 0.2
    min_rounds: int = 50
    min_time_s: float = 2.0
    max_time_s: float = 30.0
    max_rounds: int = 1_000_000
    batch_size: int = 1
    dims: dict[str, int] = field(default_factory=dict)
    quick: int | None = None
    seed: int = 0
    temp_limit_c: float = 80.0
    freq_drop: float = 0.10
    cooldown_s: float | None = None
    cooldown_until_c: float | None = None
    cooldown_max_s: float = 300.0
    timeout_s: float = 900.0
    lock_timeout_s: float = 600.0
    repeats: int = 3

    def __post_init__(self) -> None:
        checks = [
            (self.min_rounds >= 1, "min_rounds must be >= 1"),
            (self.max_rounds >= 0, "max_rounds must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.warmup_min_iters >= 0, "warmup_min_iters must be >= 0"),
            (min(self.warmup_min_s, self.min_time_s, self.max_time_s) >= 0, "times must be >= 0"),
            (self.quick is None or self.quick >= 1, "quick must be >= 1 samples"),
            (self.timeout_s > 0, "timeout_s must be > 0"),
            (self.repeats >= 1, "repeats must be >= 1 (fresh agent processes per variant)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"measurement settings: {msg}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> RunSettings:
        """Settings from a mapping; unknown names fail with the list of valid ones.

        Raises:
            ConfigError: for an unknown name or a bad value.
        """
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown measurement settings {unknown}: valid names are {sorted(names)}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"measurement settings: {exc}") from None

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
        keys = (
            "warmup_min_iters",
            "warmup_min_s",
            "min_rounds",
            "min_time_s",
            "max_time_s",
            "max_rounds",
            "batch_size",
        )
        return {k: getattr(self, k) for k in keys}

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

    def as_dict(self) -> dict[str, Any]:
        """Every setting, for the run file."""
        return dataclasses.asdict(self)


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
        out[name.strip()] = int(value)
    return out
