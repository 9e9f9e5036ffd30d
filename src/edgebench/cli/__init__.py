"""The `edgebench` command line: one module per command group, each thin (parse, call, render).

Importing a command module registers its commands on `main`.
"""

import sys

try:
    from edgebench.cli import compress, demo, nightly, profile, results, run, targets  # noqa: F401  (register commands)
    from edgebench.cli.common import main
except KeyboardInterrupt:  # Ctrl-C while the commands load (a second): one line and 130, not a traceback
    sys.stderr.write("error: interrupted by SIGINT\n")
    raise SystemExit(130) from None

__all__ = ["main"]
