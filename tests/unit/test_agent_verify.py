"""The board-side check that runs before every agent process (`remote.PY_VERIFY_AGENT`): the bytes hashed are run."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

from edgebench.agent import build
from edgebench.targets.remote import AGENT_CHANGED, PY_VERIFY_AGENT, agent_argv

VERMIN = Path(sys.executable).with_name("vermin")
MAIN = (build.HERE / "__main__.py").read_bytes()


def _archive(**modules: str) -> bytes:
    """An agent archive: the real ``__main__.py`` and an ``edgebench_agent`` package with these modules."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("__main__.py", MAIN)
        z.writestr(f"{build.PACKAGE}/__init__.py", "")
        for name, text in modules.items():
            z.writestr(f"{build.PACKAGE}/{name}.py", text)
    return buf.getvalue()


ENTRY = """\
import os, sys
from . import later
def main(argv):
    print(__name__, argv[1:], type(__loader__).__name__, __file__.endswith("agent.pyz/edgebench_agent/entry.py"))
    print(later.VALUE)
    return 0
"""


def test_the_check_runs_on_python_36_per_vermin(tmp_path: Path) -> None:
    snippet = tmp_path / "verify.py"
    snippet.write_text(PY_VERIFY_AGENT)
    out = subprocess.run([str(VERMIN), "-t=3.6-", "--no-tips", "--violations", str(snippet)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_agent_runs_from_the_hashed_bytes_only(tmp_path: Path) -> None:
    agent = tmp_path / "agent.pyz"
    data = _archive(entry=ENTRY, later="VALUE = 'from the checked bytes'\n")
    agent.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    ok = subprocess.run(agent_argv(sys.executable, str(agent), digest, "job.json"), capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # the package came from memory (not zipimport reading the file again), with the archive's paths
    assert ok.stdout == "edgebench_agent.entry ['job.json'] MemoryImporter True\nfrom the checked bytes\n"
    agent.write_bytes(_archive(entry=ENTRY, later="VALUE = 'replaced'\n"))
    bad = subprocess.run(agent_argv(sys.executable, str(agent), digest, "job.json"), capture_output=True, text=True)
    assert (bad.returncode, bad.stdout) == (1, "")  # it did not run
    got = hashlib.sha256(agent.read_bytes()).hexdigest()
    assert bad.stderr == f"{AGENT_CHANGED}{agent} has sha256 {got}\n"


def test_nothing_is_read_from_disk_after_the_check(tmp_path: Path) -> None:
    # the archive deletes itself before importing its second module: that import still works
    agent = tmp_path / "agent.pyz"
    entry = ENTRY.replace("from . import later\n", "").replace(
        "    print(later.VALUE)\n", f"    os.remove({str(agent)!r})\n    from . import later\n    print(later.VALUE)\n"
    )
    data = _archive(entry=entry, later="VALUE = 'still here'\n")
    agent.write_bytes(data)
    out = subprocess.run(
        agent_argv(sys.executable, str(agent), hashlib.sha256(data).hexdigest()), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("still here\n") and not agent.exists()


def test_a_traceback_shows_the_archive_source(tmp_path: Path) -> None:
    # what a job's error block holds (`jobs.error_block`: traceback.format_exc): the archive's path and line
    agent = tmp_path / "agent.pyz"
    entry = (
        "import traceback\ndef main(argv):\n    try:\n        raise RuntimeError('boom at the board')\n"
        "    except RuntimeError:\n        print(traceback.format_exc())\n    return 0\n"
    )
    data = _archive(entry=entry)
    agent.write_bytes(data)
    out = subprocess.run(
        agent_argv(sys.executable, str(agent), hashlib.sha256(data).hexdigest()), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert f'File "{agent}/edgebench_agent/entry.py", line 4, in main' in out.stdout
    assert "raise RuntimeError('boom at the board')" in out.stdout  # the line itself, from the loader's get_source
