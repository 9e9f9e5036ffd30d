"""Issue 18's bad input: `--format md`, a nightly file with a misspelt table, README commands pointed at a
missing file. Each: one line naming the fix, the exit code, nothing written (the results folder untouched)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main

RUNS = Path(__file__).parent / "data" / "results_runs"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "runs"
    folder.mkdir(parents=True)
    for f in RUNS.glob("*.json"):
        shutil.copy(f, folder / f.name)
    return tmp_path / "results"


def test_report_and_compare_take_md_for_markdown(results: Path) -> None:
    before = tree(results)
    md = CliRunner().invoke(main, ["report", "--results", str(results), "--format", "md"])
    full = CliRunner().invoke(main, ["report", "--results", str(results), "--format", "markdown"])
    assert md.exit_code == 0 and md.output.startswith("## edgebench run") and md.output == full.output
    cmp = CliRunner().invoke(main, ["compare", "latest~1", "latest", "--results", str(results), "--format", "MD"])
    assert cmp.exit_code == 0 and cmp.output.startswith("#")
    assert tree(results) == before  # read-only commands write nothing


def test_an_unknown_format_is_a_usage_error_listing_the_valid_ones(results: Path) -> None:
    before = tree(results)
    got = CliRunner().invoke(main, ["report", "--results", str(results), "--format", "mdx"])
    assert got.exit_code == 2
    [line] = [ln for ln in got.output.splitlines() if ln.startswith("error:")]
    assert "'mdx' is not one of 'table', 'markdown', 'html';" in line
    assert tree(results) == before


NIGHTLY = '[nightly]\nboards = ["local"]\nvariants = "variants"\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "[nigthly.settings]\nmin_time_s = 2.0\n",
            "unknown table [nigthly.settings]: did you mean [nightly.settings]?",
        ),
        (
            "[nightly-settings]\nmin_time_s = 2.0\n",
            "unknown table [nightly-settings]: did you mean [nightly.settings]?",
        ),
        (
            "[budget]\nmax_p90_ms = 2.0\n",
            "unknown table [budget]: a nightly file holds [nightly] and [nightly.settings]",
        ),
        ("[nightly.setings]\nmin_time_s = 2.0\n", "[nightly] field 'setings' is unknown"),
    ],
)
def test_a_nightly_file_with_an_unknown_table_is_refused(tmp_path: Path, extra: str, message: str) -> None:
    cfg = tmp_path / "nightly.toml"
    cfg.write_text(NIGHTLY + extra)
    got = CliRunner().invoke(main, ["nightly", str(cfg), "--results", str(tmp_path / "results")])
    assert got.exit_code == 1, got.output
    assert got.output.count("\n") == 1 and message in got.output and got.output.startswith("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nightly.toml"]  # nothing written, not even results


def test_a_key_outside_the_nightly_table_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "nightly.toml"
    cfg.write_text("trend_runs = 3\n" + NIGHTLY)
    got = CliRunner().invoke(main, ["nightly", str(cfg), "--results", str(tmp_path / "results")])
    assert got.exit_code == 1 and "key 'trend_runs' is outside any table: put it under [nightly]" in got.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nightly.toml"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compress", "missing.toml"], "missing.toml does not exist"),
        (["gate", "missing.toml"], "missing.toml does not exist"),
        (["nightly", "missing.toml"], "nightly config missing.toml does not exist"),
    ],
)
def test_a_readme_command_pointed_at_a_missing_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()  # as after the README's first commands: the results folder exists
    got = CliRunner().invoke(main, argv)
    assert got.exit_code == 1, got.output
    assert got.output.count("\n") == 1 and got.output.startswith("error: ") and message in got.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["results"]  # nothing written
