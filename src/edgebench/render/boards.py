"""Rich tables for ``edgebench boards`` and ``edgebench farm``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from edgebench.targets.board import Board
from edgebench.targets.fingerprint import READY, UNFIT, BoardCheck

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
