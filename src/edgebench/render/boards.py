"""Rich tables for ``edgebench boards`` and ``edgebench farm``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from edgebench.targets.board import Board
from edgebench.targets.fingerprint import READY, UNFIT, BoardCheck
from edgebench.targets.lab import Member, PoolView

STATUS_STYLE = {READY: "green", UNFIT: "yellow"}


def _mb(n: Any) -> str:
    return f"{int(n) / 2**20:,.0f} MiB" if isinstance(n, int) else "-"


def board_dict(board: Board) -> dict[str, Any]:
    """A board as plain data (no secrets: only the names of password variables)."""
    return {
        "name": board.name,
        "host": board.host,
        "port": board.port,
        "user": board.user,
        "python": board.python,
        "workdir": board.workdir,
        "runtimes": list(board.runtimes),
        "tags": board.tags,
        "identity_file": board.identity_file,
        "threads": board.threads,
        "cpu_affinity": list(board.cpu_affinity),
        "env": board.env,
        "runtime_options": board.runtime_options,
        "cost": board.cost,
        "power_w": board.power_w,
        "jump_host": board.jump_host,
        "known_hosts": board.known_hosts,
        "password_env": board.password_env,
    }


def boards_table(boards: Sequence[Board], checks: Mapping[str, BoardCheck]) -> Table:
    """The inventory, with the last recorded check of each board."""
    t = Table(title="boards", title_justify="left")
    for col in ("name", "address", "python", "runtimes", "tags", "last check"):
        t.add_column(col, overflow="fold")
    for b in boards:
        addr = "this machine" if b.is_local else f"{b.user + '@' if b.user else ''}{b.host}:{b.port}"
        rec = checks.get(b.name)
        last = "never"
        if rec:
            style = STATUS_STYLE.get(rec.status, "red")
            last = f"[{style}]{rec.status}[/{style}] {(rec.checked or '')[:19]}"
        tags = " ".join(f"{k}={v}" for k, v in b.tags.items())
        t.add_row(b.name, addr, b.python, ", ".join(b.runtimes), tags, last)
    return t


STATE_STYLE = {"free": "green", "reserved": "yellow", "acquired": "cyan"}


def _since(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def member_dict(m: Member) -> dict[str, Any]:
    """A pool member as plain data: place, state, holder and since when, reservation, endpoint or problem."""
    p, ep = m.place, m.endpoint
    return {
        "place": p.name,
        "state": p.state,
        "acquired_by": p.acquired,
        "since": _since(p.changed) if p.acquired else None,
        "reservation": p.reservation,
        "tags": p.tags,
        "address": None if ep is None else f"{ep.address}:{ep.port}",
        "user": None if ep is None else ep.username,  # the NetworkService's (a pool's own user wins on the board)
        "exporter": None if ep is None else ep.exporter,
        "problem": m.problem,
    }


def pool_view_dict(view: PoolView) -> dict[str, Any]:
    """A pool for ``boards list --json``: its declaration and its members (or why it could not be asked)."""
    pool = view.pool
    return {
        "name": pool.name,
        "coordinator": pool.coordinator,
        "tags": pool.tags,
        "error": view.error,
        "members": [member_dict(m) for m in view.members],
    }


def pools_table(views: Sequence[PoolView]) -> Table:
    """Pools of a labgrid lab: each member place with its state (free, acquired by whom since when,
    reserved) and its board's address, or why it has none."""
    t = Table(title="pools (labgrid)", title_justify="left")
    for col in ("pool", "place", "state", "address", "note"):
        t.add_column(col, overflow="fold")
    for v in views:
        label = f"{v.pool.name}\n{v.pool.filter_text()}\n@ {v.pool.coordinator}"
        if v.error is not None:
            t.add_row(label, "-", "[red]unavailable[/red]", "-", escape(v.error))
            continue
        for i, m in enumerate(v.members):
            p, ep = m.place, m.endpoint
            style = STATE_STYLE.get(p.state, "red")
            state = f"[{style}]{p.state}[/{style}]"
            if p.acquired:
                state += f" by {escape(p.acquired)} since {_since(p.changed)}"
            elif p.reservation:
                state += f" ({escape(p.reservation)})"
            user = v.pool.defaults.user if v.pool.user_set else None if ep is None else ep.username
            addr = "-" if ep is None else f"{user + '@' if user else ''}{ep.address}:{ep.port}"
            note = "" if m.problem is None else f"[red]no board[/red]: {escape(m.problem)}"
            t.add_row(label if i == 0 else "", p.name, state, addr, note)
    return t


def checks_table(checks: Sequence[BoardCheck]) -> Table:
    """``boards check``: status and reason, then the fingerprint's main facts."""
    t = Table(title="board check", title_justify="left")
    for col in ("board", "status", "reason", "machine", "software", "device"):
        t.add_column(col, overflow="fold")
    for c in checks:
        fp = c.fingerprint
        style = STATUS_STYLE.get(c.status, "red")
        status = f"[{style}]{c.status}[/{style}]"
        if not fp:
            t.add_row(c.name, status, c.reason, "", "", "")
            continue
        cores = f"{fp.get('cores', '-')} cores"
        if fp.get("cpu_quota_cores"):
            cores += f" (quota {fp['cpu_quota_cores']:g})"
        mem = _mb(fp.get("memory_bytes"))
        if fp.get("memory_limit_bytes"):
            mem += f" (limit {_mb(fp['memory_limit_bytes'])})"
        machine = f"{fp.get('arch')} {fp.get('cpu_model') or ''}\n{cores}, {mem}"
        rts = []
        for name, info in (fp.get("runtimes") or {}).items():
            provs = [p.replace("ExecutionProvider", "") for p in info.get("providers") or []]
            rts.append(f"{name} {info.get('version') or '?'}" + (f" [{', '.join(provs)}]" if provs else ""))
        software = "\n".join([f"{fp.get('os')}", f"Python {fp.get('python')}, numpy {fp.get('numpy')}", *rts])
        gov, mhz, temp = fp.get("governor"), fp.get("freq_mhz"), fp.get("temp_c")
        device = "\n".join(
            [
                f"governor {gov or '-'}",
                f"{mhz:g} MHz" if mhz else "MHz -",
                f"{temp:g} °C" if temp is not None else "°C -",
            ]
        )
        t.add_row(c.name, status, c.reason, machine, software, device)
    return t


def farm_table(members: Sequence[Any]) -> Table:
    """The farm's boards: address, profile and limits."""
    t = Table(title="farm", title_justify="left")
    for col in ("board", "address", "profile", "CPU cores", "memory", "sshd pid"):
        t.add_column(col)
    for m in members:
        t.add_row(
            m.name,
            f"{m.address}:{m.port}",
            m.profile,
            "unlimited" if m.cpu_cores is None else f"{m.cpu_cores:g}",
            "unlimited" if m.memory_mb is None else f"{m.memory_mb} MiB",
            str(m.pid),
        )
    return t
