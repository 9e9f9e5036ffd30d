"""The configuration key of a measurement: what must be equal for two figures to be comparable.

Two latencies of one (board, model, variant) are only comparable when they were
measured the same way: the same batch, the same input shapes made the same way, the
same number of threads, the same runtime at the same version, on the same board
hardware. `ConfigKey` holds those fields; `ConfigKey.differences` names the ones
that differ, and compare, gate and trends use it to refuse (or leave out) pairs that
differ. How long a measurement ran (rounds, time) is effort, not configuration, and is
not in the key.

A field that a measurement does not record (runs from before it was kept) is ``None``
and never counts as a difference: an old run stays comparable with a new one on the
fields both know.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgebench.model.base import JSONObject

# the fingerprint fields that describe the board's hardware and OS (not its name or address)
_BOARD_FIELDS = ("machine", "platform", "cpu_count", "affinity", "governor", "max_freq_mhz")


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """What a measurement was configured with; equal keys mean comparable figures.

    Attributes:
        batch: inferences per timed call.
        shapes: one ``name:1x3x224x224:float32`` text per timed input, by name.
        inputs_made: one ``name=how`` text per timed input (how its data was made).
        threads: the runtime's intra-op threads as the agent reported them; 0 when the agent
            reported none set (the runtime's default), None when the run has no runtime block.
        runtime: the runtime's name (``onnxruntime``, ``litert``...).
        runtime_version: the runtime's version.
        board: the board's hardware/OS fingerprint (machine, platform, CPUs, governor, clock).
    """

    batch: int | None = None
    shapes: tuple[str, ...] | None = None
    inputs_made: tuple[str, ...] | None = None
    threads: int | None = None
    runtime: str | None = None
    runtime_version: str | None = None
    board: str | None = None

    @classmethod
    def of(
        cls,
        *,
        batch_size: int | None,
        inputs: Sequence[JSONObject] | None,
        runtime: JSONObject | None,
        fingerprint: JSONObject | None,
    ) -> ConfigKey:
        """The key of a measurement from its recorded blocks (see `Measurement.config_key`)."""
        rt = runtime or {}
        ins = sorted(inputs or (), key=lambda i: str(i.get("name")))
        shapes = tuple(
            f"{i.get('name')}:{'x'.join(str(d) for d in i.get('shape') or ())}:{i.get('dtype')}" for i in ins
        )
        made = tuple(f"{i.get('name')}={i.get('made')}" for i in ins)
        board = None
        if fingerprint:
            parts = [f"{k}={fingerprint.get(k)}" for k in _BOARD_FIELDS if fingerprint.get(k) is not None]
            board = ", ".join(parts) or None
        threads = rt.get("threads")
        return cls(
            batch=batch_size,
            shapes=shapes if inputs is not None else None,
            inputs_made=made if inputs is not None else None,
            threads=int(threads) if isinstance(threads, int) and not isinstance(threads, bool) else 0 if rt else None,
            runtime=None if rt.get("name") is None else str(rt["name"]),
            runtime_version=None if rt.get("version") is None else str(rt["version"]),
            board=board,
        )

    def differences(self, other: ConfigKey) -> list[str]:
        """The fields that differ from ``other``, as ``field: mine -> other`` texts.

        A field unknown (``None``) on either side is not a difference.

        Returns:
            One text per differing field, in field order; empty when comparable.
        """
        out = []
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a is None or b is None or a == b:
                continue
            out.append(f"{f.name.replace('_', ' ')}: {_show(a)} -> {_show(b)}")
        return out

    def comparable(self, other: ConfigKey) -> bool:
        """True when no field differs (`differences` is empty)."""
        return not self.differences(other)

    @property
    def digest(self) -> str:
        """A short stable id of the whole key (unknown fields included), for grouping and display."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def to_json(self) -> dict[str, Any]:
        """The key as a JSON object (lists for the tuples, null for unknown fields)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ConfigKey:
        """Read a key written by `to_json` (unknown keys ignored, missing ones unknown)."""
        names = {f.name for f in dataclasses.fields(cls)}
        vals: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        return cls(**vals)


def _show(v: Any) -> str:
    return ", ".join(v) if isinstance(v, tuple) else str(v)


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v
