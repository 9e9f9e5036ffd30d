"""Content-addressed deployment: a file goes to ``<workdir>/cache/<sha256>/<name>`` once.

A file already on the board is skipped only when its sha256 on the board matches (a
driver checks that once per connection). Otherwise the driver uploads it under a
temporary name, verifies it on the board and renames it into place, so a reader (or a
second run at the same time) never sees half a file.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from edgebench.fsutil import sha256_file
from edgebench.targets.driver import Driver

CACHE = "cache"


def remote_path(driver: Driver, *parts: str) -> str:
    """A path inside the board's workdir."""
    return posixpath.join(driver.board.workdir, *parts)


def deploy(driver: Driver, local: Path, sha256: str | None = None) -> str:
    """Make ``local`` present on the board; skip the upload if the board has it, verified.

    Returns:
        The file's path on the board.
    """
    digest = sha256 or sha256_file(local)
    dest = remote_path(driver, CACHE, digest, local.name)
    if not driver.has(dest, digest):
        driver.put(local, dest, sha256=digest)
    return dest
