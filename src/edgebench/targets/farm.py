"""The board farm: N real OpenSSH ``sshd`` servers on 127.0.0.x that act as boards.

Each board gets its own host key, user key, workdir and sshd, and a line in a ready
``boards.toml``. As root with cgroups (v2: ``/sys/fs/cgroup/edgebench-farm/<board>``;
v1: ``/sys/fs/cgroup/cpu`` and ``/memory``; see `cgroups`) each sshd — and so every
session and agent it starts — runs in its own cgroup with a CPU quota and a memory
limit, so boards really differ in speed and memory. The board's ``python`` is this
interpreter (it has the runtimes).

``edgebench farm up`` / ``farm down`` and the test fixtures use this same code.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgebench.errors import FarmError
from edgebench.fsutil import write_json_atomic
from edgebench.targets import cgroups
from edgebench.targets.board import Board
from edgebench.targets.boards_file import write_boards
from edgebench.targets.cgroups import cgroup_support
from edgebench.targets.inventory import load_inventory

STATE = "farm.json"

#: profile -> (CPU cores, memory MiB); None means unlimited.
PROFILES: dict[str, tuple[float | None, int | None]] = {
    "full": (None, None),
    "pi-like": (0.5, 512),
    "mid": (1.0, 1024),
    "tiny": (0.25, 384),
}
PROFILE_ORDER = ("full", "pi-like", "mid", "tiny")

_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class FarmBoard:
    """One farm board: its sshd, keys, limits and cgroups."""

    name: str
    profile: str
    address: str
    port: int
    dir: str
    cpu_cores: float | None
    memory_mb: int | None
    cgroups: list[str] = field(default_factory=list)
    pid: int | None = None


@dataclass
class Farm:
    """A running farm, as recorded in ``<root>/farm.json``."""

    root: Path
    boards_file: Path
    known_hosts: Path
    members: list[FarmBoard]
    limits: bool
    limits_note: str
    python: str = sys.executable
    runtimes: tuple[str, ...] = ("onnxruntime",)

    def board(self, name: str) -> Board:
        """The inventory entry of the farm board ``name``."""
        return load_inventory(self.boards_file)[name]

    @property
    def boards(self) -> list[Board]:
        """Every farm board's inventory entry, in order."""
        inv = load_inventory(self.boards_file)
        return [inv[m.name] for m in self.members]

    def member(self, name: str) -> FarmBoard:
        """The farm record of board ``name``."""
        for m in self.members:
            if m.name == name:
                return m
        raise FarmError(f"no farm board {name!r}: the farm has {', '.join(m.name for m in self.members)}")

    def by_profile(self, profile: str) -> Board:
        """The first board with this profile."""
        for m in self.members:
            if m.profile == profile:
                return self.board(m.name)
        raise FarmError(f"the farm has no {profile!r} board")

    def kill_board(self, name: str) -> None:
        """Kill a board's sshd and every session it started (the board goes dark)."""
        _stop_member(self.member(name), remove_cgroups=False)
        self.save()

    def restart_board(self, name: str) -> None:
        """Start a killed board's sshd again (same address, port and keys)."""
        m = self.member(name)
        _stop_member(m, remove_cgroups=False)
        _start_sshd(m)
        self.save()

    def down(self) -> None:
        """Stop every sshd, kill their sessions, remove cgroups and the farm folder."""
        farm_down(self.root)

    def save(self) -> None:
        """Record the farm's state."""
        write_json_atomic(
            self.root / STATE,
            {
                "boards_file": str(self.boards_file),
                "known_hosts": str(self.known_hosts),
                "limits": self.limits,
                "limits_note": self.limits_note,
                "python": self.python,
                "runtimes": list(self.runtimes),
                "members": [m.__dict__ for m in self.members],
            },
        )


def default_root() -> Path:
    """Where ``edgebench farm up`` keeps its state by default."""
    return Path.home() / ".cache" / "edgebench" / "farm"


