"""The board lock: one ``flock`` per board host, held for as long as the host's connection lives.

``lock PATH TIMEOUT OWNER``: take an exclusive lock on PATH (created if needed), trying
for TIMEOUT seconds; print ``locked`` and hold it until stdin closes (the host's SSH
channel), or print ``busy <holder>`` and exit 75. The holder writes OWNER (host, pid,
start time, run id) into the file so that a refused run can say who holds it. The kernel
drops the lock when the process dies, so a dead host never leaves a stale lock.

The SSH driver runs this module's text with ``python -c`` (`edgebench.targets.remote`
``PY_LOCK``), not from the agent's archive: the lock is taken before anything is deployed,
lives in the board user's home rather than a workdir, and a lock process started from a
workdir's cache would look like an agent to ``kill-agents``. Standard library only, and no
import from the agent's package. The host's own lock (`edgebench.fsutil.file_lock`) is the
same loop over a host file.
"""

import fcntl
import os
import sys
import time
from typing import IO, List

BUSY_EXIT = 75  # EX_TEMPFAIL
POLL_S = 0.2


def acquire(f: IO[str], timeout: float) -> bool:
    """Try to ``flock`` ``f`` exclusively for ``timeout`` seconds; True once held, False if it stayed busy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)


def main(argv: List[str]) -> int:
    """``lock PATH TIMEOUT OWNER``: hold the lock until stdin closes (exit 0), or say who holds it (exit 75)."""
    path, timeout, owner = argv[1], float(argv[2]), argv[3]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a+") as f:  # held open until the end: closing it releases the lock
        if not acquire(f, timeout):
            f.seek(0)
            sys.stdout.write("busy " + f.read().strip() + "\n")
            sys.stdout.flush()
            return BUSY_EXIT
        f.seek(0)
        f.truncate()
        f.write(owner)
        f.flush()
        sys.stdout.write("locked\n")
        sys.stdout.flush()
        sys.stdin.read()
        return 0
