"""`edgebench demo`: the whole job on the built-in local board, in about a minute."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edgebench import data, zoo
from edgebench.bench.runner import measure_variant
from edgebench.compress.variant import Variant, save_variant, variant_dir
from edgebench.results import schema, store
from edgebench.targets.board import local_board
from edgebench.targets.driver import LocalDriver

MODEL = "digits_cnn"


@dataclass
class DemoResult:
    """What the demo produced."""

    run: dict[str, Any]
    run_file: Path
    variants: list[Variant]
    seconds: float


def run_demo(results: Path, console: Console, *, epochs: int = 12, min_time_s: float = 2.0) -> DemoResult:
    """Train the digits CNN, make its variants, measure them on the local board, store the run.

    Args:
        results: the results folder (created if missing; must be writable).
        console: where progress goes.
        epochs: training epochs.
        min_time_s: steady-state measurement floor per variant.
    """
    t0 = time.monotonic()
    store.prepare(results)  # fail before any work if the folder is not writable
    board = local_board()
    driver = LocalDriver(board)
    split = data.digits()
    work = results / "demo"
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"training {MODEL}", total=epochs)
        import torch

        torch.manual_seed(0)  # same weights, same accuracy, every demo
        model = zoo.digits_cnn()
        zoo.train(model, split.x_train, split.y_train, epochs=epochs, on_epoch=lambda e, _l: progress.advance(task))
        host_acc = zoo.accuracy(model, split.x_test, split.y_test)

        vroot = work / "variants"
        vroot.mkdir(parents=True, exist_ok=True)
        tmp_onnx = zoo.export_onnx(model, split.x_test[:1], work / "export.onnx")
        fp32 = save_variant(
            variant_dir(vroot, MODEL, "fp32"),
            tmp_onnx,
            {
                "model": MODEL,
                "variant": "fp32",
                "fmt": "onnx",
                "parent": None,
                "passes": [{"pass": "export-onnx", "params": {"opset": 17}}],
                "accuracy": {"top1": host_acc, "n": len(split.y_test), "where": "host"},
            },
        )
        tmp_onnx.unlink()
        variants = [fp32]
        eval_npz = data.save_npz(work / "digits_test.npz", split.x_test, split.y_test)

        run = schema.new_run("demo", {"node": board.name})
        run["edgebench"]["boards"][board.name] = {"kind": "local"}
        task = progress.add_task("measuring on local", total=len(variants))
        for v in variants:
            m = measure_variant(driver, v, eval_data=eval_npz, settings={"min_time_s": min_time_s})
            schema.add_measurement(run, m)
            if m.get("host"):
                run["machine_info"] = m["host"]
            progress.advance(task)
    run["edgebench"]["complete"] = True
    run["edgebench"]["finished"] = schema.utc_now()
    path = store.save_run(results, run)
    return DemoResult(run, path, variants, time.monotonic() - t0)
