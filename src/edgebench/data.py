"""Data sets: the built-in UCI handwritten digits (shipped by scikit-learn) and npz files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebench.errors import DataError

SEED = 0


@dataclass(frozen=True)
class Split:
    """Train and test arrays: ``x`` float32 (N, 1, 8, 8) in [0, 1], ``y`` int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits(test_fraction: float = 0.25, seed: int = SEED) -> Split:
    """The 1,797 UCI digits images, split with a fixed seed (stratified)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Split(xtr, ytr, xte, yte)


def save_npz(path: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    """Save ``x`` (and ``y``) as an eval npz, the format the agent reads."""
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``x`` (and ``y`` if present) from an npz.

    Raises:
        DataError: if the file is missing, unreadable or has no ``x`` array.
    """
    try:
        with np.load(path) as d:
            if "x" not in d.files:
                raise DataError(f"{path} has no array named 'x' (it has {sorted(d.files)}): save inputs as x=...")
            return d["x"], (d["y"] if "y" in d.files else None)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc}): give an npz with x (and y) arrays") from None
