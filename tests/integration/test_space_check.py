"""A results folder without room for the run: refused before it starts, in one line, nothing written.

The disk is a real small tmpfs mounted over the results folder (root only), and the measured
model is bigger than its free space, so the kept artifact alone cannot fit.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant
from test_full_disk import EDGEBENCH, tmpfs

pytestmark = [pytest.mark.slow]


def _big_variant(tmp: Path) -> Path:
    model = onnx_model(tmp / "big.onnx", n_in=256, n_out=256)  # 256 KiB of weights
    assert model.stat().st_size > 256 * 1024
    variant(tmp / "variants", "big", "fp32", model)
    return tmp / "variants"


def test_a_run_that_cannot_fit_is_refused_before_it_starts(tmp_path: Path) -> None:
    variants = _big_variant(tmp_path)
    with tmpfs(tmp_path / "results", "200k") as results:
        env = {**os.environ, "HOME": str(tmp_path / "home")}
        env.pop("EDGEBENCH_NO_SPACE_CHECK", None)
        out = subprocess.run(
            [EDGEBENCH, "run", "--variants", str(variants), "--results", str(results), "--repeats", "1"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert out.returncode == 1, out.stderr[-3000:]
        assert len(out.stderr.splitlines()) == 1, out.stderr[-3000:]
        (line,) = out.stderr.splitlines()
        assert line.startswith(f"error: results folder {results} has ")
        assert " KiB free, and this run needs about " in line and "kept artifacts" in line
        assert "use --results with a folder on a disk with room" in line and "Traceback" not in out.stdout
        assert out.stdout == ""
        assert list(results.iterdir()) == []  # nothing written: no runs/, logs/ or artifacts/
