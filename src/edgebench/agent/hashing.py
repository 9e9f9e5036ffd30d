"""sha256 of a file on the board, 1 MiB at a time.

The agent checks an artifact with it before loading it (`check_sha256`), and the SSH
driver uses this module's text as its fallback where a board has no ``sha256sum``
(``python -c PY_SHA256 FILE``, `edgebench.targets.remote`): that runs before anything is
deployed (it decides whether the agent itself must be uploaded), so it cannot come from
the agent's archive. Standard library only, and no import from the agent's package.
"""

import hashlib
import sys
from typing import List


def sha256_file(path: str) -> str:
    """The hex sha256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main(argv: List[str]) -> int:
    """``sha256 FILE``: print the file's sha256."""
    sys.stdout.write(sha256_file(argv[1]) + "\n")
    return 0
