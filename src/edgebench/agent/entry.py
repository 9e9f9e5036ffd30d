"""The agent's command line: run a job, probe the board, or one of the board tools.

::

    python agent.pyz JOB.json        # or: python agent.pyz - < JOB.json
    python agent.pyz --probe '["onnxruntime"]'   # the board's fingerprint (boards check)
    python agent.pyz sha256 FILE | lock PATH TIMEOUT OWNER | kill-agents WD | kill-session SID

A job prints exactly one JSON object on stdout (the result) and exits 0, also when the
variant failed: failures are data (``ok: false`` with ``error``). The drivers run the board
tools as ``python -c`` text (`edgebench.targets.remote`); they are here too so that each
has one command line, on the board and in tests.
"""

import json
import sys
from typing import Any, Callable, Dict, List

from . import boardkill, boardlock, hashing
from .measuring import measure_job
from .paired import paired_job
from .probe import probe
from .profiling import profile_job
from .runtimes import RUNTIMES
from .schema import AGENT_VERSION, RESULT_SCHEMA, job_problem
from .sustained import sustained_problem

TOOLS: Dict[str, Callable[[List[str]], int]] = {
    "sha256": hashing.main,
    "lock": boardlock.main,
    "kill-agents": boardkill.main_agents,
    "kill-session": boardkill.main_session,
}
USAGE = "usage: agent.pyz JOB.json | - | --probe [RUNTIMES_JSON] | %s ...\n" % " | ".join(sorted(TOOLS))


def failed(kind: str, message: str) -> Dict[str, Any]:
    """A result for a job that never started (it could not be read, or is not a job)."""
    return {
        "schema": RESULT_SCHEMA,
        "agent_version": AGENT_VERSION,
        "ok": False,
        "error": {"kind": kind, "message": message},
    }


def run_job(job: Dict[str, Any]) -> Dict[str, Any]:
    """Run one job and return the result dict (never raises).

    A job with a ``profile`` block is profiled (`profile_job`), one with a ``paired`` block
    times two models alternately (`paired_job`); any other is measured (`measure_job`).
    """
    problem = job_problem(job)
    if problem is None and job.get("sustained"):
        problem = sustained_problem(job["sustained"])
    if problem is not None:
        return failed("bad_job", "the job is not one this agent runs: %s: deploy the agent and job afresh" % problem)
    if job.get("profile"):
        return profile_job(job)
    if job.get("paired"):
        return paired_job(job)
    return measure_job(job)


def main(argv: List[str]) -> int:
    """Read the job (file or ``-`` for stdin), run it, print one JSON line; exit 0 unless misused.

    ``--probe [RUNTIMES_JSON]`` prints the board's fingerprint (see `probe`) instead, and a
    board tool's name runs that tool with the arguments after it.
    """
    if len(argv) >= 2 and argv[1] in TOOLS:
        return TOOLS[argv[1]](argv[1:])
    if len(argv) in (2, 3) and argv[1] == "--probe":
        wanted = json.loads(argv[2]) if len(argv) == 3 else sorted(RUNTIMES)
        sys.stdout.write(json.dumps(probe(wanted)) + "\n")
        sys.stdout.flush()
        return 0
    if len(argv) != 2:
        sys.stderr.write(USAGE)
        return 2
    try:
        if argv[1] == "-":
            job = json.load(sys.stdin)
        else:
            with open(argv[1]) as f:
                job = json.load(f)
    except (OSError, ValueError) as exc:
        result = failed("bad_job", "job could not be read: %s" % exc)
    else:
        result = run_job(job)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0
