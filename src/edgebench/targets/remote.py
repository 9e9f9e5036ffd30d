"""What the SSH driver runs on a board: small shell and Python snippets (Python >= 3.8,
standard library only), plus the byte counter on the connection's socket."""

from __future__ import annotations

import shlex
import socket
from dataclasses import dataclass
from typing import Any

OOM_MARKER = "edgebench: killed by the kernel OOM killer"
# Reads the kernel's OOM-kill counter (Linux >= 4.13); empty where it does not exist.
OOM_COUNT = "sed -n 's/^oom_kill //p' /proc/vmstat 2>/dev/null"
PY_SHA256 = (
    "import hashlib,sys;h=hashlib.sha256();f=open(sys.argv[1],'rb');"
    "[h.update(b) for b in iter(lambda:f.read(1<<20),b'')];print(h.hexdigest())"
)
PY_KILL_SESSION = """\
import os,sys
s=int(sys.argv[1])
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            if os.getsid(int(d))==s:
                os.kill(int(d),9)
        except OSError:
            pass
"""
PY_LOCK = """\
import fcntl,sys,time
p,t,owner=sys.argv[1],float(sys.argv[2]),sys.argv[3]
f=open(p,'a+')
d=time.monotonic()+t
while True:
    try:
        fcntl.flock(f,fcntl.LOCK_EX|fcntl.LOCK_NB)
        break
    except OSError:
        if time.monotonic()>=d:
            f.seek(0)
            sys.stdout.write('busy '+f.read().strip()+'\\n')
            sys.stdout.flush()
            sys.exit(75)
        time.sleep(0.2)
f.seek(0)
f.truncate()
f.write(owner)
f.flush()
sys.stdout.write('locked\\n')
sys.stdout.flush()
sys.stdin.read()
"""


@dataclass
class TransferStats:
    """What a driver sent: payload bytes uploaded, files uploaded, bytes on the wire."""

    uploads: int = 0
    bytes_uploaded: int = 0
    skipped: int = 0
    wire_sent: int = 0
    wire_received: int = 0


class CountingSocket:
    """A socket that counts the bytes paramiko sends and receives through it."""

    def __init__(self, sock: socket.socket, stats: TransferStats) -> None:
        self._sock = sock
        self._stats = stats

    def send(self, data: bytes) -> int:
        n = self._sock.send(data)
        self._stats.wire_sent += n
        return n

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self._stats.wire_sent += len(data)

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        self._stats.wire_received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def hash_cmd(python: str, path: str) -> str:
    """A shell command printing the sha256 of ``path``: sha256sum, else the board's Python."""
    q = shlex.quote(path)
    return f"{{ sha256sum -- {q} 2>/dev/null || {shlex.quote(python)} -c {shlex.quote(PY_SHA256)} {q}; }} | cut -c1-64"
