"""The HTML report and the nightly page read on a laptop (1400 px) and a phone (390 px), in headless Chromium.

One real `edgebench run --profile --sustained 3s` of four tiny ONNX variants (one with a long
name) on the local board with eval data, plus six earlier runs made from it (other commits, latencies
scaled, a 30 % step) so that trends have points and change points. `edgebench report
--format html` renders it with a profile chart, a latency distribution, a Pareto plot, a
sustained timeline per variant and trends; the nightly page (`nightly_html`) adds a gate and two
comparisons to the same report.

Each page is measured in the browser: a script injected into a test copy records the box
of every SVG, every ``<text>`` and every table and the document's scroll width. Headless
Chromium's window is never narrower than 500 px, so the page is loaded into an ``<iframe>``
exactly as wide as the screen under test (``srcdoc``, so the script may write into the outer
page, which ``--dump-dom`` prints). Chromium missing: skipped with a loud reason, failed
under ``CI=true`` (scripts/test.sh installs it).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _bench_models import eval_npz, onnx_model, variant
from click.testing import CliRunner

from _servers import missing
from edgebench.cli import main
from edgebench.model import Run
from edgebench.render.html import nightly_html
from edgebench.results import schema, store
from edgebench.results.analysis import load_report
from edgebench.results.compare import compare_runs
from edgebench.results.gate import gate_run, load_budgets

pytestmark = pytest.mark.slow
FAST = ["--min-time", "0.05", "--min-rounds", "20", "--warmup-iters", "5", "--warmup-time", "0", "--repeats", "1"]
VARIANTS = ("fp32", "fp16", "int8-dynamic-per-channel-reduce-range", "wide-classifier-head_pruned-50pct")
# the axes each kind of chart must label with at least four ticks
AXES = {"distribution": ("x", "y"), "pareto": ("x", "y"), "trend": ("x", "y"), "profile": ("x",),
        "sustained": ("x", "y")}  # fmt: skip

MEASURE = """<script>
(() => {
  const vw = document.documentElement.clientWidth;
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const scroller = e => {
    for (let p = e.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll') return p;
    }
    return null;
  };
  const out = {
    vw: vw,
    scrollWidth: document.documentElement.scrollWidth,
    svgs: [...document.querySelectorAll('svg')].map(s => ({
      cls: s.getAttribute('class') || '', viewBox: s.getAttribute('viewBox'), box: box(s),
      texts: [...s.querySelectorAll('text')].map(t => ({s: t.textContent, cls: t.getAttribute('class') || '',
                                                        box: box(t)})),
    })),
    tables: [...document.querySelectorAll('table')].map(t => {
      const c = scroller(t); return {box: box(t), container: c ? box(c) : null};
    }),
    wide: [...document.body.querySelectorAll('*')].filter(e => !scroller(e) && e.getBoundingClientRect().right > vw + 1)
      .map(e => e.tagName + ': ' + (e.textContent || '').slice(0, 60)),
  };
  const p = document.createElement('pre');
  p.id = 'measured';
  p.textContent = JSON.stringify(out);
  parent.document.body.appendChild(p);
})();
</script>"""


def chromium() -> str:
    """The Chromium binary; skipped loudly without one, failed under CI=true."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        msg = "CHROMIUM MISSING: the HTML pages are not checked in a browser (apt-get install chromium)"
        missing(msg)
    return exe


