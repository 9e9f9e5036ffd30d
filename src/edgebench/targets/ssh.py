"""`SSHDriver`: reach a board over SSH with Fabric.

One connection per driver, opened on first use and reused; host keys are verified
against known_hosts (unknown or changed keys are refused); every remote command is
built with `shlex.quote`; every remote path must lie inside the board's workdir.
Uploads go to a temporary name, are checked with sha256 on the board, then renamed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import os
import posixpath
import re
import shlex
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from edgebench.errors import (
    BoardBusy,
    BoardUnreachable,
    ConfigError,
    HostKeyRefused,
    JobTimeout,
    OutOfMemory,
    RemoteError,
)
from edgebench.fsutil import atomic_write, sha256_file
from edgebench.targets.board import Board
from edgebench.targets.driver import LOCK_FILE, CommandResult, Driver, check_python, lock_owner
from edgebench.targets.hostkeys import fingerprint, host_key_name, key_hints, known_hosts_path, no_banner, ssh_host
from edgebench.targets.remote import OOM_COUNT, OOM_MARKER, PY_KILL_AGENTS, PY_KILL_SESSION, PY_LOCK, hash_cmd

RUN_DIR = "run"
SPACE_MARGIN = 64 * 1024  # file-system blocks and the job file: an upload that fits exactly still fails
HOST_LOCK = ".edgebench/" + LOCK_FILE  # under the remote $HOME: one lock per board host, whatever the workdir
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ed25519")  # the ~/.ssh keys paramiko and ssh look for


class SSHDriver(Driver):
    """A board reached over SSH (Fabric), one connection reused for every call.

    ``board`` is the inventory entry until ``activate`` resolves a ``~/`` workdir against
    the remote home; no attribute opens a connection.

    Args:
        board: the board.
        connect_retries: connection attempts before giving up (connection-level errors only).
        backoff_s: first wait between attempts; doubles each time.
    """

    def __init__(self, board: Board, *, connect_retries: int = 3, backoff_s: float = 0.5) -> None:
        if board.host is None:
            raise ValueError("SSHDriver needs a board with a host")
        self.board = board
        self._resolved = board.workdir.startswith("/")
        self.connect_retries = max(1, connect_retries)
        self.backoff_s = backoff_s
        self._conn: Any = None
        self._dirs: set[str] = set()
        self._verified: set[tuple[str, str]] = set()
        self._running: set[str] = set()  # pid files of the jobs running now, for `cancel`
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"SSHDriver({self.board.name!r}, {self.board.user or ''}@{self.board.host}:{self.board.port})"

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        """True while the SSH transport is up."""
        return bool(self._conn is not None and self._conn.is_connected)

    def _secret(self, env_name: str | None, what: str) -> str | None:
        if env_name is None:
            return None
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(f"board {self.board.name!r}: {what}_env names ${env_name}, which is not set: export it")
        return value

    def _new_connection(self) -> Any:
        import fabric

        b = self.board
        kwargs: dict[str, Any] = {}
        if b.identity_file:
            kwargs["key_filename"] = [b.identity_file]
        password = self._secret(b.password_env, "password")
        if password is not None:
            kwargs["password"] = password
        passphrase = self._secret(b.passphrase_env, "passphrase")
        if passphrase is not None:
            kwargs["passphrase"] = passphrase
        timeout = int(max(1, b.connect_timeout))
        kwargs["banner_timeout"] = timeout  # a port that accepts TCP but never speaks SSH fails in this time
        gateway = None
        if b.jump_host:
            # the jump host is verified like the board itself: same known_hosts, same key, no auto-add
            gateway = fabric.Connection(b.jump_host, connect_timeout=timeout, connect_kwargs=dict(kwargs))
            self._use_keys(gateway)
            self._verify_host_keys(gateway)
        conn = fabric.Connection(
            b.host,
            user=b.user or getpass.getuser(),
            port=b.port,
            connect_kwargs=kwargs,
            connect_timeout=timeout,
            gateway=gateway,
        )
        self._use_keys(conn)
        if b.identity_file:
            self._check_passphrase(b.identity_file, passphrase)
        self._verify_host_keys(conn)
        return conn

    def _use_keys(self, conn: Any) -> None:
        """Give ``conn`` the key files ssh would use, each refused as ssh refuses it when others can read it.

        As in OpenSSH, the default keys (``~/.ssh/id_rsa``, ``id_ecdsa``, ``id_ed25519``) are used only
        when neither the board nor the ssh config names an IdentityFile (fabric has merged both into
        ``key_filename``); paramiko's own search (``look_for_keys``) is turned off so that no key is
        read without this check. Named files that do not exist are skipped, as ssh skips them.
        """
        named = [os.path.expanduser(k) for k in conn.connect_kwargs.get("key_filename") or []]
        found = named or [str(Path.home() / ".ssh" / k) for k in DEFAULT_KEYS]
        keys = [k for k in dict.fromkeys(found) if os.path.isfile(k)]
        for key in keys:
            st = os.stat(key)
            # OpenSSH's sshkey_perm_ok: a key the user owns with any group/other bit set is refused
            if st.st_uid == os.getuid() and st.st_mode & 0o077:
                mode = st.st_mode & 0o777
                raise BoardUnreachable(
                    self.board.name,
                    "ssh",
                    "",
                    f"private key {key} is {'readable' if mode & 0o044 else 'accessible'} by others "
                    f"(mode {mode:04o}): ssh refuses such keys (UNPROTECTED PRIVATE KEY FILE); "
                    f"run `chmod 600 {shlex.quote(key)}`",
                )
        conn.connect_kwargs["key_filename"] = keys
        conn.connect_kwargs["look_for_keys"] = False

    def _check_passphrase(self, path: str, passphrase: str | None) -> None:
        """Refuse a passphrase that does not open the board's identity_file, and a locked key with no way to open it."""
        import paramiko

        b = self.board
        try:
            paramiko.PKey.from_path(path, None if passphrase is None else passphrase.encode())
        except OSError:  # unreadable: the connection's own error says more
            return
        except Exception as exc:  # paramiko and cryptography raise SSHException, ValueError or TypeError here
            if passphrase is not None:
                raise BoardUnreachable(
                    b.name,
                    "ssh",
                    "",
                    f"the passphrase in ${b.passphrase_env} does not open identity_file {path} "
                    f"({type(exc).__name__}): export the right passphrase",
                ) from None
            locked = isinstance(exc, paramiko.PasswordRequiredException) or "password" in str(exc).lower()
            if locked and not os.environ.get("SSH_AUTH_SOCK"):
                raise BoardUnreachable(
                    b.name,
                    "ssh",
                    "",
                    f"identity_file {path} is protected by a passphrase: set passphrase_env in boards.toml to a "
                    "variable holding it, or load the key into ssh-agent",
                ) from None

    def _verify_host_keys(self, conn: Any) -> None:
        import paramiko

        conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())  # fabric's default would auto-add
        kh = known_hosts_path(self.board)
        if kh.is_file():
            conn.client.load_host_keys(str(kh))

    def activate(self) -> None:
        """Connect, resolve the workdir and prepare it (see `connect` and `prepare`)."""
        self.connect()
        self.prepare()

    def deactivate(self) -> None:
        """Close the connection."""
        _close_quietly(self._conn)
        self._conn = None

    def connect(self) -> None:
        """Open the connection (no-op when open), retrying connection-level failures with backoff.

        Raises:
            HostKeyRefused: unknown or changed host key (never retried).
            BoardUnreachable: the board cannot be reached or authentication failed.
        """
        if self.connected and self._resolved:
            return
        import paramiko

        b = self.board
        where = f"{b.user or getpass.getuser()}@{b.host}:{b.port}"
        last = ""
        for attempt in range(self.connect_retries):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            conn = None
            try:
                conn = self._new_connection()
                conn.open()
                conn.transport.channel_timeout = self.quick_s  # paramiko waits an hour for a hung board's channel
                self._conn = conn
                break
            except paramiko.BadHostKeyException as exc:
                _close_quietly(conn)
                raise HostKeyRefused(
                    b.name,
                    "ssh " + where,
                    "",
                    f"host key CHANGED for {host_key_name(ssh_host(b), b.port)} "
                    f"(known {fingerprint(exc.expected_key)}, "
                    f"offered {fingerprint(exc.key)}): refusing to connect; if the board was reinstalled, delete its "
                    f"line with `{key_hints(b)[0]}`, then run {key_hints(b)[1]}",
                ) from None
            except paramiko.AuthenticationException as exc:
                _close_quietly(conn)
                raise BoardUnreachable(
                    b.name,
                    "ssh " + where,
                    "",
                    f"authentication failed ({type(exc).__name__}): check user, identity_file or ssh-agent",
                ) from None
            except paramiko.SSHException as exc:
                spoke = _server_spoke(conn)  # before close, which drops the transport
                _close_quietly(conn)
                if "not found in known_hosts" in str(exc):
                    # paramiko names the server it checked: the board, or its jump host
                    server = str(exc).split("'")[1] if str(exc).count("'") >= 2 else host_key_name(ssh_host(b), b.port)
                    raise HostKeyRefused(
                        b.name,
                        "ssh " + where,
                        "",
                        f"host key of {server} is not in {known_hosts_path(b)}: "
                        f"refusing to connect; check it and run {key_hints(b)[1]}",
                    ) from None
                last = f"{type(exc).__name__}: {exc}"
                if "banner" in str(exc) or not spoke:
                    last = no_banner(ssh_host(b), b.port, max(1, b.connect_timeout))
            except (OSError, EOFError) as exc:
                _close_quietly(conn)
                last = f"{type(exc).__name__}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
        else:
            raise BoardUnreachable(
                b.name,
                "ssh " + where,
                "",
                f"unreachable: cannot connect to {where} after {self.connect_retries} attempt(s) ({last})",
            )
        self._dirs.clear()
        self._verified.clear()
        if not self._resolved:
            home = self._sh('printf %s "$HOME"', self.quick_s, "reading its home folder").stdout.strip()
            wd = self.board.workdir
            wd = home if wd == "~" else posixpath.join(home, wd[2:])
            self.board = dataclasses.replace(self.board, workdir=wd)
            self._resolved = True

    # -------------------------------------------------------------------- helpers

    def confine(self, remote: str) -> str:
        """``remote`` as an absolute path inside the workdir (connects to resolve a ``~/`` workdir).

        Raises:
            RemoteError: if the path leaves the workdir.
        """
        if not self._resolved:
            self.connect()
        wd = posixpath.normpath(self.board.workdir)
        path = posixpath.normpath(posixpath.join(wd, remote))
        if path != wd and not path.startswith(wd.rstrip("/") + "/"):
            raise RemoteError(
                self.board.name, f"path {remote}", "", f"remote path {remote!r} is outside the workdir {wd}"
            )
        return path

    @property
    def quick_s(self) -> float:
        """How long a quick command (printf, test, mkdir, df, rm) may take: 3 connect timeouts (30 s by default)."""
        return 3 * self.board.connect_timeout

    def _sh(self, script: str, timeout: float, what: str = "running a command", *, job: bool = False) -> CommandResult:
        """Run a shell script on the board; connection loss becomes `BoardUnreachable`.

        A board that does not answer within ``timeout`` is `BoardUnreachable` too, naming what was
        being done (``what``), except for a ``job``, whose caller says it ran past its timeout
        (invoke's ``CommandTimedOut``).
        """
        if not self.connected:
            self.connect()
        try:
            res = self._conn.run(script, hide=True, warn=True, in_stream=False, timeout=timeout)
        except Exception as exc:
            from invoke.exceptions import CommandTimedOut

            if isinstance(exc, CommandTimedOut) and job:
                raise
            raise self._unreachable(exc, script, timeout, what) from None
        if res.exited == -1 and not self.connected:  # the channel closed without an exit status
            self.deactivate()
            raise BoardUnreachable(self.board.name, script[:200], res.stderr, "connection lost during the command")
        return CommandResult(script, int(res.exited), res.stdout, res.stderr)

    def _unreachable(self, exc: Exception, command: str, timeout: float, what: str) -> BoardUnreachable:
        """Drop the connection; the error of a board that did not answer (hung: its sshd stopped, the
        machine frozen) or whose connection was lost. The raw text (invoke's, on several lines) stays
        in the error's output."""
        from invoke.exceptions import CommandTimedOut

        self.deactivate()
        b, command = self.board, " ".join(command[:200].split())  # one line, whatever the script
        if isinstance(exc, CommandTimedOut) or "Timeout opening channel" in str(exc):  # paramiko's words
            waited = timeout if isinstance(exc, CommandTimedOut) else self.quick_s
            return BoardUnreachable(
                b.name,
                command,
                str(exc),
                f"the board did not answer within {waited:g} s while {what}: check that it is up "
                f"(`edgebench boards check {b.name}`)",
            )
        return BoardUnreachable(b.name, command, "", f"connection lost ({type(exc).__name__}: {exc})")

    def _check(self, script: str, what: str, timeout: float = 60.0) -> CommandResult:
        res = self._sh(script, timeout, f"running {what}")
        if res.exit_code != 0:
            raise RemoteError(self.board.name, what, res.stderr or res.stdout, f"{what} failed (exit {res.exit_code})")
        return res

    def _mkdir(self, path: str) -> None:
        if path in self._dirs:
            return
        q = shlex.quote(path)
        res = self._sh(f"mkdir -p -- {q} && test -w {q}", self.quick_s, f"making the folder {path}")
        if res.exit_code != 0:
            detail = (res.stderr.strip().splitlines() or ["not writable"])[-1]
            raise RemoteError(
                self.board.name,
                f"mkdir -p {path}",
                res.stderr,
                f"workdir folder {path} is not writable on the board ({detail}): set another workdir in boards.toml "
                "or fix its permissions",
            )
        self._dirs.add(path)

    def prepare(self) -> None:
        """Create the workdir, check that it is writable, and drop uploads interrupted over an hour ago."""
        wd = self.confine(".")
        self._mkdir(wd)
        script = f"find {shlex.quote(wd)}/cache -name '.upload.*.tmp' -mmin +60 -delete 2>/dev/null; true"
        self._sh(script, self.quick_s, "removing old interrupted uploads")

    # ---------------------------------------------------------------- the protocol

    def put(self, local: Path, remote: str, sha256: str | None = None) -> None:
        """Upload to a temporary name, verify the sha256 on the board, then rename."""
        dest = self.confine(remote)
        digest = sha256 or sha256_file(local)
        folder, name = posixpath.split(dest)
        self._mkdir(self.confine("."))
        self._mkdir(folder)
        tmp = posixpath.join(folder, f".upload.{uuid.uuid4().hex[:12]}.tmp")  # short: names can be near NAME_MAX
        size = local.stat().st_size
        self._check_space(folder, size)
        try:
            self._conn.sftp().put(str(local), tmp, confirm=True)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self._sh(f"rm -f -- {shlex.quote(tmp)}", self.quick_s, "removing a failed upload")
            self._check_space(folder, size)  # a disk that filled up meanwhile (sftp says only "size mismatch")
            raise RemoteError(
                self.board.name, f"put {local.name}", "", f"upload failed ({type(exc).__name__}: {exc})"
            ) from None
        qt, qd = shlex.quote(tmp), shlex.quote(dest)
        script = (
            f"h=$({hash_cmd(self.board.python, tmp)}); "
            f'if [ "$h" = {shlex.quote(digest)} ]; then mv -f -- {qt} {qd}; '
            f'else rm -f -- {qt}; echo "sha256 mismatch: got $h" >&2; exit 3; fi'
        )
        self._check(script, f"verify+rename {name}")
        self._verified.add((dest, digest))

    def _check_space(self, folder: str, size: int) -> None:
        """Refuse an upload that does not fit in the free space of ``folder``'s file system.

        Raises:
            RemoteError: naming the free space, the workdir and what the upload needs.
        """
        res = self._sh(
            f"df -Pk -- {shlex.quote(folder)} 2>/dev/null | tail -n 1",
            self.quick_s,
            f"reading the free space of {folder}",
        )
        free = free_bytes(res.stdout)
        if free is not None and free < size + SPACE_MARGIN:
            raise RemoteError(
                self.board.name,
                f"df -Pk {folder}",
                res.stdout,
                f"{megabytes(free)} free in {self.board.workdir}, the upload needs {megabytes(size + SPACE_MARGIN)}: "
                "free space on the board (old files are in its cache/ folder) or set another workdir in boards.toml",
            )

    def sha256(self, remote: str) -> str | None:
        """The sha256 of a file on the board, or ``None`` if there is none."""
        path = self.confine(remote)
        q = shlex.quote(path)
        res = self._sh(f"if [ -f {q} ]; then {hash_cmd(self.board.python, path)}; fi", 120, f"hashing {path}")
        out = res.stdout.strip()
        return out if len(out) == 64 else None

    def has(self, remote: str, sha256: str) -> bool:
        """True if ``remote`` holds content with this sha256 (checked once per connection)."""
        path = self.confine(remote)
        if (path, sha256) in self._verified and self.connected:
            return True
        ok = self.sha256(path) == sha256
        if ok:
            self._verified.add((path, sha256))
        return ok

    def exists(self, remote: str) -> bool:
        """True if ``remote`` is a file on the board."""
        path = self.confine(remote)
        return self._sh(f"test -f {shlex.quote(path)}", self.quick_s, f"looking for {path}").exit_code == 0

    def get(self, remote: str, local: Path) -> None:
        """Download to a temporary name beside ``local``, then rename."""
        path = self.confine(remote)
        self.connect()
        try:
            with atomic_write(local) as tmp:
                self._conn.sftp().get(path, str(tmp))
        except Exception as exc:
            raise RemoteError(
                self.board.name, f"get {remote}", "", f"download failed ({type(exc).__name__}: {exc})"
            ) from None

    def run(self, argv: Sequence[str], timeout: float) -> CommandResult:
        """Run ``argv`` in the workdir; after ``timeout`` s the process group is killed on the board.

        Raises:
            JobTimeout: the command ran past ``timeout`` (it was killed on the board).
            OutOfMemory: the kernel OOM killer killed it.
            BoardUnreachable: the connection was lost.
        """
        b = self.board
        command = shlex.join(argv)
        wd = self.confine(".")
        self._mkdir(self.confine(RUN_DIR))
        job = uuid.uuid4().hex
        pidfile = self.confine(posixpath.join(RUN_DIR, f"{job}.pid"))
        prefix = ["taskset", "-c", ",".join(str(c) for c in b.cpu_affinity)] if b.cpu_affinity else []
        qp = shlex.quote(pidfile)
        cmd = shlex.join([*prefix, *argv])
        backstop = int(timeout + min(30.0, max(2.0, timeout / 2))) + 1
        # the board's env goes in a file the shell reads and deletes, never on a command line (ps shows those)
        env = f". {shlex.quote(self._env_file(job))} || exit 125; " if b.env else ""
        script = (
            f"cd {shlex.quote(wd)} || exit 125; echo $$ > {qp}; {env}o1=$({OOM_COUNT}); "
            # a safety net on the board: if this connection dies, `timeout` still kills the job later
            f"if command -v timeout >/dev/null 2>&1; then timeout -s KILL {backstop} {cmd}; else {cmd}; fi; "
            f"rc=$?; rm -f -- {qp}; "
            f'if [ $rc -eq 137 ] && [ -n "$o1" ] && [ "$o1" != "$({OOM_COUNT})" ]; '
            f"then echo {shlex.quote(OOM_MARKER)} >&2; fi; "
            "exit $rc"
        )
        from invoke.exceptions import CommandTimedOut

        t0 = time.monotonic()
        with self._guard:
            self._running.add(pidfile)
        try:
            res = self._sh(script, timeout, "running the job", job=True)
        except CommandTimedOut as exc:
            tail = (exc.result.stderr or exc.result.stdout or "") if exc.result is not None else ""
            self.kill_job(pidfile)
            raise JobTimeout(b.name, command, tail, f"job ran past {timeout:g} s and was killed on the board") from None
        finally:
            with self._guard:
                self._running.discard(pidfile)
        if res.exit_code == 137 and OOM_MARKER in res.stderr:
            raise OutOfMemory(b.name, command, res.stderr, "out of memory: the kernel OOM killer killed the job")
        if res.exit_code in (137, -1) and time.monotonic() - t0 >= timeout:
            # invoke's timer closed the channel without raising (exit -1), or on a loaded host the
            # on-board backstop killed the job first (137): either way the job ran past its timeout
            self.kill_job(pidfile)
            raise JobTimeout(b.name, command, res.stderr, f"job ran past {timeout:g} s and was killed on the board")
        return CommandResult(command, res.exit_code, res.stdout, res.stderr)

    def _env_file(self, job: str) -> str:
        """Upload the board's env as a shell file (mode 0600) the job sources and deletes; its path."""
        bad = [k for k in self.board.env if not ENV_NAME.match(k)]
        if bad:
            raise ConfigError(f"board {self.board.name!r}: env names {bad} are not variable names: fix boards.toml")
        body = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in self.board.env.items())
        body += f"rm -f -- {shlex.quote(self.confine(posixpath.join(RUN_DIR, job + '.env')))}\n"
        remote = self.confine(posixpath.join(RUN_DIR, f"{job}.env"))
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "env"
            local.write_text(body)
            local.chmod(0o600)
            try:
                sftp = self._conn.sftp()
                sftp.put(str(local), remote)
                sftp.chmod(remote, 0o600)
            except Exception as exc:
                raise RemoteError(
                    self.board.name, "put env", "", f"upload of the job's env failed ({type(exc).__name__}: {exc})"
                ) from None
        return remote

    def cancel(self) -> None:
        """Kill the jobs running now (their process groups and sessions on the board), from another thread."""
        with self._guard:
            running = list(self._running)
        for pidfile in running:
            self.kill_job(pidfile)

    def kill_agents(self) -> list[str]:
        """Kill the agents running from this workdir on the board (left by a run whose host died)."""
        wd = self.confine(".")
        res = self._sh(shlex.join([self.board.python, "-c", PY_KILL_AGENTS, wd]), 60, "looking for agents left running")
        return [ln for ln in res.stdout.splitlines() if ln.strip()] if res.exit_code == 0 else []

    def kill_job(self, pidfile: str) -> None:
        """Kill the job recorded in ``pidfile``: its process group, then anything left in its session
        (``timeout`` and some runtimes start their own process groups)."""
        q = shlex.quote(pidfile)
        script = (
            f'p=$(cat {q} 2>/dev/null); if [ -n "$p" ]; then kill -KILL -- -$p 2>/dev/null; '
            f'{shlex.quote(self.board.python)} -c {shlex.quote(PY_KILL_SESSION)} "$p" 2>/dev/null; fi; '
            f"rm -f -- {q}"
        )
        with contextlib.suppress(RemoteError):
            self._sh(script, self.quick_s, "stopping a job")

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """Hold ``~/.edgebench/board.lock`` of the board's user: one lock per board host, so two
        inventory entries for one host (other workdirs) never measure at once. A flock held by
        a process on the board for as long as this connection lives, so a crashed run never
        leaves a stale lock; the file names its holder (host, pid, start time, run id).

        Raises:
            BoardBusy: another run held the lock for ``timeout`` seconds.
        """
        self.activate()
        b = self.board
        home = self._sh('printf %s "$HOME"', self.quick_s, "reading its home folder").stdout.strip()
        home = home or self.confine(".")
        path = posixpath.join(home, HOST_LOCK)
        cmd = shlex.join([b.python, "-c", PY_LOCK, path, f"{timeout:g}", lock_owner()])
        try:
            chan = self._conn.transport.open_session(timeout=self.quick_s)
        except Exception as exc:
            raise self._unreachable(exc, "lock", self.quick_s, "taking the board lock") from None
        try:
            chan.settimeout(timeout + max(30.0, b.connect_timeout))
            chan.exec_command(cmd)
            raw = chan.makefile("rb").readline().strip()  # bytes: a python that prints junk is said, not decoded
        except Exception as exc:
            chan.close()
            raise RemoteError(
                b.name, "lock", "", f"could not take the board lock ({type(exc).__name__}: {exc})"
            ) from None
        line = raw.decode(errors="replace")
        if line != "locked" and not line.startswith("busy") and raw:
            chan.close()
            try:
                what = f"unexpected text ({raw.decode()[:80]!r})"
            except UnicodeDecodeError:
                what = f"something that is not text ({raw[:80]!r})"
            raise RemoteError(
                b.name,
                "lock",
                line,
                f"the board's python {b.python!r} printed {what} instead of the lock's answer: set python in "
                f"boards.toml to a Python >= 3.6 that prints nothing of its own (`edgebench boards check {b.name}`)",
            )
        if line != "locked":
            err = chan.makefile_stderr("r").read().decode(errors="replace") if not line else ""
            chan.close()
            if line.startswith("busy"):
                raise BoardBusy(
                    b.name,
                    "flock board.lock",
                    line,
                    f"board busy: held by {line[5:] or 'another run'} (waited {timeout:g} s)",
                )
            check_python(self)  # the lock is the first Python a run starts on the board
            raise RemoteError(
                b.name, "lock", err, f"could not take the board lock: is python {b.python!r} on the board?"
            )
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                chan.shutdown_write()
                chan.status_event.wait(10)
            chan.close()


def _server_spoke(conn: Any) -> bool:
    """True if the server sent an SSH banner (paramiko fails with "No existing session" or
    "Error reading SSH protocol banner" on a port whose service never speaks SSH)."""
    transport = getattr(getattr(conn, "client", None), "_transport", None)
    return transport is None or bool(getattr(transport, "remote_version", "x"))


def free_bytes(df_line: str) -> int | None:
    """Available bytes from the last line of POSIX ``df -Pk`` (None if it cannot be read)."""
    fields = df_line.split()
    try:
        return int(fields[3]) * 1024
    except (IndexError, ValueError):
        return None


def megabytes(n: int) -> str:
    """``n`` bytes as MB, with a decimal under 10 MB so small sizes do not read as 0."""
    mb = n / 1e6
    return f"{mb:.1f} MB" if mb < 10 else f"{mb:.0f} MB"


def _close_quietly(conn: Any) -> None:
    if conn is None:
        return
    with contextlib.suppress(Exception):
        conn.close()
