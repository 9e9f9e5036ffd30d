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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from getpass import getuser
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from edgebench.config import name_problem, shown_name, validate
from edgebench.errors import ConfigError, EdgebenchError, MissingDependency, UserError
from edgebench.targets.board import Board, board_fields, file_field
from edgebench.targets.inventory import (
    BOARD_NAME,
    BoardSpec,
    board_values,
    file_fields,
    load_inventory_parts,
    suggest,
)

T = TypeVar("T")

POOL_PREFIX = "pool:"
DEFAULT_PORT = 20408  # labgrid's coordinator port
COORDINATOR_ENV = "LG_COORDINATOR"  # labgrid's own variable for the coordinator address
DEFAULT_WAIT_S = 1800.0  # how long a run waits for its places by default
MAX_COUNT = 64  # boards one pool reference may ask for
POLL_S = 1.0  # seconds between polls while waiting (each poll also keeps the reservation alive)
PROGRESS_EVERY_S = 10.0  # a waiting line at least this often (and whenever the queue changes)
CONNECT_TIMEOUT_S = 10.0
RPC_TIMEOUT_S = 30.0
INSTALL = "pip install 'edgebench[lab]'"
# labgrid's tag rules (labgrid.remote.common TAG_KEY, written whole); values: one word
TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")
TAG_VALUE = re.compile(r"^[^\s=]+$")
_REF = re.compile(r"^pool:([^*\s]*)(?:\*(.*))?$")
_LOG = logging.getLogger("edgebench.lab")
# labgrid's client channel options (labgrid.remote.client.ClientSession) and a connection of the channel's own
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 7500),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.http2.ping_timeout_ms", 10000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.use_local_subchannel_pool", 1),
]

# the pool's own fields; a pool's other fields are a board's (see PoolSpec), described where a pool's differs
POOL_FIELDS: dict[str, str] = {
    "coordinator": f"labgrid coordinator HOST[:PORT] (default ${COORDINATOR_ENV}; port {DEFAULT_PORT})",
    "tags": 'tag filter: the pool is every place whose tags include these (board = "rpi4")',
    **{f.name: d for f in board_fields() if (d := file_field(f).pool_description) is not None},
}


class LabError(UserError):
    """A pool cannot be used: the message names the pool or place and the fix."""


class LabWaitTimeout(LabError):
    """The places of a pool were not allocated within the wait timeout."""


class LabTerminated(KeyboardInterrupt):
    """SIGTERM while a `Lease` holds places and nobody else handles it: raised like Ctrl-C so that
    the places are released on the way out (``signum`` as `edgebench.cli.Terminated` has it)."""

    signum = int(signal.SIGTERM)


# --- the pool declaration -----------------------------------------------------------------------


@dataclass(frozen=True)
class PoolChecks:
    """One ``[pools.NAME]`` table as written, checked by `edgebench.config.validate`.

    ``coordinator`` and ``tags`` say which places; `PoolSpec` adds the other fields: the
    defaults every board of the pool gets, the `Board` fields a pool may set
    (`edgebench.targets.board.FileField.pool`), declared and checked as in a ``[[boards]]``
    table (by `edgebench.targets.inventory.BoardSpec` itself). A board's host and port come
    from its place's ``NetworkService``, never from here.
    """

    coordinator: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    if TYPE_CHECKING:  # the other fields are made from Board's declarations

        def __getattr__(self, name: str) -> Any: ...

    def __post_init__(self) -> None:
        if self.coordinator is not None:
            problem = name_problem(self.coordinator) if self.coordinator.strip() else "is empty"
            if problem is not None or any(c.isspace() for c in self.coordinator):
                raise ValueError(
                    f"field 'coordinator' {shown_name(self.coordinator)} {problem or 'has a space'}: "
                    "write HOST or HOST:PORT"
                )
        if not self.tags:
            raise ValueError(
                "field 'tags' is missing or empty: give the tag filter of the pool's places, "
                'e.g. tags = { board = "rpi4" }'
            )
        for k, v in self.tags.items():
            if not TAG_KEY.match(k):
                raise ValueError(
                    f"field 'tags' key {k!r} is not a labgrid tag name: lower-case letters, digits and '_', "
                    "starting with a letter, 2 characters or more"
                )
            if not TAG_VALUE.match(v):
                raise ValueError(f"field 'tags' value of {k!r} {v!r} must be one word without spaces or '='")
        # the defaults follow the [[boards]] rules: BoardSpec checks them (its types were checked here)
        BoardSpec(name="pool", host="labgrid", **self.board_fields())

    def board_fields(self) -> dict[str, Any]:
        """The fields every board of the pool gets, by `BoardSpec` name."""
        own = {f.name for f in dataclasses.fields(PoolChecks)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in own}


