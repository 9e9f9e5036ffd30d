"""Boards from a shared lab for one run: ``--boards pool:rpi4*2,pi4`` resolved before the harness starts.

`leased_boards` turns a board list that names pools (``pool:NAME``, ``pool:NAME*COUNT``,
`edgebench.targets.lab`) into plain board names the harness knows: it holds one `Lease` per
pool reference (reserve, wait in line with a progress line, acquire, read each place's
``NetworkService``), writes the leased boards and the named ones into a temporary boards file
that the harness child reads (``--edge-inventory``), and releases every place and cancels every
reservation on the way out, whatever ends the block: success, an error, SIGINT, SIGTERM (the
CLI raises those as `KeyboardInterrupt`; the run's own signal forwarding returns normally and
the CLI exits after the block).

A list without a pool reference goes through untouched: no labgrid, no file.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgebench.errors import UserError
from edgebench.targets.board import LOCAL, Board
from edgebench.targets.boards_file import write_boards
from edgebench.targets.inventory import resolve_boards
from edgebench.targets.lab import (
    CONNECT_TIMEOUT_S,
    POLL_S,
    LabError,
    Lease,
    PoolRef,
    is_pool_ref,
    load_lab_inventory,
    parse_pool_ref,
    resolve_pool,
)
from edgebench.targets.lab import (
    DEFAULT_WAIT_S as DEFAULT_WAIT_S,  # re-exported: `run --wait-timeout`'s default
)

BOARDS_FILE = "boards.toml"  # the temporary boards file's name inside its own folder


@dataclass
class LeasedRun:
    """What a run measures on once its pools are leased.

    Attributes:
        boards: the board names for the harness, in the order given (a pool reference replaced by
            the names of the places it got).
        inventory: the boards file the harness reads (a temporary one when a pool was leased).
        leases: the leases held (empty without a pool reference).
    """

    boards: list[str]
    inventory: Path | None
    leases: list[Lease] = field(default_factory=list)

    @property
    def leased(self) -> list[Board]:
        """The boards the leases got."""
        return [b for lease in self.leases for b in lease.boards]

    @property
    def overhead_s(self) -> float:
        """Seconds the leases spent on reservation work, without the time in the queue."""
        return sum(lease.overhead_s for lease in self.leases)

    @property
    def waited_s(self) -> float:
        """Seconds the leases waited in labgrid's queue (the longest)."""
        return max((lease.waited_s for lease in self.leases), default=0.0)


def pool_refs(names: Sequence[str]) -> list[PoolRef]:
    """The pool references of a board list (``pool:...`` entries), parsed.

    Raises:
        UserError: for a malformed reference.
    """
    return [parse_pool_ref(n) for n in names if is_pool_ref(n)]


@contextlib.contextmanager
def leased_boards(
    names: Sequence[str],
    inventory: Path | None = None,
    *,
    priority: float = 0.0,
    wait_timeout: float = DEFAULT_WAIT_S,
    progress: Callable[[str], None] | None = None,
    poll_s: float = POLL_S,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> Iterator[LeasedRun]:
    """The boards of ``names`` with every pool reference leased, held for the ``with`` block.

    Everything that can be refused is refused before the first reservation: the inventory and its
    pools, an unknown board, an unknown pool (with the real ones), a malformed reference. Then one
    `Lease` per reference, in order; a failure of one releases the ones before it.

    Args:
        names: the ``--boards`` list: board names and ``pool:NAME[*COUNT]`` references.
        inventory: the boards file (``None``: the default one).
        priority: labgrid's reservation priority for every lease.
        wait_timeout: seconds each lease waits for its places.
        progress: called with each waiting line and each "acquired" line.
        poll_s: seconds between polls while waiting.
        connect_timeout: seconds to wait for a coordinator to answer.

    Raises:
        UserError: a bad name or reference; `LabError` (a `UserError`): a pool that cannot be
            used, or places not allocated within ``wait_timeout``.
    """
    refs = pool_refs(names)
    check_no_duplicates(names)
    if not refs:
        yield LeasedRun(list(names), inventory)
        return
    boards, pools = load_lab_inventory(inventory)
    named = resolve_boards(boards, [n for n in names if not is_pool_ref(n)])
    wanted = [(ref, resolve_pool(pools, ref)) for ref in refs]
    with contextlib.ExitStack() as stack:
        leases: list[Lease] = []
        for ref, pool in wanted:
            held = Lease(
                pool,
                ref.count,
                priority=priority,
                wait_timeout=wait_timeout,
                progress=progress,
                poll_s=poll_s,
                connect_timeout=connect_timeout,
            )
            stack.enter_context(held)
            leases.append(held)
        order: list[str] = []
        by_ref = iter(leases)
        for name in names:
            order += [b.name for b in next(by_ref).boards] if is_pool_ref(name) else [name]
        taken = {b.name for b in named}
        for held in leases:
            clash = [b.name for b in held.boards if b.name in taken]
            if clash:
                raise LabError(
                    f"pool {held.pool.name!r}: place {clash[0]!r} has the name of a board this run uses too: "
                    "rename the board in the boards file, or measure the place through its pool only"
                )
            taken.update(b.name for b in held.boards)
        folder = Path(tempfile.mkdtemp(prefix="edgebench-lab-"))
        stack.callback(shutil.rmtree, folder, True)
        path = folder / BOARDS_FILE
        write_boards(
            path,
            [b for b in named if b.name != LOCAL] + [b for held in leases for b in held.boards],
            header="# boards leased from a labgrid lab for one run (removed when it ends)\n",
        )
        yield LeasedRun(order, path, leases)


def check_no_duplicates(names: Sequence[str]) -> None:
    """Refuse a board list naming one pool twice with different counts (``pool:a,pool:a*2``).

    Raises:
        UserError: naming the pool and the fix.
    """
    seen: dict[str, PoolRef] = {}
    for ref in pool_refs(names):
        if ref.pool in seen:
            raise UserError(
                f"--boards names pool {ref.pool!r} twice ({seen[ref.pool]} and {ref}): "
                f"write it once with the total count (pool:{ref.pool}*{seen[ref.pool].count + ref.count})"
            )
        seen[ref.pool] = ref
