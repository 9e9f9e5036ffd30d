"""Drivers by name: which driver reaches a board (a registry, not an if/else).

A new way to reach boards (adb, a serial console, a cloud device farm) is a class that
implements `edgebench.targets.driver.Driver`, registered here under a name.
"""

from __future__ import annotations

from collections.abc import Callable

from edgebench.targets.board import Board
from edgebench.targets.driver import Driver, LocalDriver
from edgebench.targets.ssh import SSHDriver

LOCAL, SSH = "local", "ssh"

# Called as factory(board, connect_retries=..., backoff_s=...); drivers that do not connect ignore the two.
DriverFactory = Callable[..., Driver]

DRIVERS: dict[str, DriverFactory] = {LOCAL: LocalDriver, SSH: SSHDriver}


def register_driver(name: str, factory: DriverFactory) -> None:
    """Make ``factory(board, **options)`` the driver called ``name``."""
    DRIVERS[name] = factory


def driver_kind(board: Board) -> str:
    """The driver a board needs: a board without a host is this machine."""
    return LOCAL if board.is_local else SSH


def driver_for(board: Board, *, connect_retries: int = 3, backoff_s: float = 0.5) -> Driver:
    """The driver that reaches ``board``, not yet active (call ``activate`` or use ``with``).

    Args:
        board: the board.
        connect_retries: connection attempts (connection-level failures only) for drivers
            that connect.
        backoff_s: first wait between attempts; doubles each time.
    """
    return DRIVERS[driver_kind(board)](board, connect_retries=connect_retries, backoff_s=backoff_s)
