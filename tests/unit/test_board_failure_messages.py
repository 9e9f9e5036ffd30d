"""A board that does not answer is one line in edgebench's words; a recorded failure always has a kind and a message.

No sockets: the SSH connection is a stand-in that raises what fabric/invoke raise.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from invoke.exceptions import CommandTimedOut
from invoke.runners import Result

from edgebench.bench import repeats
from edgebench.bench.repeats import Planned, measure_interleaved
from edgebench.bench.session import Case, EdgeSession
from edgebench.bench.settings import RunSettings
from edgebench.compress.variant import Variant
from edgebench.errors import BoardUnreachable
from edgebench.model import Manifest
from edgebench.targets.board import Board
from edgebench.targets.ssh import SSHDriver

PI4 = Board(name="pi4", host="10.0.0.2", workdir="/w")


class HungConnection:
    """A fabric connection whose commands never complete: invoke gives up after the timeout."""

    is_connected = True

    def __init__(self, raises: Exception | None = None) -> None:
        self.raises = raises

    def run(self, script: str, *, timeout: float, **kw: Any) -> Any:
        raise self.raises or CommandTimedOut(Result(stdout="", command=script), timeout)

    def close(self) -> None:
        self.is_connected = False


def hung_driver(raises: Exception | None = None) -> SSHDriver:
    d = SSHDriver(PI4)
    d._conn = HungConnection(raises)
    return d


def test_a_command_that_never_completes_names_the_board_the_step_and_the_fix() -> None:
    with pytest.raises(BoardUnreachable) as info:
        hung_driver().exists("cache/x")
    assert str(info.value) == (
        "pi4: the board did not answer within 30 s while looking for /w/cache/x: check that it is up "
        "(`edgebench boards check pi4`) (command: test -f /w/cache/x)"
    )
    assert info.value.output.startswith("Command did not complete within 30")  # invoke's words: the log


def test_a_channel_that_never_opens_is_a_board_that_did_not_answer() -> None:
    from paramiko import SSHException

    d = hung_driver(SSHException("Timeout opening channel."))
    d.board = Board(name="pi4", host="10.0.0.2", workdir="/w", connect_timeout=2)
    with pytest.raises(BoardUnreachable) as info:
        d.exists("x")
    assert "pi4: the board did not answer within 6 s while looking for /w/x: check that it is up" in str(info.value)
    assert not d.connected  # dropped: the next command connects again


def _variant(name: str) -> Variant:
    manifest = Manifest(model="m", variant=name, format="onnx", artifact="model.onnx", sha256="a" * 64, bytes=100)
    return Variant(Path("/nowhere") / name, manifest)


@pytest.mark.parametrize("answer", [{}, {"ok": False}, {"ok": False, "error": {"kind": "", "message": ""}}])
def test_a_failed_process_always_has_a_kind_and_a_message(
    monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]
) -> None:
    monkeypatch.setattr(repeats, "deploy_jobs", lambda *a, **kw: (["first"], ["later"]))
    monkeypatch.setattr(repeats, "run_agent", lambda *a, **kw: answer)  # e.g. a replaced agent.py
    driver: Any = SimpleNamespace(board=Board(name="pi4", runtimes=("onnxruntime",)))
    (m,) = measure_interleaved(driver, [Planned(_variant("fp32"))], RunSettings(repeats=2))
    assert not m.ok and m.error is not None
    assert m.error.kind == "malformed_result" and "pi4's agent answered a malformed result" in m.error.message
    assert m.error.process == 1
    assert repeats._in_process(None, 2).kind and repeats._in_process(None, 2).message


def test_a_board_failure_without_a_message_still_says_something() -> None:
    m = EdgeSession._failed(Case(PI4, _variant("fp32")), EOFError())
    assert m.error is not None and (m.error.kind, m.error.message) == ("EOFError", "EOFError without a message")
