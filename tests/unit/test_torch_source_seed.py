"""A recipe's PyTorch model is the same model for the same seed: its initial weights come from the seed too
(the README tour's top-1 moved between clones when only the training was seeded)."""

from __future__ import annotations

import numpy as np
import pytest

from edgebench.compress.passes import Data
from edgebench.compress.sources import Source, build_torch

torch = pytest.importorskip("torch")


def _weights(seed: int) -> list[np.ndarray]:
    x = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    data = Data(x_train=x, y_train=np.zeros(8, dtype=np.int64), x_calib=x, x_eval=x, y_eval=None)
    src = Source(name="digits", spec="edgebench.zoo:digits_cnn", fmt="torch", path=None, train_epochs=0)
    torch.manual_seed(1234 + seed * 7)  # whatever state the process is in before
    torch.rand(3)
    module = build_torch(src, data, seed, train=False)
    return [p.detach().numpy().copy() for p in module.parameters()]


def test_the_same_seed_builds_the_same_initial_weights_and_another_seed_others() -> None:
    a, b, c = _weights(0), _weights(0), _weights(1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
