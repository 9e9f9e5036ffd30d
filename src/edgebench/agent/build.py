"""The agent as one file: a reproducible zipapp (``agent.pyz``) of this package, built on the host.

``agent_bytes()`` is THE agent: what `edgebench.bench.runner`, `edgebench.bench.profile` and
`edgebench.targets.fingerprint` deploy (`agent_path`), cache on the board by sha256
(`agent_sha256`) and have the board check before every process. Two builds of the same
sources are byte-identical: entries in sorted order, stored (not deflated: no zlib
version in the bytes, none needed on the board), a fixed date (1980-01-01), fixed
permissions (0644, Unix), no ``__pycache__``; only the modules the board runs (this one
stays home). The archive holds ``__main__.py`` and the package as ``edgebench_agent/``.

Host only (it runs where edgebench is installed), but its syntax is kept to Python 3.6 like
the rest of the package, so that one check covers every module.
"""

import ast
import functools
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import List, Tuple

AGENT_NAME = "agent.pyz"
PACKAGE = "edgebench_agent"  # `__main__.PACKAGE`
HERE = Path(__file__).resolve().parent
HOST_ONLY = ("build.py", "__main__.py")  # __main__.py goes to the archive's root
DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
MODE = 0o100644  # a regular file, rw-r--r--


def shipped() -> List[Tuple[str, Path]]:
    """(name in the archive, source file) of every entry, in archive order (sorted by name)."""
    entries = [("__main__.py", HERE / "__main__.py")]
    for path in HERE.glob("*.py"):
        if path.name not in HOST_ONLY:
            entries.append(("%s/%s" % (PACKAGE, path.name), path))
    return sorted(entries)


def build(sources: Path = HERE) -> bytes:
    """The archive's bytes, built from the package in ``sources`` (the same bytes for the same sources)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, path in shipped():
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.create_system = 3  # Unix, whatever the host
            info.external_attr = MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            z.writestr(info, (sources / path.name).read_bytes())
    return buf.getvalue()


@functools.lru_cache(maxsize=None)
def agent_bytes() -> bytes:
    """The agent this host deploys (built once per process)."""
    return build()


@functools.lru_cache(maxsize=None)
def agent_sha256() -> str:
    """The sha256 of `agent_bytes`: the agent's name in a board's cache, checked before every process."""
    return hashlib.sha256(agent_bytes()).hexdigest()


def cache_dir() -> Path:
    """Where the host keeps its built agents: ``$XDG_CACHE_HOME/edgebench/agent`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgebench" / "agent"


@functools.lru_cache(maxsize=None)
def agent_path() -> Path:
    """A file named ``agent.pyz`` holding `agent_bytes`, for the drivers to upload; written once per sha256.

    In the host's cache (``<cache>/<sha256>/agent.pyz``), or in a private temporary
    folder when the cache cannot be written (a read-only home).
    """
    data, digest = agent_bytes(), agent_sha256()
    for base in (cache_dir(), None):
        try:
            folder = Path(tempfile.mkdtemp(prefix="edgebench-agent-")) if base is None else base / digest
            path = folder / AGENT_NAME
            if path.is_file() and path.read_bytes() == data:
                return path
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=str(folder), prefix=".agent-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, str(path))
            return path
        except OSError:
            if base is None:
                raise
    raise AssertionError("unreachable")


def board_snippet(module: str, call: str) -> str:
    """A board tool module's text for ``python -c``: its code without module docstring and comments, then ``call``.

    ``module`` is a module of this package that imports only the standard library
    (`hashing`, `boardlock`, `boardkill`).
    """
    text = (HERE / (module + ".py")).read_text()
    body = ast.parse(text).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        text = "\n".join(text.splitlines()[body[0].end_lineno :])
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return "\n".join([*lines, call]) + "\n"
