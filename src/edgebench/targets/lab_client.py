"""A labgrid coordinator as edgebench sees it: its places, reservations and endpoints, and `LabClient`.

labgrid is imported when a client is made (`_labgrid`), never when this module is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from getpass import getuser
from types import TracebackType
from typing import Any, TypeVar

from edgebench.errors import MissingDependency
from edgebench.targets.pools import DEFAULT_PORT, Endpoint, LabError

T = TypeVar("T")

CONNECT_TIMEOUT_S = 10.0
RPC_TIMEOUT_S = 30.0
INSTALL = "pip install 'edgebench[lab]'"
_LOG = logging.getLogger("edgebench.lab")
# labgrid's client channel options (labgrid.remote.client.ClientSession) and a connection of the channel's own
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 7500),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.http2.ping_timeout_ms", 10000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.use_local_subchannel_pool", 1),
]

# --- what the coordinator says -----------------------------------------------------------------


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
            return f"acquired by {self.acquired} since {clock_text(self.changed)}"
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


def clock_text(ts: float) -> str:
    """``HH:MM:SS`` of an epoch time, in local time."""
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
