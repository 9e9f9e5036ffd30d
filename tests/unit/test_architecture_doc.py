"""docs/architecture.md is what a person picking the project up reads first: every module, package
and test file it names must exist, so a rename that forgets the page fails here."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
SRC = ROOT / "src" / "edgebench"


def _exists(name: str) -> bool:
    """A path as the page writes it: from the repository, from ``src/edgebench``, or a file of a package."""
    if any((base / name).exists() for base in (ROOT, SRC, ROOT / "src")):
        return True
    if any((pkg / name).exists() for pkg in SRC.iterdir() if pkg.is_dir()):  # `pg/` in the results paragraph
        return True
    return "/" not in name and any(SRC.rglob(name))  # a bare file name in a row that names its package


def named_paths(text: str) -> list[str]:
    """The ``.py`` files and ``pkg/`` folders the page names in backticks (placeholders like ``<id>`` left out)."""
    found = []
    for token in re.findall(r"`([^`\s]+)`", text):
        token = token.rstrip(",.;:")
        if "<" in token or token.isupper() or token.startswith(("RESULTS", "~", "$")):
            continue
        if token.endswith(".py") or re.fullmatch(r"[a-z_]+/", token):
            found.append(token)
    return found


def named_modules(text: str) -> list[str]:
    """The dotted ``edgebench.x.y`` names in backticks, without a trailing attribute."""
    return sorted(set(re.findall(r"`(edgebench(?:\.[a-z_]+)+)", text)))


def test_the_page_names_files_at_all() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert len(named_paths(text)) > 40 and len(named_modules(text)) > 3  # the extractor finds what is there


def test_every_file_and_package_the_page_names_exists() -> None:
    missing = [p for p in named_paths(DOC.read_text(encoding="utf-8")) if not _exists(p)]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_module_the_page_names_imports() -> None:
    def found(name: str) -> bool:
        parts = name.split(".")
        for n in range(len(parts), 1, -1):  # `edgebench.agent.paired_job`: a module and one of its names
            try:
                if importlib.util.find_spec(".".join(parts[:n])) is not None:
                    return True
            except ModuleNotFoundError:
                continue
        return False

    missing = [m for m in named_modules(DOC.read_text(encoding="utf-8")) if not found(m)]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
