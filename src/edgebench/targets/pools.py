"""Pools of boards behind a labgrid coordinator: the ``[pools.NAME]`` declaration, ``pool:NAME*N`` references.

See `edgebench.targets.lab` for what a pool is and how its boards are leased.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgebench.config import name_problem, shown_name, validate
from edgebench.errors import ConfigError, UserError
from edgebench.targets.board import Board, board_fields, file_field
from edgebench.targets.inventory import (
    BOARD_NAME,
    BoardSpec,
    board_values,
    file_fields,
    load_inventory_parts,
    suggest,
)

POOL_PREFIX = "pool:"
DEFAULT_PORT = 20408  # labgrid's coordinator port
COORDINATOR_ENV = "LG_COORDINATOR"  # labgrid's own variable for the coordinator address
MAX_COUNT = 64  # boards one pool reference may ask for
# labgrid's tag rules (labgrid.remote.common TAG_KEY, written whole); values: one word
TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")
TAG_VALUE = re.compile(r"^[^\s=]+$")
_REF = re.compile(r"^pool:([^*\s]*)(?:\*(.*))?$")

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
