"""Run files under the results folder: atomic writes, listing and loading."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from edgebench.fsutil import ensure_writable_dir, write_json_atomic
from edgebench.results.schema import RUN_SCHEMA

DEFAULT_RESULTS = Path("results")
RUNS = "runs"


def run_path(results: Path, run_id: str) -> Path:
    """Where a run's file lives."""
    return results / RUNS / f"{run_id}.json"


def prepare(results: Path) -> Path:
    """Create the results folder (and its runs folder) and check that it is writable."""
    ensure_writable_dir(results)
    return ensure_writable_dir(results / RUNS)


def save_run(results: Path, run: dict[str, Any]) -> Path:
    """Write a run file atomically; returns its path."""
    prepare(results)
    path = run_path(results, run["edgebench"]["run_id"])
    write_json_atomic(path, run)
    return path


def load_run(path: Path) -> dict[str, Any] | None:
    """Read a run file; warn and return None if it is corrupt or of an unknown schema."""
    try:
        run = json.loads(path.read_text())
        schema = run["edgebench"]["schema"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"skipping {path}: not a readable run file ({type(exc).__name__})", stacklevel=2)
        return None
    if schema != RUN_SCHEMA:
        warnings.warn(f"skipping {path}: run schema {schema} is not {RUN_SCHEMA}", stacklevel=2)
        return None
    return run  # type: ignore[no-any-return]


def list_runs(results: Path) -> list[Path]:
    """Run files, oldest first (run ids sort by time)."""
    folder = results / RUNS
    return sorted(folder.glob("*.json")) if folder.is_dir() else []
