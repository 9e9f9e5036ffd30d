"""Every command shows Python warnings as one ``warning:`` line each, once (cli.common.warning_lines)."""

from __future__ import annotations

import warnings

import click
from click.testing import CliRunner

from edgebench.cli.common import EdgebenchGroup


def test_warnings_are_one_line_each_and_said_once() -> None:
    @click.group(cls=EdgebenchGroup)
    def root() -> None:
        pass

    @root.command()
    def read() -> None:
        for _ in range(2):  # the same file read twice (the run, then its trends) is said once
            warnings.warn("runs/a.json: skipped benchmark #0:\n  samples empty", stacklevel=1)
        warnings.warn("runs/b.json: not valid JSON", FutureWarning, stacklevel=1)
        click.echo("done")

    res = CliRunner().invoke(root, ["read"])
    assert res.exit_code == 0 and res.stdout == "done\n"
    assert res.stderr.splitlines() == [
        "warning: runs/a.json: skipped benchmark #0: samples empty",
        "warning: runs/b.json: not valid JSON",
    ]
    again = CliRunner().invoke(root, ["read"])  # a second command in the same process says it again
    assert again.stderr.count("warning: ") == 2
    assert warnings.showwarning.__module__ == "warnings"  # the hook is gone after the command
