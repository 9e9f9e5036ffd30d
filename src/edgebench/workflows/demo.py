"""`edgebench demo`: the whole job on the built-in local board, in about a minute.

Train the digits CNN, export it as the fp32 variant, compress it (fp16, int8 dynamic,
int8 static, 50% channel-pruned), measure every variant on the `local` board through
the pytest-benchmark harness that `edgebench run` uses (three fresh agent processes per
variant, interleaved across the variants, then one profiled process each, as
`run --profile`), store the run and hand it to the report with one line of the profile:
why int8-dynamic is slower here.

The CNN is `zoo.digits_cnn_32` at width 64: the 8x8 digits upsampled to 32x32 in the graph,
about 1 ms per inference on a laptop-class core. The 8x8 CNN ran in ~18 µs, where per-call
overhead hid what compression does (CV warnings on most rows, int8-static "same speed");
at a millisecond the figures are stable over runs and int8-static is ~3x faster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edgebench import data, zoo
from edgebench.bench.profile import profiles_in_run
from edgebench.bench.settings import RunSettings
from edgebench.compress.api import build_variant, make_variants
from edgebench.compress.passes import Artifact, Data
from edgebench.compress.variant import Variant, variant_dir
from edgebench.errors import EdgebenchError
from edgebench.model import Run
from edgebench.render.profile import profile_lines
from edgebench.results import store
from edgebench.results.analysis import analyze_run
from edgebench.targets.board import LOCAL
from edgebench.workflows.run import run_harness

MODEL = "digits_cnn"
WIDTH = 64  # channels of the first conv: ~1 ms per fp32 inference at 32x32, trainable in seconds
PROFILE_ITERATIONS = 20  # profiled inferences per variant: enough for the op shares, cheap for int8-dynamic
# (variant name, pass, parameters): what the demo makes from the fp32 parent
SPECS: list[tuple[str, str, dict[str, Any]]] = [
    ("fp16", "fp16", {}),
    ("int8-dynamic", "int8-dynamic", {}),
    ("int8-static", "int8-static", {}),
    ("pruned-50", "prune-channels", {"ratio": 0.5, "fine_tune_epochs": 1}),
]


@dataclass
class DemoResult:
    """What the demo produced."""

    run: Run
    run_file: Path
    variants: list[Variant]
    seconds: float
    why_slower: str | None = None  # why int8-dynamic is slower than fp32 here: its profile line (`why_slower`)


def run_demo(
    results: Path, console: Console, *, epochs: int = 2, min_time_s: float = RunSettings.min_time_s
) -> DemoResult:
    """Train, compress, measure on the local board, store the run.

    Args:
        results: the results folder (created if missing; must be writable).
        console: where progress goes.
        epochs: training epochs.
        min_time_s: steady-state measurement floor per variant.

    Raises:
        ResultsPathError: the results folder cannot be written (checked before any work).
        EdgebenchError: the measurement stored no run.
    """
    t0 = time.monotonic()
    store.prepare(results)  # fail before any work if the folder is not writable
    split = data.digits()
    work = results / "demo"
    vroot = work / "variants"
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"training {MODEL}", total=epochs)
        torch = zoo.require_torch("edgebench demo")
        torch.manual_seed(0)  # same weights, same accuracy, every demo
        # one thread: on a small, shared CPU two OpenMP threads made this tiny model's training ~30x slower
        torch.set_num_threads(1)
        model = zoo.digits_cnn_32(WIDTH)
        zoo.train(model, split.x_train, split.y_train, epochs=epochs, on_epoch=lambda e, _l: progress.advance(task))

        # the fp32 parent goes through the same export and host-side description as every variant
        fp32 = build_variant(
            model=MODEL,
            variant="fp32",
            source=Artifact("torch", module=model),
            chain=[],
            data=Data(split.x_train, split.y_train, split.x_train[:256], split.x_test, split.y_test),
            final=variant_dir(vroot, MODEL, "fp32"),
            parent=None,
            ref=None,
        )
        task = progress.add_task("compressing", total=len(SPECS))
        variants = [fp32]
        root_log = logging.getLogger()
        level = root_log.level
        root_log.setLevel(logging.ERROR)  # ONNX Runtime's quantizer logs advice at WARNING (as `compress` hides it)
        try:
            for spec in SPECS:  # one call per variant, so the bar moves
                variants += make_variants(
                    fp32,
                    [spec],
                    vroot,
                    calib=split.x_train[:256],
                    eval_x=split.x_test,
                    eval_y=split.y_test,
                    torch_module=model,
                    train=(split.x_train, split.y_train),
                )
                progress.advance(task)
        finally:
            root_log.setLevel(level)
    eval_npz = data.save_npz(work / f"{MODEL}.npz", split.x_test, split.y_test)
    outcome = run_harness(
        variants=vroot,
        boards=[LOCAL],
        results=results,
        settings=RunSettings.from_mapping({"min_time_s": min_time_s, "profile": PROFILE_ITERATIONS}),
        eval_data=eval_npz,
        models=[MODEL],
        console=console,
    )
    if outcome.run is None or outcome.run_file is None:
        raise EdgebenchError(f"the measurement stored no run; see its log {outcome.log}")
    why = why_slower(outcome.run)
    return DemoResult(outcome.run, outcome.run_file, variants, time.monotonic() - t0, why)


def why_slower(run: Run, slow: str = "int8-dynamic") -> str | None:
    """The demo's profile line for ``slow`` when the run measured it slower than fp32 (None otherwise).

    It is the report's line for that variant (`edgebench.render.profile.profile_lines`): it names the board,
    model and variant, gives the run's ratio (the table's and the verdict's figure, never the one profiled
    process's) and the op types that make it slower; a noisy profile's warning follows on a line of its own.
    """
    lines = profile_lines(profiles_in_run(run), analyze_run(run))
    line = next((x for x in lines if x.model == MODEL and x.variant == slow), None)
    if line is None or line.speedup is None or line.speedup >= 1 or line.source != "run":
        return None
    return "\n".join([line.head, *(f"warning: {w}" for w in line.warnings)])
