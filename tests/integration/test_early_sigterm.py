"""Issue 19, item 7: SIGTERM at any moment of `edgebench` is one line and exit 143, as Ctrl-C is 130.

Before, a SIGTERM about 1.7 s after `edgebench run` started (the commands still loading)
killed it silently (exit -15, no line). The handler is now installed before the command
modules load: each test waits until the process catches SIGTERM (``SigCgt`` in
``/proc/PID/status``), never for a time, then signals at a chosen moment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def _catches_sigterm(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & SIGTERM_BIT)


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def _variants_args(tmp: Path) -> list[str]:
    return ["run", "--variants", str(tmp / "missing-variants"), "--results", str(tmp / "results")]


def _check_one_line(proc: subprocess.CompletedProcess[str] | subprocess.Popen[str], err: str, tmp: Path) -> None:
    assert proc.returncode == 143, err[-2000:]
    assert _lines(err) == ["error: interrupted by SIGTERM"], err[-2000:]
    assert not (tmp / "results").exists()  # nothing written, nothing half-written


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_sigterm_as_soon_as_it_is_caught_is_one_line_and_143(tmp_path: Path) -> None:
    """The real CLI, signalled the moment its handler is in (the commands are still loading)."""
    proc = subprocess.Popen(
        [EDGEBENCH, *_variants_args(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        while not _catches_sigterm(proc.pid):
            assert proc.poll() is None, proc.communicate()[1][-2000:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    _check_one_line(proc, err, tmp_path)


# The moments: each script signals itself at one point of the CLI's start, deterministically.
LOADING = """
    import importlib.abc, os, signal, sys
    class Hit(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "edgebench.cli.compress":  # the first command module: the commands are loading
                os.kill(os.getpid(), signal.SIGTERM)
            return None
    sys.meta_path.insert(0, Hit())
    from edgebench.cli import main
"""
PARSING = """
    import os, signal, click
    from edgebench.cli import main
    parse = click.Group.parse_args
    def hit(self, ctx, args):
        os.kill(os.getpid(), signal.SIGTERM)
        return parse(self, ctx, args)
    click.Group.parse_args = hit
"""
RUNNING = """
    import os, signal
    from edgebench.cli import main
    import edgebench.cli.run
    def hit(**kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("not reached")
    edgebench.cli.run.run_harness = hit
"""


@pytest.mark.parametrize("moment", [LOADING, PARSING, RUNNING], ids=["loading", "parsing", "running"])
def test_sigterm_at_each_moment_of_the_start_is_one_line_and_143(tmp_path: Path, moment: str) -> None:
    script = textwrap.dedent(moment) + "main(prog_name='edgebench')\n"
    res = subprocess.run(
        [sys.executable, "-c", script, *_variants_args(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    _check_one_line(res, res.stderr, tmp_path)


def test_sigint_while_loading_is_still_one_line_and_130(tmp_path: Path) -> None:
    script = textwrap.dedent(LOADING.replace("SIGTERM", "SIGINT")) + "main(prog_name='edgebench')\n"
    res = subprocess.run(
        [sys.executable, "-c", script, *_variants_args(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 130 and _lines(res.stderr) == ["error: interrupted by SIGINT"], res.stderr[-2000:]
