"""Fixtures shared by every test folder."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _tiny_onnx import make_tiny_onnx


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    """Path to a tiny real ONNX model: input x [batch, 4] float32, output y [batch, 3]."""
    return make_tiny_onnx(tmp_path / "tiny.onnx")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Train with one torch thread: on a shared 2-core machine two OpenMP threads ran tiny models ~30x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def no_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import tensorflow`` fail as it does where TensorFlow is not installed."""
    real = builtins.__import__

    def fake(name: str, *a: Any, **kw: Any) -> Any:
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("No module named 'tensorflow'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)


# The test files that take a minute or more on two workers (`pytest --durations`), longest first.
# `scripts/test.sh` hands whole files to its two workers (xdist --dist loadfile) in collection order,
# so these go first: a long file started last would leave one worker alone for minutes at the end.
LONG_FILES = (
    "test_readme.py",
    "test_thirdparty_models.py",
    "test_chaos.py",
    "test_bench_plugin.py",
    "test_paired_decisions.py",
    "test_fidelity_real.py",
    "test_bench_bad_input.py",
    "test_pg_commands.py",
    "test_sustained_real.py",
    "test_profile_run.py",
    "test_sustained_throttle.py",
    "test_results_interop.py",
    "test_interrupts.py",
    "test_run_defaults_stateful.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long files first (`LONG_FILES`), the rest in their usual order."""
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
