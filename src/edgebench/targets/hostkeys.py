"""Host keys: fetch a board's key, show its fingerprint, record it in known_hosts."""

from __future__ import annotations

import base64
import hashlib
import logging
import shlex
import socket
from pathlib import Path
from typing import Any

from edgebench.errors import BoardUnreachable, UserError
from edgebench.fsutil import write_text_atomic
from edgebench.targets.board import Board

# paramiko logs its transport thread's tracebacks at ERROR; with no handler configured Python
# prints them on stderr (44 lines for one unreachable board). Our errors say it in one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def default_known_hosts() -> Path:
    """The user's known_hosts file."""
    return Path.home() / ".ssh" / "known_hosts"


def known_hosts_path(board: Board) -> Path:
    """The known_hosts file that verifies ``board``."""
    return Path(board.known_hosts) if board.known_hosts else default_known_hosts()


def host_key_name(host: str, port: int) -> str:
    """The name OpenSSH and paramiko file a host key under (``[host]:port`` off port 22)."""
    return host if port == 22 else f"[{host}]:{port}"


def ssh_host(board: Board) -> str:
    """The name ssh connects to and checks in known_hosts: the ssh config's HostName for an alias.

    Resolved by fabric, exactly as `SSHDriver` connects (``~/.ssh/config`` and the system
    config), so that a key is recorded under the very name the connection later checks.
    """
    import fabric

    return str(fabric.Connection(board.host or "", port=board.port).host)


def key_hints(board: Board) -> tuple[str, str]:
    """Runnable commands to remove a board's recorded host key and to record its current one."""
    host = ssh_host(board)
    kh = known_hosts_path(board)
    remove = f"ssh-keygen -R {shlex.quote(host_key_name(host, board.port))} -f {shlex.quote(str(kh))}"
    scan = f"ssh-keyscan -p {board.port} {shlex.quote(host)} >> {shlex.quote(str(kh))}"
    return remove, f"`edgebench boards trust {board.name}` (what `boards add --trust` does; or `{scan}`)"


def fingerprint(key: Any) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a paramiko key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def fetch_host_key(host: str, port: int, timeout: float = 10.0) -> Any:
    """The host key a server offers (no authentication is attempted).

    Raises:
        BoardUnreachable: if the server cannot be reached.
    """
    import paramiko

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise BoardUnreachable(host, "ssh-keyscan", "", f"cannot connect to {host}:{port} ({exc})") from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if "banner" in str(exc) or not transport.remote_version:  # TCP answered, SSH never did
            raise BoardUnreachable(host, "ssh-keyscan", "", no_banner(host, port, timeout)) from None
        raise BoardUnreachable(host, "ssh-keyscan", "", f"no SSH server answered on {host}:{port} ({exc})") from None
    finally:
        transport.close()


def no_banner(host: str, port: int, timeout: float) -> str:
    """The message for a server that accepts TCP but never says it is SSH."""
    return (
        f"{host} answers on port {port} but not as an SSH server within {timeout:g} s: "
        "check the port, or that sshd (not another service) listens there"
    )


def trust_host_key(board: Board, timeout: float = 10.0) -> tuple[str, bool]:
    """Record the board's current host key in its known_hosts file.

    Returns:
        (fingerprint, newly_added).

    Raises:
        UserError: if known_hosts already holds a *different* key for the board.
    """
    import paramiko

    assert board.host is not None
    host = ssh_host(board)  # ssh checks the key under the ssh config's HostName, not the alias
    key = fetch_host_key(host, board.port, min(timeout, board.connect_timeout))
    fp = fingerprint(key)
    path = known_hosts_path(board)
    name = host_key_name(host, board.port)
    keys = paramiko.HostKeys()
    if path.is_file():
        keys.load(str(path))
    known = keys.lookup(name) or {}
    if key.get_name() in known:
        old = known[key.get_name()]
        if old.asbytes() == key.asbytes():
            return fp, False
        remove, add = key_hints(board)
        raise UserError(
            f"board {board.name!r}: host key for {name} CHANGED (known {fingerprint(old)}, offered {fp}) in {path}: "
            f"if the board was really reinstalled, delete its line with `{remove}`, then run {add}"
        )
    old_text = path.read_text() if path.is_file() else ""
    if old_text and not old_text.endswith("\n"):
        old_text += "\n"
    # keep the user's lines and comments; append ours
    write_text_atomic(path, old_text + f"{name} {key.get_name()} {key.get_base64()}\n", mode=0o600)
    return fp, True
