"""The agent as one file: a reproducible ``agent.pyz`` that runs jobs, the probe and the board tools."""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from edgebench.agent import build, schema
from edgebench.targets.remote import PY_KILL_AGENTS, PY_LOCK, PY_SHA256, agent_argv


def test_two_builds_are_byte_identical_whatever_the_files_dates_and_modes(tmp_path: Path) -> None:
    assert build.build() == build.build() == build.agent_bytes()
    # a copy of the sources with other dates, other permissions and a __pycache__: the same bytes
    copy = tmp_path / "agent"
    shutil.copytree(build.HERE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for i, path in enumerate(sorted(copy.glob("*.py"))):
        os.utime(path, (1_000_000_000 + i, 1_000_000_000 + i))
        path.chmod(0o600 if i % 2 else 0o755)
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "entry.cpython-311.pyc").write_bytes(b"junk")
    assert build.build(copy) == build.agent_bytes()
    # ... and a changed source changes them
    (copy / "clock.py").write_text((copy / "clock.py").read_text() + "\n# changed\n")
    assert build.build(copy) != build.agent_bytes()


def test_the_archive_holds_sorted_stored_entries_with_a_fixed_date_and_mode() -> None:
    with zipfile.ZipFile(build.agent_path()) as z:
        infos = z.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and names[0] == "__main__.py"
    assert f"{build.PACKAGE}/entry.py" in names and f"{build.PACKAGE}/schema.py" in names
    assert not any("__pycache__" in n or n.endswith((".pyc", "/build.py")) for n in names)  # build.py stays home
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED}
    assert build.agent_path().name == "agent.pyz"
    assert build.agent_path().read_bytes() == build.agent_bytes()
    assert hashlib.sha256(build.agent_bytes()).hexdigest() == build.agent_sha256()


def test_the_archive_runs_a_real_job_as_python_agent_pyz(tmp_path: Path, tiny_onnx: Path) -> None:
    job = {"artifact": str(tiny_onnx), "runtime": "onnxruntime", "dims": {"batch": 1},
           "measure": {"min_rounds": 5, "min_time_s": 0.0, "warmup_min_iters": 1, "warmup_min_s": 0.0}}  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(job))
    for command in (
        [sys.executable, str(build.agent_path()), "job.json"],  # zipimport reads the archive
        agent_argv(sys.executable, str(build.agent_path()), build.agent_sha256(), "job.json"),  # from memory
    ):
        out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert result["ok"], result["error"]
        assert schema.result_problem(result) is None and len(result["timing"]["samples_ns"]) >= 5
        assert result["memory"]["rss_start"] > 0


def test_a_job_with_an_unknown_key_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "job.json").write_text(json.dumps({"artifact": "m.onnx", "mesure": {}}))
    out = subprocess.run([sys.executable, str(build.agent_path()), "job.json"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)  # fmt: skip
    result = json.loads(out.stdout)
    assert result["ok"] is False and result["error"]["kind"] == "bad_job"
    assert "unknown key 'mesure'" in result["error"]["message"]


def test_the_probe_and_the_tools_run_from_the_archive(tmp_path: Path) -> None:
    pyz = str(build.agent_path())
    probe = subprocess.run([sys.executable, pyz, "--probe", "[]"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["python"] == ".".join(map(str, sys.version_info[:3]))
    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * 3_000_000)
    want = hashlib.sha256(f.read_bytes()).hexdigest()
    for command in ([sys.executable, pyz, "sha256", str(f)], [sys.executable, "-c", PY_SHA256, str(f)]):
        assert subprocess.run(command, capture_output=True, text=True, timeout=60).stdout == want + "\n"
    usage = subprocess.run([sys.executable, pyz], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "kill-agents" in usage.stderr


def _sleeper(argv1: str) -> subprocess.Popen[bytes]:
    """A process whose argv[1] is ``argv1`` (as ``python <file> JOB`` has), sleeping."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", argv1, "job.json"])


def test_kill_agents_kills_this_and_older_agents_of_the_workdir_only(tmp_path: Path) -> None:
    wd = tmp_path / "work"
    new = _sleeper(f"{wd}/cache/abc/agent.pyz")
    old = _sleeper(f"{wd}/cache/def/agent.py")  # an agent an older edgebench left
    others = [_sleeper(f"{tmp_path}/elsewhere/cache/abc/agent.pyz"), _sleeper(f"{wd}/cache/abc/model.onnx"),
              _sleeper(f"{wd}/cache/abc/agent.pyz.tmp")]  # fmt: skip
    try:
        time.sleep(0.3)  # their /proc/<pid>/cmdline is written
        out = subprocess.run([sys.executable, "-c", PY_KILL_AGENTS, str(wd)], capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert sorted(int(line.split()[0]) for line in out.stdout.splitlines()) == sorted([new.pid, old.pid])
        assert new.wait(10) == -9 and old.wait(10) == -9
        assert all(p.poll() is None for p in others)
    finally:
        for p in (new, old, *others):
            p.kill()
            p.wait()


def test_the_board_lock_is_held_until_stdin_closes(tmp_path: Path) -> None:
    path = tmp_path / "home" / ".edgebench" / "board.lock"
    holder = subprocess.Popen([sys.executable, "-c", PY_LOCK, str(path), "5", "host-a pid 1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        busy = subprocess.run([sys.executable, "-c", PY_LOCK, str(path), "0.3", "host-b pid 2"],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert (busy.returncode, busy.stdout) == (75, "busy host-a pid 1\n")
    finally:
        holder.communicate("", timeout=30)  # closing stdin releases the lock
    again = subprocess.Popen([sys.executable, "-c", PY_LOCK, str(path), "5", "host-b pid 2"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    out, _ = again.communicate("", timeout=30)
    assert out == "locked\n" and path.read_text() == "host-b pid 2"


@pytest.mark.parametrize("tool", ["hashing", "boardlock", "boardkill"])
def test_the_board_tools_import_only_the_standard_library(tool: str) -> None:
    snippet = build.board_snippet(tool, "pass")
    tree = ast.parse(snippet, feature_version=(3, 6))
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    roots = {a.name.split(".")[0] for n in imports if isinstance(n, ast.Import) for a in n.names}
    roots |= {str(n.module).split(".")[0] for n in imports if isinstance(n, ast.ImportFrom)}
    assert imports and all(getattr(n, "level", 0) == 0 for n in imports)  # nothing relative: it runs alone
    assert roots <= sys.stdlib_module_names, roots
    assert not snippet.startswith('"""')  # the module docstring is left out of the command line


def test_the_boards_reader_of_the_archive_agrees_with_zipfile() -> None:
    # the verify wrapper and `MemoryImporter` read the stored entries with struct (no zipfile on the board)
    from edgebench.agent.__main__ import stored_entries

    data = build.agent_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert stored_entries(data) == [(n, z.read(n)) for n in z.namelist()]
    deflated = io.BytesIO()
    with zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__main__.py", "print(1)\n" * 50)
    with pytest.raises(ImportError, match="compressed entry"):
        stored_entries(deflated.getvalue())
