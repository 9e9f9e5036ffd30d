"""Run one function on many boards at once (fabric group style): ``{board: result | exception}``.

Each board gets one connection for the whole call, its own thread (a farm is IO-bound)
and its lock for as long as the function runs. A board that fails — unreachable, busy,
connection lost, or the function raised — is recorded as its exception; the others
finish and are kept.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from edgebench.targets.board import Board
from edgebench.targets.driver import Driver
from edgebench.targets.registry import driver_for

T = TypeVar("T")


def for_each_board(
    boards: Sequence[Board],
    fn: Callable[[Driver], T],
    *,
    lock_timeout: float = 600.0,
    lock: bool = True,
    connect_retries: int = 3,
    backoff_s: float = 0.5,
    max_workers: int | None = None,
    driver_factory: Callable[[Board], Driver] | None = None,
    on_done: Callable[[str, T | Exception], None] | None = None,
) -> dict[str, T | Exception]:
    """Call ``fn(driver)`` on every board in parallel threads.

    Args:
        boards: the boards (names must be unique).
        fn: the work for one board; it gets an active driver (and the board's lock).
        lock_timeout: seconds to wait for a board's lock before it counts as busy.
        lock: take the board lock around ``fn`` (``boards check`` does not need it).
        connect_retries: connection attempts per board (connection-level failures only),
            with exponential backoff starting at ``backoff_s``.
        backoff_s: first wait between connection attempts.
        max_workers: threads; default one per board.
        driver_factory: builds a driver for a board; default `driver_for`.
        on_done: called as each board finishes (from its thread), e.g. to advance a progress bar.

    Returns:
        ``{board name: fn's result or the exception}``, in the order of ``boards``.
    """
    names = [b.name for b in boards]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate board names in {names}")

    def factory(board: Board) -> Driver:
        if driver_factory is not None:
            return driver_factory(board)
        return driver_for(board, connect_retries=connect_retries, backoff_s=backoff_s)

    done_lock = threading.Lock()

    def one(board: Board) -> T | Exception:
        driver: Driver | None = None
        outcome: T | Exception
        try:
            driver = factory(board)
            driver.activate()
            with driver.lock(lock_timeout) if lock else contextlib.nullcontext():
                outcome = fn(driver)
        except Exception as exc:  # one board's failure is data, not a crash
            outcome = exc
        finally:
            if driver is not None:  # deactivated even when activate failed half-way
                with contextlib.suppress(Exception):
                    driver.deactivate()
        if on_done is not None:
            with done_lock:
                on_done(board.name, outcome)
        return outcome

    if not boards:
        return {}
    with ThreadPoolExecutor(max_workers=max_workers or len(boards), thread_name_prefix="edgebench-board") as pool:
        futures = [pool.submit(one, b) for b in boards]
        return {b.name: f.result() for b, f in zip(boards, futures, strict=True)}
