"""Small file helpers shared by every part: hashing, atomic writes, the host file lock."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgebench.errors import ResultsPathError, UserError


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a write that failed for lack of space (a full disk, a quota)


def is_no_space(exc: BaseException) -> bool:
    """True for an `OSError` that says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE


def unwritable_message(folder: Path, exc: OSError, what: str = "results folder") -> str:
    """One line for a write under ``folder`` that failed: a full disk names the free space and the fix.

    Example: ``results folder /r is full (No space left on device, 4 KiB free): free space there or
    use --results with a folder on a disk with room``.
    """
    if is_no_space(exc):
        try:
            st = os.statvfs(folder)
            free = f", {st.f_bavail * st.f_frsize // 1024} KiB free"
        except OSError:
            free = ""
        return (
            f"{what} {folder} is full ({exc.strerror}{free}): free space there or use --results with a folder "
            "on a disk with room"
        )
    return f"{what} {folder} cannot be written ({exc.strerror}): use --results with a writable folder"


def ensure_writable_dir(
    path: Path, what: str = "results folder", fix: str = "choose another path or fix its permissions"
) -> Path:
    """Create ``path`` if needed and check that files can be written in it.

    ``access(2)`` refuses writes on a read-only file system and to an immutable folder even
    to root, so the check holds for every user.

    Args:
        fix: what the user can do (ends the message).

    Raises:
        ResultsPathError: naming the path and the fix.
    """
    if path.exists() and not path.is_dir():
        raise ResultsPathError(f"{what} {path} is a file, not a folder: choose another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsPathError(f"{what} {path} cannot be created ({exc.strerror}): {fix}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        state = "read-only (a read-only file system)" if os.statvfs(path).f_flag & os.ST_RDONLY else "not writable"
        raise ResultsPathError(f"{what} {path} is {state}: {fix}")
    return path


@contextlib.contextmanager
def atomic_write(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    The one atomic writer: whatever the block writes to the yielded path (text, an npz,
    a copied or downloaded file) appears at ``path`` whole or not at all. Readers see the
    old file or the new one, never half of one; a failure leaves the old file and no
    temporary file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)  # mkstemp makes 0600; results are meant to be shared
        os.close(fd)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text atomically (see `atomic_write`)."""
    with atomic_write(path, mode) as tmp:
        tmp.write_text(text, encoding="utf-8")


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


@contextlib.contextmanager
def file_lock(path: Path, busy: Callable[[str], Exception], *, timeout: float = 0.0, owner: str = "") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (the one host lock).

    The kernel drops the lock when the process dies, so a crash never leaves a stale
    lock. The holder writes ``owner`` into the file, so a refused caller can say who
    holds it.

    Args:
        path: the lock file (created if needed).
        busy: builds the error to raise from the holder's ``owner`` text ("" if unknown).
        timeout: seconds to keep trying before giving up (0: try once).
        owner: who holds the lock, for the message of the next caller.

    Raises:
        The exception ``busy`` builds, when another process held the lock for ``timeout`` seconds.
        UserError: the lock file cannot be created or opened (a read-only folder, say).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only folder, or a lock file another user made
        raise UserError(
            f"lock file {path} cannot be opened ({exc.strerror}): {path.parent} must be a folder you can write"
        ) from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy(path.read_text(errors="replace").strip()) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, owner.encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
