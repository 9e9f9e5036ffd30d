"""What the drivers run on a board besides the agent: shell and Python snippets (Python >= 3.6, standard library only).

The Python ones are the board tools of the agent's package (`edgebench.agent.boardlock`,
`edgebench.agent.boardkill`, `edgebench.agent.hashing`), sent as text: one source for each.
"""

from __future__ import annotations

import shlex

from edgebench.agent.build import board_snippet

OOM_MARKER = "edgebench: killed by the kernel OOM killer"
# Reads the kernel's OOM-kill counter (Linux >= 4.13); empty where it does not exist.
OOM_COUNT = "sed -n 's/^oom_kill //p' /proc/vmstat 2>/dev/null"
# The board tools: modules of the agent's package (Python 3.6, standard library only), run as
# ``python -c TEXT ARGS`` rather than from the deployed agent.pyz: the sha256 decides whether the
# agent must be uploaded at all, the lock is taken before anything is deployed, and the killers
# must run when a workdir's cache is gone and must not match their own pattern (see each module).
PY_SHA256 = board_snippet("hashing", "sys.exit(main(sys.argv))")
PY_KILL_SESSION = board_snippet("boardkill", "sys.exit(main_session(sys.argv))")
PY_LOCK = board_snippet("boardlock", "sys.exit(main(sys.argv))")
# Kills the edgebench agents running from a workdir (``<workdir>/.../agent.pyz``, or ``agent.py``
# as an older edgebench left them) other than the snippet's own parents; prints "pid args" for each.
PY_KILL_AGENTS = board_snippet("boardkill", "sys.exit(main_agents(sys.argv))")


def hash_cmd(python: str, path: str) -> str:
    """A shell command printing the sha256 of ``path``: sha256sum, else the board's Python."""
    q = shlex.quote(path)
    return f"{{ sha256sum -- {q} 2>/dev/null || {shlex.quote(python)} -c {shlex.quote(PY_SHA256)} {q}; }} | cut -c1-64"


# Runs the agent archive (argv[1]) only if its sha256 is argv[2], else one line on stderr and exit 1.
# The bytes checked are the bytes run: the file is read once, hashed, and the archive's first
# entry, ``__main__.py`` (stored: `edgebench.agent.build`), is cut from those bytes, compiled and
# run as __main__ in this process with the bytes in ``__agent_zip__``; the agent's `__main__` then
# imports its package from the same bytes in memory (`edgebench.agent.__main__.MemoryImporter`).
# So a file swapped between the check and the start cannot run, and no verified copy is written
# anywhere (``python agent.pyz`` would read the file again; a private temporary copy would be left
# behind by every SIGKILLed agent). ``struct`` rather than ``zipfile``: the latter's imports (bz2,
# lzma) cost about a MiB of every agent's RSS. One line of Python 3.6, so the command stays
# readable in an error message.
AGENT_CHANGED = "edgebench: agent changed: "
PY_VERIFY_AGENT = (
    'import hashlib,struct,sys,types;a,h=sys.argv[1:3];b=open(a,"rb").read();g=hashlib.sha256(b).hexdigest();'
    f'g==h or sys.exit("{AGENT_CHANGED}%s has sha256 %s" % (a,g));'
    'm=types.ModuleType("__main__");m.__file__=a;m.__agent_zip__=b;sys.modules["__main__"]=m;sys.argv=[a]+sys.argv[3:];'
    's,=struct.unpack("<L",b[18:22]);n,e=struct.unpack("<2H",b[26:30]);'
    'b[30:30+n]==b"__main__.py" or sys.exit("edgebench: %s is not an agent archive" % a);'
    'exec(compile(b[30+n+e:30+n+e+s],a+"/__main__.py","exec"),m.__dict__)'
)


def agent_argv(python: str, agent: str, sha256: str, *args: str) -> list[str]:
    """The command of one agent process: the archive ``agent`` is checked against ``sha256`` on the board first."""
    return [python, "-c", PY_VERIFY_AGENT, agent, sha256, *args]
