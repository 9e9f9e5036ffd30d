"""Paired A/B processes: a baseline's artifact re-measured with each variant, on the same board.

Separate runs of the same files differ as a block (a fresh process's core and clock, the
hypervisor's steal, neighbours on a shared runner: 5-20 % between `edgebench run`
invocations minutes apart on a 2-core cloud VM), so one run against another cannot tell
a 5 % regression from a slow afternoon. What can: timing the baseline (A) and the
candidate (B) alternately inside the same fresh process (`edgebench.agent.paired_job`),
as duet benchmarking and Chromium's Pinpoint do. ``run --baseline REF`` (and the nightly,
and ``compare --ab``) add ``repeats`` such processes per variant, interleaved with its own
processes; each gives one ratio of medians, and `edgebench.results.significance.paired_change`
decides on them. The variant's own figures (latency, memory, accuracy) still come from its
own fresh processes: a paired process is latency only.

The baseline is a stored run (its artifacts are kept by sha256 under ``RESULTS/artifacts``,
`edgebench.results.artifacts`), a model file, or a variants folder.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.agent.build import agent_path, agent_sha256
from edgebench.bench.inputs import npy_files
from edgebench.bench.runner import build_job, deploy_artifact
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant, list_variants, variants_from_files
from edgebench.errors import UserError
from edgebench.model import PairedProcess
from edgebench.results import artifacts, store
from edgebench.targets.deploy import deploy
from edgebench.targets.driver import Driver

ANY = "*"  # a baseline of one file pairs with every variant


@dataclass(frozen=True)
class Baseline:
    """An artifact to re-measure paired with a variant: the file on this host, its content, where it came from."""

    path: Path
    sha256: str
    format: str
    run_id: str | None = None
    inputs: tuple[tuple[str, str], ...] | None = None  # (name, dtype) of each input, when known


@dataclass(frozen=True)
class Baselines:
    """The baseline of each (board, model, variant), from `resolve`; ``missing`` says what has none and why."""

    ref: str
    by_key: Mapping[tuple[str, str, str], Baseline]
    missing: Mapping[tuple[str, str, str], str]

    def of(self, board: str, model: str, variant: str) -> tuple[Baseline | None, str | None]:
        """The baseline of a measurement, or None and why there is none."""
        for key in ((board, model, variant), (ANY, model, variant), (ANY, ANY, ANY)):
            if key in self.by_key:
                return self.by_key[key], None
        why = self.missing.get((board, model, variant)) or f"the baseline {self.ref} has no {model}/{variant}"
        return None, f"not paired with a baseline: {why}"


def resolve(ref: str, results: Path | None) -> Baselines:
    """What ``--baseline REF`` names: a model file or variants folder, else a stored run in ``results``.

    Raises:
        UserError: no such run, file or folder (one line naming it and the fix).
    """
    p = Path(ref)
    if p.exists() and p.suffix != ".json":  # a run file is a run
        made = variants_from_files(p)
        found = made if made is not None else list_variants(p)
        if not found:
            raise UserError(f"baseline {ref} holds no model or variant: give a .onnx/.tflite file or a variants folder")
        made_of = {v.name: Baseline(v.artifact, v.sha256, v.format, None, inputs_of(v)) for v in found}
        if len(found) == 1:
            return Baselines(ref, {(ANY, ANY, ANY): made_of[found[0].name]}, {})
        return Baselines(ref, {(ANY, v.model, v.name): made_of[v.name] for v in found}, {})
    if results is None:
        raise UserError(f"baseline {ref!r}: no results folder to find the run in: give --results, or a model file")
    run = store.open_run(results, ref, "pick another baseline run")
    by_key: dict[tuple[str, str, str], Baseline] = {}
    missing: dict[tuple[str, str, str], str] = {}
    for m in run.measurements:
        if not m.ok or not m.sha256 or not m.format:
            missing[m.key] = f"it failed in run {run.run_id}"
            continue
        kept = artifacts.kept(results, m.sha256)
        if kept is None:
            missing[m.key] = (
                f"run {run.run_id} measured {m.sha256[:12]}, which is not kept under {results / artifacts.ARTIFACTS} "
                "(runs keep what they measure since edgebench 0.1: measure the baseline again)"
            )
            continue
        ins = None if m.inputs is None else tuple((str(i.get("name")), str(i.get("dtype"))) for i in m.inputs)
        by_key[m.key] = Baseline(kept, m.sha256, m.format, run.run_id, ins)
    return Baselines(run.run_id, by_key, missing)


def inputs_of(v: Variant) -> tuple[tuple[str, str], ...] | None:
    """(name, dtype) of a variant's inputs, from its manifest."""
    ins = v.manifest.inputs
    return None if ins is None else tuple((t.name, t.dtype) for t in ins)


