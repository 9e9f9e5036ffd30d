"""Servers the tests start (the sshd farm, PostgreSQL, labgrid) run in sessions of their own, so a
signal to the test run does not reach them: `stopped_on_signals` stops one on SIGINT or SIGTERM,
then stops the run as Ctrl-C does. Handlers nest: an inner one stops its server, then calls the
one it replaced (the farm's), so every server of the run is stopped."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType


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
