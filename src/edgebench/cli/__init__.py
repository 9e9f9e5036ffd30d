"""The `edgebench` command line: one module per command group, each thin (parse, call, render).

Importing a command module registers its commands on `main`.
"""

from edgebench.cli import compress, demo, nightly, profile, results, run, targets  # noqa: F401  (register commands)
from edgebench.cli.common import main

__all__ = ["main"]
