"""Unit tests keep to themselves: their own board lock and cache, never the machine's.

A real run on this machine holds the machine-wide ``local`` board lock (under
``~/.cache/edgebench``); every unit test gets a lock folder (``$EDGEBENCH_LOCK_DIR``) and a
cache (``$XDG_CACHE_HOME``) of its own instead.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.targets.driver import LOCK_DIR_ENV


@pytest.fixture(autouse=True)
def own_lock_and_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's board lock folder (its cache is next to it)."""
    root = tmp_path_factory.mktemp("own")
    monkeypatch.setenv(LOCK_DIR_ENV, str(root / "lock"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    return root / "lock"
