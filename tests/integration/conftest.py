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

The farm's sshd processes run in sessions of their own, so a signal to the test run does
not reach them: ``farm`` stops them itself on SIGINT or SIGTERM (then the run stops as on
Ctrl-C). Every test shares a board lock of its own (``$EDGEBENCH_LOCK_DIR`` in a temporary
folder, inherited by the CLIs the tests start), never the machine-wide lock of a real run,
and a cache of its own (``$XDG_CACHE_HOME``: the local board's folder and made variants).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from _servers import missing, stopped_on_signals
from edgebench.errors import FarmError
from edgebench.targets.driver import LOCK_DIR_ENV
from edgebench.targets.farm import Farm, farm_down, farm_up, find_sshd


@pytest.fixture(scope="session", autouse=True)
def own_board_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The local board lock of this test run, off the machine-wide one (tests and their CLIs share it)."""
    folder = tmp_path_factory.mktemp("board-lock")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(LOCK_DIR_ENV, str(folder))
        # and a local board folder of its own: a run holding a lock kills the agents left in its board's
        # folder, so a lock of its own over the machine's folder would kill a real run's agents
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield folder


def _stop_farm(root: Path) -> None:
    with contextlib.suppress(FarmError):  # already stopped (by a signal), or never recorded
        farm_down(root)


def farm_stopped_on_signals(root: Path) -> contextlib.AbstractContextManager[None]:
    """Stop the farm in ``root`` when the test run gets SIGINT or SIGTERM, then stop the run as Ctrl-C does."""
    return stopped_on_signals(lambda: _stop_farm(root), f"farm in {root}")


def require_sshd() -> None:
    """Skip (or, under CI=true, fail) when OpenSSH sshd is not installed."""
    if find_sshd() is not None:
        return
    msg = (
        "OpenSSH sshd is NOT INSTALLED, so the SSH/farm integration tests cannot run: "
        "install it with `apt-get install -y openssh-server`"
    )
    missing(msg)


@pytest.fixture(scope="session")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """Three real sshd boards on 127.0.0.x (full, pi-like, mid), stopped and cleaned up at the end."""
    require_sshd()
    root = tmp_path_factory.mktemp("farm")
    with farm_stopped_on_signals(root):
        try:
            yield farm_up(root, 3)
        finally:
            _stop_farm(root)
