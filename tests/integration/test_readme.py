"""The README is tested: every command of it runs as written, in order, and exits as it says.

What is extracted from README.md:

* every line of a ```bash or bare ``` block is a command, run in order with ``bash -c`` from
  the top of a fresh folder that holds what a clone holds for these commands (``examples/``
  and README.md; ``.venv`` links to this checkout's virtual environment, and PATH starts with
  its ``bin`` as ``. .venv/bin/activate`` does), against the loopback farm of
  ``tests/integration/conftest.py`` (``EDGEBENCH_BOARDS`` names its boards file: what
  ``edgebench farm up`` + ``export EDGEBENCH_BOARDS=...`` give a reader);
* a block right after ``<!-- not run: reason -->`` is not run (what a reader types for their own
  board, and the farm commands the fixture stands in for); a ```text block is output, never run;
* the set-up steps are not run: creating the venv, ``pip install``, ``bash scripts/test.sh`` and
  ``. .venv/bin/activate`` (this checkout is already set up); the rest of a set-up line runs
  (``.venv/bin/edgebench demo`` of the first command: the demo every later command builds on);
* a trailing ``# ... exit N`` (or ``exit N or M``) comment states the exit code; none states 0.

Inline ``edgebench ...`` spans of the prose are references (a command name, a flag, a
placeholder such as RECIPE), not commands to run: each is parsed by the real CLI instead, so
a renamed command or flag in the prose fails too.

The demo of the first command runs here and nowhere else in the suite (its checks moved here
from test_foundation_demo.py): about 100 s of the tour's time on an idle 2-core machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
import pytest
import tomllib

from edgebench.cli import main as cli_main
from edgebench.results.store import list_runs
from edgebench.targets.farm import Farm

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV = ROOT / ".venv"
# set-up steps of the README that this checkout has already done (never run by the test)
SETUP = ("python3 -m venv", ".venv/bin/pip install", "bash scripts/test.sh", ". .venv/bin/activate")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->$")
EXIT = re.compile(r"\bexits? (\d+(?:,? or \d+)*)")
# the tour's fixture runs inside its first test: pytest-timeout's 600 s default is too short on a busy machine
TOUR_TIMEOUT_S = 2400
MIN_COMMANDS = 25  # the README has 30 today: an extractor that finds far fewer is broken
TIMEOUT_S = {"demo": 900}  # per command, by edgebench subcommand; others 600 s


@dataclass(frozen=True)
class Command:
    """One command of the README: its text, where it is, and the exit codes it may end with."""

    text: str
    line: int
    exits: frozenset[int] = frozenset({0})


@dataclass
class Extracted:
    """What the README holds: commands to run, blocks not run (with their reason), inline references."""

    commands: list[Command] = field(default_factory=list)
    not_run: list[tuple[int, str, list[str]]] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)


def _split_comment(line: str) -> tuple[str, str]:
    """``(command, comment)``: the comment starts at a ``#`` after whitespace, outside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def extract(text: str) -> Extracted:
    """The commands of a README (see the module docstring for the rules)."""
    out = Extracted()
    lines = text.splitlines()
    i = 0
    previous = ""
    while i < len(lines):
        line = lines[i].strip()
        if not line.startswith("```"):
            if line:
                previous = line
            i += 1
            continue
        lang = line[3:].strip()
        start = i + 1
        i += 1
        body: list[tuple[int, str]] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append((i + 1, lines[i]))
            i += 1
        i += 1  # the closing fence
        marker = NOT_RUN.match(previous)
        previous = ""
        if lang not in ("", "bash"):
            continue
        if marker:
            out.not_run.append((start, marker.group("reason"), [b for _, b in body if b.strip()]))
            continue
        for number, raw in body:
            command, comment = _split_comment(raw.strip())
            if not command:
                continue
            exits = EXIT.search(comment)
            codes = frozenset(int(c) for c in re.findall(r"\d+", exits.group(1))) if exits else frozenset({0})
            parts = [p.strip() for p in command.split("&&")]
            kept = [p for p in parts if not p.startswith(SETUP)]
            out.setup += [p for p in parts if p.startswith(SETUP)]
            if kept:
                out.commands.append(Command(" && ".join(kept), number, codes))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    # a placeholder in angle brackets (`--baseline <A's run>`) is one word
    spans = [re.sub(r"<[^>]*>", "PLACEHOLDER", m) for m in re.findall(r"`(edgebench [^`]+)`", prose)]
    out.inline = [" ".join(m.split()) for m in spans]
    return out


