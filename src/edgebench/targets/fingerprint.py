"""Board fingerprints and ``boards check``: what a board is, and whether it is fit to run jobs.

The board probe is the agent's own (``agent.pyz --probe``, see `edgebench.agent.probe`):
the agent archive is shipped to the board like for a run and prints the fingerprint — arch,
CPU model, cores, memory, OS, Python, numpy, each runtime's version (and ONNX Runtime's
providers), CPU governor and frequency, temperature, and the cgroup CPU quota / memory
limit where one applies. ``check_boards`` marks each board ready, unreachable or unfit,
with the reason, and records the fingerprints.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from edgebench.agent.build import agent_path, agent_sha256
from edgebench.errors import BoardUnreachable, EdgebenchError, RemoteError
from edgebench.fsutil import write_json_atomic
from edgebench.targets.board import Board
from edgebench.targets.deploy import deploy
from edgebench.targets.driver import Driver, check_python
from edgebench.targets.group import for_each_board
from edgebench.targets.remote import agent_argv

FINGERPRINTS = "fingerprints.json"


class CheckStatus(StrEnum):
    """What ``boards check`` found."""

    READY = "ready"
    UNREACHABLE = "unreachable"
    UNFIT = "unfit"


READY, UNREACHABLE, UNFIT = CheckStatus.READY, CheckStatus.UNREACHABLE, CheckStatus.UNFIT


@dataclass(frozen=True)
class BoardCheck:
    """The outcome of checking one board; ``checked`` is when (ISO time), once recorded."""

    name: str
    status: CheckStatus
    reason: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)  # the agent's JSON, as printed
    checked: str | None = None

    def to_json(self) -> dict[str, object]:
        """Plain data for JSON output and the fingerprints file."""
        out: dict[str, object] = {
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason,
            "fingerprint": self.fingerprint,
        }
        if self.checked is not None:
            out["checked"] = self.checked
        return out

    @classmethod
    def from_json(cls, name: str, raw: object) -> BoardCheck | None:
        """A recorded check, or ``None`` if ``raw`` is not one."""
        if not isinstance(raw, dict):
            return None
        try:
            status = CheckStatus(str(raw.get("status")))
        except ValueError:
            return None
        fp = raw.get("fingerprint")
        checked = raw.get("checked")
        return cls(
            name,
            status,
            str(raw.get("reason") or ""),
            fp if isinstance(fp, dict) else {},
            str(checked) if checked is not None else None,
        )


def probe(driver: Driver, timeout: float = 60.0) -> dict[str, Any]:
    """Ship the agent to the board, run it in probe mode and return the fingerprint.

    Raises:
        RemoteError: the board's Python is missing or the probe failed.
    """
    board = driver.board
    digest = agent_sha256()
    agent = deploy(driver, agent_path(), digest)
    res = driver.run(agent_argv(board.python, agent, digest, "--probe", json.dumps(list(board.runtimes))), timeout)
    if res.exit_code != 0:
        detail = (res.stderr.strip().splitlines() or [f"exit {res.exit_code}"])[-1]
        check_python(driver)  # a Python too old to run the agent, said as such
        if res.exit_code in (126, 127):
            msg = (
                f"python {board.python!r} is not on the board ({detail}): set python in boards.toml to its interpreter"
            )
        else:
            msg = f"python {board.python!r} failed to run the probe ({detail})"
        raise RemoteError(board.name, res.command[:80] + " ...", res.stderr, msg)
    try:
        fp = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        fp = None
    if not isinstance(fp, dict):
        raise RemoteError(board.name, "probe", res.stdout + res.stderr, "the probe printed no fingerprint")
    return fp


def check_boards(
    boards: Sequence[Board],
    *,
    timeout: float = 60.0,
    on_done: Callable[[str, Any], None] | None = None,
    connect_retries: int = 2,
) -> list[BoardCheck]:
    """Connect to each board in parallel, probe it, and judge it ready / unreachable / unfit."""
    outcomes = for_each_board(
        boards, lambda d: probe(d, timeout), lock=False, connect_retries=connect_retries, backoff_s=0.3, on_done=on_done
    )
    checks: list[BoardCheck] = []
    for board in boards:
        out = outcomes[board.name]
        if isinstance(out, BoardUnreachable):
            # the status already says "unreachable": the reason starts with the cause
            checks.append(BoardCheck(board.name, UNREACHABLE, _reason(out).removeprefix("unreachable: ")))
        elif isinstance(out, EdgebenchError):
            checks.append(BoardCheck(board.name, UNFIT, _reason(out)))
        elif isinstance(out, Exception):
            checks.append(BoardCheck(board.name, UNREACHABLE, f"{type(out).__name__}: {out}"))
        else:
            problems = list(out.pop("problems", []))
            checks.append(BoardCheck(board.name, UNFIT if problems else READY, "; ".join(problems), out))
    return checks


def _reason(exc: Exception) -> str:
    """The message without the board prefix and the command suffix."""
    text = str(exc)
    if isinstance(exc, RemoteError):
        text = text.removeprefix(f"{exc.board}: ")
        text = text.split(" (command: ")[0]
    return text


def fingerprints_path(boards_file: Path) -> Path:
    """Where fingerprints recorded by ``boards check`` live: beside the boards file."""
    return boards_file.parent / FINGERPRINTS


def load_fingerprints(path: Path) -> dict[str, BoardCheck]:
    """Recorded checks by board name (empty if none; unreadable entries are skipped)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    checks = {name: BoardCheck.from_json(name, raw) for name, raw in data.items()}
    return {name: c for name, c in checks.items() if c is not None}


def record_checks(path: Path, checks: Sequence[BoardCheck], when: str) -> None:
    """Merge ``checks`` into the fingerprints file (atomically)."""
    recorded = load_fingerprints(path)
    for c in checks:
        recorded[c.name] = dataclasses.replace(c, checked=when)
    if path.parent.exists() and os.access(path.parent, os.W_OK):
        write_json_atomic(path, {name: c.to_json() for name, c in recorded.items()})
