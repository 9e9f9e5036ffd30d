"""Shared board pools through labgrid: reserve by tags, wait in line, acquire, read the network resource, release.

A lab runs a labgrid coordinator; exporters on the lab's hosts export each board's
``NetworkService`` (address, port, user); a *place* groups a board's resources and carries
tags (``board=rpi4``). A *pool* is edgebench's name for "the places of this coordinator whose
tags match this filter", declared with the defaults its boards share::

    [pools.rpi4]
    coordinator = "lab.example.com:20408"   # or $LG_COORDINATOR
    tags = { board = "rpi4" }
    user = "pi"                             # default: the NetworkService's username
    identity_file = "~/.ssh/id_ed25519"
    python = "/usr/bin/python3"
    workdir = "/home/pi/edgebench"
    runtimes = ["onnxruntime"]

``pool:rpi4`` asks for one board of the pool, ``pool:rpi4*2`` for two (`parse_pool_ref`).
`Lease` does the rest with labgrid's own client API (`LabClient`, over its gRPC
coordinator): one labgrid reservation per board (labgrid reserves one place per
reservation), polled while waiting (which keeps it alive; a reservation nobody polls expires
on labgrid's own timeout, 60 s), a progress line while it waits
(``waiting for rpi4: reservation ABC, 2 ahead, 40 s; rpi4-1 acquired by ci1:4242/ci since
12:00:03``), the places acquired once allocated, each place's ``NetworkService`` read into a
`Board` (named after the place; the pool, place, exporter and coordinator in its tags), and
every place released and every reservation cancelled on the way out: success, exception,
SIGINT, SIGTERM (`Lease` is a context manager and installs a SIGTERM handler that raises
when nobody else did).

A run killed with SIGKILL leaves its places acquired: labgrid keeps them until someone
releases them. edgebench names itself to the coordinator as ``HOST:PID/USER`` (labgrid's
``HOST/USER`` with the process id added), so a waiting run can tell a holder on its own host
whose process is gone, and says so with the exact commands that free the place
(`release_commands`: ``labgrid-client -x ADDR -p PLACE release-from HOLDER`` and
``labgrid-client -x ADDR cancel-reservation TOKEN``).

labgrid is the ``lab`` extra (``pip install 'edgebench[lab]'``); it is imported when a pool
is used, never when this module is.

This module is the lease and what ``boards list``/``check`` show of a pool; the ``[pools.NAME]``
declaration and ``pool:`` references are in `edgebench.targets.pools`, the coordinator's client in
`edgebench.targets.lab_client`. Their names are importable from here too.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

from edgebench.errors import EdgebenchError, UserError
from edgebench.targets.board import Board
from edgebench.targets.lab_client import (
    CHANNEL_OPTIONS,
    CONNECT_TIMEOUT_S,
    INSTALL,
    RPC_TIMEOUT_S,
    Holder,
    LabClient,
    PlaceInfo,
    ReservationInfo,
    clock_text,
    own_name,
    release_commands,
)
from edgebench.targets.pools import (
    COORDINATOR_ENV,
    DEFAULT_PORT,
    MAX_COUNT,
    POOL_FIELDS,
    POOL_PREFIX,
    TAG_KEY,
    TAG_VALUE,
    Endpoint,
    LabError,
    LabWaitTimeout,
    Pool,
    PoolChecks,
    PoolRef,
    PoolSpec,
    is_pool_ref,
    load_lab_inventory,
    parse_pool,
    parse_pool_ref,
    parse_pools,
    resolve_pool,
)

# the names of the modules lab was split into (pools, lab_client) stay importable from here
__all__ = [
    "CHANNEL_OPTIONS",
    "CONNECT_TIMEOUT_S",
    "COORDINATOR_ENV",
    "DEFAULT_PORT",
    "DEFAULT_WAIT_S",
    "INSTALL",
    "MAX_COUNT",
    "POLL_S",
    "POOL_FIELDS",
    "POOL_PREFIX",
    "PROGRESS_EVERY_S",
    "RPC_TIMEOUT_S",
    "TAG_KEY",
    "TAG_VALUE",
    "Endpoint",
    "Holder",
    "LabClient",
    "LabError",
    "LabTerminated",
    "LabWaitTimeout",
    "Lease",
    "Member",
    "PlaceInfo",
    "Pool",
    "PoolChecks",
    "PoolRef",
    "PoolSpec",
    "PoolView",
    "Progress",
    "ReservationInfo",
    "connected",
    "is_pool_ref",
    "lease",
    "load_lab_inventory",
    "own_name",
    "parse_pool",
    "parse_pool_ref",
    "parse_pools",
    "pool_members",
    "pool_status",
    "pool_views",
    "release_commands",
    "resolve_pool",
]

DEFAULT_WAIT_S = 1800.0  # how long a run waits for its places by default
POLL_S = 1.0  # seconds between polls while waiting (each poll also keeps the reservation alive)
PROGRESS_EVERY_S = 10.0  # a waiting line at least this often (and whenever the queue changes)


class LabTerminated(KeyboardInterrupt):
    """SIGTERM while a `Lease` holds places and nobody else handles it: raised like Ctrl-C so that
    the places are released on the way out (``signum`` as `edgebench.cli.Terminated` has it)."""

    signum = int(signal.SIGTERM)


# --- a lease: reserve, wait, acquire, read, release ----------------------------------------------

Progress = Callable[[str], None]


def pool_status(client: LabClient, pool: Pool) -> list[PlaceInfo]:
    """The pool's places with their state (``boards list``).

    Raises:
        LabError: when no place matches the pool's tags.
    """
    places = client.places(pool.tags)
    if not places:
        _no_places(client, pool)
    return places


def _no_places(client: LabClient, pool: Pool) -> None:
    everything = client.places()
    seen = sorted({f"{k}={v}" for p in everything for k, v in p.tags.items()})
    raise LabError(
        f"pool {pool.name!r}: no place of coordinator {pool.coordinator} has the tags {pool.filter_text()} "
        f"(tags in use: {', '.join(seen) or 'none'}): fix the pool's tags, or tag the places with "
        f"`labgrid-client -x {pool.coordinator} -p PLACE set-tags {pool.filter_text()}`"
    )


class Lease:
    """``count`` boards of a pool, held for the ``with`` block.

    On entry: connect, check the pool (its places exist and have a usable ``NetworkService``,
    there are enough of them), create one reservation per board with ``priority``, poll them until
    allocated (a progress line through ``progress``, at least every `PROGRESS_EVERY_S`), acquire
    the places, read each place's ``NetworkService`` into `boards`. On exit, and on any failure
    or signal on entry: release the places, cancel the reservations, close the connection.
    SIGTERM raises `LabTerminated` while the lease is open when nobody else handles it.

    Args:
        pool: the pool.
        count: how many boards.
        priority: labgrid's reservation priority (higher first; default 0).
        wait_timeout: seconds to wait for the allocation before `LabWaitTimeout`.
        progress: called with each waiting line (and a line when the places are acquired).
        poll_s: seconds between polls.
        progress_every_s: a waiting line at least this often.
        connect_timeout: seconds to wait for the coordinator to answer.
    """

    def __init__(
        self,
        pool: Pool,
        count: int = 1,
        *,
        priority: float = 0.0,
        wait_timeout: float = DEFAULT_WAIT_S,
        progress: Progress | None = None,
        poll_s: float = POLL_S,
        progress_every_s: float = PROGRESS_EVERY_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        if not 1 <= count <= MAX_COUNT:
            raise UserError(f"pool {pool.name!r}: ask for 1 to {MAX_COUNT} boards, not {count}")
        self.pool, self.count, self.priority = pool, count, priority
        self.wait_timeout, self.poll_s, self.progress_every_s = wait_timeout, poll_s, progress_every_s
        self.connect_timeout = connect_timeout
        self.progress: Progress = progress or (lambda line: None)
        self.boards: list[Board] = []
        self.places: list[str] = []  # acquired by this lease
        self.tokens: list[str] = []  # reservations this lease created (and has not cancelled)
        self.waited_s = 0.0  # from the first reservation to the allocation
        self.overhead_s = 0.0  # connect + check + reserve + acquire + read, without the queue
        self.client: LabClient | None = None
        self._old_sigterm: Any = None
        self._released = False

    # -- entry
    def __enter__(self) -> Lease:
        self._install_sigterm()
        try:
            self._open()
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release(quiet=et is not None)

    def _install_sigterm(self) -> None:
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
            return  # someone handles it (edgebench's CLI raises Terminated): our finally runs either way
        with contextlib.suppress(ValueError):  # not the main thread: signals are not ours to handle

            def on_sigterm(signum: int, frame: FrameType | None) -> None:
                raise LabTerminated

            self._old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def _open(self) -> None:
        t0 = time.monotonic()
        pool = self.pool
        self.client = client = LabClient(pool.coordinator, connect_timeout=self.connect_timeout, pool=pool.name)
        members = pool_status(client, pool)
        broken: dict[str, str] = {}
        for p in members:
            try:
                client.endpoint(p.name)
            except LabError as exc:
                broken[p.name] = str(exc).split(f"place {p.name!r}", 1)[-1].lstrip(": ")
        usable = [p for p in members if p.name not in broken]
        names = ", ".join(p.name for p in members)
        if self.count > len(members):
            raise LabError(
                f"pool {pool.name!r} has {len(members)} place{'s' if len(members) != 1 else ''} ({names}): "
                f"ask for at most {len(members)} (pool:{pool.name}*{len(members)}) or tag more places "
                f"{pool.filter_text()}"
            )
        if self.count > len(usable):
            bad = "; ".join(f"{k}: {v}" for k, v in broken.items())
            raise LabError(
                f"pool {pool.name!r}: {len(usable)} of its {len(members)} places can be used and {self.count} "
                f"are needed; {bad}"
            )
        for _ in range(self.count):
            self.tokens.append(client.reserve(pool.tags, self.priority).token)
        t_reserved = time.monotonic()
        allocated = self._wait(broken)
        t_allocated = time.monotonic()
        self.waited_s = t_allocated - t_reserved
        for place in allocated:
            client.acquire(place)
            self.places.append(place)
        for place in allocated:
            info = client.place(place)
            self.boards.append(pool.board(place, client.endpoint(place), info.tags))
        self.overhead_s = (time.monotonic() - t0) - self.waited_s
        self.progress(
            f"acquired {', '.join(self.places)} from pool {pool.name} (waited {self.waited_s:.0f} s, "
            f"reservation overhead {self.overhead_s:.2f} s, "
            f"reservation{'s' if len(self.tokens) > 1 else ''} {', '.join(self.tokens)})"
        )

    def _wait(self, broken: dict[str, str]) -> list[str]:
        """Poll the reservations until ``count`` usable places are allocated; returns them."""
        assert self.client is not None
        client, pool = self.client, self.pool
        start = time.monotonic()
        last_key: tuple[Any, ...] | None = None
        last_time = -1e9
        held_broken: dict[str, str] = {}  # token -> broken place it holds (kept so it is not given again)
        while True:
            infos = {t: client.poll(t) for t in self.tokens}
            good: list[str] = []
            for token, r in infos.items():
                if r.state in ("expired", "invalid"):  # we did not poll in time, or its place was deleted
                    self.tokens.remove(token)
                    client.cancel(token)
                    self.tokens.append(client.reserve(pool.tags, self.priority).token)
                    self.progress(f"pool {pool.name}: reservation {token} {r.state}, reserved again")
                    continue
                if r.place is None or token in held_broken:
                    continue
                if r.place in broken:
                    held_broken[token] = r.place
                    self.tokens.append(client.reserve(pool.tags, self.priority).token)
                    self.progress(f"pool {pool.name}: place {r.place} skipped ({broken[r.place]}), reserving another")
                    continue
                good.append(r.place)
            if len(good) >= self.count:
                for token in list(held_broken):  # the broken places go back
                    client.cancel(token)
                    self.tokens.remove(token)
                return good[: self.count]
            elapsed = time.monotonic() - start
            line, key, holders = self._waiting_line(infos, good, elapsed)
            if elapsed > self.wait_timeout:
                hint = "; ".join(
                    f"if {h.name} is a dead run: {release_commands(pool.coordinator, h)}" for h in holders if h.acquired
                )
                raise LabWaitTimeout(
                    f"pool {pool.name!r}: no place allocated within the wait timeout of {self.wait_timeout:g} s "
                    f"({line.split(': ', 1)[1]}): raise --wait-timeout, or free a place"
                    + (f" ({hint})" if hint else "")
                )
            now = time.monotonic()
            if key != last_key or now - last_time >= self.progress_every_s:
                self.progress(line)
                last_key, last_time = key, now
            time.sleep(self.poll_s)

    def _waiting_line(
        self, infos: Mapping[str, ReservationInfo], good: Sequence[str], elapsed: float
    ) -> tuple[str, tuple[Any, ...], list[PlaceInfo]]:
        """The waiting line, what it depends on (to print it when that changes) and the pool's busy places."""
        assert self.client is not None
        client, pool = self.client, self.pool
        everyone = client.reservations()
        members = client.places(pool.tags)
        mine = set(self.tokens)
        waiting = [r for r in infos.values() if r.state == "waiting"]
        ahead = 0
        if waiting:
            first = min(waiting, key=lambda r: (-r.prio, r.created))
            for r in everyone:
                if r.token in mine or r.state != "waiting":
                    continue
                if (-r.prio, r.created) < (-first.prio, first.created) and any(p.matches(r.tags) for p in members):
                    ahead += 1
        busy: list[PlaceInfo] = []
        parts: list[str] = []
        for p in members:
            if p.name in good or (p.reservation in mine and not p.acquired):
                continue
            if p.acquired:
                holder = p.holder()
                text = f"{p.name} acquired by {p.acquired} since {clock_text(p.changed)}"
                if holder is not None and holder.gone(self.client.hostname):
                    text += (
                        f" (its process {holder.pid} is gone: a dead run; free it with "
                        f"`{release_commands(pool.coordinator, p)}`)"
                    )
                parts.append(text)
                busy.append(p)
            elif p.reservation:
                owner = next((r.owner for r in everyone if r.token == p.reservation), "?")
                parts.append(f"{p.name} reserved for {owner}")
                busy.append(p)
        tokens = ", ".join(self.tokens)
        head = f"waiting for {pool.name}: reservation{'s' if len(self.tokens) > 1 else ''} {tokens}"
        if self.count > 1:
            head += f" ({len(good)} of {self.count} allocated)"
        line = f"{head}, {ahead} ahead, {elapsed:.0f} s"
        if parts:
            line += "; " + "; ".join(parts)
        key = (ahead, len(good), tuple(parts), tokens)
        return line, key, busy

    # -- exit
    def release(self, *, quiet: bool = False) -> None:
        """Release the places, cancel the reservations, close the connection (once; signals wait).

        A failure is raised as `LabError` naming the labgrid commands that finish the job, unless
        ``quiet`` (another exception is on its way out): then it goes to ``progress``.
        """
        if self._released:
            return
        self._released = True
        blocked = {signal.SIGINT, signal.SIGTERM}
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)  # a signal now waits for the release
        problems: list[str] = []
        try:
            client = self.client
            if client is not None:
                for place in list(self.places):
                    try:
                        client.release(place, holder=client.name)
                        self.places.remove(place)
                    except LabError as exc:
                        problems.append(
                            f"{exc} (release it with `labgrid-client -x {self.pool.coordinator} -p {place} "
                            f"release-from {client.name}`)"
                        )
                for token in list(self.tokens):
                    try:
                        client.cancel(token)
                        self.tokens.remove(token)
                    except LabError as exc:
                        problems.append(
                            f"{exc} (`labgrid-client -x {self.pool.coordinator} cancel-reservation {token}`)"
                        )
                client.close()
            if self._old_sigterm is not None:
                signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # a pending signal is raised here, after it
        if problems:
            text = f"pool {self.pool.name!r}: could not release everything: " + "; ".join(problems)
            if quiet:
                self.progress(text)
            else:
                raise LabError(text)


