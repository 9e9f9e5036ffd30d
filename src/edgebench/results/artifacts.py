"""Measured artifacts kept by sha256 under the results folder: ``RESULTS/artifacts/<sha256><suffix>``.

A decision across runs is only as good as the baseline it re-measures: `run --baseline`
and the nightly time the baseline run's artifacts again, paired with the new ones, on the
same board (`edgebench.bench.paired`). A variants folder is rewritten by every
`compress`, so the file a run measured is kept here, once per content, when it is
measured. Boards keep their own copy in their cache, also by sha256.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgebench.fsutil import atomic_write

ARTIFACTS = "artifacts"


def kept(results: Path, sha256: str) -> Path | None:
    """The kept artifact of this content, or None."""
    folder = results / ARTIFACTS
    if not sha256 or not folder.is_dir():
        return None
    return next((p for p in sorted(folder.glob(f"{sha256}.*")) if p.is_file()), None)


def keep(results: Path, artifact: Path, sha256: str) -> Path:
    """Keep a copy of ``artifact`` (whose content is ``sha256``) unless one is kept already; its path."""
    have = kept(results, sha256)
    if have is not None:
        return have
    folder = results / ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{sha256}{artifact.suffix}"
    with atomic_write(dest) as tmp:
        shutil.copyfile(artifact, tmp)
    return dest
