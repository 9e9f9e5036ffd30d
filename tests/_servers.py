"""What the tests that start real servers and tools share (the sshd farm, PostgreSQL, labgrid, Chromium).

`missing` skips loudly when a tool is not installed, and fails under ``CI=true``, where
scripts/test.sh installs it. `free_port` finds a loopback port. The servers run in sessions of
their own, so a signal to the test run does not reach them: `stopped_on_signals` stops one on
SIGINT or SIGTERM, then stops the run as Ctrl-C does. Handlers nest: an inner one stops its
server, then calls the one it replaced (the farm's), so every server of the run is stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import warnings
from collections.abc import Callable, Iterator
from types import FrameType
from typing import NoReturn

import pytest


@contextlib.contextmanager
def stopped_on_signals(stop: Callable[[], None], what: str) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM run ``stop()`` (then the handler it replaced) and raise KeyboardInterrupt."""
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in signals:  # a second signal while stopping waits for the first
            signal.signal(sig, signal.SIG_IGN)
        try:
            stop()
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        older = previous[signal.Signals(signum)]
        if callable(older) and older is not signal.default_int_handler:
            older(signum, frame)  # an outer server's handler: it stops its server and raises
        raise KeyboardInterrupt(f"test run interrupted by {signal.Signals(signum).name}: {what} stopped")

    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def missing(msg: str) -> NoReturn:
    """A tool the tests need is not installed: skip loudly, or fail under ``CI=true`` (refusing to skip)."""
    if os.environ.get("CI") == "true":
        pytest.fail(msg + " (CI=true: refusing to skip; scripts/test.sh installs it)")
    warnings.warn(msg, stacklevel=2)
    pytest.skip(msg)


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
