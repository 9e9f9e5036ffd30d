"""Helpers for edgebench's tests and for users testing code built on edgebench.

Nothing in the package imports this: test doubles (`FakeDriver`) and test-only
instruments (`CountingSSHDriver`, which counts the bytes an SSH driver sends) live here,
out of the production path.
"""

from edgebench.testing.drivers import CountingSocket, CountingSSHDriver, FakeDriver, TransferStats

__all__ = ["CountingSSHDriver", "CountingSocket", "FakeDriver", "TransferStats"]
