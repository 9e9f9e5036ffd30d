"""The PostgreSQL results store's tests share one real server: `pg_server` and `pg_db` from ``pg_server.py``.

The fixtures are imported here rather than named in ``pytest_plugins``: pytest refuses
``pytest_plugins`` in a conftest below the rootdir. This folder is a package (``__init__.py``)
so that this conftest is the module ``pg.conftest`` and never hides ``tests/integration/conftest.py``
from the tests that ``from conftest import ...``.
"""

from __future__ import annotations

from pg_server import pg_db, pg_server

__all__ = ["pg_db", "pg_server"]
