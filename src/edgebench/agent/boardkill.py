"""Kill what a dead run left on the board: its agents (``kill-agents WD``) or a job's session (``kill-session SID``).

``kill-agents WD``: kill every process whose argv holds an agent under WD (``WD/.../agent.pyz``,
or ``WD/.../agent.py`` as an older edgebench ran it), other than this process and its
parent, and print ``pid args`` for each. ``kill-session SID``: kill every process of
session SID (what ``timeout`` and some runtimes start in process groups of their own).

The drivers run this module's text with ``python -c`` (`edgebench.targets.remote`
``PY_KILL_AGENTS`` / ``PY_KILL_SESSION``), not from the agent's archive: started from the
workdir's cache, the killer would match its own pattern, and it must work when the cache
is gone. Standard library only, and no import from the agent's package.
"""

import os
import sys
from typing import List

AGENT_NAMES = ("agent.pyz", "agent.py")  # what this edgebench deploys, and what an older one did


def is_agent(args: List[str], workdir: str) -> bool:
    """Whether a process's argv runs an edgebench agent from ``workdir``."""
    wd = workdir.rstrip("/") + "/"
    return any(a.startswith(wd) and a.rsplit("/", 1)[-1] in AGENT_NAMES for a in args)


def kill_agents(workdir: str) -> List[str]:
    """Kill the agents running from ``workdir`` (not this process nor its parent); ``pid args`` of each killed."""
    me = {os.getpid(), os.getppid()}
    killed = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in me:
            continue
        try:
            with open("/proc/" + d + "/cmdline", "rb") as f:
                args = f.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if is_agent(args, workdir):
            try:
                os.kill(int(d), 9)
                killed.append(d + " " + " ".join(a for a in args if a)[:200])
            except OSError:
                pass
    return killed


def kill_session(sid: int) -> None:
    """Kill every process of session ``sid``."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.getsid(int(d)) == sid:
                    os.kill(int(d), 9)
            except OSError:
                pass


def main_agents(argv: List[str]) -> int:
    """``kill-agents WD``: kill the agents left running from WD, one ``pid args`` line each."""
    for line in kill_agents(argv[1]):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


def main_session(argv: List[str]) -> int:
    """``kill-session SID``: kill the processes of session SID."""
    kill_session(int(argv[1]))
    return 0
