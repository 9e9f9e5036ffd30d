"""Shared integration fixtures: a real sshd board farm on loopback (the code behind `edgebench farm up`).

``farm`` (session scope) is a `edgebench.targets.farm.Farm` with three boards:
``farm-1`` (profile ``full``: unlimited), ``farm-2`` (``pi-like``: half a core, 512 MiB)
and ``farm-3`` (``mid``: one core, 1 GB) — the limits apply when the tests run as root
with cgroup v2 or v1, otherwise ``farm.limits`` is False and ``farm.limits_note`` says why.
Use ``farm.boards`` (inventory `Board` entries), ``farm.board(name)``,
``farm.by_profile("pi-like")``, ``farm.boards_file`` (a ready boards.toml), and
``farm.kill_board(name)`` / ``farm.restart_board(name)``. Tests that need it must be
marked ``ssh``. Where sshd is not installed the fixture skips loudly; under ``CI=true``
it fails instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest

from edgebench.targets.farm import Farm, farm_up, find_sshd


def require_sshd() -> None:
    """Skip (or, under CI=true, fail) when OpenSSH sshd is not installed."""
    if find_sshd() is not None:
        return
    msg = (
        "OpenSSH sshd is NOT INSTALLED, so the SSH/farm integration tests cannot run: "
        "install it with `apt-get install -y openssh-server`"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: refusing to skip)")
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """Three real sshd boards on 127.0.0.x (full, pi-like, mid), stopped and cleaned up at the end."""
    require_sshd()
    f = farm_up(tmp_path_factory.mktemp("farm"), 3)
    try:
        yield f
    finally:
        f.down()