def _history(results: Path, real: Run) -> list[Run]:
    """Six earlier runs made from ``real``: other commits, one day apart, its latencies scaled (a 30 % step)."""
    t0 = dt.datetime.fromisoformat(real.started)
    runs = []
    for k, f in enumerate((1.0, 1.01, 0.99, 1.0, 1.3, 1.31)):
        when = t0 - dt.timedelta(days=6 - k)
        run = schema.new_run("run", when.strftime("%Y%m%dT%H%M%SZ") + f"-00000{k}")
        run = dataclasses.replace(
            run, started=when.isoformat(), datetime=when.isoformat(), commit_info={"id": f"{k}" * 7 + "abc"}
        )
        for m in real.measurements:
            extra = {key: v for key, v in m.extra.items() if key != "profile"}
            scaled = tuple(int(s * f) for s in m.samples_ns)
            run = schema.add_measurement(run, dataclasses.replace(m, samples_ns=scaled, extra=extra, processes=None))
        run = schema.finish(run)
        store.save_run(results, run)
        runs.append(run)
    return runs


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The report and the nightly page of a real profiled run with a history."""
    tmp = tmp_path_factory.mktemp("html_chromium")
    root, res = tmp / "variants", tmp / "results"
    variant(root, "tiny", VARIANTS[0], onnx_model(tmp / "a.onnx", seed=0, n_in=64))
    variant(root, "tiny", VARIANTS[1], onnx_model(tmp / "b.onnx", seed=0, n_in=64), parent="fp32")
    variant(root, "tiny", VARIANTS[2], onnx_model(tmp / "c.onnx", seed=2, n_in=64), parent="fp32")
    variant(root, "tiny", VARIANTS[3], onnx_model(tmp / "d.onnx", seed=3, n_in=64, n_out=64))  # a model of its own
    eval_npz(tmp / "eval.npz", n_in=64)
    args = ["--variants", str(root), "--eval", str(tmp / "eval.npz"), "--results", str(res), "--profile", "20",
            "--sustained", "3s"]  # fmt: skip
    out = CliRunner().invoke(main, ["run", *args, *FAST, "--commit", "9999999abc", "--json"])
    assert out.exit_code == 0, out.output[-3000:]
    real = store.read_run(Path(json.loads(out.stdout)["run_file"]))
    earlier = _history(res, real)
    report = CliRunner().invoke(main, ["report", "--results", str(res), "--format", "html", "-o",
                                       str(tmp / "report.html")])  # fmt: skip
    assert report.exit_code == 0, report.output[-3000:]

    (tmp / "budgets.toml").write_text("[[budget]]\nmax_p90_ms = 0.000001\nmax_regression_pct = 5\n")
    rep = load_report(res)
    gate = gate_run(res, load_budgets(tmp / "budgets.toml"), real, earlier[-1])
    page = nightly_html(rep, "FAIL", "gate failed: budgets not met", gate=gate,
                        vs_last=compare_runs(earlier[-1], real, allow_config_change=True),
                        vs_baseline=compare_runs(earlier[0], real, allow_config_change=True),
                        settings={"min_time_s": 0.05, "repeats": 1})  # fmt: skip
    (tmp / "nightly.html").write_text(page)
    return {"report": tmp / "report.html", "nightly": tmp / "nightly.html"}


def measure(exe: str, page: Path, width: int) -> dict[str, Any]:
    """What Chromium lays out for ``page`` on a screen ``width`` px wide (see the module doc)."""
    doc = page.read_text().replace("</body>", MEASURE + "</body>")
    frame = page.with_name(f"{page.stem}.{width}.html")
    frame.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        f'<iframe style="border:0;width:{width}px;height:900px" srcdoc="{html.escape(doc, quote=True)}"></iframe>'
        "</body></html>"
    )
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--hide-scrollbars", f"--window-size={width + 40},1000", "--dump-dom", frame.as_uri()]  # fmt: skip
    got = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    found = re.search(r'<pre id="measured">(.*?)</pre>', got.stdout, re.S)
    assert got.returncode == 0 and found, got.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


def inside(b: list[float], outer: list[float], slack: float = 0.5) -> bool:
    return (
        b[0] >= outer[0] - slack and b[1] >= outer[1] - slack and b[2] <= outer[2] + slack and b[3] <= outer[3] + slack
    )


def overlap(a: list[float], b: list[float]) -> float:
    return min(min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1]))


def problems(m: dict[str, Any], which: str) -> list[str]:
    """What does not read well in a page's measurements ``m`` (`measure`); ``which``: report or nightly."""
    vw = m["vw"]
    out = [] if m["scrollWidth"] <= vw else [f"the page scrolls sideways: {m['scrollWidth']} px > {vw}: {m['wide']}"]
    out += [f"reaches past the screen: {w}" for w in m["wide"]]  # only tables in their containers may
    for t in m["tables"]:
        if t["box"][2] > vw and (t["container"] is None or t["container"][2] > vw):
            out.append(f"a table {t['box'][2] - t['box'][0]:.0f} px wide widens the page")
    kinds = [s["cls"].split()[-1] if s["cls"].startswith("chart ") else "?" for s in m["svgs"]]
    expected = {"distribution", "pareto", "trend", "sustained"} | ({"profile"} if which == "report" else set())
    if set(kinds) != expected or kinds.count("trend") != len(VARIANTS) or kinds.count("sustained") != len(VARIANTS):
        out.append(f"charts {kinds}, expected {sorted(expected)} with {len(VARIANTS)} trends and sustained charts")
    for s, kind in zip(m["svgs"], kinds, strict=True):
        box, texts = s["box"], s["texts"]
        if not s["viewBox"] or box[0] < 0 or box[2] > vw:
            out.append(f"{kind}: viewBox {s['viewBox']}, box {box} on a {vw} px screen")
        clipped = [t["s"] for t in texts if not inside(t["box"], box) or t["box"][0] < 0 or t["box"][2] > vw]
        if clipped:
            out.append(f"{kind}: {len(texts) - len(clipped)} of {len(texts)} texts visible; clipped: {clipped}")
        for i, a in enumerate(texts):
            for b in texts[i + 1 :]:
                if overlap(a["box"], b["box"]) > 2:
                    out.append(f"{kind}: {a['s']!r} overlaps {b['s']!r}")
        for axis in AXES.get(kind, ("x", "y")):
            ticks = [t["s"] for t in texts if f"tick {axis}" in t["cls"]]
            if len(ticks) < 4:
                out.append(f"{kind}: {axis} axis has {len(ticks)} tick labels {ticks}")
        if kind == "profile":  # every variant has its row, inside the chart (clipping checked above)
            rows = [t["s"] for t in texts if t["cls"] == "row"]
            if len(rows) != len(VARIANTS) or not all(any(v in r for r in rows) for v in VARIANTS):
                out.append(f"profile rows: {rows}")
        if kind == "pareto":  # every point is named, by its variant or by a number the legend names
            named = " ".join(t["s"] for t in texts if t["cls"] in ("point", "legend"))
            out += [f"pareto: {v} not named" for v in VARIANTS if v[:8] not in named]
    return out


@pytest.mark.parametrize("width", [1400, 390])
@pytest.mark.parametrize("which", ["report", "nightly"])
def test_page_reads_at_this_width(pages: dict[str, Path], which: str, width: int) -> None:
    m = measure(chromium(), pages[which], width)
    assert m["vw"] == width  # the iframe is the screen
    assert problems(m, which) == []
