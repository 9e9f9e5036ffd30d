"""edgebench nightly: config errors and the lock (the full job runs in tests/integration)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.bench.settings import RunSettings
from edgebench.cli import main
from edgebench.errors import ConfigError, NightlyBusy
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


SETTINGS = '[nightly]\nboards = ["local"]\nrecipe = "recipe.toml"\n[nightly.settings]\n'


@pytest.mark.parametrize(
    ("line", "msg"),
    [
        ("min_time_s = -1", "[nightly.settings] field 'min_time_s' is -1; it must be >= 0"),
        ("min_tme_s = 2", "[nightly.settings] field 'min_tme_s' is unknown; valid fields: "),
        ('repeats = "3"', "[nightly.settings] field 'repeats' must be an integer, not string"),
        ("min_time_s = nan", "[nightly.settings] field 'min_time_s' is nan: input should be a finite number"),
        ("dims = { h = 0 }", "[nightly.settings.dims] field 'h' is 0; it must be >= 1"),
        ('inputs = { x = "bogus:1" }', "[nightly.settings] input 'x': spec 'bogus:1' is not "),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_file_table_and_key_at_load(tmp_path: Path, line: str, msg: str) -> None:
    cfg = write(tmp_path, SETTINGS + line + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)  # at load: nothing has started
    assert str(info.value).startswith(f"{cfg}: ") and msg in str(info.value) and "\n" not in str(info.value)
    res = CliRunner().invoke(main, ["nightly", str(cfg), "--results", str(tmp_path / "r")])
    assert res.exit_code == 1 and res.stderr.count("\n") == 1 and msg in res.stderr, res.output
    assert not (tmp_path / "r").exists()


def test_the_settings_are_loaded_typed_with_the_paths_resolved(tmp_path: Path) -> None:
    cfg = write(tmp_path, SETTINGS + 'min_time_s = 2\nsustained_s = "10m"\n')
    got = load_config(cfg)
    assert got.settings == RunSettings(min_time_s=2.0, sustained_s=600.0)
    assert got.recipe == tmp_path / "recipe.toml" and got.path == cfg and got.variants is None
    assert load_config(write(tmp_path, SETTINGS)).settings == RunSettings()


def test_missing_config(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["nightly", str(tmp_path / "none.toml")])
    assert res.exit_code == 1 and "none.toml does not exist" in res.stderr


def _hold(results: str, ready: multiprocessing.synchronize.Event, stop: multiprocessing.synchronize.Event) -> None:
    with nightly_lock(Path(results)):
        ready.set()
        stop.wait(30)


def test_two_nightlies_never_overlap(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[nightly]\nboards = ["local"]\nrecipe = "recipe.toml"\n')
    assert load_config(cfg).boards == ("local",)
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
