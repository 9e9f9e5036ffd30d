"""`edgebench run` checks its options before anything starts (issue 18, item 3).

An unknown option or a malformed board list is click's usage error: exit 2, one
``error:`` line with "did you mean", and nothing written (no results folder, the harness
never started). pytest's own arguments go after ``--`` and only there. The same board-list
parser serves `profile` and `compare --ab`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from edgebench.cli import main
from edgebench.cli import profile as profile_cli
from edgebench.cli import results as results_cli
from edgebench.cli import run as run_cli
from edgebench.cli.common import comma_list
from edgebench.compress.variant import save_variant


@pytest.fixture
def variants(tmp_path: Path, tiny_onnx: Path) -> Path:
    root = tmp_path / "variants"
    save_variant(
        root / "tiny" / "fp32",
        tiny_onnx,
        {"model": "tiny", "variant": "fp32", "fmt": "onnx", "parent": None, "passes": []},
    )
    return root


class Started(Exception):
    """The harness was reached: the command line was accepted."""


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Replace what `run`, `compare --ab` and `profile` start: record the call and stop there."""
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise Started

    monkeypatch.setattr(run_cli, "run_harness", fake)
    monkeypatch.setattr(results_cli, "run_harness", fake)
    monkeypatch.setattr(profile_cli, "run_profile", fake)
    return calls


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), prog_name="edgebench")


def one_error(r: Result) -> str:
    """The one line a refused command prints on stderr, nothing on stdout."""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and r.stdout == "", r.output
    assert lines[0].startswith("error: ") and "Traceback" not in r.output
    return lines[0]


BAD = [
    (["--bords", "local"], "error: No such option: --bords (did you mean --boards?); see `edgebench run --help`"),
    (["--repeat", "2"], "error: No such option: --repeat (did you mean --repeats?); see `edgebench run --help`"),
    (["--boards", "local, farm-2"], "Invalid value for '--boards': ' farm-2' in 'local, farm-2' has whitespace"),
    (["--boards", "local,"], "Invalid value for '--boards': 'local,' ends with a comma (an empty board name after"),
    # the shell's split of `--boards local, farm-2` (unquoted): the first word ends with the comma
    (["--boards", "local,", "farm-2"], "Invalid value for '--boards': 'local,' ends with a comma"),
    (["--boards", "local,,farm-2"], "'local,,farm-2' has an empty board name between 'local' and 'farm-2'"),
    (["--boards", ",local"], "',local' has an empty board name before 'local'"),
    (["--boards", "local,local"], "'local' is named twice in 'local,local'"),
    (["--boards", ""], "'' names no board"),
    (["--boards", " "], "' ' names no board"),
    (["--models", "tiny,"], "Invalid value for '--models': 'tiny,' ends with a comma (an empty model name"),
    (["--benchmark-compare=0001"], "No such option: --benchmark-compare (pytest's own arguments go after `--`"),
    (["--benchmark-compare-fail=median:5%"], "--benchmark-compare-fail (pytest's own arguments go after `--`"),
    (["extra"], "unexpected argument 'extra' (pytest's own arguments go after `--`"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_a_bad_run_command_line_is_a_usage_error_before_anything_starts(
    tmp_path: Path, variants: Path, harness: list[dict[str, Any]], args: list[str], message: str
) -> None:
    results = tmp_path / "results"
    r = invoke("run", "--variants", str(variants), "--results", str(results), *args)
    assert r.exit_code == 2, r.output
    line = one_error(r)
    assert message in line, line
    assert line.endswith("; see `edgebench run --help`"), line
    assert "unrecognized arguments" not in r.output  # never pytest's complaint
    assert harness == [] and not results.exists()  # nothing started, nothing written


def test_an_unknown_board_stays_the_one_line_inventory_error(tmp_path: Path, variants: Path) -> None:
    results = tmp_path / "results"
    r = invoke("run", "--variants", str(variants), "--results", str(results), "--boards", "locl")
    assert r.exit_code == 1
    line = one_error(r)
    assert line.startswith("error: unknown board 'locl' (did you mean 'local'?)"), line
    assert not results.exists()


def test_arguments_after_the_double_dash_reach_the_harness_untouched(
    tmp_path: Path, variants: Path, harness: list[dict[str, Any]]
) -> None:
    extra = ["--benchmark-compare=0001", "--benchmark-compare-fail=median:5%", "-k", "tiny", "stray"]
    r = invoke("run", "--variants", str(variants), "--boards", "local", "--", *extra)
    assert isinstance(r.exception, Started), r.output
    [call] = harness
    assert call["extra"] == tuple(extra) and call["boards"] == ["local"] and call["models"] is None


def test_a_good_board_list_is_passed_in_order(tmp_path: Path, variants: Path, harness: list[dict[str, Any]]) -> None:
    r = invoke("run", "--variants", str(variants), "--boards", "pi4,local,farm-2", "--models", "b,a")
    assert isinstance(r.exception, Started), r.output
    assert harness[0]["boards"] == ["pi4", "local", "farm-2"] and harness[0]["models"] == ["b", "a"]
    assert harness[0]["extra"] == ()


def test_run_usage_shows_where_pytest_arguments_go() -> None:
    r = invoke("run", "--help")
    assert r.exit_code == 0 and "Usage: edgebench run [OPTIONS] [-- PYTEST_ARGS...]" in r.output


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", "--ab", "a.onnx", "b.onnx", "--boards", "local,"],
        ["profile", "--variants", "{variants}", "--boards", "local, farm-2"],
    ],
)
def test_profile_and_compare_ab_parse_boards_the_same_way(
    tmp_path: Path, variants: Path, harness: list[dict[str, Any]], argv: list[str]
) -> None:
    results = tmp_path / "results"
    r = invoke(*[a.format(variants=variants) for a in argv], "--results", str(results))
    assert r.exit_code == 2, r.output
    assert "Invalid value for '--boards':" in one_error(r)
    assert harness == [] and not results.exists()


@pytest.mark.parametrize(
    ("value", "names"),
    [("local", ["local"]), ("local,pi4", ["local", "pi4"]), ("b,a,c", ["b", "a", "c"]), ("x.y-z_1", ["x.y-z_1"])],
)
def test_comma_list_keeps_the_order(value: str, names: list[str]) -> None:
    assert comma_list(value) == names


@pytest.mark.parametrize("value", ["", ",", "a,", ",a", "a,,b", "a, b", "a ,b", "a\tb", "a,b,a"])
def test_comma_list_refuses_a_malformed_list(value: str) -> None:
    with pytest.raises(click.BadParameter):
        comma_list(value)
