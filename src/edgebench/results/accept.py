"""`edgebench accept RUN`: a run's figures become the baseline, on purpose, with who and why.

A nightly compares with the last accepted state, not with whatever ran last night: the
last nightly that passed, or a run accepted here (a slowdown that was meant, a new board
image), whichever came last. So a regression stays red until it is fixed or accepted.
Acceptances are a small JSON list, ``RESULTS/accepted.json``, written atomically; on a
PostgreSQL store, rows of its ``accepted`` table (`edgebench.results.pg.add_acceptance`).
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from dataclasses import asdict, dataclass

from edgebench.errors import UserError
from edgebench.fsutil import write_json_atomic
from edgebench.results import backend, pg
from edgebench.results.backend import Results

ACCEPTED = "accepted.json"


@dataclass(frozen=True)
class Acceptance:
    """One ``edgebench accept``: the run, who accepted it, why, and when (UTC, ISO 8601)."""

    run_id: str
    by: str
    why: str
    at: str


def acceptances(results: Results) -> list[Acceptance]:
    """Every acceptance recorded in the results folder (or on the server), oldest first.

    Raises:
        UserError: the file is damaged (naming it and the fix).
    """
    if isinstance(results, pg.PgStore):
        return [Acceptance(*row) for row in pg.acceptances(results)]
    path = results / ACCEPTED
    if not path.is_file():
        return []
    try:
        return [Acceptance(**d) for d in json.loads(path.read_text())["accepted"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} cannot be read ({exc}): restore it from version control or delete it") from None


def who() -> str:
    """Who is accepting: the CI's actor, else the login name."""
    for var in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def accept(results: Results, ref: str, why: str, by: str | None = None) -> Acceptance:
    """Record that run ``ref`` is accepted as the baseline.

    Raises:
        RunNotFound: no such run (nothing is written).
        UserError: an empty reason, or a run that did not finish.
    """
    if not why.strip():
        raise UserError("accept: give the reason with --reason (it is recorded with the acceptance)")
    run = backend.open_run(results, ref, "accept another run")
    if not run.complete:
        raise UserError(f"accept: run {run.run_id} is incomplete ({run.interrupted or 'it did not finish'}): "
                        "accept a complete run")  # fmt: skip
    a = Acceptance(run.run_id, by or who(), why.strip(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    if isinstance(results, pg.PgStore):
        pg.add_acceptance(results, a.run_id, a.by, a.why, a.at)
        return a
    done = acceptances(results)
    write_json_atomic(results / ACCEPTED, {"schema": 1, "accepted": [asdict(x) for x in [*done, a]]})
    return a
