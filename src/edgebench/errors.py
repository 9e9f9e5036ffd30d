"""The edgebench error tree.

::

    EdgebenchError                  root of everything edgebench raises on purpose
    ├── UserError                   the user can fix it: bad config, missing file, unknown name
    │   ├── ConfigError             a config file (TOML) is malformed or has a bad field
    │   ├── ModelError              a file is not a model, or is truncated or unsupported
    │   ├── DataError               data does not match the model (shape, dtype, labels)
    │   ├── ResultsPathError        the results folder cannot be created or written
    │   ├── RunNotFound             a run named on the command line is not stored
    │   ├── MissingDependency       an optional dependency is missing (names the extra)
    │   ├── FarmError               the board farm cannot be started or stopped
    │   └── NightlyBusy             another nightly holds the results folder's lock
    └── RemoteError                 a command on a board failed (board, command, output tail)
        ├── BoardUnreachable        connecting to a board failed
        │   └── HostKeyRefused      the board's host key is unknown or changed
        ├── BoardBusy               another run holds the board's lock
        ├── JobTimeout              the agent ran past the job timeout and was killed
        └── OutOfMemory             the kernel's OOM killer killed the job

The CLI prints a ``UserError`` as one line (``error: ...``) and exits 1, never with a
traceback. A usage error (click's: an unknown command or option, a bad value, a malformed
board list) is one ``error: ...`` line too, with "did you mean" and the command's ``--help``,
and exits 2 (`edgebench.cli.common.usage_error_line`): ``error:`` is the one prefix. A
``RemoteError`` for one board is recorded in that board's result and the run goes on with
the others.
"""

from __future__ import annotations


class EdgebenchError(Exception):
    """Root of every error edgebench raises on purpose."""


class UserError(EdgebenchError):
    """A mistake the user can fix; the message names the thing and the fix."""


class ConfigError(UserError):
    """A configuration file is malformed or holds an invalid field."""


class ModelError(UserError):
    """A file is not a model, is truncated, or cannot be handled by the chosen pass."""


class DataError(UserError):
    """Data does not fit the model: wrong shape, dtype or labels."""


class ResultsPathError(UserError):
    """The results folder cannot be created or written."""


class RemoteError(EdgebenchError):
    """A command on a board failed.

    Args:
        board: name of the board.
        command: the command that ran (as sent, passwords never included).
        output: the tail of the command's combined output.
        message: what went wrong, in one line.
    """

    def __init__(self, board: str, command: str, output: str, message: str) -> None:
        self.board = board
        self.command = command
        self.output = output[-2000:]
        super().__init__(f"{board}: {message} (command: {command})")


class BoardUnreachable(RemoteError):
    """Connecting to a board failed."""


class BoardBusy(RemoteError):
    """Another run holds the board's lock past the wait timeout."""


class JobTimeout(RemoteError):
    """The agent ran past the job timeout and was killed on the board."""


class RunNotFound(UserError):
    """A run named on the command line is not in the results folder."""


class MissingDependency(UserError):
    """An optional dependency is not installed; the message names the extra."""


class FarmError(UserError):
    """The farm cannot be started or stopped; the message says why and what to do."""


class NightlyBusy(UserError):
    """Another nightly holds the results folder's lock."""


class HostKeyRefused(BoardUnreachable):
    """The board's host key is unknown or differs from the one in known_hosts."""


class OutOfMemory(RemoteError):
    """The job was killed by the kernel's OOM killer (the board's memory limit was hit)."""
