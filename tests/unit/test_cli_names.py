"""One name per concept across commands (issue 18, item 8).

The boards file is ``--boards-file``, the variants folder ``--variants``, JSON ``--json``,
and ``--format`` has the same spellings everywhere (``md`` = markdown, ``text`` = table).
Old names still work, hidden from ``--help``, and say their new name in one line on
stderr. Every error, click's usage errors included, starts with ``error:``. Output that is
not a terminal is 80 columns wide unless ``$COLUMNS`` says otherwise.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from edgebench.cli import compress as compress_cli
from edgebench.cli import main
from edgebench.cli import results as results_cli
from edgebench.cli import run as run_cli
from edgebench.cli.common import OldName
from edgebench.render.widths import PLAIN_WIDTH, plain_width

RUNS = Path(__file__).parent / "data" / "results_runs"
NO_COLUMNS: dict[str, str | None] = {"COLUMNS": None}


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="edgebench", env=NO_COLUMNS if env is None else env)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "runs"
    folder.mkdir(parents=True)
    for f in RUNS.glob("*.json"):
        shutil.copy(f, folder / f.name)
    return tmp_path / "results"


def commands(group: click.Group = main, path: str = "edgebench") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from commands(cmd, f"{path} {name}")
        else:
            yield f"{path} {name}", cmd


def shown(cmd: click.Command) -> set[str]:
    """The option names ``--help`` shows."""
    return {o for p in cmd.params if isinstance(p, click.Option) and not p.hidden for o in p.opts}


# -- the audit: every command, one name per concept ---------------------------------------------------------


def test_no_command_shows_an_old_name() -> None:
    for path, cmd in commands():
        assert not shown(cmd) & {"--inventory", "--root", "--out", "--min-effect"}, path


def test_the_boards_file_is_boards_file_wherever_a_command_reads_it() -> None:
    reads = {path for path, cmd in commands() if "--boards-file" in shown(cmd)}
    assert reads == {
        "edgebench boards add", "edgebench boards check", "edgebench boards list", "edgebench boards remove",
        "edgebench boards trust", "edgebench choose", "edgebench compare", "edgebench profile", "edgebench run",
    }  # fmt: skip
    for path, cmd in commands():
        old = {p.old: p.new for p in cmd.params if isinstance(p, OldName)}
        assert ("--inventory" in old) == (path in reads), path
        assert old.get("--inventory", "--boards-file") == "--boards-file"


def test_the_variants_folder_is_variants_everywhere() -> None:
    takes = {path for path, cmd in commands() if "--variants" in shown(cmd)}
    assert {"edgebench run", "edgebench profile", "edgebench compress", "edgebench variants"} <= takes


def test_every_format_option_has_the_same_spellings_and_json_is_the_json_flag() -> None:
    formats = {}
    for path, cmd in commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and "--format" in p.opts:
                assert isinstance(p.type, click.Choice), path
                formats[path] = list(p.type.choices)
                assert "--json" in shown(cmd), path  # JSON is --json, on every command with a --format
                assert "md: markdown" in (p.help or "") and "text: table" in (p.help or ""), path
    assert formats == {
        "edgebench compare": ["table", "markdown"],
        "edgebench profile": ["table", "markdown"],
        "edgebench report": ["table", "markdown", "html"],
    }


# -- old names still work, with one deprecation line --------------------------------------------------------


def deprecation(r: Result, old: str, new: str) -> None:
    warned = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert warned == [f"warning: {old} is deprecated, use {new} (the old name still works for now)"], r.stderr


def test_variants_root_is_variants(results: Path) -> None:  # any folder: it lists what it finds
    new = invoke("variants", "--variants", str(results), "--json")
    old = invoke("variants", "--root", str(results), "--json")
    assert new.exit_code == old.exit_code == 0 and new.stderr == ""
    assert json.loads(old.stdout) == json.loads(new.stdout) and json.loads(old.stdout)["root"] == str(results)
    deprecation(old, "--root", "--variants")


def test_compress_out_is_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path | None] = []
    monkeypatch.setattr(compress_cli, "run_compress", lambda recipe, out, *a: seen.append(out))
    recipe = tmp_path / "r.toml"
    assert invoke("compress", str(recipe), "--variants", str(tmp_path / "v1")).exit_code == 0
    old = invoke("compress", str(recipe), "--out", str(tmp_path / "v2"))
    assert old.exit_code == 0 and seen == [tmp_path / "v1", tmp_path / "v2"]
    deprecation(old, "--out", "--variants")


def test_run_inventory_is_boards_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def fake(**kwargs: Any) -> Any:
        seen.append(kwargs["inventory"])
        raise SystemExit(0)

    monkeypatch.setattr(run_cli, "run_harness", fake)
    boards = tmp_path / "boards.toml"
    assert invoke("run", "--variants", str(tmp_path), "--boards-file", str(boards)).exit_code == 0
    old = invoke("run", "--variants", str(tmp_path), "--inventory", str(boards))
    assert old.exit_code == 0 and seen == [boards, boards]
    deprecation(old, "--inventory", "--boards-file")


def test_choose_inventory_is_boards_file(results: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    old = invoke("choose", "--model", "digits_cnn", "--results", str(results), "--inventory", str(missing))
    new = invoke("choose", "--model", "digits_cnn", "--results", str(results), "--boards-file", str(missing))
    assert old.exit_code == new.exit_code == 1
    assert str(missing) in new.stderr and old.stderr.splitlines()[1:] == new.stderr.splitlines()  # the same file
    deprecation(old, "--inventory", "--boards-file")


def test_compare_min_effect_is_margin(results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    margins: list[float] = []
    real = results_cli.compare_runs

    def spy(*args: Any, **kwargs: Any) -> Any:
        margins.append(kwargs["margin"])
        return real(*args, **kwargs)

    monkeypatch.setattr(results_cli, "compare_runs", spy)
    base = ["compare", "latest~1", "latest", "--results", str(results), "--json"]
    assert invoke(*base, "--margin", "7").exit_code == 0
    old = invoke(*base, "--min-effect", "7")
    assert old.exit_code == 0 and margins == [0.07, 0.07]
    deprecation(old, "--min-effect", "--margin")


def test_format_json_is_json(results: Path) -> None:
    new = invoke("report", "--results", str(results), "--json")
    old = invoke("report", "--results", str(results), "--format", "json")
    assert new.exit_code == old.exit_code == 0 and new.stderr == ""
    assert json.loads(old.stdout) == json.loads(new.stdout)
    deprecation(old, "--format json", "--json")


@pytest.mark.parametrize(
    ("argv", "old"),
    [
        (["variants", "--root", "a", "--variants", "b"], "--root"),
        (["run", "--variants", "v", "--inventory", "a", "--boards-file", "b"], "--inventory"),
        (["compare", "a", "b", "--margin", "2", "--min-effect", "3"], "--min-effect"),
    ],
)
def test_old_and_new_name_together_is_a_usage_error(tmp_path: Path, argv: list[str], old: str) -> None:
    r = invoke(*argv, "--results", str(tmp_path / "results")) if argv[0] != "variants" else invoke(*argv)
    assert r.exit_code == 2 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith("error: give --") and f"({old} is its old name)" in line
    assert not (tmp_path / "results").exists()


def test_a_mistyped_old_name_suggests_the_new_one() -> None:
    r = invoke("run", "--variants", "v", "--inventry", "x.toml")
    assert r.exit_code == 2 and r.stderr.startswith("error: No such option: --inventry (did you mean --boards-file?)")


# -- --format spellings ---------------------------------------------------------------------------------------


def test_report_format_md_stays_markdown(results: Path) -> None:
    md = invoke("report", "--results", str(results), "--format", "md")
    full = invoke("report", "--results", str(results), "--format", "markdown")
    assert md.exit_code == 0 and md.stdout.startswith("## edgebench run") and md.stdout == full.stdout
    assert md.stderr == ""  # md is a spelling, not an old name


def test_format_text_is_the_table(results: Path) -> None:
    text = invoke("report", "--results", str(results), "--format", "TEXT")
    table = invoke("report", "--results", str(results))
    assert text.exit_code == 0 and text.stdout == table.stdout and "digits_cnn" in text.stdout


def test_profile_takes_md_too(tmp_path: Path) -> None:
    r = invoke("profile", "--results", str(tmp_path / "nope"), "--format", "md")
    assert r.exit_code == 1 and "--format" not in r.stderr  # past the option check: no stored profile run


@pytest.mark.parametrize("command", ["report", "compare", "profile"])
def test_an_unknown_format_lists_the_valid_ones_in_one_line(command: str, results: Path) -> None:
    args = ["compare", "a"] if command == "compare" else [command]
    r = invoke(*args, "--results", str(results), "--format", "mdx")
    assert r.exit_code == 2 and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith("error: Invalid value for '--format': 'mdx' is not one of 'table', 'markdown'"), line
    assert "'json'" not in line and line.endswith(f"; see `edgebench {command} --help`")


# -- one error prefix -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["rnu"], "error: No such command 'rnu' (did you mean run?); see `edgebench --help`"),
        (
            ["report", "--lats", "3"],
            "error: No such option: --lats (did you mean --last?); see `edgebench report --help`",
        ),
        (["gate"], "error: Missing argument 'BUDGETS'; see `edgebench gate --help`"),
        (["compress"], "error: give a RECIPE (a .toml file) or --list-passes; see `edgebench compress --help`"),
        (["boards", "lst"], "error: No such command 'lst' (did you mean list?); see `edgebench boards --help`"),
        (["compare", "a", "--alpha", "nan"], "error: Invalid value for '--alpha': nan is not a finite number"),
        (["variants", "--variants", "{tmp}/nope"], "error: variants folder {tmp}/nope does not exist"),
    ],
)
def test_every_error_is_one_line_with_one_prefix(tmp_path: Path, argv: list[str], says: str) -> None:
    r = invoke(*[a.format(tmp=tmp_path) for a in argv])
    assert r.exit_code in (1, 2) and r.stdout == ""
    [line] = r.stderr.splitlines()
    assert line.startswith(says.format(tmp=tmp_path)), line
    assert "Error:" not in r.output and "Usage:" not in r.output and "Traceback" not in r.output


# -- width of output that is not a terminal -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "width"),
    [
        ({}, 80),
        ({"COLUMNS": "132"}, 132),
        ({"COLUMNS": " 100 "}, 100),
        ({"COLUMNS": "wide"}, 80),
        ({"COLUMNS": "5"}, 80),
    ],
)
def test_plain_width_is_80_unless_columns_says(environ: dict[str, str], width: int) -> None:
    assert PLAIN_WIDTH == 80 and plain_width(environ) == width


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


def test_piped_report_fits_80_columns_or_columns(results: Path, tmp_path: Path) -> None:
    piped = invoke("report", "--results", str(results))
    assert piped.exit_code == 0 and widest(piped.stdout) <= 80
    assert widest(piped.stdout) > 70  # the table uses the width it has
    wide = invoke("report", "--results", str(results), env={"COLUMNS": "200"})
    assert wide.exit_code == 0 and 80 < widest(wide.stdout) <= 200
    out = tmp_path / "report.txt"
    assert invoke("report", "--results", str(results), "-o", str(out)).exit_code == 0
    assert widest(out.read_text()) <= 80  # a file written with -o: the same width as a pipe