PoolSpec: type[PoolChecks] = dataclasses.make_dataclass(
    "PoolSpec",
    file_fields(pool=True),
    bases=(PoolChecks,),
    frozen=True,
    namespace={"__module__": __name__, "__doc__": PoolChecks.__doc__},
)


@dataclass(frozen=True)
class Pool:
    """A pool of boards behind a labgrid coordinator.

    Attributes:
        name: the pool's name (``pool:NAME`` on the command line).
        coordinator: the coordinator's ``HOST:PORT``.
        tags: the tag filter; a place is in the pool when its tags include all of these.
        defaults: the board every member starts from (name and host are the place's).
        user_set: True when the pool sets ``user`` (else the NetworkService's username is used).
    """

    name: str
    coordinator: str
    tags: dict[str, str]
    defaults: Board
    user_set: bool = False

    def filter_text(self) -> str:
        """The tag filter as labgrid writes it: ``board=rpi4 lab=a``."""
        return " ".join(f"{k}={v}" for k, v in sorted(self.tags.items()))

    def board(self, place: str, endpoint: Endpoint, place_tags: Mapping[str, str] | None = None) -> Board:
        """The `Board` for ``place`` reached at ``endpoint`` with the pool's defaults.

        The board is named after the place; its tags hold the place's tags and
        ``lab.pool``, ``lab.place``, ``lab.exporter``, ``lab.exporter_host`` and
        ``lab.coordinator`` (stored with every result through the board's fingerprint).
        A ``{place}`` in the pool's workdir becomes the place's name (places that share one host).
        When the exporter says the address is only reachable from its host
        (``proxy_required``), that host becomes the SSH jump host.
        """
        if not BOARD_NAME.match(place) or place in (".", ".."):
            raise LabError(
                f"pool {self.name!r}: place {place!r} cannot name a board (letters, digits, '-', '_' and '.' only): "
                "use places named so (labgrid cannot rename one: create it anew with "
                f"`labgrid-client -x {self.coordinator} -p NEW-NAME create`)"
            )
        tags = {k: str(v) for k, v in (place_tags or {}).items()}
        tags.update(
            {
                "lab.pool": self.name,
                "lab.place": place,
                "lab.exporter": endpoint.exporter,
                "lab.exporter_host": endpoint.proxy or endpoint.exporter,
                "lab.coordinator": self.coordinator,
            }
        )
        jump = self.defaults.jump_host
        if endpoint.proxy_required and endpoint.proxy and jump is None:
            jump = endpoint.proxy
        return dataclasses.replace(
            self.defaults,
            name=place,
            workdir=self.defaults.workdir.replace("{place}", place),
            host=endpoint.address,
            port=endpoint.port,
            user=self.defaults.user if self.user_set else endpoint.username,
            tags=tags,
            jump_host=jump,
        )


