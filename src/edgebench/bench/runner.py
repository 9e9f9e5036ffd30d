"""Host side of a measurement: deploy the agent, artifact and data, run one job."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from edgebench.compress.variant import Variant
from edgebench.errors import RemoteError
from edgebench.targets.deploy import deploy, remote_path
from edgebench.targets.driver import Driver

AGENT = Path(__file__).with_name("agent.py")
RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "tflite": "tflite"}


def parse_agent_output(stdout: str) -> dict[str, Any]:
    """The agent's result: the last line of stdout that is a JSON object.

    Raises:
        ValueError: if no line is a JSON object.
    """
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            result = json.loads(line)
            if isinstance(result, dict):
                return result
    raise ValueError("the agent printed no JSON result")


def measure_variant(
    driver: Driver,
    variant: Variant,
    *,
    eval_data: Path | None = None,
    settings: dict[str, Any] | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Run one variant on one board in a fresh agent process.

    Returns:
        The measurement: ``board, model, variant, ok, error`` and, when it ran, the
        agent's ``samples_ns, timing, memory, accuracy, runtime, device, host``. A
        failure on the board is returned as data (``ok: false``), never raised.
    """
    board = driver.board
    settings = dict(settings or {})
    base: dict[str, Any] = {
        "board": board.name,
        "model": variant.model,
        "variant": variant.name,
        "format": variant.format,
        "sha256": variant.sha256,
        "bytes": variant.manifest["bytes"],
        "ok": False,
        "error": None,
    }
    try:
        agent = deploy(driver, AGENT)
        artifact = deploy(driver, variant.artifact, variant.sha256)
        runtime = RUNTIME_OF_FORMAT[variant.format]
        job: dict[str, Any] = {
            "artifact": artifact,
            "runtime": runtime,
            "runtime_options": {"threads": board.threads, **board.runtime_options.get(runtime, {})},
            "measure": settings,
        }
        if eval_data is not None:
            job["eval"] = {"path": deploy(driver, eval_data)}
        with tempfile.TemporaryDirectory() as tmp:
            job_file = Path(tmp) / "job.json"
            job_file.write_text(json.dumps(job))
            remote_job = deploy(driver, job_file)
        argv = [board.python, agent, remote_job]
        res = driver.run(argv, timeout)
        try:
            out = parse_agent_output(res.stdout)
        except ValueError:
            tail = (res.stderr or res.stdout)[-2000:]
            raise RemoteError(board.name, res.command, tail, f"the agent exited {res.exit_code} without a result") from None
    except RemoteError as exc:
        base["error"] = {"kind": type(exc).__name__, "message": str(exc), "command": exc.command, "output": exc.output}
        return base
    timing = out.get("timing") or {}
    base.update(
        ok=bool(out.get("ok")),
        error=out.get("error"),
        samples_ns=timing.get("samples_ns", []),
        batch_size=timing.get("batch_size", 1),
        settings=timing.get("settings", settings),
        timing={k: v for k, v in timing.items() if k not in ("samples_ns", "settings")},
        memory=out.get("memory"),
        accuracy=out.get("accuracy"),
        runtime=out.get("runtime"),
        device={"before": out.get("device_before"), "after": out.get("device_after")},
        host=out.get("host"),
        agent_pid=out.get("pid"),
        warnings=out.get("warnings", []),
    )
    return base


__all__ = ["measure_variant", "parse_agent_output", "remote_path"]
