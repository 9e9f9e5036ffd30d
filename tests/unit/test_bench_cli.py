"""`edgebench run`: user mistakes are one line and exit 1, before any measuring; the child pytest command."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from _pytest.config.argparsing import Parser
from click.testing import CliRunner

from edgebench.bench import plugin
from edgebench.bench.settings import SETTINGS, RunSettings, from_options
from edgebench.cli import main
from edgebench.compress.variant import save_variant
from edgebench.workflows.run import pytest_argv


@pytest.fixture
def variants(tmp_path: Path, tiny_onnx: Path) -> Path:
    root = tmp_path / "variants"
    save_variant(
        root / "tiny" / "fp32",
        tiny_onnx,
        {"model": "tiny", "variant": "fp32", "fmt": "onnx", "parent": None, "passes": []},
    )
    return root


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["run", "--results", str(tmp_path / "results"), *args])
    return r.exit_code, r.stderr if hasattr(r, "stderr") else r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--boards", "nosuch"], "error: unknown board 'nosuch'"),
        (["--dim", "seq=9999999999"], "error: dimension 'seq=9999999999': 9999999999 is not in the range 1 to"),
        (["--dim", "seq"], "error: dimension 'seq': write it as NAME=SIZE"),
        (["--eval", "absent.npz"], "error: eval data absent.npz does not exist: give an .npz file"),
        (["--models", "nosuch"], "error: models ['nosuch'] have no variants in"),
    ],
)
def test_user_mistakes_exit_1_before_measuring(tmp_path: Path, variants: Path, args: list[str], message: str) -> None:
    code, err = _run(tmp_path, "--variants", str(variants), *args)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "results" / "runs").exists() or not any((tmp_path / "results" / "runs").iterdir())


def test_missing_variants_folder(tmp_path: Path) -> None:
    code, err = _run(tmp_path, "--variants", str(tmp_path / "nope"))
    assert code == 1 and f"variants folder {tmp_path / 'nope'} does not exist" in err


def test_unwritable_results_folder(tmp_path: Path, variants: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        results = blocker / "results"  # a folder under a file cannot be made, even by root
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        results = ro / "results"
    r = CliRunner().invoke(main, ["run", "--variants", str(variants), "--results", str(results)])
    assert r.exit_code == 1 and "cannot be created" in r.output and "choose another path" in r.output


def test_run_help_names_the_method_and_exit_codes() -> None:
    r = CliRunner().invoke(main, ["run", "--help"])
    assert r.exit_code == 0
    for text in ("--variants", "--boards", "--eval", "--quick", "--parallel", "--benchmark-compare-fail", "Exit codes"):
        assert text in r.output
    assert "--repeats" in r.output and "interleaved" in r.output


def test_run_refuses_zero_repeats_before_any_work(tmp_path: Path) -> None:
    results = tmp_path / "results"
    r = CliRunner().invoke(main, ["run", "--variants", str(tmp_path), "--results", str(results), "--repeats", "0"])
    assert r.exit_code == 2 and "--repeats" in r.output and not results.exists()


def test_child_pytest_command_carries_only_changed_settings(tmp_path: Path) -> None:
    s = RunSettings(min_time_s=0.5, quick=100, dims={"seq": 8})
    argv = pytest_argv(
        variants=tmp_path / "v", boards=["local", "pi"], results=tmp_path / "r", run_id="RID", settings=s,
        parallel=True, extra=("--benchmark-compare=0001",),
    )  # fmt: skip
    joined = " ".join(argv)
    assert "--pyargs edgebench.bench.harness" in joined and "--edge-boards local,pi" in joined
    assert "--edge-min-time 0.5" in joined and "--edge-quick 100" in joined and "--edge-dim seq=8" in joined
    assert "--edge-min-rounds" not in joined  # a default stays the plugin's default
    assert "--edge-run-id RID" in joined and "--edge-parallel" in joined
    assert argv[-1] == "--benchmark-compare=0001"


def test_every_setting_survives_the_launcher_and_the_plugin(tmp_path: Path) -> None:
    """The one declaration drives both ends: each changed setting crosses the child pytest's argv intact."""
    changed = {
        s.name: ({"seq": 8, "h": 2} if s.repeatable else s.type(min((s.default or 1) * 2 + 1, s.le or math.inf)))
        for s in SETTINGS
    }  # every value differs from its default and passes its range (a fraction's 1.2 becomes 1)
    settings = RunSettings.from_mapping(changed)
    argv = pytest_argv(variants=tmp_path, boards=["local"], results=tmp_path, run_id="x", settings=settings)
    parser = Parser()
    plugin.pytest_addoption(parser)
    ns = parser.parse_known_args(argv[argv.index("--edge-variants") :])
    parsed = from_options({s.name: getattr(ns, s.dest) for s in SETTINGS})
    assert parsed == settings and all(getattr(parsed, s.name) != s.default for s in SETTINGS)


def test_run_help_shows_each_flag_with_its_declared_default() -> None:
    r = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    lines = r.output.splitlines()
    for s in SETTINGS:
        if s.flag is None:
            continue
        line = next(ln for ln in lines if ln.strip().startswith(s.flag + " "))
        assert (f"[default: {s.default}" in line) == (s.default is not None and not s.repeatable), line