def parse_pool(name: str, raw: Any, path: Path | str, environ: Mapping[str, str] | None = None) -> Pool:
    """Validate one ``[pools.NAME]`` table.

    Args:
        name: the table's name (the pool's name).
        raw: the table as read from TOML.
        path: the inventory file, for messages.
        environ: where ``LG_COORDINATOR`` is looked up (default `os.environ`).

    Raises:
        ConfigError: naming the file, the pool and the field.
    """
    where = f"{path}: pool {name!r}:"
    if not BOARD_NAME.match(name) or name in (".", ".."):
        raise ConfigError(f"{where} the name may hold only letters, digits, '-', '_' and '.': rename the table")
    if isinstance(raw, Mapping):
        for key, why in (("name", "the table's name is the pool's name"), ("host", "hosts come from the places"),
                         ("port", "ports come from the places")):  # fmt: skip
            if key in raw:
                raise ConfigError(f"{where} field {key!r} does not belong in a pool ({why}): remove it")
    spec = validate(PoolSpec, raw, where)
    env = os.environ if environ is None else environ
    coordinator = spec.coordinator or env.get(COORDINATOR_ENV, "").strip()
    if not coordinator:
        raise ConfigError(
            f"{where} field 'coordinator' is missing: set coordinator = \"HOST:PORT\" (or ${COORDINATOR_ENV})"
        )
    defaults = Board(name=name, **board_values(spec.board_fields(), where))
    return Pool(
        name=name,
        coordinator=coordinator,
        tags=dict(spec.tags),
        defaults=defaults,
        user_set=spec.board_fields()["user"] is not None,
    )


def parse_pools(raw: Any, path: Path | str, environ: Mapping[str, str] | None = None) -> dict[str, Pool]:
    """Validate an inventory's ``[pools]`` table (one ``[pools.NAME]`` table per pool).

    Raises:
        ConfigError: naming the file, the pool and the field.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: 'pools' must be a table of tables: write each pool as [pools.NAME]")
    return {str(name): parse_pool(str(name), table, path, environ) for name, table in raw.items()}


def load_lab_inventory(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Board], dict[str, Pool]]:
    """The inventory's boards (``local`` included) and its pools, both validated.

    Args:
        path: the inventory file (``None``: `edgebench.targets.inventory.default_path`).
        environ: where ``LG_COORDINATOR`` is looked up (default `os.environ`).

    Raises:
        ConfigError: naming the file, the board or pool and the field.
    """
    boards, raw, where = load_inventory_parts(path)
    return boards, parse_pools(raw, where, environ) if raw else {}


@dataclass(frozen=True)
class PoolRef:
    """``pool:NAME`` or ``pool:NAME*COUNT`` from a board list."""

    pool: str
    count: int = 1

    def __str__(self) -> str:
        return f"{POOL_PREFIX}{self.pool}" + (f"*{self.count}" if self.count != 1 else "")


def is_pool_ref(text: str) -> bool:
    """True when a board list entry names a pool (``pool:...``)."""
    return text.startswith(POOL_PREFIX)


def parse_pool_ref(text: str) -> PoolRef:
    """``pool:rpi4`` → one board of pool ``rpi4``; ``pool:rpi4*2`` → two.

    Raises:
        UserError: for a malformed reference, naming the form.
    """
    m = _REF.match(text.strip())
    if m is None or not m.group(1) or not BOARD_NAME.match(m.group(1)):
        raise UserError(f"{text!r} is not a pool reference: write pool:NAME or pool:NAME*COUNT (e.g. pool:rpi4*2)")
    count_text = m.group(2)
    if count_text is None:
        return PoolRef(m.group(1))
    if not count_text.isdigit() or not 1 <= int(count_text) <= MAX_COUNT:
        raise UserError(f"{text!r}: the count after '*' must be a whole number from 1 to {MAX_COUNT} (pool:NAME*2)")
    return PoolRef(m.group(1), int(count_text))


def resolve_pool(pools: Mapping[str, Pool], ref: PoolRef | str) -> Pool:
    """The pool a reference names.

    Raises:
        UserError: for an unknown pool, suggesting close names and listing the real ones.
    """
    name = ref.pool if isinstance(ref, PoolRef) else parse_pool_ref(ref).pool
    if name in pools:
        return pools[name]
    known = ", ".join(sorted(pools)) or "none"
    raise UserError(
        f"unknown pool {name!r}{suggest(name, pools)}: known pools are {known} "
        "(declare one as [pools.NAME] in the inventory)"
    )


# --- what the coordinator says -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A place's ``NetworkService``: where its board answers SSH."""

    place: str
    exporter: str
    group: str
    address: str
    port: int
    username: str | None
    proxy: str | None = None  # the exporter's host (its FQDN)
    proxy_required: bool = False  # the address is only reachable from the exporter's host
    avail: bool = True


