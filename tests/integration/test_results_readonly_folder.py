"""A read-only results folder: `index rebuild` and `nightly` say so in one line, exit 1, and change nothing.

The folder is made read-only for real: as root (whom chmod does not stop) by a read-only
bind mount over it, otherwise by chmod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNS = Path(__file__).parents[1] / "unit" / "data" / "results_runs"
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process: stderr is what a user sees."""
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A results folder with runs and an index, read-only while the test runs."""
    folder = tmp_path / "results"
    (folder / "runs").mkdir(parents=True)
    for p in RUNS.glob("*.json"):
        shutil.copy(p, folder / "runs")
    assert cli("index", "rebuild", "--results", str(folder)).returncode == 0
    if os.geteuid() == 0:
        mount = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
        if mount.returncode != 0:
            pytest.skip(f"root cannot bind-mount here, so no read-only folder: {mount.stderr.strip()}")
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        for p in (folder, folder / "runs"):
            p.chmod(0o555)
        try:
            yield folder
        finally:
            for p in (folder, folder / "runs"):
                p.chmod(0o755)


@pytest.mark.parametrize("command", ["index", "nightly"])
def test_a_read_only_results_folder_is_one_line(read_only: Path, tmp_path: Path, command: str) -> None:
    config = tmp_path / "nightly.toml"
    config.write_text('[nightly]\nboards = ["local"]\nvariants = "variants"\n')
    before = snapshot(read_only)
    args = ["index", "rebuild"] if command == "index" else ["nightly", str(config)]
    out = cli(*args, "--results", str(read_only))
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [
        f"error: results folder {read_only} is "
        f"{'read-only (a read-only file system)' if os.geteuid() == 0 else 'not writable'}: "
        "use --results with a writable folder"
    ]
    assert "Traceback" not in out.stdout + out.stderr
    assert snapshot(read_only) == before  # nothing changed: the index and the run files as they were


def test_nightly_into_a_new_folder_of_a_read_only_one(read_only: Path, tmp_path: Path) -> None:
    config = tmp_path / "nightly.toml"
    config.write_text('[nightly]\nboards = ["local"]\nvariants = "variants"\n')
    before = snapshot(read_only)
    out = cli("nightly", str(config), "--results", str(read_only / "new"))
    assert out.returncode == 1, out.stderr
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"error: lock file {read_only / 'new' / '.nightly.lock'} cannot be opened (")
    assert line.endswith(f"): {read_only / 'new'} must be a folder you can write")
    assert "Traceback" not in out.stdout + out.stderr
    assert snapshot(read_only) == before
