"""Issue 19, item 6: every number and name at every entry point is validated, in one line.

CLI flags (usage errors, exit 2, the range stated in --help), measurement settings as the
nightly gives them, recipes, boards.toml, budgets and manifests (config errors, exit 1,
naming the file and the field); nothing is written by a refused command. Names cannot
forge a line in a log.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from _pytest.config.argparsing import Parser
from click.testing import CliRunner

from edgebench.bench import plugin
from edgebench.bench.settings import MAX_REPEATS, SETTINGS, RunSettings
from edgebench.cli import main
from edgebench.cli.common import FiniteRange
from edgebench.compress.variant import load_variant, save_variant, variant_for_file
from edgebench.config import check_name
from edgebench.errors import ConfigError, ModelError
from edgebench.targets.inventory import load_inventory

BIG = 9223372036854775807  # 2**63-1
INJECTED = "fp32\n::error::injected\nregressed: fake"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def variants(tmp_path: Path, tiny_onnx: Path) -> Path:
    root = tmp_path / "variants"
    save_variant(
        root / "tiny" / "fp32",
        tiny_onnx,
        {"model": "tiny", "variant": "fp32", "fmt": "onnx", "parent": None, "passes": []},
    )
    return root


# -- edgebench run's flags: usage errors (exit 2) naming the flag and the range, nothing written ----------------


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--cooldown", "-5"], "Invalid value for '--cooldown': -5 is not in the range 0 to 86400"),
        (
            ["--timeout", "nan"],
            "Invalid value for '--timeout': nan is not a finite number in the range above 0, at most",
        ),
        (["--timeout", "inf"], "Invalid value for '--timeout': inf is not a finite number"),
        (["--max-time", "nan"], "Invalid value for '--max-time': nan is not a finite number in the range 0 to 86400"),
        (["--min-cosine", "nan"], "Invalid value for '--min-cosine': nan is not a finite number in the range 0 to 1"),
        (["--min-cosine", "1.5"], "Invalid value for '--min-cosine': 1.5 is not in the range 0 to 1"),
        (["--repeats", str(BIG)], f"Invalid value for '--repeats': {BIG} is not in the range 1 to {MAX_REPEATS}"),
        (["--repeats", "0"], "Invalid value for '--repeats': 0 is not in the range 1 to 1000"),
        (["--min-rounds", "0"], "Invalid value for '--min-rounds': 0 is not in the range 1 to"),
        (["--batch-size", "2.5"], "Invalid value for '--batch-size': '2.5' is not an integer"),
    ],
)
def test_run_refuses_a_bad_number_as_a_usage_error(
    tmp_path: Path, variants: Path, args: list[str], problem: str
) -> None:
    r = CliRunner().invoke(main, ["run", "--variants", str(variants), "--results", str(tmp_path / "results"), *args])
    assert r.exit_code == 2, r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and problem in errors[0], r.stderr
    assert "Traceback" not in r.output and not (tmp_path / "results").exists()


def test_run_refuses_a_dimension_past_its_bound_in_one_line(tmp_path: Path, variants: Path) -> None:
    args = ["run", "--variants", str(variants), "--results", str(tmp_path / "r"), "--dim", f"seq={BIG}"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.output
    assert f"error: dimension 'seq={BIG}': {BIG} is not in the range 1 to 1048576" in r.stderr
    assert not (tmp_path / "r").exists()


def test_run_help_states_every_bound() -> None:
    out = " ".join(CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output.split())
    assert f"Range: 1 to {MAX_REPEATS}." in out and "Range: 0 to 1." in out and "Range: above 0, at most 604800." in out
    for s in SETTINGS:
        if s.flag and s.type not in (str,):
            assert f"Range: {s.type.range_text()}." in s.help, s.name


@pytest.mark.parametrize(
    ("option", "value"), [("--edge-repeats", str(BIG)), ("--edge-freq-drop", "-1"), ("--edge-temp-limit", "nan")]
)
def test_the_harness_options_refuse_the_same_values(option: str, value: str) -> None:
    parser = Parser()
    plugin.pytest_addoption(parser)
    with pytest.raises(Exception, match=r"is not (in the range|a finite number)"):
        parser.parse_known_args([option, value])


# -- measurement settings as the nightly (or any file) gives them -------------------------------------------------


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"repeats": BIG}, f"field 'repeats' is {BIG}; it must be <= 1000"),
        ({"lock_timeout_s": -5}, "field 'lock_timeout_s' is -5; it must be >= 0"),
        ({"min_time_s": float("nan")}, "field 'min_time_s' is nan: input should be a finite number"),
        ({"temp_limit_c": float("nan")}, "field 'temp_limit_c' is nan: input should be a finite number"),
        ({"timeout_s": float("inf")}, "field 'timeout_s' is inf: input should be a finite number"),
        ({"freq_drop": -1}, "field 'freq_drop' is -1; it must be >= 0"),
        ({"dims": {"seq": BIG}}, f"field 'seq' is {BIG}; it must be <= 1048576"),
        ({"repats": 3}, "did you mean 'repeats'?"),
    ],
)
def test_settings_from_a_file_are_bounded_and_finite(values: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunSettings.from_mapping(values, where="nightly.toml: [nightly.settings]")
    assert problem in str(info.value) and "\n" not in str(info.value)
    assert str(info.value).startswith("nightly.toml: [nightly.settings") or "unknown" in str(info.value)


@pytest.mark.parametrize("values", [{"repeats": BIG}, {"cooldown_s": -5.0}, {"min_cosine": float("nan")}])
def test_settings_made_in_code_are_checked_too(values: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="measurement settings: "):
        RunSettings(**values)  # type: ignore[arg-type]


def test_the_nightly_refuses_a_huge_repeats_before_any_work(tmp_path: Path, variants: Path) -> None:
    cfg = tmp_path / "nightly.toml"
    cfg.write_text(f'[nightly]\nboards = ["local"]\nvariants = "variants"\n\n[nightly.settings]\nrepeats = {BIG}\n')
    r = CliRunner().invoke(main, ["nightly", str(cfg), "--results", str(tmp_path / "r")])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.output
    assert f"field 'repeats' is {BIG}; it must be <= 1000" in r.stderr
    assert not (tmp_path / "r" / "runs").exists()


# -- recipes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (f'threads = {BIG}\n[models.m]\nsource = "m.onnx"\n', f"field 'threads' is {BIG}; it must be <= 1024"),
        (
            f'[models.m]\nsource = "m.onnx"\ndims = {{ seq = {BIG} }}\n',
            f"[models.m.dims] field 'seq' is {BIG}; it must be <= 1048576",
        ),
        ('[models."m\\nx"]\nsource = "m.onnx"\n', "holds the control character '\\n'"),
        (
            '[models.m]\nsource = "m.onnx"\n[models.m.variants."a\\u001b[2J"]\npasses = []\n',
            "holds the control character '\\x1b'",
        ),
        ('[data]\neval_fraction = nan\n[models.m]\nsource = "m.onnx"\n', "field 'eval_fraction' is nan"),
        ('trheads = 1\n[models.m]\nsource = "m.onnx"\n', "did you mean 'threads'?"),
    ],
)
def test_a_recipe_with_a_bad_value_is_one_line(tmp_path: Path, body: str, problem: str) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(body)
    r = CliRunner().invoke(main, ["compress", str(recipe)])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.output
    assert problem in r.stderr and str(recipe) in r.stderr
    assert _files(tmp_path) == {"recipe.toml": body.encode()}  # nothing written


# -- boards.toml -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("connect_timeout = inf", "field 'connect_timeout' is inf: input should be a finite number"),
        ("connect_timeout = 1e9", "field 'connect_timeout' is 1000000000.0; it must be <= 3600"),
        ('jump_host = "pi@gate:99999"', "field 'jump_host' port 99999 in 'pi@gate:99999' must be from 1 to 65535"),
        ("cpu_affinity = [99999]", "field 'cpu_affinity[0]' is 99999; it must be <= 8191"),
        ('python = "/usr/bin/python3\\u0000"', "field 'python' '/usr/bin/python3\\x00' holds the control character"),
        ('user = "pi\\n::error::x"', "field 'user' 'pi\\n::error::x' holds the control character '\\n'"),
        (f"threads = {BIG}", f"field 'threads' is {BIG}; it must be <= 1024"),
        ("cost = nan", "field 'cost' is nan"),
        ('tags = { site = "lab\\u0007" }', "field 'tags' value of 'site'"),
    ],
)
def test_a_board_with_a_bad_value_is_one_line(tmp_path: Path, line: str, problem: str) -> None:
    inv = tmp_path / "boards.toml"
    body = f'[[boards]]\nname = "pi"\nhost = "192.0.2.1"\n{line}\n'
    inv.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_inventory(inv)
    msg = str(info.value)
    assert msg.startswith(f"{inv}: board 'pi':") and problem in msg and "\n" not in msg, msg
    r = CliRunner().invoke(main, ["boards", "list"], env={"EDGEBENCH_BOARDS": str(inv)})
    assert r.exit_code == 1 and r.stderr.count("\n") == 1 and problem in r.stderr, r.output
    assert inv.read_text() == body


def test_a_jump_host_with_a_good_port_and_ipv6_is_taken(tmp_path: Path) -> None:
    inv = tmp_path / "boards.toml"
    inv.write_text('[[boards]]\nname = "pi"\nhost = "192.0.2.1"\njump_host = "me@[2001:db8::1]:2222,gw"\n')
    assert load_inventory(inv)["pi"].jump_host == "me@[2001:db8::1]:2222,gw"


# -- budgets -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "variant = 1979-05-27",
            "[[budget]] #1 field 'variant' is the TOML date or time 1979-05-27, which no field takes",
        ),
        ("board = 07:32:00", "[[budget]] #1 field 'board' is the TOML date or time 07:32:00"),
        ('model = "m\\n::error::x"', "[[budget]] #1 field 'model' 'm\\n::error::x' holds the control character '\\n'"),
    ],
)
def test_a_budget_with_a_date_or_a_control_character_is_one_line(tmp_path: Path, line: str, problem: str) -> None:
    (tmp_path / "r").mkdir()
    b = tmp_path / "budgets.toml"
    b.write_text(f"[[budget]]\nmax_p90_ms = 5\n{line}\n")
    junit = tmp_path / "g.xml"
    r = CliRunner().invoke(main, ["gate", str(b), "--results", str(tmp_path / "r"), "--junit", str(junit)])
    assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.output
    assert f"{b}: {problem}" in r.stderr
    assert not junit.exists() and not any((tmp_path / "r").iterdir())


# -- names: a manifest cannot forge a line in a CI log -----------------------------------------------------------


def _inject(variants: Path, key: str, value: str) -> Path:
    mf = variants / "tiny" / "fp32" / "manifest.json"
    doc = json.loads(mf.read_text())
    doc[key] = value
    mf.write_text(json.dumps(doc))
    return mf


@pytest.mark.parametrize(
    ("key", "value"), [("variant", INJECTED), ("model", "tiny\r::error::x"), ("parent", "a\x1b[31m")]
)
def test_a_manifest_with_a_control_character_in_a_name_is_refused(variants: Path, key: str, value: str) -> None:
    mf = _inject(variants, key, value)
    with pytest.raises(ModelError) as info:
        load_variant(mf.parent)
    msg = str(info.value)
    assert msg.startswith(f"{mf}: field '{key}' ") and "holds the control character" in msg and "\n" not in msg


def test_run_over_an_injected_manifest_prints_no_forged_line(tmp_path: Path, variants: Path) -> None:
    mf = _inject(variants, "variant", INJECTED)
    r = CliRunner().invoke(main, ["run", "--variants", str(variants), "--results", str(tmp_path / "results")])
    assert r.exit_code == 1, r.output
    assert r.stderr.splitlines() == [
        f"error: {mf}: field 'variant' 'fp32\\n::error::injected\\nregressed: fake' holds the control character '\\n': "
        "it must be one printable line; re-create the variant with `edgebench compress`"
    ]
    lines = (r.stdout + r.stderr).splitlines()
    assert not any(ln.startswith(("::error::", "regressed:")) for ln in lines)
    assert not (tmp_path / "results").exists()


def test_a_model_file_named_with_a_newline_is_refused(tmp_path: Path, tiny_onnx: Path) -> None:
    bad = tmp_path / "m\n::error::x.onnx"
    bad.write_bytes(tiny_onnx.read_bytes())
    with pytest.raises(ModelError, match="the model name 'm\\\\n::error::x' holds the control character"):
        variant_for_file(bad, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", ["", " ", "a\tb", "a\x00", "x" * 201, "a\u2028b"])
def test_check_name_refuses_what_is_not_one_printable_line(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name, "variant")
    assert check_name("int8-static (50 %)", "variant") == "int8-static (50 %)"


# -- a finite click type for the other commands' float flags ---------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_finite_range_refuses_nan_and_infinities(value: str) -> None:
    @click.command()
    @click.option("--alpha", type=FiniteRange(0, 0.5))
    def cmd(alpha: float) -> None:
        click.echo(alpha)

    r = CliRunner().invoke(cmd, ["--alpha", value])
    assert r.exit_code == 2 and f"Invalid value for '--alpha': {value} is not " in r.output and "0<=x<=0.5" in r.output
    assert CliRunner().invoke(cmd, ["--alpha", "0.25"]).output == "0.25\n"
