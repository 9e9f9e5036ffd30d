"""edgebench choose: ranking boards and variants from stored runs and the inventory's cost and power."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgebench.cli import main
from edgebench.errors import UserError
from edgebench.model import BoardCost, Measurement, Run
from edgebench.results import store
from edgebench.results.choose import choose, parse_mb, parse_ms
from edgebench.results.schema import measurement_to_benchmark

RUNS = Path(__file__).parent / "data" / "results_runs"


def on_board(board: str, factor: float, run_id: str) -> Run:
    """The real fixture run relabelled as measured on ``board``, ``factor`` times slower."""
    run = json.loads(sorted(RUNS.glob("*.json"))[0].read_text())
    run["edgebench"]["run_id"] = run_id
    run["edgebench"]["boards"] = {board: {}}
    bench = []
    for b in run["benchmarks"]:
        m = {k: v for k, v in b["extra_info"].items() if k != "summary"}
        m["board"] = board
        m["samples_ns"] = [round(x * 1e9 * factor) for x in b["stats"]["data"]]
        bench.append(measurement_to_benchmark(Measurement.from_json(m)).to_json())
    run["benchmarks"] = bench
    return Run.from_json(run)


@pytest.fixture
def farm_results(tmp_path: Path) -> Path:
    # p90 of fp32 here is ~0.018 ms; the slow board is 100x slower, the mid one 2x
    for i, (board, f) in enumerate((("cheap-slow", 100.0), ("mid", 2.0), ("fast-pricey", 1.0), ("retired", 1.0))):
        store.save_run(tmp_path, on_board(board, f, f"2026010{i}T000000Z-{board}"))
    inv = tmp_path / "boards.toml"
    inv.write_text(
        '[[boards]]\nname = "cheap-slow"\nhost = "10.0.0.1"\ncost = 35\npower_w = 3\n'
        '[[boards]]\nname = "mid"\nhost = "10.0.0.2"\ncost = 80\npower_w = 7\n'
        '[[boards]]\nname = "fast-pricey"\nhost = "10.0.0.3"\ncost = 250\npower_w = 5\n'
    )
    return tmp_path


def test_parse_units() -> None:
    assert parse_ms("20ms") == 20 and parse_ms("0.5s") == 500 and parse_ms("800us") == pytest.approx(0.8)
    assert parse_mb("256MB") == 256 and parse_mb("1GiB") == 1024 and parse_mb("512KB") == 0.5
    with pytest.raises(UserError, match="'fast' is not a duration: write it like 20ms"):
        parse_ms("fast")
    with pytest.raises(UserError, match="'lots' is not a size"):
        parse_mb("lots")


def test_choose_ranks_by_cost_power_latency_and_explains_rejections(farm_results: Path) -> None:
    inv = {"cheap-slow": BoardCost(35, 3), "mid": BoardCost(80, 7), "fast-pricey": BoardCost(250, 5)}
    d = choose(farm_results, "digits_cnn", inv, max_p90_ms=0.1, min_accuracy=0.97, rank="cost").to_json()
    order = [(o["board"], o["variant"]) for o in d["chosen"]]
    assert [b for b, _ in order] == ["mid", "mid", "fast-pricey", "fast-pricey"]
    assert all(v != "int8-dynamic" for _, v in order)  # ~0.1-0.15 ms p90 even on the fast boards
    why = {(o["board"], o["variant"]): o["reasons"] for o in d["rejected"]}
    assert any(r.startswith("p90 ") and r.endswith("> 0.1 ms") for r in why[("cheap-slow", "fp32")])
    assert why[("retired", "fp32")] == ["board not in the inventory (retired or renamed?)"]
    by_power = choose(farm_results, "digits_cnn", inv, max_p90_ms=0.1, rank="power").to_json()["chosen"]
    assert by_power[0]["board"] == "fast-pricey"
    by_latency = choose(farm_results, "digits_cnn", inv, rank="latency").to_json()["chosen"]
    assert by_latency[0]["p90_ms"] == min(o["p90_ms"] for o in by_latency)
    strict = choose(farm_results, "digits_cnn", inv, min_accuracy=0.999).to_json()
    assert strict["chosen"] == [] and all("top-1 99.33% < 99.90%" in o["reasons"] for o in strict["rejected"])


def test_choose_cli_with_inventory(farm_results: Path) -> None:
    args = ["choose", "--model", "digits_cnn", "--max-p90", "0.1ms", "--min-accuracy", "0.97", "--max-memory", "256MB",
            "--results", str(farm_results), "--boards-file", str(farm_results / "boards.toml")]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "choose mid with" in res.stdout and "cheap-slow/fp32: p90" in res.stdout
    js = json.loads(CliRunner().invoke(main, [*args, "--json", "--rank", "power"]).stdout)
    assert js["chosen"][0]["board"] == "fast-pricey" and js["chosen"][0]["power_w"] == 5


def test_choose_unknown_model_and_bad_units(farm_results: Path) -> None:
    res = CliRunner().invoke(main, ["choose", "-m", "resnet", "--results", str(farm_results)])
    assert (
        res.exit_code == 1 and "model 'resnet' has no successful results" in res.stderr and "digits_cnn" in res.stderr
    )
    res = CliRunner().invoke(main, ["choose", "-m", "digits_cnn", "--max-p90", "soon", "--results", str(farm_results)])
    assert res.exit_code == 1 and "'soon' is not a duration" in res.stderr


def test_choose_decides_like_gate_lists_boards_without_results_and_exits_1_when_nothing_fits(
    farm_results: Path,
) -> None:
    inv = {"mid": BoardCost(80, 7), "fast-pricey": BoardCost(250, 5), "jetson": BoardCost(199, 10)}
    fp = next(o for o in choose(farm_results, "digits_cnn", inv).chosen if (o.board, o.variant) == ("mid", "fp32"))
    # a limit right at the measured p90: gate calls that undecided, so it does not fit here either
    gate_like = choose(farm_results, "digits_cnn", inv, max_p90_ms=fp.p90_ms)
    why = {(o.board, o.variant): o.reasons for o in gate_like.rejected}
    assert ("mid", "fp32") in why and "undecided against" in why[("mid", "fp32")][0]
    assert "measure" not in why[("mid", "fp32")][0] or "raise --repeats" in why[("mid", "fp32")][0]
    assert gate_like.unmeasured == ("jetson",)
    boards = farm_results / "boards2.toml"
    boards.write_text(
        (farm_results / "boards.toml").read_text() + '[[boards]]\nname = "jetson"\nhost = "10.0.0.9"\ncost = 199\n'
    )
    args = ["choose", "-m", "digits_cnn", "--results", str(farm_results), "--boards-file", str(boards)]
    res = CliRunner().invoke(main, [*args, "--max-p90", "1us"])
    assert res.exit_code == 1, res.output
    assert "nothing meets the constraints" in res.stdout
    assert "jetson: no results: run edgebench run --boards jetson" in res.stdout
    ok = CliRunner().invoke(main, [*args, "--max-p90", "1s", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["unmeasured"] == ["jetson"]
