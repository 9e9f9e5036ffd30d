"""The `edgebench` command line: one module per command group, each thin (parse, call, render).

Importing a command module registers its commands on `main`. The SIGTERM handler is
installed before any of them loads (they take a second or two: rich, scipy, numpy), so a
SIGTERM at any moment is one line and exit 143, as Ctrl-C is one line and 130.
"""

import signal
import sys
import threading
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, like Ctrl-C's `KeyboardInterrupt`: every cleanup that
    handles Ctrl-C handles it too, and the CLI says ``interrupted by SIGTERM`` and exits 143."""

    signum = int(signal.SIGTERM)


def interrupted_line(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The one line and the exit code of an interrupt (130 for SIGINT, 143 for `Terminated`)."""
    signum = int(getattr(exc, "signum", signal.SIGINT))
    return f"error: interrupted by {signal.Signals(signum).name}", 128 + signum


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def install_signal_handlers() -> None:
    """SIGTERM raises `Terminated` (SIGINT already raises `KeyboardInterrupt`); main thread only.

    A handler someone installed already (a program that imports the CLI) is left alone.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        signal.signal(signal.SIGTERM, _on_sigterm)


install_signal_handlers()

try:
    from edgebench.cli import compress, demo, nightly, profile, results, run, targets  # noqa: F401  (register commands)
    from edgebench.cli.common import main
except KeyboardInterrupt as exc:  # a signal while the commands load: one line and 130/143, not a traceback
    line, code = interrupted_line(exc)
    sys.stderr.write(line + "\n")
    raise SystemExit(code) from None

__all__ = ["Terminated", "interrupted_line", "main"]
