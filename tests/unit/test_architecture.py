"""The architecture holds: layers point down, no cycles, no function-local imports of edgebench modules."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edgebench.cli.common import EdgebenchGroup
from edgebench.errors import EdgebenchError, RemoteError

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "src" / "edgebench"


def local_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import statement inside a function body."""
    found: list[tuple[int, str]] = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    found.append((node.lineno, "." * node.level + (node.module or "")))
                elif isinstance(node, ast.Import):
                    found.extend((node.lineno, a.name) for a in node.names)
    return sorted(set(found))


def test_no_function_local_imports_of_edgebench_modules() -> None:
    """Function-local imports are for heavy third-party modules only, never to dodge a cycle."""
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {mod}"
        for path in sorted(PKG.rglob("*.py"))
        for line, mod in local_imports(ast.parse(path.read_text(), str(path)))
        if mod.startswith(("edgebench", "."))
    ]
    assert bad == []


def test_local_import_finder_sees_nested_imports() -> None:
    """The checker above would catch a local edgebench import (guards against a checker that finds nothing)."""
    tree = ast.parse("def f():\n    if True:\n        from edgebench.results import store\n    import torch\n")
    assert local_imports(tree) == [(3, "edgebench.results"), (4, "torch")]


@pytest.mark.skipif(
    shutil.which("lint-imports") is None and not (Path(sys.executable).parent / "lint-imports").exists(),
    reason="import-linter is not installed (pip install -e '.[dev]')",
)
def test_import_contracts_hold() -> None:
    """The import-linter contracts in .importlinter (layers, acyclic siblings) are kept."""
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run(
        [str(exe) if exe.exists() else "lint-imports", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_every_edgebench_error_is_one_line_and_exit_1() -> None:
    """Not only UserError: any EdgebenchError reaching the CLI prints one line and exits 1."""

    @click.group(cls=EdgebenchGroup)
    def grp() -> None:
        pass

    @grp.command()
    def boom() -> None:
        raise RemoteError("pi4", "python3 agent.py", "Traceback...\nboom", "the agent crashed\nwith two lines")

    @grp.command()
    def plain() -> None:
        raise EdgebenchError("something went wrong")

    res = CliRunner().invoke(grp, ["boom"])
    assert res.exit_code == 1
    assert res.output.strip().count("\n") == 0
    assert res.output.startswith("error: pi4: the agent crashed with two lines")
    assert "Traceback" not in res.output
    res = CliRunner().invoke(grp, ["plain"])
    assert (res.exit_code, res.output) == (1, "error: something went wrong\n")
