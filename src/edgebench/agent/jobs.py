"""What every kind of job shares: the result's head, the board's identity, the checked model, the error block."""

import os
import platform
import traceback
from typing import Any, Dict, Tuple

from .base import AgentError, first_line
from .runtimes import RUNTIMES, check_sha256
from .schema import AGENT_VERSION, RESULT_SCHEMA


def host_info() -> Dict[str, Any]:
    """What the board is: Python, OS, machine, CPU count, host name."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "hostname": platform.node(),
    }


def open_model(job: Dict[str, Any], result: Dict[str, Any]) -> Tuple[Any, str, Any]:
    """numpy, the checked artifact path and the (unloaded) runtime wrapper of a job; records numpy and sha256."""
    try:
        import numpy as np
    except Exception as exc:
        raise AgentError(
            "runtime_missing", "numpy cannot be imported (%s): install numpy on the board" % first_line(exc)
        ) from None
    result["numpy"] = np.__version__
    runtime = job.get("runtime", "onnxruntime")
    if runtime not in RUNTIMES:
        raise AgentError("bad_job", "unknown runtime %r: use one of %s" % (runtime, sorted(RUNTIMES)))
    artifact = job["artifact"]
    if not os.path.isfile(artifact):
        raise AgentError("missing_artifact", "artifact %s is not on the board: deploy it again" % artifact)
    result["artifact_sha256"] = check_sha256(artifact, job.get("sha256"))
    return np, artifact, RUNTIMES[runtime](job.get("runtime_options") or {})


def new_result() -> Dict[str, Any]:
    """The head of every job's result: schema, agent version, not ok yet, host, pid."""
    return {
        "schema": RESULT_SCHEMA,
        "agent_version": AGENT_VERSION,
        "ok": False,
        "error": None,
        "warnings": [],
        "host": host_info(),
        "pid": os.getpid(),
    }


def error_block(exc: BaseException) -> Dict[str, Any]:
    """The result's ``error`` for an exception a job did not expect: its type, message and traceback's tail."""
    if isinstance(exc, AgentError):
        return {"kind": exc.kind, "message": str(exc)}
    return {
        "kind": "exception",
        "message": "%s: %s" % (type(exc).__name__, exc),
        "traceback": traceback.format_exc()[-2000:],
    }
