"""Run files under the results folder: atomic writes, listing, loading, upgrading.

Every write goes through a temporary file and a rename, so a reader never sees half a
run. A run that is being measured is written after each measurement with
``complete: false``; if the process dies, what finished is kept and
the file says it is incomplete. After each write the SQLite index (`index.py`) is
brought up to date (`sync` catches up with files written or removed by others); the
index is a cache and can always be rebuilt from the files.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.errors import ResultsPathError, RunNotFound, UserError
from edgebench.fsutil import ensure_writable_dir, is_no_space, unwritable_message, write_text_atomic
from edgebench.model import Run
from edgebench.results import index
from edgebench.results.schema import SchemaError, upgrade_run

RUNS = "runs"
RESULTS_FIX = "use --results with a writable folder"  # ends the message about a results folder that cannot be written
RESERVE_MARGIN = 64 * 1024  # bytes a reserve holds beyond the run file: the final write adds the reason
STALE_HINT = 200  # run files a read-only command reads into its in-memory index before it suggests a rebuild


def run_path(results: Path, run_id: str) -> Path:
    """Where a run's file lives."""
    return results / RUNS / f"{run_id}.json"


def prepare(results: Path) -> Path:
    """Create the results folder (and its runs folder) and check that it is writable."""
    ensure_writable_dir(results)
    return ensure_writable_dir(results / RUNS)


def _update_index(results: Path, path: Path, run: Run) -> None:
    try:
        if index.add_run(results, path, run):  # a new or rebuilt index: read the other runs in too
            sync(results, warn=False)
    except Exception as exc:  # the index is a cache: a broken one must never lose a run
        warnings.warn(
            f"results index not updated ({type(exc).__name__}: {exc}); `edgebench report` rebuilds it", stacklevel=3
        )


def reserve_path(results: Path, run_id: str) -> Path:
    """The space a run being measured keeps for its last write (`save_run` with ``reserve``)."""
    return results / RUNS / f".{run_id}.reserve"


def release_reserve(results: Path, run_id: str) -> None:
    """Free a run's reserve (before its last write, and when it ends)."""
    reserve_path(results, run_id).unlink(missing_ok=True)


def _grow(path: Path, size: int) -> None:
    """Make ``path`` hold ``size`` bytes of disk; only a full disk is an error (a file system
    that cannot preallocate just has no reserve)."""
    with open(path, "ab") as f:
        if os.fstat(f.fileno()).st_size >= size:
            return
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError as exc:
            if is_no_space(exc):
                raise


def save_run(results: Path, run: Run, *, reserve: bool = False) -> Path:
    """Write a run file atomically (`Run.to_json`) and index it; returns its path.

    Args:
        reserve: first grow the run's reserve file to this file's size (plus `RESERVE_MARGIN`),
            so that on a disk that fills up, `release_reserve` frees room for one last write of
            the run as it stands (`complete: false` and why). A failed write leaves the old file.

    Raises:
        ResultsPathError: the file or the reserve could not be written (a full disk: naming the
            folder, its free space and the fix); the run file is as it was before the call.
    """
    prepare(results)
    path = run_path(results, run.run_id)
    text = json.dumps(run.to_json(), indent=1) + "\n"
    try:
        if reserve:
            _grow(reserve_path(results, run.run_id), len(text.encode()) + RESERVE_MARGIN)
        write_text_atomic(path, text)
    except OSError as exc:
        raise ResultsPathError(unwritable_message(results, exc)) from None
    _update_index(results, path, run)
    return path


