"""Board errors name the cause and the fix, in one line (real sshd farm boards and real sockets)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from _bench_models import onnx_model, variant

from edgebench.errors import BoardUnreachable, RemoteError
from edgebench.targets.board import Board
from edgebench.targets.boards_file import write_boards
from edgebench.targets.deploy import deploy
from edgebench.targets.driver import MIN_PYTHON
from edgebench.targets.farm import Farm
from edgebench.targets.ssh import SSHDriver

pytestmark = [pytest.mark.ssh]
EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, so stderr is what a user sees (paramiko's logging included)."""
    return subprocess.run([EDGEBENCH, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def silent_port() -> Iterator[tuple[str, int]]:
    """A TCP listener on 127.0.0.9 that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.9", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield srv.getsockname()
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()


def test_a_port_that_never_speaks_ssh(silent_port: tuple[str, int], tmp_path: Path) -> None:
    host, port = silent_port
    board = Board(name="mute", host=host, port=port, workdir="/tmp/x", connect_timeout=1)
    with pytest.raises(BoardUnreachable, match=f"answers on port {port} but not as an SSH server within 1 s"):
        SSHDriver(board, connect_retries=1).activate()
    boards = tmp_path / "boards.toml"
    write_boards(boards, [board])
    out = cli("boards", "check", "mute", "--boards-file", str(boards), "--timeout", "5")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: board 'mute' is unreachable: cannot connect to {os.environ.get('USER', 'root')}@"
        f"{host}:{port} after 2 attempt(s) ({host} answers on port {port} but not as an SSH server within 1 s: "
        "check the port, or that sshd (not another service) listens there)"
    ]
    assert "Traceback" not in out.stderr + out.stdout
    out = cli("boards", "trust", "mute", "--boards-file", str(boards))
    assert out.returncode == 1 and "not as an SSH server" in out.stderr and len(out.stderr.splitlines()) == 1


def test_boards_check_gives_one_line_for_unreachable_boards(tmp_path: Path) -> None:
    boards = tmp_path / "boards.toml"
    gone = [Board(name=f"gone{i}", host=f"127.0.0.25{i}", port=1, workdir="/tmp/x", connect_timeout=1) for i in (1, 2)]
    write_boards(boards, gone)
    out = cli("boards", "check", "gone1", "gone2", "--boards-file", str(boards), "--timeout", "5")
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    (line,) = out.stderr.strip().splitlines()  # one line naming each board, its cause, never a traceback
    assert line.startswith("error: board 'gone1' is unreachable: ") and "; board 'gone2' is unreachable: " in line
    assert "127.0.0.251:1" in line and "127.0.0.252:1" in line


def test_a_world_readable_key_is_refused_as_ssh_does(farm: Farm, tmp_path: Path) -> None:
    key = tmp_path / "id_open"
    shutil.copy(farm.board("farm-1").identity_file or "", key)
    key.chmod(0o644)
    board = dataclasses.replace(farm.board("farm-1"), identity_file=str(key))
    with pytest.raises(BoardUnreachable) as info:
        SSHDriver(board, connect_retries=1).activate()
    msg = str(info.value)
    assert "readable by others (mode 0644)" in msg and f"chmod 600 {key}" in msg and "\n" not in msg


def test_a_wrong_key_passphrase_is_named(farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "id_locked"
    shutil.copy(farm.board("farm-1").identity_file or "", key)
    key.chmod(0o600)
    subprocess.run(["ssh-keygen", "-p", "-q", "-N", "right-one", "-f", str(key)], check=True, capture_output=True)
    monkeypatch.setenv("EB_PASS", "wrong-one")
    board = dataclasses.replace(farm.board("farm-1"), identity_file=str(key), passphrase_env="EB_PASS")
    with pytest.raises(BoardUnreachable, match=r"the passphrase in \$EB_PASS does not open identity_file") as info:
        SSHDriver(board, connect_retries=1).activate()
    assert "wrong-one" not in str(info.value) and "export the right passphrase" in str(info.value)
    monkeypatch.setenv("EB_PASS", "right-one")  # the same key with the right passphrase connects
    d = SSHDriver(board, connect_retries=1)
    try:
        d.activate()
        assert d.connected
    finally:
        d.deactivate()


def test_host_key_hints_are_runnable_and_include_the_port(farm: Farm, tmp_path: Path) -> None:
    b = farm.board("farm-1")
    kh, boards = tmp_path / "known_hosts", tmp_path / "boards.toml"
    write_boards(boards, [dataclasses.replace(b, name="fresh", known_hosts=str(kh))])
    out = cli("boards", "check", "fresh", "--boards-file", str(boards))
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert f"ssh-keyscan -p {b.port} {b.host} >> {kh}" in out.stderr
    assert "`edgebench boards trust fresh`" in out.stderr
    scan = out.stderr.split("; or `")[1].split("`")[0]
    subprocess.run(scan, shell=True, check=True, capture_output=True)  # the hint, run as printed
    out = cli("boards", "check", "fresh", "--boards-file", str(boards))
    assert out.returncode == 0, out.stderr
    kh.unlink()
    out = cli("boards", "trust", "fresh", "--boards-file", str(boards))
    assert out.returncode == 0 and f"[{b.host}]:{b.port} ssh-ed25519" in kh.read_text()


def test_an_ssh_config_alias_records_the_key_under_the_real_host(
    farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = farm.board("farm-2")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(f"Host pi-alias\n  HostName {b.host}\n  Port {b.port}\n")
    env = {**os.environ, "HOME": str(home)}
    env.pop("SSH_AUTH_SOCK", None)
    kh, boards = tmp_path / "known_hosts", tmp_path / "boards.toml"
    args = ["--host", "pi-alias", "--identity-file", b.identity_file or "", "--python", b.python]
    args += ["--workdir", str(tmp_path / "wd"), "--known-hosts", str(kh), "--boards-file", str(boards)]
    out = cli("boards", "add", "aliased", *args, "--trust", env=env)
    assert out.returncode == 0, out.stderr
    assert kh.read_text().startswith(f"[{b.host}]:{b.port} ssh-ed25519 ")  # the name ssh checks, not the alias
    assert "pi-alias" not in kh.read_text()
    first = kh.read_text()
    out = cli("boards", "check", "aliased", "--boards-file", str(boards), env=env)
    assert out.returncode == 0, out.stderr
    # a changed key is named, and removed by the printed command, under that same name
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    kh.write_text(f"[{b.host}]:{b.port} " + " ".join(other.with_suffix(".pub").read_text().split()[:2]) + "\n")
    out = cli("boards", "check", "aliased", "--boards-file", str(boards), env=env)
    assert out.returncode == 1 and f"host key CHANGED for [{b.host}]:{b.port} " in out.stderr
    assert "pi-alias" not in out.stderr.split("delete its line")[0].split("CHANGED")[1]
    remove = out.stderr.split("delete its line with `")[1].split("`")[0]
    subprocess.run(remove, shell=True, check=True, capture_output=True)
    out = cli("boards", "trust", "aliased", "--boards-file", str(boards), env=env)
    assert out.returncode == 0, out.stderr
    assert kh.read_text() == first  # the board's own key again, under the same name


def test_a_board_python_below_the_agents_minimum_is_unfit(farm: Farm, tmp_path: Path) -> None:
    old = tmp_path / "python3.5"
    old.write_text(  # answers like a Python 3.5: its version, and a SyntaxError on the agent
        "#!/bin/sh\n"
        'case "$2" in *version_info*) echo 3.5.10; exit 0;; esac\n'
        'echo "SyntaxError: invalid syntax" >&2; exit 1\n'
    )
    old.chmod(0o755)
    boards = tmp_path / "boards.toml"
    write_boards(boards, [dataclasses.replace(farm.board("farm-1"), name="old-py", python=str(old))])
    out = cli("boards", "check", "old-py", "--boards-file", str(boards), "--json")
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: board 'old-py' is unfit: ")
    assert "is 3.5.10, older than the agent's minimum 3.6" in line and "Python >= 3.6" in line


def test_a_board_name_with_a_comma_is_refused(tmp_path: Path) -> None:
    boards = tmp_path / "boards.toml"
    boards.write_text("# mine\n")
    out = cli("boards", "add", "pi4,nano", "--host", "10.0.0.2", "--boards-file", str(boards))
    assert out.returncode == 1 and boards.read_text() == "# mine\n"
    (line,) = out.stderr.strip().splitlines()
    assert "may hold only letters, digits, '-', '_' and '.', not 'pi4,nano'" in line
    boards.write_text('[[boards]]\nname = "pi4,nano"\nhost = "h"\n')  # an inventory edited by hand
    out = cli("boards", "list", "--boards-file", str(boards))
    assert out.returncode == 1 and "'pi4,nano'" in out.stderr and len(out.stderr.splitlines()) == 1


def test_a_full_board_disk_names_free_space_and_need(farm: Farm, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs as the board's workdir needs root")
    wd = tmp_path / "tiny-disk"
    wd.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(wd)], check=True)
    try:
        big = tmp_path / "model.onnx"
        big.write_bytes(os.urandom(1_000_000))
        d = SSHDriver(dataclasses.replace(farm.board("farm-1"), workdir=str(wd)))
        try:
            with pytest.raises(RemoteError) as info:
                deploy(d, big)
        finally:
            d.deactivate()
        msg = str(info.value)
        assert "farm-1: 0.3 MB free in " + str(wd) + ", the upload needs 1.1 MB" in msg and "\n" not in msg
        assert "free space on the board" in msg
        assert not [p for p in wd.rglob("*") if p.is_file()]  # nothing half-written
    finally:
        subprocess.run(["umount", str(wd)], check=True)


def old_python(tmp_path: Path, *, lock_works: bool) -> Path:
    """A board interpreter that answers like a Python 3.5: its version, a SyntaxError on the agent.

    With ``lock_works`` the board lock (a small script any Python runs) is taken by the real
    interpreter, as on a real 3.5 board; without it the lock fails too.
    """
    old = tmp_path / "python3.5"
    real = f'*fcntl*) exec {sys.executable} "$@";; ' if lock_works else ""
    old.write_text(
        "#!/bin/sh\n"
        f'case "$2" in *version_info*) echo 3.5.10; exit 0;; {real}esac\n'
        'echo "SyntaxError: invalid syntax" >&2; exit 1\n'
    )
    old.chmod(0o755)
    return old


@pytest.mark.parametrize("lock_works", [True, False], ids=["agent-fails", "lock-fails"])
def test_run_on_a_board_python_below_the_agents_minimum_fails_it_in_one_line(
    farm: Farm, tmp_path: Path, lock_works: bool
) -> None:
    old = old_python(tmp_path, lock_works=lock_works)
    root = tmp_path / "variants"
    variant(root, "tiny", "fp32", onnx_model(tmp_path / "a.onnx"))
    boards = tmp_path / "boards.toml"
    write_boards(
        boards, [dataclasses.replace(farm.board("farm-1"), name="old-py", python=str(old)), farm.board("farm-2")]
    )
    cmd = ["run", "--boards-file", str(boards), "--boards", "old-py,farm-2", "--variants", str(root), "--repeats", "1"]
    cmd += ["--results", str(tmp_path / "results"), "--min-time", "0.05", "--min-rounds", "10", "--json"]
    out = cli(*cmd)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    run = json.loads(out.stdout)["run"]
    assert [b["params"]["board"] for b in run["benchmarks"]] == ["farm-2"]  # the other board was measured
    (failed,) = run["edgebench"]["failures"]
    msg = failed["error"]["message"]
    assert failed["board"] == "old-py" and failed["error"]["kind"] == "PythonTooOld", msg
    assert f"python '{old}' is 3.5.10, older than the agent's minimum {'.'.join(map(str, MIN_PYTHON))}" in msg
    assert "\n" not in msg and "SyntaxError" not in msg


@pytest.mark.parametrize(
    ("prints", "said"),
    [
        (rb"\211\377\376PNG\n", r"something that is not text (b'\x89\xff\xfePNG')"),
        (rb"pyenv: welcome\n", "unexpected text ('pyenv: welcome')"),
    ],
    ids=["binary", "text"],
)
def test_a_board_python_that_prints_junk_is_named_at_the_lock(
    farm: Farm, tmp_path: Path, prints: bytes, said: str
) -> None:
    junk = tmp_path / "python"
    junk.write_bytes(b"#!/bin/sh\nprintf '" + prints + b"'\n")
    junk.chmod(0o755)
    d = SSHDriver(dataclasses.replace(farm.board("farm-1"), name="junk-py", python=str(junk)), connect_retries=1)
    try:
        with pytest.raises(RemoteError) as info, d.lock(5):
            pass
    finally:
        d.deactivate()
    assert str(info.value) == (
        f"junk-py: the board's python '{junk}' printed {said} instead of the lock's answer: set python in "
        "boards.toml to a Python >= 3.6 that prints nothing of its own (`edgebench boards check junk-py`) "
        "(command: lock)"
    )


@pytest.mark.timeout(120)  # pytest-timeout raises in the test, so the finally below resumes the board
def test_a_hung_board_is_one_line_naming_it_the_step_and_the_fix(farm: Farm) -> None:
    board = dataclasses.replace(farm.board("farm-3"), connect_timeout=1)  # quick commands: 3 s
    d = SSHDriver(board, connect_retries=1)
    d.activate()
    sshd = psutil.Process(farm.member("farm-3").pid)
    hung = [sshd, *sshd.children(recursive=True)]  # the listener and this connection's session
    for p in hung:
        p.suspend()  # SIGSTOP
    try:
        with pytest.raises(BoardUnreachable) as info, d.lock(5):
            pass
    finally:
        for p in hung:
            with contextlib.suppress(psutil.Error):
                p.resume()  # SIGCONT
        d.deactivate()
    msg = str(info.value)
    assert msg.startswith(
        "farm-3: the board did not answer within 3 s while removing old interrupted uploads: check that it is up "
        "(`edgebench boards check farm-3`) (command: find "
    )
    assert "\n" not in msg and "Timeout opening channel" in info.value.output  # paramiko's words: the log
    assert SSHDriver(farm.board("farm-3"), connect_retries=1).exists("nothing") is False  # the board is back
