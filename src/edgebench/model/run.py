"""A run: one invocation over boards x variants, as stored in a run file (schema `RUN_SCHEMA`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgebench.model.base import RUN_SCHEMA, JSONObject, _emit, _extra
from edgebench.model.measurement import (
    Benchmark,
    Measurement,
)

# ------------------------------------------------------------------------------- run


_RUN_KEYS = (
    "schema", "run_id", "command", "complete", "started", "finished", "versions", "boards", "failures",
    "nightly", "baseline", "interrupted", "upgraded_from", "dropped",
)  # fmt: skip
_DOC_KEYS = ("machine_info", "commit_info", "benchmarks", "datetime", "version", "edgebench")


@dataclass(frozen=True, slots=True)
class Run:
    """One run document: pytest-benchmark's layout plus the ``edgebench`` block (schema 1).

    See `edgebench.results.schema` for the file layout. ``measurements`` lists the
    successful measurements (the benchmarks) first, then the failures.
    """

    run_id: str
    command: str
    started: str
    machine_info: JSONObject = field(default_factory=dict)
    commit_info: JSONObject = field(default_factory=dict)
    datetime: str = ""
    version: str = ""
    schema: int = RUN_SCHEMA
    complete: bool = False
    finished: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    boards: Mapping[str, JSONObject] = field(default_factory=dict)
    benchmarks: tuple[Benchmark, ...] = ()
    failures: tuple[Measurement, ...] = ()
    nightly: JSONObject | None = None
    baseline: str | None = None
    interrupted: str | None = None
    upgraded_from: int | None = None
    dropped: tuple[str, ...] | None = None
    extra: JSONObject = field(default_factory=dict)  # unknown keys of the edgebench block
    doc_extra: JSONObject = field(default_factory=dict)  # unknown top-level keys

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        """Every measurement, successful ones first."""
        return tuple(b.measurement for b in self.benchmarks) + self.failures

    @classmethod
    def from_json(cls, doc: JSONObject) -> Run:
        """Read a run document that is already at `RUN_SCHEMA` (`results.schema.upgrade_run`).

        Raises:
            KeyError: when a field every run has is missing.
        """
        eb = doc["edgebench"]
        dropped = eb.get("dropped")
        return cls(
            run_id=eb["run_id"],
            command=eb.get("command", ""),
            started=eb.get("started") or "",
            machine_info=doc.get("machine_info") or {},
            commit_info=doc.get("commit_info") or {},
            datetime=doc.get("datetime", ""),
            version=doc.get("version", ""),
            schema=eb.get("schema", RUN_SCHEMA),
            complete=bool(eb.get("complete")),
            finished=eb.get("finished"),
            versions=eb.get("versions") or {},
            boards=eb.get("boards") or {},
            benchmarks=tuple(Benchmark.from_json(b) for b in doc.get("benchmarks") or ()),
            failures=tuple(Measurement.from_json(m) for m in eb.get("failures") or ()),
            nightly=eb.get("nightly"),
            baseline=eb.get("baseline"),
            interrupted=eb.get("interrupted"),
            upgraded_from=eb.get("upgraded_from"),
            dropped=None if dropped is None else tuple(dropped),
            extra=_extra(eb, _RUN_KEYS),
            doc_extra=_extra(doc, _DOC_KEYS),
        )

    def to_json(self) -> dict[str, Any]:
        """The run document, as written to its file."""
        eb: dict[str, Any] = {
            "schema": self.schema,
            "run_id": self.run_id,
            "command": self.command,
            "complete": self.complete,
            "started": self.started,
            "finished": self.finished,
            "versions": dict(self.versions),
            "boards": dict(self.boards),
            "failures": [m.to_json(samples=False) for m in self.failures],
        }
        for k in ("nightly", "baseline", "interrupted", "upgraded_from"):
            _emit(eb, k, getattr(self, k), frozenset())
        if self.dropped is not None:
            eb["dropped"] = list(self.dropped)
        eb.update(self.extra)
        return {
            "machine_info": dict(self.machine_info),
            "commit_info": dict(self.commit_info),
            "benchmarks": [b.to_json() for b in self.benchmarks],
            "datetime": self.datetime,
            "version": self.version,
            "edgebench": eb,
            **self.doc_extra,
        }