def find_sshd() -> str | None:
    """The OpenSSH server binary, or ``None``."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/usr/local/sbin:/sbin"
    return shutil.which("sshd", path=path)


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _sshd_config(m: FarmBoard) -> str:
    d = Path(m.dir)
    return "\n".join(
        [
            f"ListenAddress {m.address}:{m.port}",
            f"HostKey {d / 'ssh_host_ed25519_key'}",
            f"PidFile {d / 'sshd.pid'}",
            f"AuthorizedKeysFile {d / 'authorized_keys'}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {getpass.getuser()}",
            "MaxStartups 64:30:128",
            "MaxSessions 64",
            "UseDNS no",
            "PrintMotd no",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
            # Each board has its own home, like a separate machine. It also keeps this host's
            # shell start-up files out of board sessions: bash sources ~/.bashrc under sshd, and
            # a session killed mid-`pyenv rehash` there left a stale lock that stalled every
            # later session for 60 s.
            f"SetEnv HOME={d}",
            "",
        ]
    )


def _wait_ready(m: FarmBoard, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (Path(m.dir) / "sshd.log").read_text(errors="replace")[-1000:]
            raise FarmError(f"sshd for farm board {m.name} exited with {proc.returncode}: {log.strip()}")
        with contextlib.suppress(OSError), socket.create_connection((m.address, m.port), timeout=1) as s:
            s.settimeout(1)
            if s.recv(4) == b"SSH-":
                return
        time.sleep(0.05)
    raise FarmError(f"sshd for farm board {m.name} did not answer on {m.address}:{m.port} within {timeout:g} s")


def _start_sshd(m: FarmBoard) -> None:
    sshd = find_sshd()
    if sshd is None:
        raise FarmError("OpenSSH sshd is not installed: install it (apt-get install openssh-server) and retry")
    d = Path(m.dir)
    argv = [sshd, "-D", "-f", str(d / "sshd_config"), "-E", str(d / "sshd.log")]
    if m.cgroups:
        # The shell joins the board's cgroups, then becomes sshd: every session and agent inherits them.
        joins = " && ".join(f'echo $$ > "${i + 1}"' for i in range(len(m.cgroups)))
        argv = [
            "sh",
            "-c",
            f'{joins} && shift {len(m.cgroups)} && exec "$@"',
            "sh",
            *(str(Path(c) / "cgroup.procs") for c in m.cgroups),
            *argv,
        ]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    _children[proc.pid] = proc
    m.pid = proc.pid
    _wait_ready(m, proc)


def _pids_of(m: FarmBoard) -> set[int]:
    """sshd, its descendants (sessions, agents) and whatever is in the board's cgroups."""
    import psutil  # type: ignore[import-untyped]

    pids: set[int] = set()
    if m.pid is not None:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(m.pid)
            pids.add(p.pid)
            pids.update(c.pid for c in p.children(recursive=True))
    for cg in m.cgroups:
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(x) for x in (Path(cg) / "cgroup.procs").read_text().split())
    pids.discard(os.getpid())
    return pids


def _stop_member(m: FarmBoard, *, remove_cgroups: bool) -> None:
    for _ in range(50):
        pids = _pids_of(m)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(_children):
            if pid in pids:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    _children.pop(pid).wait(timeout=2)
        time.sleep(0.05)
    m.pid = None
    if remove_cgroups:
        cgroups.remove_cgroups(m.cgroups)
        m.cgroups = []


def _tflite_available() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tflite_runtime"))


