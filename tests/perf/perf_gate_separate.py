"""Decisions as CI makes them: separate `edgebench run` invocations, then `edgebench compare`.

Run with ``pytest tests/perf/perf_gate_separate.py -s -p no:cacheprovider``. Nothing here
runs inside one process: every measurement is its own ``edgebench run`` command (a fresh
harness, fresh agent processes), and every decision is its own ``edgebench compare`` command
on the stored runs, exactly as a nightly or a release gate on a shared CI runner makes them.

``test_labels_of_separate_invocations``: per board (the built-in ``local`` board and a real
sshd farm board on loopback, ``full`` profile) and per model (a MatMul+Tanh chain of ~1 ms,
and of ~10 ms with ``EDGEBENCH_PERF_MODELS=1ms,10ms``), one baseline run of A is made first;
then each trial is one ``edgebench run --baseline <A's run>`` of a candidate, then one
``edgebench compare <A's run> <candidate's run> --json``. Arms, interleaved trial by trial
(so the candidate runs minutes after the baseline, later and later): B identical to A
(a byte-identical copy), C with 10 % more layers, D with 5 % more. Default settings (8
processes per variant, 2 s of steady state per variant, plus 8 paired processes). Each arm's
row prints the labels, the median ratio and the load average seen during its trials.
``EDGEBENCH_PERF_TRIALS`` (default 20), ``EDGEBENCH_PERF_BOARDS`` (``local,farm``) and
``EDGEBENCH_PERF_MODELS`` (``1ms``) choose the size.

``test_eight_nights``: eight ``edgebench nightly`` invocations with ``--commit night-N``,
nights 1-5 on A, nights 6-8 on C (10 % slower), a budgets file with ``max_regression_pct =
5``. Prints each night's verdict and change points.

Targets (issue 17): identical reruns "slower"/"faster" in <= 5 % of trials at any load;
"no change" in >= 80 % on an idle machine; a 10 % slowdown "slower" in >= 95 %, a 5 % one in
>= 80 %; nights 1-5 PASS, 6-8 FAIL, the change point named on night 6's commit by night 7.
Nothing is asserted about times; the test asserts only that every command worked.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from _tiny_onnx import matmul_chain
from edgebench.targets.farm import farm_down, farm_up, find_sshd

EDGEBENCH = str(Path(sys.executable).parent / "edgebench")
MODELS = {"1ms": (256, 32, 20), "10ms": (512, 128, 30)}  # width, batch, layers
ARMS = (("identical", 1.0), ("10% slower", 1.10), ("5% slower", 1.05))


def models(root: Path, size: str) -> dict[str, Path]:
    """Folders A, identical, 10 % and 5 % slower, each holding ``m.onnx`` (one model name: one history)."""
    width, batch, layers = MODELS[size]
    base = matmul_chain(root / size / "A" / "m.onnx", layers, width, batch)
    out = {"A": base.parent}
    for arm, factor in ARMS:
        folder = root / size / arm.replace(" ", "_").replace("%", "pct")
        folder.mkdir(parents=True, exist_ok=True)
        if factor == 1.0:
            shutil.copy(base, folder / "m.onnx")
        else:  # 10 % more work on 20 or 30 layers is 2 or 3 more; 5 %: one more per 20
            matmul_chain(folder / "m.onnx", layers + round(layers * (factor - 1)), width, batch)
        out[arm] = folder
    return out


FAILED_RUNS: Counter[str] = Counter()  # invocations whose measurement failed (not a decision), by why


def edgebench(*args: str, tries: int = 3) -> dict[str, object]:
    """One separate `edgebench` command with --json; its parsed output.

    A run whose measurement failed (exit 1: on a machine shared with other work an agent
    can be killed) decides nothing: it is counted in `FAILED_RUNS` and made again, as a
    CI job would be retried.
    """
    for _ in range(tries):
        res = subprocess.run([EDGEBENCH, *args, "--json"], capture_output=True, text=True, timeout=900)
        if res.returncode in (0, 3):
            return dict(json.loads(res.stdout))
        FAILED_RUNS[(res.stderr.strip().splitlines() or ["?"])[-1][:120]] += 1
    raise AssertionError(f"edgebench {' '.join(args)} exited {res.returncode}: {res.stderr[-2000:]}")


def run_id(out: dict[str, object]) -> str:
    return Path(str(out["run_file"])).stem


def boards(tmp: Path) -> list[tuple[str, list[str]]]:
    """(board name, extra args) for each board asked for; the farm is started here."""
    out = []
    for b in os.environ.get("EDGEBENCH_PERF_BOARDS", "local,farm").split(","):
        if b == "local":
            out.append(("local", []))
        elif b == "farm" and find_sshd() is not None:
            farm = farm_up(tmp / "farm", profiles=["full"])
            out.append((farm.members[0].name, ["--boards-file", str(farm.boards_file)]))
    return out


@pytest.mark.timeout(4 * 3600)
def test_labels_of_separate_invocations(tmp_path: Path) -> None:
    trials = int(os.environ.get("EDGEBENCH_PERF_TRIALS", "20"))
    sizes = os.environ.get("EDGEBENCH_PERF_MODELS", "1ms").split(",")
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, {trials} trials per arm", flush=True)
    table = []
    try:
        for board, extra in boards(tmp_path):
            for size in sizes:
                folders = models(tmp_path / "models", size)
                results = tmp_path / f"res-{board}-{size}"
                common = ["--results", str(results), "--boards", board, *extra]
                t0 = time.monotonic()
                base = run_id(edgebench("run", "--variants", str(folders["A"]), *common))
                labels = {arm: Counter[str]() for arm, _ in ARMS}
                ratios: dict[str, list[float]] = {arm: [] for arm, _ in ARMS}
                loads: dict[str, list[float]] = {arm: [] for arm, _ in ARMS}
                for i in range(trials):
                    order = list(ARMS[i % 3 :] + ARMS[: i % 3])  # who goes first rotates
                    for arm, _ in order:
                        loads[arm].append(os.getloadavg()[0])
                        new = run_id(edgebench("run", "--variants", str(folders[arm]), "--baseline", base, *common))
                        d = edgebench("compare", base, new, "--results", str(results))
                        (row,) = d["rows"]  # type: ignore[misc]
                        labels[arm][row["label"]] += 1
                        ratios[arm].append(row["p50"]["ratio"])
                        p = row["p50"]
                        print(
                            f"{board} {size} trial {i + 1:2d} {arm:10s} {row['label']:9s} {p['ratio']:.3f} "
                            f"[{p['ratio_low']:.3f}, {p['ratio_high']:.3f}] {p['basis']} "
                            f"load {loads[arm][-1]:.1f} at {(time.monotonic() - t0) / 60:.1f} min",
                            flush=True,
                        )
                for arm, _ in ARMS:
                    n = sum(labels[arm].values())
                    pct = {k: 100 * labels[arm][k] / n for k in ("slower", "faster", "no change", "undecided")}
                    table.append(
                        f"| {board} | {size} | {arm} | {n} | {pct['slower']:.0f}% | {pct['faster']:.0f}% | "
                        f"{pct['no change']:.0f}% | {pct['undecided']:.0f}% | {np.median(ratios[arm]):.3f} | "
                        f"{min(loads[arm]):.1f}-{max(loads[arm]):.1f} |"
                    )
                assert all(sum(c.values()) == trials for c in labels.values())
    finally:
        if (tmp_path / "farm").exists():
            farm_down(tmp_path / "farm")
    print("\n| board | model | pair | trials | slower | faster | no change | undecided | median ratio | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(table), flush=True)
    print(f"failed invocations, made again: {sum(FAILED_RUNS.values())} {dict(FAILED_RUNS)}", flush=True)


@pytest.mark.timeout(3600)
def test_eight_nights(tmp_path: Path) -> None:
    folders = models(tmp_path / "models", os.environ.get("EDGEBENCH_PERF_NIGHT_MODEL", "1ms"))
    variants = tmp_path / "variants"
    (tmp_path / "budgets.toml").write_text('[[budget]]\nvariant = "fp32"\nmax_regression_pct = 5\n')
    (tmp_path / "nightly.toml").write_text(
        '[nightly]\nboards = ["local"]\nvariants = "variants"\nbudgets = "budgets.toml"\n'
    )
    results = tmp_path / "results"
    print()
    verdicts = []
    for night in range(1, 9):
        variants.mkdir(exist_ok=True)
        shutil.copy(folders["A" if night <= 5 else "10% slower"] / "m.onnx", variants / "m.onnx")
        load = os.getloadavg()[0]
        res = subprocess.run(
            [EDGEBENCH, "nightly", str(tmp_path / "nightly.toml"), "--results", str(results), "--json",
             "--commit", f"night{night}"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert res.returncode in (0, 3), res.stderr[-2000:]
        d = json.loads(res.stdout)
        verdicts.append(d["verdict"])
        print(f"night {night} ({'A' if night <= 5 else 'C, 10 % slower'}), load {load:.1f}: {d['verdict']}: "
              f"{d['why']}", flush=True)  # fmt: skip
    print(f"verdicts: {verdicts}")
    assert len(verdicts) == 8
