"""The results commands on runs measured for real on the local board, and the HTML report in Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from _servers import missing
from edgebench import data, zoo
from edgebench.cli import main
from edgebench.compress.variant import Variant, save_variant, variant_dir
from edgebench.results.schema import new_run
from edgebench.targets.board import local_board
from edgebench.targets.driver import LocalDriver
from edgebench.testing.runs import RunWriter, measure_once

pytestmark = pytest.mark.slow
SETTINGS = {"min_time_s": 0.3, "max_rounds": 3000, "min_rounds": 200, "warmup_min_s": 0.05}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Variant], Path]:
    """The digits CNN (trained 3 epochs) as fp32 ONNX and as ONNX Runtime static int8."""
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    work = tmp_path_factory.mktemp("variants")
    split = data.digits()
    import torch

    torch.manual_seed(0)  # the initial weights: not whatever this worker's earlier tests left in torch's RNG
    model = zoo.train(zoo.digits_cnn(), split.x_train, split.y_train, epochs=3)
    onnx = zoo.export_onnx(model, split.x_test[:1], work / "fp32.onnx")

    class Calib(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": split.x_train[i : i + 1]} for i in range(64)])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.it, None)

    quantize_static(str(onnx), str(work / "int8.onnx"), Calib())
    out = []
    for name, f in (("fp32", onnx), ("int8-static", work / "int8.onnx")):
        fields = {"model": "digits_cnn", "variant": name, "fmt": "onnx", "parent": None if name == "fp32" else "fp32",
                  "passes": [{"pass": name, "params": {}}]}  # fmt: skip
        out.append(save_variant(variant_dir(work / "v", "digits_cnn", name), f, fields))
    return out, data.save_npz(work / "test.npz", split.x_test, split.y_test)


def measure_run(results: Path, variants: list[Variant], eval_npz: Path) -> dict[str, Any]:
    board = local_board()
    with RunWriter(results, new_run("test")) as w:
        for v in variants:
            w.add(measure_once(LocalDriver(board), v, eval_data=eval_npz, settings=SETTINGS))
    return w.run.to_json()


def test_real_runs_report_compare_gate(variants: tuple[list[Variant], Path], tmp_path: Path) -> None:
    vs, npz = variants
    results = tmp_path / "results"
    a = measure_run(results, vs, npz)
    b = measure_run(results, vs, npz)
    assert a["edgebench"]["complete"] and len(a["benchmarks"]) == 2, a["edgebench"]["failures"]
    r = CliRunner()
    rep = r.invoke(main, ["report", "--results", str(results), "--json"])
    assert rep.exit_code == 0, rep.output
    d = json.loads(rep.stdout)
    rows = {x["variant"]: x for x in d["models"][0]["rows"]}
    assert rows["fp32"]["top1"] > 0.9 and rows["int8-static"]["top1"] > 0.9
    assert rows["int8-static"]["verdict_text"].startswith("int8-static: ")
    assert 0.2 < rows["int8-static"]["size_ratio"] < 0.5  # int8 weights: about a quarter of fp32, plus graph overhead
    cmp = r.invoke(
        main, ["compare", a["edgebench"]["run_id"], b["edgebench"]["run_id"], "--results", str(results), "--json"]
    )
    labels = {x["variant"]: x["label"] for x in json.loads(cmp.stdout)["rows"]}
    assert set(labels) == {"fp32", "int8-static"} and set(labels.values()) <= {
        "faster",
        "slower",
        "no change",
        "undecided",
    }
    budgets = tmp_path / "b.toml"
    budgets.write_text(
        '[[budget]]\nmodel = "digits_cnn"\nmax_p99_ms = 1000\nmin_accuracy = 0.5\nmax_accuracy_drop_pt = 50\n'
    )
    g = r.invoke(main, ["gate", str(budgets), "--results", str(results), "--json"])
    assert g.exit_code == 0, g.output
    assert json.loads(g.stdout)["counts"] == {"pass": 6, "fail": 0, "undecided": 0}


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_html_report_renders_in_headless_chromium(variants: tuple[list[Variant], Path], tmp_path: Path) -> None:
    exe = chromium()
    if exe is None:
        missing("CHROMIUM MISSING: the HTML report is not checked in a browser (apt-get install -y chromium)")
    vs, npz = variants
    results = tmp_path / "results"
    measure_run(results, vs, npz)
    measure_run(results, vs, npz)
    page = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["report", "--results", str(results), "--format", "html", "-o", str(page)])
    assert res.exit_code == 0, res.output
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]  # fmt: skip
    dom = subprocess.run([exe, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>edgebench run" in dom.stdout and dom.stdout.count("<svg") >= 3 and "int8-static" in dom.stdout
    console_errors = [ln for ln in dom.stderr.splitlines() if re.search(r"CONSOLE|Uncaught|console\.error", ln)]
    assert console_errors == [], console_errors
    shot = tmp_path / "shot.png"
    s = subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert s.returncode == 0 and shot.stat().st_size > 10_000  # a real rendered page, not a blank one
