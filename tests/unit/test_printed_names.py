"""Names printed in CI logs are escaped: a name with a newline or a control character never forges
a line (a CI ``::error::`` annotation), even if it got past the checks where names enter."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.cli import run as cli_run
from edgebench.model import Measurement, MeasurementError, Run
from edgebench.results import schema
from edgebench.workflows.run import RunOutcome, printable, progress_line, regression_lines

EVIL = "fp32\n::error::x"


def _forged(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("::error::") or ln.startswith("regressed: fake")]


def test_printable_escapes_every_non_printable_character_and_keeps_the_rest() -> None:
    assert printable(EVIL) == "fp32\\n::error::x"
    assert printable("a\rb\x1b[31mc\x00d\te\u2028f") == "a\\rb\\x1b[31mc\\x00d\\te\\u2028f"
    assert printable("local/digits/int8 µ é 数") == "local/digits/int8 µ é 数"


def test_a_progress_line_with_a_forged_name_stays_one_line() -> None:
    line = progress_line({"done": 1, "total": 2, "case": f"local/tiny/{EVIL}\nregressed: fake", "ok": True})
    assert line == "measured local/tiny/fp32\\n::error::x\\nregressed: fake: ok (processes 1/2)"
    assert len(line.splitlines()) == 1


def test_regression_lines_are_escaped() -> None:
    log = "  ERROR: Performance has regressed:\n\ttest_variant[local-tiny-fp32\x1b[2K\x07] - Field 'median' failed\n"
    (line,) = regression_lines(log)
    assert line == "test_variant[local-tiny-fp32\\x1b[2K\\x07] - Field 'median' failed"


def _run_with(failures: tuple[Measurement, ...]) -> Run:
    run = schema.new_run("run", boards=[("local", "local")])
    return schema.finish(dataclasses.replace(run, failures=failures), complete=True)


def test_the_failed_measurements_line_never_forges_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = Measurement("local", "tiny", EVIL, ok=False, error=MeasurementError("x", "y"))
    done = RunOutcome(_run_with((failed,)), None, 1, tmp_path / "x.log")
    monkeypatch.setattr(cli_run, "run_harness", lambda **kw: done)
    out = CliRunner().invoke(main, ["run", "--variants", str(tmp_path), "--results", str(tmp_path / "r")])
    assert out.exit_code == 1
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert errors == ["error: 1 measurement(s) failed (local/tiny/fp32\\n::error::x): see the errors in the run table"]
    assert _forged(out.stderr) == []


def test_the_interrupted_line_never_forges_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = dataclasses.replace(_run_with(()), complete=False, interrupted=f"stopped: {EVIL}")
    done = RunOutcome(run, tmp_path / "run.json", 0, tmp_path / "x.log", signal.SIGINT)
    monkeypatch.setattr(cli_run, "run_harness", lambda **kw: done)
    out = CliRunner().invoke(main, ["run", "--variants", str(tmp_path), "--results", str(tmp_path / "r")])
    assert out.exit_code == 130
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert line.startswith("error: run stopped: fp32\\n::error::x: 0 finished measurement(s)")
    assert _forged(out.stderr) == []
