"""Private keys others can read are refused as OpenSSH refuses them, whichever way the connection finds them.

The real CLI in a child process with ``HOME`` at a temporary home (its ``~/.ssh`` holds the keys
and the ssh config), against a real sshd farm board.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _bench_models import onnx_model, variant

from edgebench.results.store import list_runs
from edgebench.targets.boards_file import write_boards
from edgebench.targets.farm import Farm

pytestmark = [pytest.mark.ssh]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The real CLI with ``home`` as $HOME and no ssh-agent, so only key files can authenticate."""
    env = {**os.environ, "HOME": str(home)}
    env.pop("SSH_AUTH_SOCK", None)
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=300, env=env)


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout, out.stderr
    (line,) = out.stderr.strip().splitlines()
    return line


@pytest.fixture
def home(farm: Farm, tmp_path: Path) -> Path:
    """A home whose ``~/.ssh/id_ed25519`` is the farm's key, mode 0644, and a board entry without identity_file."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    shutil.copy(farm.board("farm-1").identity_file or "", home / ".ssh" / "id_ed25519")
    (home / ".ssh" / "id_ed25519").chmod(0o644)
    write_boards(tmp_path / "boards.toml", [dataclasses.replace(farm.board("farm-1"), name="k", identity_file=None)])
    return home


def test_a_default_key_others_can_read_is_refused_and_the_board_not_measured(home: Path, tmp_path: Path) -> None:
    key = home / ".ssh" / "id_ed25519"
    boards = str(tmp_path / "boards.toml")
    line = one_error_line(cli("boards", "check", "k", "--boards-file", boards, home=home))
    assert line.startswith("error: board 'k' is unreachable: ") and f"private key {key} is readable by others" in line
    assert "(mode 0644)" in line and "UNPROTECTED PRIVATE KEY FILE" in line and line.endswith(f"`chmod 600 {key}`")

    root, res = tmp_path / "variants", tmp_path / "results"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    run = ["run", "--boards-file", boards, "--boards", "k", "--variants", str(root), "--results", str(res)]
    run += ["--repeats", "1", "--min-time", "0.05", "--min-rounds", "10", "--json"]
    out = cli(*run, home=home)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    stored = json.loads(out.stdout)["run"]
    assert stored["benchmarks"] == []  # the board was not measured
    (failed,) = stored["edgebench"]["failures"]
    assert failed["board"] == "k" and f"`chmod 600 {key}`" in failed["error"]["message"]
    assert "\n" not in failed["error"]["message"]
    assert key.stat().st_mode & 0o777 == 0o644  # the key is left as it was: the user decides

    key.chmod(0o600)  # the printed fix, and the same board is reached and measured
    assert cli("boards", "check", "k", "--boards-file", boards, home=home).returncode == 0
    out = cli(*run, home=home)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [b["params"]["board"] for b in json.loads(out.stdout)["run"]["benchmarks"]] == ["k"]
    assert len(list_runs(res)) == 2


def test_an_ssh_config_identity_file_is_checked_and_replaces_the_default_keys(home: Path, tmp_path: Path) -> None:
    boards = str(tmp_path / "boards.toml")
    named = home / "keys" / "board key"  # a space: the printed command must still run as shown
    named.parent.mkdir()
    shutil.copy(home / ".ssh" / "id_ed25519", named)
    named.chmod(0o640)
    (home / ".ssh" / "config").write_text(f'Host *\n  IdentityFile "{named}"\n')
    line = one_error_line(cli("boards", "check", "k", "--boards-file", boards, home=home))
    assert f"private key {named} is readable by others (mode 0640)" in line
    fix = line.split("run `")[1].rstrip("`")
    subprocess.run(fix, shell=True, check=True)  # the hint, run as printed
    assert named.stat().st_mode & 0o777 == 0o600
    # as with ssh, a named IdentityFile replaces the default keys: the world-readable id_ed25519 is not read
    out = cli("boards", "check", "k", "--boards-file", boards, home=home)
    assert out.returncode == 0, out.stderr
    assert (home / ".ssh" / "id_ed25519").stat().st_mode & 0o777 == 0o644
