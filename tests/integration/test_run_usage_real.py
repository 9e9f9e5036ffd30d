"""The real `edgebench` console script: `run` refuses a bad command line before anything starts,
and arguments after ``--`` still reach pytest (issue 18, item 3).

Bad input: exit 2, one ``error:`` line naming the bad option or item (with "did you mean"),
never pytest's "unrecognized arguments" dump, and nothing written (no results folder, no
log). A good run on the built-in `local` board with ``-- --benchmark-save=...`` saves
pytest-benchmark's file under that name: the pass-through reached pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--repeats", "2", "--min-time", "0.2", "--min-rounds", "10", "--warmup-time", "0.05"]


def edgebench(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("usage")
    variant(cwd / "variants", "tiny", "fp32", onnx_model(cwd / "tiny.onnx"))
    return cwd


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bords", "local"], "error: No such option: --bords (did you mean --boards?); see `edgebench run --help`"),
        (["--repeat", "2"], "error: No such option: --repeat (did you mean --repeats?); see `edgebench run --help`"),
        (
            ["--boards", "local, farm-2"],
            "error: Invalid value for '--boards': ' farm-2' in 'local, farm-2' has whitespace",
        ),
        (["--boards", "local,"], "error: Invalid value for '--boards': 'local,' ends with a comma"),
        (["--boards", "local,", "farm-2"], "error: Invalid value for '--boards': 'local,' ends with a comma"),
        (["--benchmark-save=x"], "error: No such option: --benchmark-save (pytest's own arguments go after `--`"),
    ],
)
def test_a_bad_command_line_is_one_usage_line_and_writes_nothing(folder: Path, args: list[str], says: str) -> None:
    out = edgebench(folder, "run", "--variants", "variants", "--results", "bad-results", *args)
    assert out.returncode == 2, out.stderr
    assert out.stdout == "" and out.stderr.count("\n") == 1, out.stderr  # one line, no usage dump
    assert out.stderr.startswith(says), out.stderr
    assert "unrecognized arguments" not in out.stderr and "Traceback" not in out.stderr
    assert not (folder / "bad-results").exists()


def test_an_unknown_board_is_the_inventory_error_and_writes_nothing(folder: Path) -> None:
    out = edgebench(folder, "run", "--variants", "variants", "--results", "bad-results", "--boards", "locla")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("error: unknown board 'locla' (did you mean 'local'?)") and out.stderr.count("\n") == 1
    assert not (folder / "bad-results").exists()


@pytest.mark.slow
def test_arguments_after_the_double_dash_reach_pytest(folder: Path) -> None:
    out = edgebench(
        folder, "run", "--variants", "variants", "--boards", "local", "--results", "results", *FAST, "--json",
        "--", "--benchmark-save=passed-through",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert [b["params"]["board"] for b in doc["run"]["benchmarks"]] == ["local"]
    [saved] = (folder / "results" / ".benchmarks").glob("*/0001_passed-through.json")  # pytest took our name
    assert json.loads(saved.read_text())["benchmarks"][0]["name"] == "test_variant[local-tiny-fp32]"
    assert (folder / "results" / "runs" / f"{doc['run']['edgebench']['run_id']}.json").is_file()
