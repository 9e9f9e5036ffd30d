"""Data sets: the built-in UCI handwritten digits, shipped inside the package.

``datasets/digits.npz`` holds scikit-learn's copy of the UCI optdigits images (CC BY 4.0,
see ``datasets/README.md``); it is read with numpy, so no scikit-learn at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

SEED = 0


@dataclass(frozen=True)
class Split:
    """Train and test arrays: ``x`` float32 (N, 1, 8, 8) in [0, 1], ``y`` int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(test_fraction: float = 0.25, seed: int = SEED) -> Split:
    """The 1,797 UCI digits images, split with a fixed seed (stratified).

    The test split has ``ceil(test_fraction * 1797)`` images (450 for 0.25) and keeps
    each digit's share of the whole set.
    """
    with resources.files("edgebench").joinpath("datasets/digits.npz").open("rb") as f, np.load(f) as d:
        x = (d["images"] / 16.0).astype(np.float32)[:, None, :, :]
        y = d["target"].astype(np.int64)
    test = _stratified_test(y, math.ceil(test_fraction * len(y)), np.random.default_rng(seed))
    train = np.setdiff1d(np.arange(len(y)), test)
    return Split(x[train], y[train], x[test], y[test])


def _stratified_test(y: np.ndarray, n_test: int, rng: np.random.Generator) -> np.ndarray:
    """``n_test`` indices, each class in proportion (largest remainders get the rounding)."""
    classes, counts = np.unique(y, return_counts=True)
    share = counts * n_test / len(y)
    take = np.floor(share).astype(int)
    for i in np.argsort(-(share - take), kind="stable")[: n_test - int(take.sum())]:
        take[i] += 1
    picked = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take, strict=True)]
    return np.sort(np.concatenate(picked))


def save_npz(path: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    """Save ``x`` (and ``y``) as an eval npz, the format the agent reads."""
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path