def farm_up(
    root: Path | None = None,
    n: int = 3,
    *,
    profiles: list[str] | None = None,
    limits: bool = True,
    python: str | None = None,
) -> Farm:
    """Start ``n`` sshd boards on 127.0.0.x and write ``<root>/boards.toml``.

    Args:
        root: state folder (keys, workdirs, logs, boards file); default `default_root`.
        n: number of boards (ignored when ``profiles`` is given).
        profiles: profile per board (see `PROFILES`); default cycles full, pi-like, mid, tiny.
        limits: apply CPU/memory limits when cgroups allow it.
        python: the boards' interpreter; default this one.

    Raises:
        FarmError: sshd missing, a farm already running there, or an sshd failed to start.
    """
    root = (root or default_root()).absolute()
    if (root / STATE).exists():
        raise FarmError(f"a farm is already recorded in {root}: run `edgebench farm down --dir {root}` first")
    if find_sshd() is None:
        raise FarmError("OpenSSH sshd is not installed: install it (apt-get install openssh-server) and retry")
    if shutil.which("ssh-keygen") is None:
        raise FarmError("ssh-keygen is not installed: install openssh-client and retry")
    profiles = profiles or [PROFILE_ORDER[i % len(PROFILE_ORDER)] for i in range(n)]
    for p in profiles:
        if p not in PROFILES:
            raise FarmError(f"unknown farm profile {p!r}: use one of {', '.join(PROFILES)}")
    can_limit, note = cgroup_support()
    use_limits = limits and can_limit
    if not limits:
        note = "limits switched off (--no-limits): boards run unlimited"
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    root.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:8]
    members: list[FarmBoard] = []
    for i, profile in enumerate(profiles):
        cores, mem = PROFILES[profile] if use_limits else (None, None)
        name = f"farm-{i + 1}"
        members.append(FarmBoard(name, profile, f"127.0.0.{11 + i}", 0, str(root / name), cores, mem))
    farm = Farm(
        root,
        root / "boards.toml",
        root / "known_hosts",
        members,
        use_limits,
        note,
        python or sys.executable,
        ("onnxruntime", "tflite") if _tflite_available() else ("onnxruntime",),
    )
    try:
        known: list[str] = []
        for m in members:
            d = Path(m.dir)
            (d / "work").mkdir(parents=True, exist_ok=True)
            _keygen(d / "ssh_host_ed25519_key", f"edgebench-farm-host-{m.name}")
            _keygen(d / "id_ed25519", f"edgebench-farm-user-{m.name}")
            shutil.copyfile(d / "id_ed25519.pub", d / "authorized_keys")
            m.port = _free_port(m.address)
            (d / "sshd_config").write_text(_sshd_config(m))
            host_pub = (d / "ssh_host_ed25519_key.pub").read_text().split()
            known.append(f"[{m.address}]:{m.port} {host_pub[0]} {host_pub[1]}")
            if use_limits:
                m.cgroups = cgroups.make_cgroups(f"edgebench-farm-{tag}-{m.name}", m.cpu_cores, m.memory_mb)
        farm.known_hosts.write_text("\n".join(known) + "\n")
        write_boards(
            farm.boards_file,
            [_board_entry(farm, m) for m in members],
            header="# written by `edgebench farm up`; removed by `edgebench farm down`\n\n",
        )
        farm.save()
        for m in members:
            _start_sshd(m)
        farm.save()
    except BaseException:
        for m in members:
            _stop_member(m, remove_cgroups=True)
        shutil.rmtree(root, ignore_errors=True)
        raise
    return farm


def _board_entry(farm: Farm, m: FarmBoard) -> Board:
    tags = {"farm": "loopback", "profile": m.profile}
    if m.cpu_cores is not None:
        tags["cpu_cores"] = f"{m.cpu_cores:g}"
    if m.memory_mb is not None:
        tags["memory_mb"] = str(m.memory_mb)
    return Board(
        name=m.name,
        host=m.address,
        port=m.port,
        user=getpass.getuser(),
        python=farm.python,
        workdir=str(Path(m.dir) / "work"),
        runtimes=farm.runtimes,
        tags=tags,
        identity_file=str(Path(m.dir) / "id_ed25519"),
        known_hosts=str(farm.known_hosts),
        connect_timeout=5.0,
        threads=1,  # one inference thread, so a board's CPU quota is what sets its speed
    )


def load_farm(root: Path | None = None) -> Farm:
    """The farm recorded in ``root``.

    Raises:
        FarmError: if no farm is recorded there.
    """
    root = (root or default_root()).absolute()
    try:
        raw: dict[str, Any] = json.loads((root / STATE).read_text())
    except (OSError, ValueError):
        raise FarmError(f"no farm is recorded in {root}: start one with `edgebench farm up --dir {root}`") from None
    return Farm(
        root,
        Path(raw["boards_file"]),
        Path(raw["known_hosts"]),
        [FarmBoard(**m) for m in raw["members"]],
        bool(raw["limits"]),
        str(raw["limits_note"]),
        str(raw["python"]),
        tuple(raw["runtimes"]),
    )


def farm_down(root: Path | None = None) -> list[str]:
    """Stop the farm in ``root``: kill sshd and sessions, remove cgroups and the folder.

    Returns:
        The names of the boards that were stopped.

    Raises:
        FarmError: if no farm is recorded there.
    """
    root = (root or default_root()).absolute()
    state = root / STATE
    if not state.exists():
        raise FarmError(f"no farm is recorded in {root}: nothing to stop")
    farm = load_farm(root)
    for m in farm.members:
        _stop_member(m, remove_cgroups=True)
    shutil.rmtree(root, ignore_errors=True)
    return [m.name for m in farm.members]
