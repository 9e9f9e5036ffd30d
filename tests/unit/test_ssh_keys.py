"""Which private key files an SSH connection uses, and the OpenSSH permission check on each (no sockets)."""

from __future__ import annotations

from pathlib import Path

import fabric
import pytest

from edgebench.errors import BoardUnreachable
from edgebench.targets.board import Board
from edgebench.targets.ssh import SSHDriver


def keys_for(home: Path, identity_file: str | None = None) -> list[str]:
    """The key files `SSHDriver` gives a connection to 127.0.0.9 (paramiko's own search off)."""
    conn = fabric.Connection("127.0.0.9", connect_kwargs={"key_filename": [identity_file]} if identity_file else {})
    SSHDriver(Board(name="b", host="127.0.0.9", workdir="/tmp/w", identity_file=identity_file))._use_keys(conn)
    assert conn.connect_kwargs["look_for_keys"] is False
    return list(conn.connect_kwargs["key_filename"])


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def key(path: Path, mode: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not parsed here\n")
    path.chmod(mode)
    return path


def test_default_keys_are_used_only_when_none_is_named_and_each_is_checked(home: Path) -> None:
    assert keys_for(home) == []  # no key files at all: the agent or a password may still work
    ed = key(home / ".ssh" / "id_ed25519", 0o600)
    rsa = key(home / ".ssh" / "id_rsa", 0o600)
    assert keys_for(home) == [str(rsa), str(ed)]  # paramiko's order
    named = key(home / "k" / "board", 0o600)
    assert keys_for(home, str(named)) == [str(named)]  # a named key replaces the defaults, as in ssh
    rsa.chmod(0o604)
    with pytest.raises(BoardUnreachable, match=r"private key .*id_rsa is readable by others \(mode 0604\)"):
        keys_for(home)
    assert keys_for(home, str(named)) == [str(named)]  # a default key that is not used is not refused


def test_an_ssh_config_identity_file_is_checked_and_a_missing_one_skipped(home: Path) -> None:
    key(home / ".ssh" / "id_ed25519", 0o600)
    cfg = key(home / "keys" / "cfg", 0o620)
    (home / ".ssh" / "config").write_text("Host *\n  IdentityFile ~/keys/cfg\n  IdentityFile ~/keys/gone\n")
    with pytest.raises(BoardUnreachable) as info:
        keys_for(home)
    assert f"private key {cfg} is accessible by others (mode 0620)" in str(info.value)
    assert f"run `chmod 600 {cfg}`" in str(info.value) and "\n" not in str(info.value)
    cfg.chmod(0o400)
    assert keys_for(home) == [str(cfg)]  # ~ expanded, the missing file skipped, the default keys not added
