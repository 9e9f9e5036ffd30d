"""nox sessions: tests, lint, typecheck, demo, perf.

Every session installs the CPU build of torch first (``torch==2.13.0``): an unpinned
torch would pull a several-GB CUDA build.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.default_venv_backend = "venv"
TORCH = "torch==2.13.0"


def install(session: nox.Session, extras: str = "dev,tflite") -> None:
    """Install torch (CPU) and edgebench with the given extras."""
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real runtimes, real sshd boards on loopback)."""
    install(session)
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and format check, and the import contracts (layers, no cycles) in .importlinter."""
    session.install("ruff>=0.5", "import-linter>=2.1")
    session.install("--no-deps", "-e", ".")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py")
    session.run("lint-imports", ".importlinter")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src/edgebench."""
    install(session)
    session.run("mypy", "--strict", "src/edgebench")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The product's front door: `edgebench demo` on the local board."""
    install(session, "dev")
    session.run("edgebench", "demo", *session.posargs)


@nox.session(python="3.11")
def perf(session: nox.Session) -> None:
    """Benchmarks that print figures (ratios measured side by side in one run)."""
    install(session)
    session.run(
        "pytest", "tests/perf", "-s", "-p", "no:cacheprovider", "-o", "python_files=perf_*.py", *session.posargs
    )