def read_run(path: Path) -> Run:
    """Read and upgrade one run file.

    Raises:
        SchemaError: naming the file and what is wrong with it.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot be read ({exc})") from None
    except ValueError as exc:
        raise SchemaError(f"{path}: not valid JSON ({exc})") from None
    try:
        run = Run.from_json(upgrade_run(doc))
    except SchemaError as exc:
        raise SchemaError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a block of the wrong shape
        raise SchemaError(f"{path}: malformed run ({type(exc).__name__}: {exc})") from None
    for what in run.dropped or ():
        warnings.warn(f"{path}: skipped {what}", stacklevel=2)
    return run


def load_run(path: Path) -> Run | None:
    """Read a run file, upgrading older schemas; warn and return None if it cannot be read."""
    try:
        return read_run(path)
    except SchemaError as exc:
        warnings.warn(f"skipping {exc}", stacklevel=2)
        return None


def list_runs(results: Path) -> list[Path]:
    """Run files, oldest first (run ids sort by time)."""
    folder = results / RUNS
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []


def find_run(results: Path, ref: str) -> Path:
    """The file of a run given as a path, a run id, a unique id prefix or ``latest``.

    ``latest~N`` is the N-th run before the latest.

    Raises:
        RunNotFound: naming the reference and how to list runs.
    """
    p = Path(ref)
    if p.suffix == ".json" and p.is_file():
        return p
    runs = list_runs(results)
    if ref.startswith("latest"):
        back = ref[len("latest") :]
        n = int(back[1:]) if back.startswith("~") and back[1:].isdigit() else 0 if back == "" else -1
        if n >= 0 and n < len(runs):
            return runs[-1 - n]
        raise RunNotFound(
            f"run {ref!r}: {results / RUNS} holds {len(runs)} run(s); run `edgebench demo` or `edgebench run` first"
        )
    hits = [r for r in runs if r.stem == ref] or [r for r in runs if r.stem.startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise RunNotFound(f"run {ref!r} is not in {results / RUNS}: give a run file, a run id or 'latest'")
    raise RunNotFound(f"run {ref!r} is ambiguous ({len(hits)} runs start with it): give more of the run id")


def open_run(results: Path, ref: str, fix: str = "pick another run or delete the file") -> Run:
    """The run named by ``ref`` (id, prefix, file, ``latest~N``), upgraded: THE way to load one.

    Args:
        fix: what the user can do when the run's file cannot be read (ends the message).

    Raises:
        RunNotFound: if there is no such run.
        UserError: if its file cannot be read (naming the file, the problem and ``fix``).
    """
    path = find_run(results, ref)
    try:
        return read_run(path)
    except SchemaError as exc:
        raise UserError(f"{exc}: {fix}") from None


@dataclass
class SyncReport:
    """What `sync` did: files (re)indexed, forgotten, and unreadable ones with the reason."""

    indexed: int = 0
    removed: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def sync(results: Path, *, warn: bool = True, on_file: Callable[[int, int], None] | None = None) -> SyncReport:
    """Bring the index up to date with the run files.

    Args:
        warn: emit one warning per unreadable run file (they are skipped, never fatal).
        on_file: progress callback ``(done, total)`` over the files that need reading.
    """
    rep = SyncReport()
    db = index.connect(results)
    try:
        known = index.known_files(db)
        todo = []
        present = set()
        for p in list_runs(results):
            name = index.rel(results, p)  # the folder's spelling does not matter (see index)
            present.add(name)
            try:
                st = p.stat()
            except OSError:
                continue
            if known.get(name) != (st.st_mtime_ns, st.st_size):
                todo.append((p, st))
        if len(todo) >= STALE_HINT and index.in_memory(results):  # read-only: this work is lost at exit
            warnings.warn(
                f"the index of {results} is {len(todo)} run files behind; read now, in memory only (this command "
                f"only reads): `edgebench index rebuild --results {results}` keeps that work for the next command",
                stacklevel=2,
            )
        with db:
            for key in set(known) - present:
                index.forget(db, key)
                rep.removed += 1
            for i, (p, st) in enumerate(todo):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        run = read_run(p)
                    index.insert(db, results, p, run)
                    rep.indexed += 1
                except SchemaError as exc:
                    index.mark_unreadable(db, results, p, st, str(exc))
                if on_file:
                    on_file(i + 1, len(todo))
        rep.unreadable = index.unreadable(db)
    finally:
        db.close()
    if warn:
        for _, why in rep.unreadable:
            warnings.warn(f"skipping {why}", stacklevel=2)
    return rep


def rebuild(results: Path) -> SyncReport:
    """Throw the index away and build it again from the run files.

    Raises:
        ResultsPathError: the folder cannot be written (checked first: the old index stays).
    """
    ensure_writable_dir(results, fix=RESULTS_FIX)
    (results / index.INDEX).unlink(missing_ok=True)
    return sync(results)


__all__ = [
    "RESULTS_FIX",
    "RUNS",
    "SyncReport",
    "find_run",
    "list_runs",
    "load_run",
    "open_run",
    "prepare",
    "read_run",
    "rebuild",
    "release_reserve",
    "reserve_path",
    "run_path",
    "save_run",
    "sync",
]
