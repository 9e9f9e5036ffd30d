"""edgebench nightly: config errors and the lock (the full job runs in tests/integration)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.errors import NightlyBusy
from edgebench.workflows.nightly import load_config, nightly_lock


def write(tmp_path: Path, body: str) -> Path:
    (tmp_path / "recipe.toml").write_text("")
    p = tmp_path / "nightly.toml"
    p.write_text(body)
    return p


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        ('[nightly]\nrecipe = "recipe.toml"\n', "[nightly] field 'boards' is missing"),
        ('[nightly]\nboards = []\nrecipe = "recipe.toml"\n', "field 'boards' must list at least one board"),
        ('[nightly]\nboards = ["local"]\n', "field 'recipe' or 'variants' must be given"),
        ('[nightly]\nboards = ["local"]\nrecipe = "nope.toml"\n', "names "),
        (
            '[nightly]\nboards = ["local"]\nrecipe = "recipe.toml"\nbudget = "b.toml"\n',
            "field 'budget' is unknown; valid",
        ),
        ("boards = 1\n", "[nightly] must be a table"),
    ],
)
def test_bad_config_is_one_line_exit_1(tmp_path: Path, body: str, msg: str) -> None:
    cfg = write(tmp_path, body)
    res = CliRunner().invoke(main, ["nightly", str(cfg), "--results", str(tmp_path / "r")])
    assert res.exit_code == 1, res.output
    assert msg in res.stderr and str(cfg) in res.stderr
    assert not (tmp_path / "r" / "runs").exists()  # nothing started


def test_missing_config(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["nightly", str(tmp_path / "none.toml")])
    assert res.exit_code == 1 and "none.toml does not exist" in res.stderr


def _hold(results: str, ready: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event) -> None:
    with nightly_lock(Path(results)):
        ready.set()
        stop.wait(30)


def test_two_nightlies_never_overlap(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[nightly]\nboards = ["local"]\nrecipe = "recipe.toml"\n')
    assert load_config(cfg).boards == ["local"]
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path / "r"), ready, stop))
    holder.start()
    try:
        assert ready.wait(10)
        busy = rf"another nightly is running on {tmp_path / 'r'} \(pid {holder.pid}\)"
        with pytest.raises(NightlyBusy, match=busy), nightly_lock(tmp_path / "r"):
            pass
    finally:
        stop.set()
        holder.join(10)
    with nightly_lock(tmp_path / "r"):  # released when the holder ended
        pass