def test_the_extractor_reads_blocks_markers_exit_codes_and_set_up() -> None:
    sample = "\n".join(
        [
            "```bash",
            "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/edgebench demo",
            "```",
            "Then `edgebench report --format html` and",
            "```",
            "edgebench gate b.toml     # exit 3: a budget fails",
            'edgebench accept latest --reason "a # in quotes"',
            "edgebench run x -- --benchmark-compare-fail=median:5%   # exit 0, or 3 on a regression",
            "```",
            "<!-- not run: your own host -->",
            "```bash",
            "edgebench boards add pi4 --host 192.168.1.20",
            "```",
            "```text",
            "edgebench this is output",
            "```",
        ]
    )
    got = extract(sample)
    assert [(c.text, set(c.exits)) for c in got.commands] == [
        (".venv/bin/edgebench demo", {0}),
        ("edgebench gate b.toml", {3}),
        ('edgebench accept latest --reason "a # in quotes"', {0}),
        ("edgebench run x -- --benchmark-compare-fail=median:5%", {0, 3}),
    ]
    assert got.setup == ["python3 -m venv .venv", ".venv/bin/pip install -e ."]
    assert got.not_run == [(11, "your own host", ["edgebench boards add pi4 --host 192.168.1.20"])]
    assert got.inline == ["edgebench report --format html"]


def _parse(words: list[str]) -> None:
    """Check an ``edgebench ...`` command line against the real CLI, without running it.

    The words that are not options select the (sub)command, as click resolves them; every
    option before a ``--`` must be one the command declares (hidden old names included). A
    missing argument or required option is allowed: the prose names commands and flags, not
    whole command lines.

    Raises:
        click.ClickException: an unknown command or option.
    """
    cmd: click.Command = cli_main
    ctx = click.Context(cmd, info_name="edgebench", resilient_parsing=True)
    rest = list(words[1:])
    while isinstance(cmd, click.Group):
        if not rest or rest[0].startswith("-"):
            break
        word = rest[0]
        name, sub, rest = cmd.resolve_command(ctx, rest)
        if sub is None or name is None:  # resilient parsing resolves an unknown name to nothing
            raise click.UsageError(f"No such command {word!r}", ctx=ctx)
        cmd, ctx = sub, click.Context(sub, info_name=name, parent=ctx, resilient_parsing=True)
    declared = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    for word in rest[: rest.index("--")] if "--" in rest else rest:
        flag = word.split("=", 1)[0]
        if flag.startswith("-") and flag not in declared:
            raise click.NoSuchOption(flag, ctx=ctx)


def test_every_inline_edgebench_command_names_a_real_command_and_real_flags() -> None:
    inline = extract(README.read_text(encoding="utf-8")).inline
    assert len(inline) >= 20
    bad = []
    for span in inline:
        try:
            _parse(span.split())
        except click.ClickException as exc:
            bad.append(f"`{span}`: {exc.format_message()}")
    assert not bad, "README names commands or flags edgebench does not have:\n" + "\n".join(bad)
    with pytest.raises(click.ClickException, match="No such option"):  # the check above can fail
        _parse(["edgebench", "report", "--fromat", "html"])
    with pytest.raises(click.ClickException, match="No such command"):
        _parse(["edgebench", "varaints"])


# ---- the tour, run ------------------------------------------------------------------------------------------


@dataclass
class Ran:
    """One README command as the tour ran it."""

    command: Command
    code: int
    seconds: float
    output: str
    new_runs: list[Path]


@dataclass
class Tour:
    """The README's commands, run in order in ``folder``."""

    folder: Path
    ran: list[Ran]
    extracted: Extracted

    def table(self) -> str:
        """One line per command: exit code, seconds, README line and text."""
        rows = [f"{'exit':>4} {'s':>6}  line  command"]
        rows += [f"{r.code:>4} {r.seconds:6.1f}  {r.command.line:>4}  {r.command.text}" for r in self.ran]
        total = sum(r.seconds for r in self.ran)
        return "\n".join([*rows, f"{len(self.ran)} commands, {total:.0f} s"])

    def of(self, prefix: str) -> Ran:
        """The first command run that starts with ``prefix``."""
        return next(r for r in self.ran if r.command.text.startswith(prefix))


