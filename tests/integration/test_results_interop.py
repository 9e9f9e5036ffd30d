"""The README's pytest-benchmark workflow, end to end, exactly as written, in a fresh folder.

Two `edgebench run`s on the local board with the default results folder: the first is
saved in pytest-benchmark's storage (results/.benchmarks), the second - with a variant of
the same name made ~100x slower - is compared with it by `--benchmark-compare=0001
--benchmark-compare-fail=median:5%` and must end in exit 3 with a short summary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
PYTEST_BENCHMARK = str(Path(sys.executable).with_name("pytest-benchmark"))
README = Path(__file__).parents[2] / "README.md"
FIRST = ["run", "--variants", "variants/"]
SECOND = [*FIRST, "--", "--benchmark-compare=0001", "--benchmark-compare-fail=median:5%"]


def test_readme_states_the_tested_commands() -> None:
    text = README.read_text()
    # the README's own commands run in tests/integration/test_readme.py; the pass-through form is this file's
    assert "edgebench run --variants variants/" in text
    assert " -- --benchmark-compare --benchmark-compare-fail=median:5%" in text
    assert "pytest-benchmark --storage results/.benchmarks compare" in text
    assert "pytest-benchmark compare --name long results/runs/*.json" in text


@pytest.mark.slow
def test_benchmark_compare_fail_from_a_fresh_folder(tmp_path: Path) -> None:
    variant(tmp_path / "variants", "tiny", "fp32", onnx_model(tmp_path / "small.onnx"))

    def edgebench(*args: str) -> subprocess.CompletedProcess[str]:
        # as from a pytest-xdist worker (a user's CI): the harness must still save pytest-benchmark's copy
        env = {**os.environ, "PYTEST_XDIST_WORKER": "gw9", "PYTEST_XDIST_WORKER_COUNT": "10"}
        return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)

    first = edgebench(*FIRST)
    assert first.returncode == 0, first.stderr[-2000:]
    [saved] = (tmp_path / "results" / ".benchmarks").glob("*/0001_*.json")
    run_id = saved.stem.removeprefix("0001_")
    assert (tmp_path / "results" / "runs" / f"{run_id}.json").is_file()  # the same run, under its id

    # the regression: same model and variant name, a 1024x1024 MatMul instead of 4x3
    shutil.rmtree(tmp_path / "variants")
    variant(tmp_path / "variants", "tiny", "fp32", onnx_model(tmp_path / "big.onnx", n_in=1024, n_out=1024))
    second = edgebench(*SECOND)
    assert second.returncode == 3, second.stderr[-2000:]
    err = second.stderr.splitlines()
    assert len(err) <= 8, second.stderr  # a short summary, not pytest's traceback
    assert "Traceback" not in second.stderr and "INTERNALERROR" not in second.stderr
    [regressed] = [ln for ln in err if ln.startswith("regressed:")]
    assert "test_variant[local-tiny-fp32]" in regressed and "median" in regressed
    assert err[-1].startswith("error: performance regressed against the compared run")
    assert len(list((tmp_path / "results" / "runs").glob("*.json"))) == 2  # the regressed run is stored too

    # pytest-benchmark's own compare tells the two runs apart: as the README writes it (the counter), and long
    plain = subprocess.run(
        [PYTEST_BENCHMARK, "--storage", "results/.benchmarks", "compare"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    names = [ln.split()[0] + " " + ln.split()[1] for ln in plain.stdout.splitlines() if "local-tiny-fp32" in ln]
    assert len(names) == 2 and len(set(names)) == 2 and "(0001_" in names[0] + names[1], plain.stdout
    cmp = subprocess.run(
        [PYTEST_BENCHMARK, "--storage", "results/.benchmarks", "compare", "--name", "long"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert cmp.returncode == 0, cmp.stderr
    rows = [ln for ln in cmp.stdout.splitlines() if "test_variant[local-tiny-fp32]" in ln]
    assert len(rows) == 2 and f"0001_{run_id}" in cmp.stdout and "0002_" in cmp.stdout
    # and so do the run files, with the README's --name long (the default keeps 12 characters of a name)
    files = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results" / "runs").glob("*.json"))
    cmp = subprocess.run(
        [PYTEST_BENCHMARK, "compare", "--name", "long", *files],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert cmp.returncode == 0, cmp.stderr
    assert all(f"({Path(f).stem})" in cmp.stdout for f in files)


def test_progress_lines_when_piped(tmp_path: Path) -> None:
    """With stderr not a terminal, each finished measurement is one plain line, no escape codes."""
    variant(tmp_path / "variants", "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    variant(tmp_path / "variants", "tiny", "other", onnx_model(tmp_path / "b.onnx", seed=2), parent="fp32")
    out = subprocess.run(
        [EDGEBENCH, *FIRST, "--min-time", "0.1", "--repeats", "2"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("measured ")]
    assert len(lines) == 2, out.stderr
    for ln in lines:
        assert ln.startswith(("measured local/tiny/fp32: ok, p50 ", "measured local/tiny/other: ok, p50 "))
        assert " ms (processes " in ln and "/4)" in ln
    assert "\x1b" not in out.stderr and "\x1b" not in out.stdout
