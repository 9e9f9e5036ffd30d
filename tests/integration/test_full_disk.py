"""A results folder on a full disk: the run stops at once in one line, exit 1, and keeps what it wrote.

The disk is a real small tmpfs mounted over the results folder (root only). Each variant's
measurement is a fixed number of samples (``--min-rounds`` = ``--edge-max-rounds``), so a
run file grows by about the same amount per measurement and the disk fills after a few.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _bench_models import onnx_model, variant

pytestmark = [pytest.mark.slow]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
VARIANTS = 10
ROUNDS = ["--min-time", "0", "--repeats", "1", "--min-rounds", "2000"]  # + `-- --edge-max-rounds 2000`


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` while the block runs."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _variants(tmp: Path, n: int) -> Path:
    root = tmp / "variants"
    for i in range(n):
        variant(root, "tiny", f"v{i}", onnx_model(tmp / f"m{i}.onnx", seed=i))
    return root


def _run(tmp: Path, results: Path, n: int, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp / "home"), "EDGEBENCH_NO_SPACE_CHECK": "1"}  # the disk fills mid-run
    args = ["run", "--variants", str(tmp / "variants"), "--results", str(results), *ROUNDS, "--models", "tiny"]
    return subprocess.run(
        [EDGEBENCH, *args, "--", "--edge-max-rounds", "2000", "-k", " or ".join(f"v{i}]" for i in range(n)), *extra],
        capture_output=True, text=True, env=env, cwd=tmp, timeout=600,
    )  # fmt: skip


def _left_behind(results: Path) -> list[str]:
    """Temporary and reserve files, and pytest-benchmark copies that are not whole JSON."""
    bad = [str(p) for p in results.rglob("*") if p.name.endswith((".tmp", ".reserve"))]
    for p in (results / ".benchmarks").rglob("*.json"):
        try:
            json.loads(p.read_text())
        except ValueError:
            bad.append(str(p))
    return bad


def _the_run(results: Path) -> dict[str, Any]:
    (path,) = (results / "runs").glob("*.json")
    doc: dict[str, Any] = json.loads(path.read_text())  # whole JSON: never truncated
    return doc


def test_a_full_results_disk_stops_the_run_in_one_line_and_keeps_what_was_written(tmp_path: Path) -> None:
    _variants(tmp_path, VARIANTS)
    with tmpfs(tmp_path / "results", "400k") as results:
        out = _run(tmp_path, results, VARIANTS)
        assert out.returncode == 1, out.stderr[-3000:]
        errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, out.stderr[-3000:]
        (line,) = errors
        assert line.startswith(f"error: results folder {results} is full (No space left on device, ")
        assert "KiB free): free space there or use --results with a folder on a disk with room; run " in line
        assert "regressed" not in out.stderr and "Traceback" not in out.stderr
        doc = _the_run(results)
        eb = doc["edgebench"]
        kept = [b["params"]["variant"] for b in doc["benchmarks"]]
        assert eb["complete"] is False and eb["failures"] == []
        assert eb["interrupted"].startswith(f"stopped: results folder {results} is full (No space left on device")
        assert 1 <= len(kept) < VARIANTS
        path = results / "runs" / f"{eb['run_id']}.json"
        assert line.endswith(f"stopped: {len(kept)} finished measurement(s) kept in {path} (complete: false)")
        printed = [ln.split("/")[2].split(":")[0] for ln in out.stderr.splitlines() if ln.startswith("measured ")]
        assert set(printed) <= set(kept)  # every measurement said to be finished is in the run file
        assert _left_behind(results) == []
        assert list((results / ".benchmarks").rglob("*.json")) == []  # no copy of a run that stopped


def test_a_benchmark_copy_that_does_not_fit_is_not_left_half_written(tmp_path: Path) -> None:
    _variants(tmp_path, 3)
    results = tmp_path / "results"
    with tmpfs(results / ".benchmarks", "64k") as copies:
        out = _run(tmp_path, results, 3)
        assert out.returncode == 1, out.stderr[-3000:]
        (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
        assert line.startswith(f"error: results folder {copies.resolve()}")
        assert " is full (No space left on device, " in line
        assert "; run " in line and line.endswith("without pytest-benchmark's copy")
        assert "regressed" not in out.stderr and "Traceback" not in out.stderr
        doc = _the_run(results)
        assert doc["edgebench"]["complete"] is True and len(doc["benchmarks"]) == 3  # the run file came first
        assert list(copies.rglob("*.json")) == []  # the half-written copy is gone
        assert _left_behind(results) == []


def test_nightly_on_a_full_disk_is_one_line(tmp_path: Path) -> None:
    _variants(tmp_path, VARIANTS)
    config = tmp_path / "nightly.toml"
    config.write_text(
        f'[nightly]\nboards = ["local"]\nvariants = "{tmp_path / "variants"}"\n'
        "[nightly.settings]\nmin_time_s = 0\nmin_rounds = 2000\nmax_rounds = 2000\nrepeats = 1\n"
    )
    with tmpfs(tmp_path / "results", "400k") as results:
        env = {**os.environ, "HOME": str(tmp_path / "home"), "EDGEBENCH_NO_SPACE_CHECK": "1"}  # fills mid-run
        out = subprocess.run(
            [EDGEBENCH, "nightly", str(config), "--results", str(results)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert out.returncode == 1, out.stderr[-3000:]
        (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
        assert line.startswith(f"error: results folder {results} is full (No space left on device, ")
        assert "free space there" in line and "Traceback" not in out.stdout + out.stderr
        assert "harness" not in line and len(out.stderr.splitlines()) < 5  # no pytest output, no traceback
        doc = _the_run(results)
        assert doc["edgebench"]["complete"] is False and "is full" in doc["edgebench"]["interrupted"]
        assert _left_behind(results) == []
