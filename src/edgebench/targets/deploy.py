"""Content-addressed deployment: a file goes to ``<workdir>/cache/<sha256>/<name>`` once."""

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
    """Make ``local`` present on the board; skip the upload if the board has it.

    Returns:
        The file's path on the board.
    """
    digest = sha256 or sha256_file(local)
    dest = remote_path(driver, CACHE, digest, local.name)
    if not driver.exists(dest):
        driver.put(local, dest)
    return dest