def fresh_clone(folder: Path) -> Path:
    """A folder with what a fresh clone holds for the README's commands (no results, no variants)."""
    folder.mkdir()
    shutil.copy2(README, folder / "README.md")
    shutil.copytree(ROOT / "examples", folder / "examples", ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    (folder / ".venv").symlink_to(VENV)
    return folder


def _env(farm: Farm | None) -> dict[str, str]:
    env = dict(os.environ)  # with the suite's own board lock and cache (conftest.own_board_lock)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env.pop("PYTHONHOME", None)
    if farm is not None:
        env["EDGEBENCH_BOARDS"] = str(farm.boards_file)
    return env


@pytest.fixture(scope="module")
def tour(farm: Farm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    """Every README command, run in order against the farm; stops at the first unexpected exit code."""
    extracted = extract(README.read_text(encoding="utf-8"))
    folder = fresh_clone(tmp_path_factory.mktemp("readme") / "clone")
    env = _env(farm)
    ran: list[Ran] = []
    for command in extracted.commands:
        words = command.text.split()
        sub = words[1] if len(words) > 1 else ""
        before = set(list_runs(folder / "results")) if (folder / "results" / "runs").is_dir() else set()
        t0 = time.monotonic()
        out = subprocess.run(
            ["bash", "-c", command.text],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S.get(sub, 600),
        )
        seconds = time.monotonic() - t0
        after = set(list_runs(folder / "results")) if (folder / "results" / "runs").is_dir() else set()
        ran.append(Ran(command, out.returncode, seconds, out.stdout + out.stderr, sorted(after - before)))
        with (folder.parent / "tour.log").open("a") as log:  # progress, readable while the tour runs
            log.write(f"{out.returncode:>4} {seconds:6.1f}  {command.line:>4}  {command.text}\n")
        if out.returncode not in command.exits:
            break
    tour = Tour(folder, ran, extracted)
    print("\n" + tour.table())
    yield tour


@pytest.mark.ssh
@pytest.mark.slow
@pytest.mark.timeout(TOUR_TIMEOUT_S)
def test_every_readme_command_exits_as_the_readme_says(tour: Tour) -> None:
    assert len(tour.extracted.commands) >= MIN_COMMANDS, [c.text for c in tour.extracted.commands]
    last = tour.ran[-1]
    assert last.code in last.command.exits, (
        f"README line {last.command.line}: `{last.command.text}` exited {last.code}, "
        f"the README says {sorted(last.command.exits)}:\n{last.output[-4000:]}\n{tour.table()}"
    )
    assert len(tour.ran) == len(tour.extracted.commands), tour.table()
    # the blocks not run are what a reader types for their own setup, each with its reason
    assert [lines[0].split()[:3] for _, _, lines in tour.extracted.not_run] == [
        ["edgebench", "boards", "add"],
        ["edgebench", "farm", "up"],
        ["edgebench", "farm", "down"],
        ["pip", "install", "'edgebench[postgres]'"],  # team history: the reader's own PostgreSQL server
        ["edgebench", "results", "push"],
    ]
    assert all(reason for _, reason, _ in tour.extracted.not_run)
    assert any(s.startswith(".venv/bin/pip install") for s in tour.extracted.setup)


@pytest.mark.ssh
@pytest.mark.slow
@pytest.mark.timeout(TOUR_TIMEOUT_S)
def test_the_demo_trains_measures_in_agent_processes_and_stores_its_run(tour: Tour) -> None:
    demo = tour.of(".venv/bin/edgebench demo")
    assert demo.code == 0 and len(demo.new_runs) == 1, demo.output[-3000:]
    run = json.loads(demo.new_runs[0].read_text())
    assert run["edgebench"]["complete"] is True and run["edgebench"]["schema"] == 1
    assert run["edgebench"]["failures"] == []
    by_variant = {b["params"]["variant"]: b for b in run["benchmarks"]}
    assert sorted(by_variant) == ["fp16", "fp32", "int8-dynamic", "int8-static", "pruned-50"]
    bench = by_variant["fp32"]
    static = by_variant["int8-static"]["extra_info"]  # a compressed variant against its parent, on the board
    assert static["bytes"] * 2.5 < bench["extra_info"]["bytes"]
    assert static["fidelity"]["top1_agreement"] > 0.9
    info = bench["extra_info"]
    assert info["agent_pid"] not in (os.getpid(), None)  # the samples came from an agent process
    assert bench["stats"]["rounds"] == len(bench["stats"]["data"]) >= 50
    assert info["summary"]["p50_ms"] == pytest.approx(1e3 * float(np.median(bench["stats"]["data"])))
    assert 0.8 < info["accuracy"]["top1"] <= 1.0
    assert info["memory"]["peak_rss"] > info["memory"]["rss_before_load"] > 0
    variants = tour.folder / "results" / "demo" / "variants" / "digits_cnn"
    manifest = json.loads((variants / "fp32" / "manifest.json").read_text())
    assert manifest["sha256"] == info["sha256"]
    assert manifest["inputs"][0]["shape"][1:] == [1, 8, 8]
    assert all("profile" in b["extra_info"] for b in run["benchmarks"])  # profiled, as `run --profile`
    assert "int8-dynamic is" in demo.output and "slower than fp32" in demo.output
    # the eval file the README names for top-1
    assert (tour.folder / "results" / "demo" / "digits_cnn.npz").is_file()


@pytest.mark.ssh
@pytest.mark.slow
@pytest.mark.timeout(TOUR_TIMEOUT_S)
def test_the_tour_did_what_its_commands_say(tour: Tour, farm: Farm) -> None:
    folder = tour.folder
    assert sorted(p.name for p in (folder / "variants").iterdir()) == ["detector", "digits"]
    assert (folder / "examples" / "detector.onnx").is_file()
    assert (folder / "report.html").read_text().lstrip().lower().startswith("<!doctype html")
    measured = tour.of("edgebench run --variants variants/ --models digits --eval")
    run = json.loads(measured.new_runs[0].read_text())
    boards = {b["params"]["board"] for b in run["benchmarks"]}
    assert boards == {"local", "farm-1"}
    top1 = {
        (b["params"]["board"], b["params"]["variant"]): b["extra_info"]["accuracy"]["top1"] for b in run["benchmarks"]
    }
    assert len(top1) == 10 and all(0.5 < t <= 1 for t in top1.values())  # top-1, from the demo's eval file
    assert top1["local", "fp32"] > 0.9 and top1["local", "fp32"] == top1["farm-1", "fp32"]
    strict = tour.of("edgebench gate examples/budgets-strict.toml")
    assert strict.code == 3 and "fp32" in strict.output
    nightly = tour.of("edgebench nightly examples/nightly.toml")
    assert "PASS" in nightly.output and list((folder / "results" / "nightly").glob("*.html"))
    # examples/boards.toml has the keys `farm up` writes, board by board
    written = tomllib.loads(farm.boards_file.read_text())["boards"]
    example = tomllib.loads((ROOT / "examples" / "boards.toml").read_text())["boards"]
    assert [list(b) for b in example] == [list(b) for b in written]


# ---- bad input: a README command pointed at a missing example file ------------------------------------------


def _tree(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")}


def _example_commands() -> list[Command]:
    return [
        c
        for c in extract(README.read_text(encoding="utf-8")).commands
        if c.text.startswith("edgebench ") and "examples/" in c.text
    ]


@pytest.mark.parametrize("command", _example_commands(), ids=lambda c: c.text)
def test_a_readme_command_without_its_example_file_says_so_in_one_line_and_writes_nothing(
    command: Command, tmp_path: Path
) -> None:
    folder = tmp_path / "clone"
    folder.mkdir()
    (folder / "results").mkdir()  # as after the demo: the missing file is the problem, not the results
    before = _tree(folder)
    out = subprocess.run(
        ["bash", "-c", command.text], cwd=folder, env=_env(None), capture_output=True, text=True, timeout=120
    )
    lines = (out.stdout + out.stderr).strip().splitlines()
    missing = re.search(r"examples/[\w.-]+", command.text)
    assert missing is not None
    assert out.returncode == 1, out.stdout + out.stderr
    assert len(lines) == 1 and missing.group(0) in lines[0] and "does not exist" in lines[0], lines
    assert re.search(r": (check|give|fix)", lines[0]), f"no fix in {lines[0]!r}"
    assert _tree(folder) == before


def test_a_recipe_whose_model_file_is_missing_names_it_and_writes_nothing(tmp_path: Path) -> None:
    """`edgebench compress examples/detector.toml` before `python examples/make_detector.py`."""
    folder = fresh_clone(tmp_path / "clone")
    before = _tree(folder)
    out = subprocess.run(
        [sys.executable, "-m", "edgebench.cli", "compress", "examples/detector.toml"],
        cwd=folder,
        env=_env(None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert out.returncode == 1
    assert len(lines) == 1 and "examples/detector.onnx does not exist" in lines[0], lines
    assert _tree(folder) == before
