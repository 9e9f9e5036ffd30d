"""Small file helpers shared by every part: hashing and atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgebench.errors import ResultsPathError


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_writable_dir(path: Path, what: str = "results folder") -> Path:
    """Create ``path`` if needed and check that files can be written in it.

    Raises:
        ResultsPathError: naming the path and the fix.
    """
    if path.exists() and not path.is_dir():
        raise ResultsPathError(f"{what} {path} is a file, not a folder: choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsPathError(
            f"{what} {path} cannot be created ({exc.strerror}): choose another path or fix its permissions"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ResultsPathError(f"{what} {path} is not writable: choose another path or fix its permissions")
    return path


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text to a temporary file beside ``path``, then rename it into place.

    Readers see the old file or the new one, never half of one; a failure leaves the
    old file and no temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (see `write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Build a folder under a temporary name; rename it to ``final`` only on success.

    An existing ``final`` is replaced only once the new folder is complete, so a
    failure leaves the old one (or nothing) and never a half-built folder.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
