"""`edgebench profile`: profile every variant on every board, store the run; pick profiles to diff.

Each (board, variant) is one fresh agent process with the runtime's profiler
(`edgebench.bench.profile.profile_variant`); a board is held under its lock while its
variants run one after the other. The run (command ``profile``) is written after every
variant, so a failure or an interrupt keeps what finished; a variant that fails (does not
load, no profiler on the board) is recorded as a failure and the others go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgebench.bench.profile import DEFAULT_ITERATIONS, Profile, profile_variant, profiles_of_run
from edgebench.bench.runner import base_measurement
from edgebench.bench.session import load_variants, resolve_boards
from edgebench.bench.settings import RunSettings
from edgebench.errors import DataError, EdgebenchError, RunNotFound, UserError
from edgebench.model import Measurement, MeasurementError, Run
from edgebench.results import schema, store
from edgebench.targets.registry import driver_for

COMMAND = "profile"

OnCase = Callable[[Measurement], None]


@dataclass
class ProfileOutcome:
    """What `run_profile` did: the stored run, its file and its profiles."""

    run: Run
    run_file: Path
    profiles: list[Profile]

    @property
    def failures(self) -> list[Profile]:
        """The profiles that failed."""
        return [p for p in self.profiles if not p.ok]


def run_profile(
    *,
    variants: Path,
    boards: list[str],
    results: Path,
    settings: RunSettings,
    iterations: int = DEFAULT_ITERATIONS,
    eval_data: Path | None = None,
    inventory: Path | None = None,
    models: list[str] | None = None,
    on_case: OnCase | None = None,
) -> ProfileOutcome:
    """Profile each variant on each board and store the run (command ``profile``).

    Args:
        variants: the variants folder.
        boards: board names from the inventory.
        results: the results folder.
        settings: the measurement settings (warm-up and the unprofiled steady state).
        iterations: profiled inferences per variant.
        eval_data: an npz whose inputs are timed instead of generated ones.
        inventory: the boards file.
        models: only these models.
        on_case: called after each (board, variant).

    Raises:
        UserError: unknown board, missing variants or eval data, unwritable results folder.
    """
    board_list = resolve_boards(boards, inventory)
    variant_list = load_variants(variants, models)
    if eval_data is not None and not eval_data.is_file():
        raise DataError(f"eval data {eval_data} does not exist: give an .npz file (x, y)")
    store.prepare(results)
    run = schema.new_run(
        COMMAND,
        boards=[(b.name, b.host or "local") for b in board_list],
        settings={**settings.as_dict(), "profile_iterations": iterations},
    )
    path = store.save_run(results, run)

    def record(m: Measurement) -> None:
        nonlocal run
        run = schema.add_measurement(run, m)
        store.save_run(results, run)
        if on_case is not None:
            on_case(m)

    for board in board_list:
        try:
            driver = driver_for(board)
            driver.activate()
        except EdgebenchError as exc:  # an unreachable board is data: its variants fail, the others go on
            for v in variant_list:
                record(base_measurement(board, v, settings, MeasurementError(type(exc).__name__, str(exc))))
            continue
        try:
            with driver.lock(settings.lock_timeout_s):
                for v in variant_list:
                    record(profile_variant(driver, v, settings, iterations=iterations, eval_data=eval_data))
        except EdgebenchError as exc:  # the board was busy or went away: the rest of its variants fail
            done = {m.key for m in run.measurements}
            for v in variant_list:
                if (board.name, v.model, v.name) not in done:
                    record(base_measurement(board, v, settings, MeasurementError(type(exc).__name__, str(exc))))
        finally:
            with contextlib.suppress(Exception):
                driver.deactivate()
    run = schema.finish(run)
    store.save_run(results, run)
    return ProfileOutcome(run, path, profiles_of_run(run))


def load_profile_run(results: Path, ref: str = "latest") -> Run:
    """A stored profile run: ``latest`` is the latest run of command ``profile``.

    Raises:
        RunNotFound: no profile run, or the named run is not one.
    """
    if ref == "latest":
        for path in reversed(store.list_runs(results)):
            found = store.load_run(path)
            if found is not None and found.command == COMMAND:
                return found
        raise RunNotFound(f"{results} holds no profile run: run `edgebench profile --variants DIR` first")
    run = store.open_run(results, ref)
    if run.command != COMMAND:
        raise RunNotFound(f"run {ref!r} is a {run.command!r} run, not a profile: give a run of `edgebench profile`")
    return run


def pick(profiles: list[Profile], spec: str) -> Profile:
    """The profile named by ``spec``: ``variant``, ``model/variant``, ``board/variant`` or ``board/model/variant``.

    Raises:
        UserError: nothing or more than one profile matches (naming the candidates).
    """
    parts = spec.split("/")
    if len(parts) == 1:
        hits = [p for p in profiles if p.variant == parts[0]]
    elif len(parts) == 2:
        hits = [p for p in profiles if parts[1] == p.variant and parts[0] in (p.model, p.board)]
    else:
        hits = [p for p in profiles if p.label == spec]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join(p.label for p in profiles) or "none"
    if not hits:
        raise UserError(f"--diff {spec!r}: no such profile in the run (it has {known}): name one of them")
    raise UserError(f"--diff {spec!r} is ambiguous ({', '.join(p.label for p in hits)}): give board/model/variant")
