"""The board-side check that runs before every agent process (`remote.PY_VERIFY_AGENT`)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from edgebench.targets.remote import AGENT_CHANGED, PY_VERIFY_AGENT, agent_argv

VERMIN = Path(sys.executable).with_name("vermin")
SCRIPT = "import sys\nprint(__name__, sys.argv[1:], sys.modules['__main__'].__file__ == __file__)\n"


def test_the_check_runs_on_python_36_per_vermin(tmp_path: Path) -> None:
    snippet = tmp_path / "verify.py"
    snippet.write_text(PY_VERIFY_AGENT)
    out = subprocess.run([str(VERMIN), "-t=3.6-", "--no-tips", "--violations", str(snippet)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_agent_runs_as_main_only_with_its_sha256(tmp_path: Path) -> None:
    agent = tmp_path / "agent.py"
    agent.write_text(SCRIPT)
    digest = hashlib.sha256(SCRIPT.encode()).hexdigest()
    ok = subprocess.run(agent_argv(sys.executable, str(agent), digest, "job.json"), capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, "__main__ ['job.json'] True\n")
    agent.write_text(SCRIPT + "print('replaced')\n")
    bad = subprocess.run(agent_argv(sys.executable, str(agent), digest, "job.json"), capture_output=True, text=True)
    assert (bad.returncode, bad.stdout) == (1, "")  # it did not run
    got = hashlib.sha256(agent.read_bytes()).hexdigest()
    assert bad.stderr == f"{AGENT_CHANGED}{agent} has sha256 {got}\n"
