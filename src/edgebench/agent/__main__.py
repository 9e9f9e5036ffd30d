"""The entry of ``agent.pyz`` (`edgebench.agent.build` writes this file as the archive's ``__main__.py``).

Run as ``python agent.pyz ARGS``, Python's zipimport finds the package in the archive
(``sys.path[0]``). Run by the board's check (`edgebench.targets.remote` ``PY_VERIFY_AGENT``),
this file was executed from the verified bytes in memory, which that wrapper leaves in
``__agent_zip__``: the package is then imported from those same bytes (`MemoryImporter`),
never from the file on disk, so a file swapped after the check cannot run, and no temporary
copy is written (a SIGKILLed agent, the usual end of an interrupted run, would leave it
behind). ``python -m edgebench.agent ARGS`` runs the installed package (host, debugging).
"""

import importlib
import importlib.machinery
import struct
import sys
import types
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, cast

PACKAGE = "edgebench_agent"  # the package's name inside the archive (one no board has installed)


def stored_entries(blob: bytes) -> List[Tuple[str, bytes]]:
    """(name, bytes) of each entry of an archive `edgebench.agent.build` wrote (stored, sizes in the headers).

    Read with ``struct`` from the local headers rather than with ``zipfile``, whose imports
    (bz2, lzma and their libraries) would add about a MiB to every agent's RSS.
    """
    out = []
    pos = 0
    while blob[pos : pos + 4] == b"PK\x03\x04":
        flags, method = struct.unpack("<2H", blob[pos + 6 : pos + 10])
        (size,) = struct.unpack("<L", blob[pos + 18 : pos + 22])
        n, extra = struct.unpack("<2H", blob[pos + 26 : pos + 30])
        if method != 0 or flags & 0x08:
            raise ImportError("the agent archive has a compressed entry: build it with edgebench.agent.build")
        start = pos + 30 + n + extra
        out.append((blob[pos + 30 : pos + 30 + n].decode("utf-8"), blob[start : start + size]))
        pos = start + size
    return out


class MemoryImporter(object):
    """Imports the package's modules from an archive's bytes held in memory (a meta path finder and its loader)."""

    def __init__(self, blob: bytes, where: str) -> None:
        self.where = where
        self.sources: Dict[str, bytes] = {}
        self.packages: Set[str] = set()
        for name, data in stored_entries(blob):
            if not name.endswith(".py") or "/" not in name:
                continue
            module = name[: -len(".py")].replace("/", ".")
            if module.endswith(".__init__"):
                module = module[: -len(".__init__")]
                self.packages.add(module)
            self.sources[module] = data

    def find_spec(self, fullname: str, path: Optional[Sequence[str]], target: Any = None) -> Any:
        """A spec for the archive's modules; None for every other name."""
        if fullname not in self.sources:
            return None
        loader = cast(Any, self)  # a loader by its methods (importlib.abc would cost imports on the board)
        spec = importlib.machinery.ModuleSpec(fullname, loader, origin=self.filename(fullname),
                                              is_package=fullname in self.packages)  # fmt: skip
        spec.has_location = True  # __file__ is the archive path, as zipimport gives
        return spec

    def filename(self, fullname: str) -> str:
        """The module's path inside the archive, as tracebacks show it."""
        tail = "/__init__.py" if fullname in self.packages else ".py"
        return self.where + "/" + fullname.replace(".", "/") + tail

    def create_module(self, spec: Any) -> None:
        """The default module object."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Run the module's source from memory."""
        name = module.__name__
        exec(compile(self.sources[name], self.filename(name), "exec"), module.__dict__)

    def get_source(self, fullname: str) -> str:
        """The module's source (for tracebacks: linecache asks the loader)."""
        return self.sources[fullname].decode("utf-8")


def run(argv: Sequence[str], blob: Optional[bytes]) -> int:
    """Import the package (from ``blob`` when given) and run the agent's command line."""
    if blob is not None:
        sys.meta_path.insert(0, MemoryImporter(blob, str(argv[0])))
    package = __package__ or PACKAGE  # "edgebench.agent" when run with -m on the host
    entry = importlib.import_module(package + ".entry")
    return int(entry.main(list(argv)))


if __name__ == "__main__":
    sys.exit(run(sys.argv, globals().get("__agent_zip__")))
