"""`edgebench boards ...` and `edgebench farm ...`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress

from edgebench.cli.common import EXIT_CODES, FiniteRange, boards_file_option, console, json_option, main, print_json
from edgebench.errors import RemoteError, UserError
from edgebench.render.boards import board_dict, boards_table, checks_table, farm_table, pool_view_dict, pools_table
from edgebench.targets.boards_file import add_board, remove_boards
from edgebench.targets.farm import farm_down, farm_up
from edgebench.targets.fingerprint import (
    READY,
    UNREACHABLE,
    BoardCheck,
    check_boards,
    fingerprints_path,
    load_fingerprints,
    record_checks,
)
from edgebench.targets.hostkeys import known_hosts_path, trust_host_key
from edgebench.targets.inventory import default_path, load_inventory, parse_board, resolve_boards
from edgebench.targets.lab import (
    is_pool_ref,
    load_lab_inventory,
    parse_pool_ref,
    pool_members,
    pool_views,
    resolve_pool,
)


def _boards_path(boards_file: Path | None) -> Path:
    return boards_file if boards_file is not None else default_path()


@main.group(epilog=EXIT_CODES)
def boards() -> None:
    """Register edge boards, list them, and check that they are fit to run jobs.

    Boards live in targets/boards.toml ([[boards]] tables). The built-in `local`
    board (this machine) needs no entry.
    """


@boards.command("list", epilog=EXIT_CODES)
@boards_file_option()
@json_option
def boards_list(boards_file: Path | None, as_json: bool) -> None:
    """List the boards in the inventory with their last check, and the places of each pool
    ([pools.NAME], a labgrid lab) with their state now: free, acquired by whom since when, reserved."""
    path = _boards_path(boards_file)
    inv, pools = load_lab_inventory(boards_file)
    checks = load_fingerprints(fingerprints_path(path))
    views = pool_views(list(pools.values()))
    if as_json:
        print_json(
            {
                "boards": [{**board_dict(b), "last_check": _to_json(checks.get(b.name))} for b in inv.values()],
                "pools": [pool_view_dict(v) for v in views],
            }
        )
        return
    con = console()
    con.print(boards_table(list(inv.values()), checks))
    if views:
        con.print(pools_table(views))


def _to_json(check: BoardCheck | None) -> dict[str, object] | None:
    return None if check is None else check.to_json()


@boards.command("add", epilog=EXIT_CODES)
@click.argument("name")
@click.option("--host", required=True, help="Host name, address, or a Host alias from ~/.ssh/config.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="SSH port [default: 22 or the ssh config's].")
@click.option("--user", default=None, help="SSH user [default: the ssh config's or yours].")
@click.option("--identity-file", default=None, help="SSH private key (omit to use ssh-agent or the ssh config).")
@click.option("--python", default="python3", show_default=True, help="Python interpreter on the board.")
@click.option("--workdir", default="~/edgebench", show_default=True, help="Folder on the board (absolute or ~/...).")
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(["onnxruntime", "tflite"]),
    help="A runtime installed on the board (repeat) [default: onnxruntime].",
)
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A label such as arch=aarch64 (repeat).")
@click.option("--known-hosts", default=None, help="known_hosts file for this board [default: ~/.ssh/known_hosts].")
@click.option("--trust", is_flag=True, help="Fetch the host key, show its fingerprint and record it in known_hosts.")
@boards_file_option()
def boards_add(
    name: str,
    host: str,
    port: int | None,
    user: str | None,
    identity_file: str | None,
    python: str,
    workdir: str,
    runtimes: tuple[str, ...],
    tags: tuple[str, ...],
    known_hosts: str | None,
    trust: bool,
    boards_file: Path | None,
) -> None:
    """Add board NAME to the inventory (validated before anything is written)."""
    path = _boards_path(boards_file)
    raw: dict[str, Any] = {
        "name": name,
        "host": host,
        "python": python,
        "workdir": workdir,
        "runtimes": list(runtimes or ("onnxruntime",)),
    }
    for key, value in (("port", port), ("user", user), ("identity_file", identity_file), ("known_hosts", known_hosts)):
        if value is not None:
            raw[key] = value
    tag_map = {}
    for t in tags:
        key, sep, value = t.partition("=")
        if not sep or not key:
            raise UserError(f"--tag {t!r} must be KEY=VALUE, such as arch=aarch64")
        tag_map[key] = value
    if tag_map:
        raw["tags"] = tag_map
    board = parse_board(raw, path, 0)
    if trust:
        try:
            fp, added = trust_host_key(board)
        except RemoteError as exc:
            raise UserError(f"board {name!r}: cannot fetch its host key: {exc}") from None
        where = board.known_hosts or "~/.ssh/known_hosts"
        verb = "recorded in" if added else "already in"
        click.echo(f"host key of {host}:{board.port}: {fp} ({verb} {where})", err=True)
    add_board(path, board)
    hint = "" if trust else "; its host key must be in known_hosts (or add it with --trust)"
    click.echo(f"added board {name!r} to {path}{hint}")


@boards.command("remove", epilog=EXIT_CODES)
@click.argument("names", nargs=-1, required=True)
@boards_file_option()
def boards_remove(names: tuple[str, ...], boards_file: Path | None) -> None:
    """Remove boards NAMES from the inventory."""
    path = _boards_path(boards_file)
    remove_boards(path, list(names))
    click.echo(f"removed {', '.join(names)} from {path}")


@boards.command("check", epilog=EXIT_CODES)
@click.argument("names", nargs=-1)
@boards_file_option()
@json_option
@click.option("--timeout", default=60.0, show_default=True, type=FiniteRange(1, 3600), help="Seconds per board.")
def boards_check(names: tuple[str, ...], boards_file: Path | None, as_json: bool, timeout: float) -> None:
    """Connect to boards NAMES (default: all boards, not pools), record their fingerprint, and mark
    each ready / unreachable / unfit with the reason; `pool:NAME` checks every place of a pool (its
    labgrid NetworkService, then the board). Exits 1 if any board is not ready."""
    path = _boards_path(boards_file)
    inv, pools = load_lab_inventory(boards_file)
    named = [n for n in names if not is_pool_ref(n)]
    chosen = resolve_boards(inv, named) if names else list(inv.values())
    pre: list[BoardCheck] = []  # places without a usable NetworkService: named with the reason
    for ref in (parse_pool_ref(n) for n in names if is_pool_ref(n)):
        pool = resolve_pool(pools, ref)
        for m in pool_members(pool):
            if m.endpoint is None:
                pre.append(BoardCheck(m.place.name, UNREACHABLE, f"pool {pool.name}: {m.problem}"))
            else:
                chosen.append(pool.board(m.place.name, m.endpoint, m.place.tags))
    err_console = Console(stderr=True)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("checking boards", total=len(chosen))
        checks = check_boards(chosen, timeout=timeout, on_done=lambda _n, _r: progress.advance(task))
    checks = pre + list(checks)
    record_checks(fingerprints_path(path), checks, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    if as_json:
        print_json({"checks": [c.to_json() for c in checks]})
    else:
        console().print(checks_table(checks))
    bad = [c for c in checks if c.status != READY]
    if bad:  # one line naming every board that is not ready and why, never a traceback
        raise UserError("; ".join(f"board {c.name!r} is {c.status}: {c.reason}" for c in bad))


@boards.command("trust", epilog=EXIT_CODES)
@click.argument("names", nargs=-1, required=True)
@boards_file_option()
def boards_trust(names: tuple[str, ...], boards_file: Path | None) -> None:
    """Fetch the host key of boards NAMES, show its fingerprint and record it in their
    known_hosts (under the name ssh checks: the ssh config's HostName and the port).
    A key that differs from the recorded one is refused."""
    inv = load_inventory(boards_file)
    for board in resolve_boards(inv, list(names)):
        if board.host is None:
            raise UserError(f"board {board.name!r} is this machine: it has no host key to trust")
        try:
            fp, added = trust_host_key(board)
        except RemoteError as exc:
            raise UserError(f"board {board.name!r}: cannot fetch its host key: {exc}") from None
        verb = "recorded in" if added else "already in"
        click.echo(f"board {board.name!r}: host key {fp} ({verb} {known_hosts_path(board)})")


@main.group(epilog=EXIT_CODES)
def farm() -> None:
    """A board farm on this machine: real OpenSSH sshd servers on 127.0.0.x, to try
    the SSH path without hardware. As root with cgroup v2 or v1, each board gets its own
    CPU quota and memory limit (a "pi-like" board has half a core and 512 MiB)."""


farm_dir_option = click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Farm state folder (keys, workdirs, boards file) [default: ~/.cache/edgebench/farm].",
)


@farm.command("up", epilog=EXIT_CODES)
@click.option("--boards", "n", default=3, show_default=True, type=click.IntRange(1, 50), help="Number of boards.")
@click.option("--no-limits", is_flag=True, help="Do not set CPU/memory limits even when cgroups allow it.")
@farm_dir_option
@json_option
def farm_up_cmd(n: int, no_limits: bool, root: Path | None, as_json: bool) -> None:
    """Start N sshd boards (profiles cycle full, pi-like, mid, tiny) and write a ready boards file."""
    f = farm_up(root, n, limits=not no_limits)
    if as_json:
        print_json(
            {
                "root": str(f.root),
                "boards_file": str(f.boards_file),
                "limits": f.limits,
                "limits_note": f.limits_note,
                "boards": [m.__dict__ for m in f.members],
            }
        )
        return
    con = console()
    con.print(farm_table(f.members))
    con.print(("limits: " if f.limits else "[yellow]cannot limit boards[/yellow]: ") + f.limits_note)
    con.print(
        f"boards file: {f.boards_file}\n  export EDGEBENCH_BOARDS={f.boards_file}\n"
        f"  edgebench boards check\n  edgebench farm down{'' if root is None else f' --dir {f.root}'}"
    )


@farm.command("down", epilog=EXIT_CODES)
@farm_dir_option
@json_option
def farm_down_cmd(root: Path | None, as_json: bool) -> None:
    """Stop the farm: kill its sshd servers and sessions, remove its cgroups and folder."""
    stopped = farm_down(root)
    if as_json:
        print_json({"stopped": stopped})
        return
    click.echo(f"stopped {len(stopped)} board(s): {', '.join(stopped)}")
