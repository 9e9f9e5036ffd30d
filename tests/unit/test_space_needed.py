"""The estimate of the space a run needs (`space_needed`) and the check before a run (`check_space`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from edgebench.bench.settings import RunSettings
from edgebench.errors import ResultsPathError
from edgebench.results import store
from edgebench.workflows import run as run_mod
from edgebench.workflows.run import MEASUREMENT_BYTES, RUN_BYTES, SAMPLE_BYTES, check_space, space_needed


def _variant(tmp: Path, name: str, size: int) -> Any:
    data = name.encode() * (size // len(name))
    path = tmp / f"{name}.onnx"
    path.write_bytes(data)
    return SimpleNamespace(artifact=path, sha256=hashlib.sha256(data).hexdigest())


def test_the_estimate_is_three_run_files_the_reserve_margin_and_the_artifacts_not_kept(tmp_path: Path) -> None:
    a, b = _variant(tmp_path, "a", 1000), _variant(tmp_path, "b", 3000)
    settings = RunSettings(min_rounds=100)
    run_file = RUN_BYTES + 2 * 3 * (MEASUREMENT_BYTES + SAMPLE_BYTES * 100)  # 2 boards x 3 variants
    results = tmp_path / "results"
    assert space_needed(results, 2, [a, b, a], settings) == 3 * run_file + store.RESERVE_MARGIN + 4000
    (results / "artifacts").mkdir(parents=True)
    (results / "artifacts" / f"{b.sha256}.onnx").write_bytes(b"kept")
    assert space_needed(results, 2, [a, b, a], settings) == 3 * run_file + store.RESERVE_MARGIN + 1000
    paired = settings.replace(baseline="latest")
    run_paired = RUN_BYTES + 2 * 2 * 3 * (MEASUREMENT_BYTES + SAMPLE_BYTES * 100)
    assert space_needed(results, 2, [a, b, a], paired) == 3 * run_paired + store.RESERVE_MARGIN + 1000


def test_check_space_refuses_in_one_line_naming_the_folder_the_free_space_and_the_estimate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(run_mod.NO_SPACE_CHECK_ENV, raising=False)
    monkeypatch.setattr(run_mod, "_free_bytes", lambda _f: 10 * 1024)
    results = tmp_path / "missing" / "results"
    with pytest.raises(ResultsPathError) as err:
        check_space(results, 1, [_variant(tmp_path, "a", 20 * 1024)], RunSettings(min_rounds=50))
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"results folder {results} has 10 KiB free, and this run needs about ")
    assert "free space there, use --results with a folder on a disk with room or lower --min-rounds" in msg
    assert not results.exists()


def test_check_space_never_refuses_when_the_free_space_is_unknown_or_when_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = [_variant(tmp_path, "a", 20 * 1024)]
    monkeypatch.delenv(run_mod.NO_SPACE_CHECK_ENV, raising=False)
    monkeypatch.setattr(run_mod, "_free_bytes", lambda _f: None)
    check_space(tmp_path, 1, big, RunSettings())
    monkeypatch.setattr(run_mod, "_free_bytes", lambda _f: 0)
    monkeypatch.setenv(run_mod.NO_SPACE_CHECK_ENV, "1")
    check_space(tmp_path, 1, big, RunSettings())


def test_free_bytes_reads_the_nearest_existing_folder(tmp_path: Path) -> None:
    free = run_mod._free_bytes(tmp_path / "not" / "yet")
    assert isinstance(free, int) and free > 0