def check_inputs(baselines: Baselines, boards: list[str], variants: list[Variant]) -> None:
    """Refuse, before measuring, a baseline whose inputs differ from a variant's it is paired with.

    Raises:
        UserError: naming the first input that differs and both sides.
    """
    for board in boards:
        for v in variants:
            base, _ = baselines.of(board, v.model, v.name)
            mine = inputs_of(v)
            if base is None or base.inputs is None or mine is None or base.inputs == mine:
                continue
            a, b = dict(base.inputs), dict(mine)
            name = next((n for n in [*a, *b] if a.get(n) != b.get(n)), "?")
            raise UserError(
                f"baseline {baselines.ref} and {v.model}/{v.name} take different inputs: input {name!r} is "
                f"{a.get(name) or 'absent'} in the baseline and {b.get(name) or 'absent'} in {v.model}/{v.name}; "
                "a paired comparison times both on the same inputs: pair models with the same inputs"
            )


def paired_commands(
    driver: Driver, variant: Variant, per: RunSettings, baseline: Baseline, eval_data: Path | None
) -> tuple[list[str], list[str]]:
    """Deploy what a paired process needs; its two commands (A first, B first: processes alternate).

    Raises:
        RemoteError: the board refused a copy, or the variant's artifact changed after its manifest.
    """
    board = driver.board
    agent = deploy(driver, agent_path(), agent_sha256())
    artifact = deploy_artifact(driver, variant)
    base_path = deploy(driver, baseline.path, baseline.sha256)
    eval_path = deploy(driver, eval_data) if eval_data is not None else None
    input_files = {name: deploy(driver, path) for name, path in npy_files(per.inputs).items()}
    job = build_job(
        board, variant, per, artifact=artifact, eval_path=eval_path, evaluate=False, input_files=input_files
    )
    out: list[list[str]] = []
    for first in ("a", "b"):
        job["paired"] = {"artifact": base_path, "sha256": baseline.sha256, "first": first}
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / f"job-paired-{first}.json"
            f.write_text(json.dumps(job))
            out.append([board.python, agent, deploy(driver, f)])
    return out[0], out[1]


def paired_process(res: Mapping[str, Any]) -> PairedProcess:
    """One paired process's result (the agent's JSON) as its two medians (ms).

    Raises:
        ValueError: the result has no paired samples (a malformed or failed process).
    """
    if not res.get("ok"):
        err = res.get("error") or {}
        raise ValueError(f"{err.get('kind') or 'error'}: {err.get('message') or 'the agent reported a failure'}")
    p = res.get("paired") or {}
    a, b = p.get("a_samples_ns"), p.get("b_samples_ns")
    if not isinstance(a, list) or not isinstance(b, list) or not a or not b:
        raise ValueError("the agent returned no paired samples")
    xa, xb = np.asarray(a, dtype=np.float64) / 1e6, np.asarray(b, dtype=np.float64) / 1e6
    qa, qb = np.percentile(xa, [50, 90, 99]), np.percentile(xb, [50, 90, 99])
    return PairedProcess(
        float(qa[0]), float(qb[0]), min(len(a), len(b)), str(p.get("first", "a")),
        float(qa[1]), float(qb[1]), float(qa[2]), float(qb[2]),
    )  # fmt: skip
