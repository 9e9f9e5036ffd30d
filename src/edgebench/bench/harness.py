"""The measurement tests `edgebench run` collects: one per board x model x variant.

Run them with pytest directly::

    pytest --pyargs edgebench.bench.harness --edge-variants variants/ --edge-boards local
"""

from __future__ import annotations

from typing import Any

from edgebench.bench.plugin import run_case
from edgebench.bench.session import Case, EdgeSession


def test_variant(benchmark: Any, edge_session: EdgeSession, edge_case: Case) -> None:
    """Measure one variant on one board; the benchmark's stats are the board's samples."""
    run_case(benchmark, edge_session, edge_case)