@dataclass(frozen=True)
class Holder:
    """Who holds a place, parsed from labgrid's ``HOST/USER`` (edgebench's own: ``HOST:PID/USER``)."""

    name: str
    host: str
    user: str
    pid: int | None = None

    @classmethod
    def parse(cls, name: str) -> Holder:
        """Split labgrid's holder name."""
        host, _, user = name.partition("/")
        base, sep, pid = host.rpartition(":")
        if sep and pid.isdigit():
            return cls(name, base, user, int(pid))
        return cls(name, host, user)

    def gone(self, hostname: str) -> bool:
        """True when the holder is an edgebench process on this host that no longer runs."""
        if self.pid is None or self.host != hostname:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # it runs, as someone else
            return False
        return False


@dataclass(frozen=True)
class PlaceInfo:
    """One place as the coordinator knows it."""

    name: str
    tags: dict[str, str]
    acquired: str | None  # holder name (HOST/USER), or None
    changed: float  # when it was last acquired, released or changed (epoch seconds)
    reservation: str | None  # the token of the reservation it is allocated to
    acquired_resources: tuple[tuple[str, ...], ...] = ()  # (exporter, group, class, name)

    @property
    def state(self) -> str:
        """``free``, ``acquired`` or ``reserved``."""
        if self.acquired:
            return "acquired"
        return "reserved" if self.reservation else "free"

    def matches(self, tags: Mapping[str, str]) -> bool:
        """True when the place's tags include the filter (labgrid also matches ``name=PLACE``)."""
        own = {**self.tags, "name": self.name}
        return all(own.get(k) == v for k, v in tags.items())

    def holder(self) -> Holder | None:
        """Who acquired the place, or None."""
        return Holder.parse(self.acquired) if self.acquired else None

    def describe(self) -> str:
        """``free``, ``acquired by HOST/USER since 12:00:03`` or ``reserved (ABC)``."""
        if self.acquired:
            return f"acquired by {self.acquired} since {_clock(self.changed)}"
        if self.reservation:
            return f"reserved ({self.reservation})"
        return "free"


@dataclass(frozen=True)
class ReservationInfo:
    """One labgrid reservation."""

    token: str
    owner: str
    state: str  # waiting, allocated, acquired, expired, invalid
    prio: float
    tags: dict[str, str]  # the "main" filter
    place: str | None  # the allocated place
    created: float
    timeout: float


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def release_commands(coordinator: str, place: PlaceInfo) -> str:
    """The labgrid commands that free a place a dead run left acquired (and its reservation)."""
    parts = []
    if place.acquired:
        parts.append(f"labgrid-client -x {coordinator} -p {place.name} release-from {place.acquired}")
    if place.reservation:
        parts.append(f"labgrid-client -x {coordinator} cancel-reservation {place.reservation}")
    return " && ".join(parts)


# --- the client ----------------------------------------------------------------------------------


def _labgrid() -> tuple[Any, Any, Any, Any, Any]:
    """labgrid's client module, its protobuf messages and stubs, grpc and the proxy manager, or MissingDependency."""
    try:
        import grpc  # type: ignore[import-untyped]
        from labgrid.remote import client  # type: ignore[import-untyped]
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb  # type: ignore[import-untyped]
        from labgrid.remote.generated import labgrid_coordinator_pb2_grpc as pb_grpc
        from labgrid.util.proxy import proxymanager  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependency(
            f"pools of boards need labgrid, which is not installed ({exc.name or exc}): {INSTALL}"
        ) from None
    return client, pb, pb_grpc, grpc, proxymanager


