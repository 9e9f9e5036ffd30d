"""The CLI's contract: version, help, exit codes, results-folder errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench import __version__
from edgebench.cli import main
from edgebench.errors import ResultsPathError
from edgebench.fsutil import atomic_dir, atomic_write, ensure_writable_dir, file_lock, write_json_atomic


def test_version_prints_the_package_version() -> None:
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0
    assert __version__ in res.output


def test_help_documents_exit_codes() -> None:
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    assert "Exit codes" in res.output and "usage error" in res.output
    assert "demo" in res.output


def test_demo_help_explains_the_command() -> None:
    res = CliRunner().invoke(main, ["demo", "--help"])
    assert res.exit_code == 0
    assert "--results" in res.output and "local" in res.output


def test_unknown_command_is_a_usage_error() -> None:
    res = CliRunner().invoke(main, ["no-such-command"])
    assert res.exit_code == 2
    assert "No such command" in res.output


def test_unknown_flag_is_a_usage_error() -> None:
    res = CliRunner().invoke(main, ["demo", "--no-such-flag"])
    assert res.exit_code == 2
    assert "No such option" in res.output


def test_unwritable_results_folder_exits_1_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "results"
    res = CliRunner().invoke(main, ["demo", "--results", str(target)])
    assert res.exit_code == 1
    assert str(target) in res.output
    assert "Traceback" not in res.output
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing half-written


def test_results_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "results"
    f.write_text("x")
    with pytest.raises(ResultsPathError, match="is a file, not a folder"):
        ensure_writable_dir(f)


def test_missing_results_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "new" / "nested"
    assert ensure_writable_dir(target) == target
    assert target.is_dir()


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "v"
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_only_when_complete(tmp_path: Path) -> None:
    final = tmp_path / "v"
    with atomic_dir(final) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("boom")
    assert (final / "a").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["v"]


def test_write_json_atomic_keeps_old_file_on_failure(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    write_json_atomic(p, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(p, {"a": object()})
    assert p.read_text().strip().replace(" ", "").replace("\n", "") == '{"a":1}'
    assert [x.name for x in tmp_path.iterdir()] == ["r.json"]


def test_atomic_write_publishes_whole_files_only(tmp_path: Path) -> None:
    p = tmp_path / "model.bin"
    with atomic_write(p) as tmp:
        tmp.write_bytes(b"first")
        assert not p.exists()  # nothing at the final name until the block succeeds
    assert p.read_bytes() == b"first" and p.stat().st_mode & 0o777 == 0o644
    with pytest.raises(RuntimeError), atomic_write(p) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert p.read_bytes() == b"first" and [x.name for x in tmp_path.iterdir()] == ["model.bin"]


def test_file_lock_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    lock = tmp_path / "sub" / "x.lock"

    def busy(holder: str) -> RuntimeError:
        return RuntimeError(f"busy: {holder}")

    first = file_lock(lock, busy, owner="run A")
    second = file_lock(lock, busy, timeout=0.2, owner="run B")
    with first, pytest.raises(RuntimeError, match="busy: run A"), second:
        pass
    with file_lock(lock, busy, owner="run B"):  # released on exit: free again
        assert lock.read_text() == "run B"