def lease(
    pool: Pool,
    count: int = 1,
    *,
    priority: float = 0.0,
    wait_timeout: float = DEFAULT_WAIT_S,
    progress: Progress | None = None,
    poll_s: float = POLL_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> Lease:
    """``with lease(pool, 2, progress=print) as held: held.boards`` (see `Lease`)."""
    return Lease(
        pool,
        count,
        priority=priority,
        wait_timeout=wait_timeout,
        progress=progress,
        poll_s=poll_s,
        connect_timeout=connect_timeout,
    )


@contextlib.contextmanager
def connected(pool: Pool, *, connect_timeout: float = CONNECT_TIMEOUT_S) -> Iterator[LabClient]:
    """A `LabClient` for the pool's coordinator, closed afterwards (``boards list``/``check``)."""
    client = LabClient(pool.coordinator, connect_timeout=connect_timeout, pool=pool.name)
    try:
        yield client
    finally:
        client.close()


# --- what `boards list` and `boards check` show of a pool ------------------------------------------


@dataclass(frozen=True)
class Member:
    """One place of a pool: its state, and its board's endpoint or why it has none."""

    place: PlaceInfo
    endpoint: Endpoint | None
    problem: str | None = None  # the NetworkService is missing or offline: why, and the fix


@dataclass(frozen=True)
class PoolView:
    """A pool as its coordinator sees it now (``error``: why it could not be asked)."""

    pool: Pool
    members: list[Member] = field(default_factory=list)
    error: str | None = None


def _place_problem(exc: LabError, place: str) -> str:
    """A `LabClient.endpoint` error without its pool/coordinator/place prefix."""
    return str(exc).split(f"place {place!r}", 1)[-1].lstrip(": ")


def pool_members(pool: Pool, *, connect_timeout: float = CONNECT_TIMEOUT_S) -> list[Member]:
    """The places of ``pool`` with their state and endpoint (``boards list``/``check``).

    Raises:
        LabError: the coordinator cannot be reached, or no place has the pool's tags.
        MissingDependency: labgrid is not installed.
    """
    with connected(pool, connect_timeout=connect_timeout) as client:
        out = []
        for place in pool_status(client, pool):
            try:
                out.append(Member(place, client.endpoint(place.name)))
            except LabError as exc:
                out.append(Member(place, None, _place_problem(exc, place.name)))
        return out


def pool_views(pools: Sequence[Pool], *, connect_timeout: float = CONNECT_TIMEOUT_S) -> list[PoolView]:
    """Every pool as its coordinator sees it; a pool that cannot be asked carries the one-line reason."""
    views = []
    for pool in pools:
        try:
            views.append(PoolView(pool, pool_members(pool, connect_timeout=connect_timeout)))
        except EdgebenchError as exc:
            views.append(PoolView(pool, error=str(exc)))
    return views
