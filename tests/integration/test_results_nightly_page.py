"""The nightly page says it first, rendered by a real headless Chromium at desktop and phone widths.

Two nightlies of two tiny real ONNX variants on the local board with a budget that cannot
be met: the second page must open with the FAIL verdict, carry the gate and the comparison
with the first nightly, and its plots' labels must neither overlap nor leave their plot.
Chromium missing: skipped with a loud reason, failed under ``CI=true`` (scripts/test.sh
installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _bench_models import eval_npz, onnx_model, variant
from click.testing import CliRunner

from _servers import missing
from edgebench.cli import main

pytestmark = pytest.mark.slow

# Injected into a copy of the page (the page itself has no scripts): every SVG text's box
# must lie inside its SVG and overlap no other text of the same SVG.
CHECK_LABELS = """<script>
const bad = [];
for (const svg of document.querySelectorAll('svg')) {
  const r = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll('text')].map(t => [t.textContent, t.getBoundingClientRect()]);
  for (const [s, b] of boxes) {
    if (b.left < r.left - 0.5 || b.top < r.top - 0.5 || b.right > r.right + 0.5 || b.bottom > r.bottom + 0.5)
      bad.push('clipped: ' + s);
  }
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [s, a] = boxes[i], [u, b] = boxes[j];
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 0.5 && h > 0.5) bad.push('overlap: ' + s + ' / ' + u);
  }
}
const p = document.createElement('pre'); p.id = 'labelcheck';
p.textContent = JSON.stringify({svgs: document.querySelectorAll('svg').length, bad: bad});
document.body.appendChild(p);
</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        missing("CHROMIUM MISSING: the nightly page is not checked in a browser (apt-get install chromium)")
    return exe


def browse(exe: str, url: str, width: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--hide-scrollbars", f"--window-size={width},1000", *args, url,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def nightly_page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("nightly_page")
    variant(tmp / "variants", "tiny", "fp32", onnx_model(tmp / "a.onnx", seed=0, n_in=64))
    variant(tmp / "variants", "tiny", "a-rather-long-variant-name", onnx_model(tmp / "b.onnx", seed=2, n_in=64))
    variant(tmp / "variants", "tiny", "fp32-copy", onnx_model(tmp / "c.onnx", seed=0, n_in=64), parent="fp32")
    eval_npz(tmp / "eval.npz", n_in=64)
    (tmp / "budgets.toml").write_text("[[budget]]\nmax_p90_ms = 0.000001\n")  # never met: the gate fails
    (tmp / "nightly.toml").write_text(
        '[nightly]\nboards = ["local"]\nvariants = "variants"\neval = "eval.npz"\nbudgets = "budgets.toml"\n'
        "[nightly.settings]\nmin_time_s = 0.1\nrepeats = 2\n"
    )
    args = ["nightly", str(tmp / "nightly.toml"), "--results", str(tmp / "results"), "--json"]
    first = CliRunner().invoke(main, [*args, "--commit", "1111111aaaa"])  # trends have one point per commit
    assert first.exit_code == 3, first.output
    second = CliRunner().invoke(main, [*args, "--commit", "2222222bbbb"])
    assert second.exit_code == 3, second.output
    return json.loads(second.stdout)  # type: ignore[no-any-return]


def test_page_opens_with_the_verdict(nightly_page: dict[str, object]) -> None:
    html = Path(str(nightly_page["html"])).read_text()
    assert nightly_page["verdict"] == "FAIL" and str(nightly_page["why"]).startswith("gate failed: ")
    title = re.search(r"<title>(.*?)</title>", html)
    assert title is not None and title.group(1).startswith("FAIL: edgebench nightly")
    body = html.split("<body>", 1)[1].lstrip()
    assert body.startswith('<p id="verdict" class="verdict bad"><b>FAIL</b>: gate failed: ')
    assert "Gate: " in html and "Against the last nightly" in html  # the gate and the comparison follow
    assert "min_time_s=0.1" in html and "repeats=2" in html  # the settings it was measured with
    assert "commit 2222222" in html and ">1111111</text>" in html  # the run's commit; trend points by commit
    assert "valid: complete, no failed measurement" in html
    assert "p90_ms (ms)" in html or "(ms)" in html
    md = Path(str(nightly_page["markdown"])).read_text()
    assert md.splitlines()[0].startswith("# ❌ FAIL: edgebench nightly") and "gate failed" in md.splitlines()[0]
    assert "min_time_s=0.1" in md


@pytest.mark.parametrize("width", [1400, 390])
def test_page_in_headless_chromium(nightly_page: dict[str, object], width: int, tmp_path: Path) -> None:
    exe = chromium()
    page = Path(str(nightly_page["html"]))
    dom = browse(exe, page.as_uri(), width, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-1000:]
    text = re.sub(r"<[^>]+>", " ", dom.stdout.split("<body>", 1)[1])
    assert text.split()[:2] == ["FAIL", ":"] or text.split()[0] == "FAIL:"  # the first words on the page

    checked = tmp_path / "checked.html"
    checked.write_text(page.read_text().replace("</body>", CHECK_LABELS + "</body>"))
    got = browse(exe, checked.as_uri(), width, "--dump-dom")
    report = json.loads(re.search(r'<pre id="labelcheck">(.*?)</pre>', got.stdout, re.S).group(1))  # type: ignore[union-attr]
    assert report["svgs"] >= 3, report
    assert report["bad"] == []  # distribution, Pareto, trends

    shot, blank = tmp_path / "page.png", tmp_path / "blank.png"
    browse(exe, page.as_uri(), width, f"--screenshot={shot}")
    browse(exe, "about:blank", width, f"--screenshot={blank}")
    assert shot.stat().st_size > 5 * blank.stat().st_size  # a page with content, not a blank image