class _QuietLabgrid(logging.Filter):
    """labgrid's client logs its connection errors on the root logger; edgebench says them in one line.

    Records from labgrid's modules logged on the root logger go to ``edgebench.lab`` at DEBUG instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if f"{os.sep}labgrid{os.sep}" in record.pathname:
            _LOG.debug("labgrid: %s", record.getMessage())
            return False
        return True


def own_name(hostname: str | None = None, user: str | None = None) -> str:
    """How edgebench names itself to the coordinator: labgrid's ``HOST/USER`` with ``:PID`` after the host.

    ``LG_HOSTNAME`` and ``LG_USERNAME`` (labgrid's own variables) are honoured.
    """
    host = hostname or os.environ.get("LG_HOSTNAME") or socket.gethostname()
    who = user or os.environ.get("LG_USERNAME") or getuser()
    return f"{host}:{os.getpid()}/{who}"


class LabClient:
    """A connection to a labgrid coordinator through labgrid's own client API (`ClientSession`).

    Synchronous: each call runs labgrid's coroutines on an event loop the client owns. Use
    from one thread; close it (or use ``with``). Errors are `LabError` lines naming the
    coordinator (and the place or reservation).

    Args:
        coordinator: ``HOST[:PORT]`` (port 20408 by default; ``LG_PROXY`` is honoured as labgrid does).
        connect_timeout: seconds to wait for the coordinator to answer.
        rpc_timeout: seconds to wait for any later call.
        pool: the pool's name, for messages.
    """

    def __init__(
        self,
        coordinator: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        rpc_timeout: float = RPC_TIMEOUT_S,
        pool: str | None = None,
    ) -> None:
        client, self._pb, self._pb_grpc, self._grpc, proxymanager = _labgrid()
        self.coordinator = coordinator
        self.rpc_timeout = rpc_timeout
        self.what = f"pool {pool!r}: coordinator {coordinator}" if pool else f"coordinator {coordinator}"
        self.name = own_name()
        self.hostname = Holder.parse(self.name).host
        self._filter = _QuietLabgrid()
        logging.getLogger().addFilter(self._filter)
        self._loop = asyncio.new_event_loop()
        self._session: Any = None
        name = self.name
        host_part = name.split("/", 1)[0]
        user_part = name.split("/", 1)[1]

        session_class: Any = client.ClientSession

        stub_class: Any = self._pb_grpc.CoordinatorStub
        grpc = self._grpc

        class _Session(session_class):  # type: ignore[misc]
            channel: Any
            stub: Any
            address: str

            def __attrs_post_init__(self) -> None:
                # The coordinator keys its client sessions by the peer's address and refuses a second
                # session from one address, and gRPC shares one connection among a process's channels
                # to the same target: a channel of its own (a local subchannel pool) per session.
                super().__attrs_post_init__()
                shared: Any = self.channel
                self.channel = grpc.aio.insecure_channel(target=self.address, options=CHANNEL_OPTIONS)
                self.stub = stub_class(self.channel)
                self.closing_shared = asyncio.ensure_future(shared.close())  # never connected: connects on first use

            def gethostname(self) -> str:
                return host_part

            def getuser(self) -> str:
                return user_part

        address = proxymanager.get_grpc_address(coordinator, default_port=DEFAULT_PORT)

        async def start() -> Any:
            session = _Session(address, asyncio.get_running_loop())  # the channel binds to the running loop
            try:
                await asyncio.wait_for(session.start(), connect_timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    await session.stop()
                with contextlib.suppress(Exception):
                    await session.close()
                raise
            return session

        try:
            self._session = self._loop.run_until_complete(start())
        except (TimeoutError, client.Error) as exc:
            self._shutdown()
            why = "did not answer" if isinstance(exc, TimeoutError) else "refused the connection or is down"
            raise LabError(
                f"{self.what} {why} within {connect_timeout:g} s: check the address and that labgrid-coordinator "
                f"runs there (`labgrid-client -x {coordinator} places`)"
            ) from None
        except BaseException:
            self._shutdown()
            raise

    # -- plumbing
    def _run(self, coro: Coroutine[Any, Any, T], what: str) -> T:
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coro, self.rpc_timeout))
        except TimeoutError:
            raise LabError(
                f"{self.what}: no answer to {what} within {self.rpc_timeout:g} s: check that the coordinator runs"
            ) from None

    def _call(self, method: str, request: Any, what: str) -> Any:
        """One unary call; a gRPC error becomes a `LabError` naming ``what``."""

        async def call() -> Any:
            response = await getattr(self._session.stub, method)(request)
            await self._session.sync_with_coordinator()  # the place updates it caused are in
            return response

        try:
            return self._run(call(), what)
        except self._grpc.aio.AioRpcError as exc:
            raise _RpcError(f"{self.what}: {what} failed: {exc.details()}", exc.code().name) from None

    def sync(self) -> None:
        """Wait until the coordinator's latest place and resource updates have arrived."""
        if self._session.stopping.is_set():
            raise LabError(f"{self.what} closed the connection: check that the coordinator runs")
        self._run(self._session.sync_with_coordinator(), "a sync")

    def _shutdown(self) -> None:
        loop = self._loop
        if loop.is_closed():
            return
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.wait_for(session.stop(), 5))
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.wait_for(session.close(), 5))
        with contextlib.suppress(Exception):
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=5))
        loop.close()
        logging.getLogger().removeFilter(self._filter)

    def close(self) -> None:
        """Close the connection (places and reservations are left as they are)."""
        self._shutdown()

    def __enter__(self) -> LabClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- reading
    def places(self, tags: Mapping[str, str] | None = None) -> list[PlaceInfo]:
        """The coordinator's places (those matching ``tags``), by name."""
        self.sync()
        out = []
        for name, p in sorted(self._session.places.items()):
            info = PlaceInfo(
                name=str(name),
                tags={str(k): str(v) for k, v in (p.tags or {}).items()},
                acquired=str(p.acquired) if p.acquired else None,
                changed=float(p.changed),
                reservation=str(p.reservation) if p.reservation else None,
                acquired_resources=tuple(tuple(str(x) for x in r) for r in p.acquired_resources),
            )
            if tags is None or info.matches(tags):
                out.append(info)
        return out

    def place(self, name: str) -> PlaceInfo:
        """One place by exact name.

        Raises:
            LabError: when the coordinator has no such place.
        """
        for p in self.places():
            if p.name == name:
                return p
        raise LabError(f"{self.what}: no place {name!r}")

    def reservations(self) -> list[ReservationInfo]:
        """Every reservation the coordinator holds, in labgrid's order (priority, then age)."""
        response = self._call("GetReservations", self._pb.GetReservationsRequest(), "listing reservations")
        out = [_reservation(r) for r in response.reservations]
        return sorted(out, key=lambda r: (-r.prio, r.created))

    def endpoints(self, place: str) -> list[Endpoint]:
        """The ``NetworkService`` resources of a place: its acquired ones when acquired, else the
        exported resources its matches select (an offline exporter's resources are absent)."""
        self.sync()
        p = self._session.places.get(place)
        if p is None:
            raise LabError(f"{self.what}: no place {place!r}")
        out = []
        for exporter, groups in sorted(self._session.resources.items()):
            for group_name, group in sorted(groups.items()):
                for resource_name, entry in sorted(group.items()):
                    data = entry.data
                    if data.get("cls") != "NetworkService":
                        continue  # another kind, or a resource its exporter took away
                    path = (exporter, group_name, "NetworkService", resource_name)
                    if p.acquired and [*path] not in [list(r) for r in p.acquired_resources]:
                        continue
                    if not p.acquired and p.getmatch(path) is None:
                        continue
                    params = data.get("params") or {}
                    extra = params.get("extra") or {}
                    out.append(
                        Endpoint(
                            place=place,
                            exporter=str(exporter),
                            group=str(group_name),
                            address=str(params.get("address", "")),
                            port=int(params.get("port", 22)),
                            username=str(params["username"]) if params.get("username") else None,
                            proxy=str(extra["proxy"]) if extra.get("proxy") else None,
                            proxy_required=bool(extra.get("proxy_required", False)),
                            avail=bool(data.get("avail", False)),
                        )
                    )
        return out

    def endpoint(self, place: str) -> Endpoint:
        """The one usable ``NetworkService`` of a place.

        Raises:
            LabError: naming the place and what is missing (no resource, its exporter is offline,
                more than one).
        """
        found = self.endpoints(place)
        usable = [e for e in found if e.avail and e.address]
        if len(usable) == 1:
            return usable[0]
        if len(usable) > 1:
            names = ", ".join(f"{e.exporter}/{e.group}" for e in usable)
            raise LabError(
                f"{self.what}: place {place!r} has {len(usable)} NetworkService resources ({names}): "
                f"keep one match (`labgrid-client -x {self.coordinator} -p {place} del-match ...`)"
            )
        if found:
            raise LabError(
                f"{self.what}: place {place!r}: its NetworkService ({found[0].exporter}/{found[0].group}) is not "
                "available: check that exporter"
            )
        raise LabError(
            f"{self.what}: place {place!r} has no NetworkService resource (none exported, or its exporter is "
            f"offline): export one and add it with `labgrid-client -x {self.coordinator} -p {place} add-match "
            "EXPORTER/GROUP/NetworkService`"
        )

    # -- changing
    def reserve(self, tags: Mapping[str, str], priority: float = 0.0) -> ReservationInfo:
        """Create a reservation for one place matching ``tags`` (labgrid's ``reserve``)."""
        fltr = self._pb.Reservation.Filter(filter=dict(tags))
        request = self._pb.CreateReservationRequest(filters={"main": fltr}, prio=float(priority))
        return _reservation(self._call("CreateReservation", request, "creating a reservation").reservation)

    def poll(self, token: str) -> ReservationInfo:
        """A reservation's state now (this also keeps it from expiring)."""
        request = self._pb.PollReservationRequest(token=token)
        return _reservation(self._call("PollReservation", request, f"polling reservation {token}").reservation)

    def cancel(self, token: str) -> None:
        """Cancel a reservation (one that no longer exists is fine)."""
        try:
            self._call("CancelReservation", self._pb.CancelReservationRequest(token=token), f"cancelling {token}")
        except _RpcError as exc:
            if exc.code != "FAILED_PRECONDITION":  # "does not exist": expired or cancelled already
                raise

    def acquire(self, place: str) -> None:
        """Acquire a place (allocated to one of this client's reservations, or free)."""
        self._call("AcquirePlace", self._pb.AcquirePlaceRequest(placename=place), f"acquiring place {place!r}")

    def release(self, place: str, holder: str | None = None) -> None:
        """Release a place; with ``holder``, only if that holder has it (labgrid's ``release-from``).

        A place that is not acquired is fine.
        """
        request = self._pb.ReleasePlaceRequest(placename=place)
        if holder is not None:
            request = self._pb.ReleasePlaceRequest(placename=place, fromuser=holder)
        try:
            self._call("ReleasePlace", request, f"releasing place {place!r}")
        except _RpcError as exc:
            if exc.code != "FAILED_PRECONDITION":  # "is not acquired"
                raise


class _RpcError(LabError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def _reservation(pb: Any) -> ReservationInfo:
    states = ("waiting", "allocated", "acquired", "expired", "invalid")
    state = states[pb.state] if 0 <= pb.state < len(states) else str(pb.state)
    main = pb.filters.get("main")
    tags = {str(k): str(v) for k, v in main.filter.items()} if main is not None else {}
    place = pb.allocations.get("main") or None
    return ReservationInfo(
        token=str(pb.token),
        owner=str(pb.owner),
        state=state,
        prio=float(pb.prio),
        tags=tags,
        place=str(place) if place else None,
        created=float(pb.created),
        timeout=float(pb.timeout),
    )


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
                text = f"{p.name} acquired by {p.acquired} since {_clock(p.changed)}"
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
