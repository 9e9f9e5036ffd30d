"""The on-board agent's pure parts: measuring loop, statistics inputs, device state, inputs, Python 3.6."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgebench import agent
from edgebench.agent import build, clock, device
from edgebench.targets import remote

VERMIN = Path(sys.executable).with_name("vermin")
MODULES = sorted(Path(agent.__file__).parent.glob("*.py"))  # every module of the package, shipped or not


def _vermin(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VERMIN), "-t=3.6-", "--no-tips", "--violations", "--eval-annotations", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_agent_runs_on_python_36_per_vermin(tmp_path: Path) -> None:
    assert len(MODULES) > 10 and {name for name, _ in build.shipped()} >= {"__main__.py", "edgebench_agent/entry.py"}
    out = _vermin(*MODULES)
    assert out.returncode == 0, out.stdout + out.stderr
    # the check can fail: a 3.10 construct in the same style of file is flagged
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(x):\n    match x:\n        case 1:\n            return 1\n    return zip([1], [2], strict=True)\n"
    )
    assert _vermin(bad).returncode != 0
    # ... and so are the two 3.7 features the agent used to need
    bad.write_text("from __future__ import annotations\nimport time\nt = time.perf_counter_ns()\n")
    assert "3.7" in _vermin(bad).stdout


def test_agent_parses_with_the_python_36_grammar() -> None:
    # the parser's own check, for grammar vermin may not know (walrus, positional-only, f"{x=}")
    for module in MODULES:
        ast.parse(module.read_text(), feature_version=(3, 6), filename=str(module))
    for newer in ("if (n := 1):\n    pass\n", "def f(a, /):\n    pass\n", "x = 1\ny = f'{x=}'\n"):
        with pytest.raises(SyntaxError):
            ast.parse(newer, feature_version=(3, 6))


def test_board_snippets_parse_with_the_python_36_grammar() -> None:
    # the SSH driver's own Python snippets run on the same old board Pythons as the agent
    snippets = {n: v for n, v in vars(remote).items() if n.startswith("PY_") and isinstance(v, str)}
    assert snippets
    for text in snippets.values():
        ast.parse(text, feature_version=(3, 6))


def test_agent_clock_falls_back_to_perf_counter_on_python_36(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(clock.time, "perf_counter_ns")  # as on Python 3.6
    ticks = iter(range(1000, 10**6))
    monkeypatch.setattr(clock.time, "perf_counter", lambda: next(ticks) / 1000)  # 1 ms per read, in seconds
    assert agent.now_ns() == 1_000_000_000
    s = {"warmup_min_iters": 0, "warmup_min_s": 0.0, "min_rounds": 3, "min_time_s": 0.0, "max_time_s": 10}
    _warm, samples, _ = agent.measure(lambda feed: None, None, s)
    assert samples == [1_000_000] * 3  # integer nanoseconds, as perf_counter_ns gives


def test_agent_imports_nothing_from_edgebench() -> None:
    for module in MODULES:
        text = module.read_text()
        assert "import edgebench" not in text and "from edgebench" not in text, module.name
        tree = ast.parse(text)
        imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert all(n.level == 1 or n.module != "edgebench" for n in imports)  # within the package: relative only


class Clock:
    """A fake perf_counter_ns: each call advances by ``step`` ns."""

    def __init__(self, step: int) -> None:
        self.t, self.step = 0, step

    def __call__(self) -> int:
        self.t += self.step
        return self.t


def test_measure_meets_round_and_time_floors(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(clock.time, "perf_counter_ns", Clock(1_000_000))  # 1 ms per clock read
    s = {"warmup_min_iters": 5, "warmup_min_s": 0.0, "min_rounds": 20, "min_time_s": 0.1, "max_time_s": 10}
    warm, samples, used = agent.measure(lambda feed: calls.append(1), None, s)
    assert warm == 5
    assert len(samples) >= 20 and all(x == 1_000_000 for x in samples)
    # 2 clock reads per sample: 100 ms needs ~50 samples, more than min_rounds
    assert len(samples) >= 49
    assert len(calls) == warm + len(samples)
    assert used["min_rounds"] == 20 and used["max_rounds"] == agent.DEFAULT_MEASURE["max_rounds"]


def test_measure_stops_at_the_time_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock.time, "perf_counter_ns", Clock(10_000_000))  # 10 ms per read
    s = {"warmup_min_iters": 0, "warmup_min_s": 0.0, "min_rounds": 10_000, "min_time_s": 0.0, "max_time_s": 0.5}
    _warm, samples, _ = agent.measure(lambda feed: None, None, s)
    assert 0 < len(samples) < 10_000 and len(samples) <= 26


def test_measure_can_collect_zero_samples() -> None:
    _warm, samples, _ = agent.measure(lambda feed: None, None, {"max_time_s": 0.0, "warmup_min_iters": 0})
    assert samples == []


def test_zero_samples_is_a_clear_error(tmp_path: Path, tiny_onnx: Path) -> None:
    job = {"artifact": str(tiny_onnx), "runtime": "onnxruntime", "measure": {"max_rounds": 0, "warmup_min_iters": 1}}
    res = agent.run_job(job)
    assert res["ok"] is False
    assert res["error"]["kind"] == "no_samples"
    assert "raise max_time_s and max_rounds" in res["error"]["message"]


def test_wilson_interval() -> None:
    lo, hi = agent.wilson(90, 100)
    assert lo < 0.9 < hi and lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    assert agent.wilson(0, 0) == [0.0, 1.0]


def test_fidelity_figures_against_numpy() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((50, 10)).astype(np.float32)
    out = ref + rng.normal(0, 0.3, ref.shape).astype(np.float32)
    f = agent.fidelity(out, ref)
    assert f["top1_agreement"] == pytest.approx(float((out.argmax(1) == ref.argmax(1)).mean()))
    assert f["max_abs_diff"] == pytest.approx(float(np.abs(out - ref).max()), rel=1e-5)
    assert f["mean_abs_diff"] == pytest.approx(float(np.abs(out - ref).mean()), rel=1e-5)
    cos = (out * ref).sum(1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))
    assert f["cosine_mean"] == pytest.approx(float(cos.mean()), rel=1e-5)
    same = agent.fidelity(ref, ref)
    assert same["top1_agreement"] == 1.0 and same["max_abs_diff"] == 0.0 and same["cosine_min"] == pytest.approx(1.0)
    with pytest.raises(agent.AgentError, match="reference outputs are"):
        agent.fidelity(ref, ref[:, :5])


def _fake_sysfs(root: Path, freqs_khz: list[int], temp_mc: int, governor: str = "performance") -> None:
    for i, f in enumerate(freqs_khz):
        d = root / f"devices/system/cpu/cpu{i}/cpufreq"
        d.mkdir(parents=True, exist_ok=True)
        (d / "scaling_cur_freq").write_text(f"{f}\n")
        (d / "scaling_max_freq").write_text("2000000\n")
        (d / "scaling_governor").write_text(governor + "\n")
    z = root / "class/thermal/thermal_zone0"
    z.mkdir(parents=True, exist_ok=True)
    (z / "temp").write_text(f"{temp_mc}\n")


def _fake_stat(root: Path, steal: int, busy: int) -> None:
    # /proc/stat's first line: user nice system idle iowait irq softirq steal guest guest_nice
    (root / "stat").write_text(f"cpu  {busy} 0 0 1000 0 0 0 {steal} 0 0\ncpu0 1 2 3\n")


def test_device_state_and_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "SYSFS", str(tmp_path))
    monkeypatch.setattr(device, "PROCFS", str(tmp_path))
    _fake_sysfs(tmp_path, [1_800_000, 1_600_000], 55_000)
    _fake_stat(tmp_path, steal=100, busy=900)
    before = agent.device_state()
    assert before == {
        "governor": "performance", "freq_mhz": 1700.0, "max_freq_mhz": 2000.0, "temp_c": 55.0,
        "cpu_ticks": [100, 2000],
    }  # fmt: skip
    _fake_sysfs(tmp_path, [1_000_000, 1_000_000], 85_500)
    after = agent.device_state()
    warnings = agent.device_warnings(before, after, {"temp_limit_c": 80, "freq_drop": 0.1})
    assert any("frequency dropped from 1700 to 1000 MHz" in w for w in warnings)
    assert any("85.5 C after the run reached the limit 80.0 C" in w for w in warnings)
    assert agent.device_warnings(before, before, {}) == []
    assert any("governor is 'ondemand'" in w for w in agent.device_warnings({}, {**before, "governor": "ondemand"}, {}))


def test_steal_time_is_reported_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the hypervisor's steal cannot be controlled on the board: the share during the run is a warning
    monkeypatch.setattr(device, "SYSFS", str(tmp_path))
    monkeypatch.setattr(device, "PROCFS", str(tmp_path))
    _fake_stat(tmp_path, steal=100, busy=900)
    before = agent.device_state()
    _fake_stat(tmp_path, steal=180, busy=1820)  # 80 of 1000 more ticks stolen: 8 %
    after = agent.device_state()
    assert agent.steal_fraction(before, after) == pytest.approx(0.08)
    (w,) = agent.device_warnings(before, after, {})
    assert "hypervisor took 8% of the CPU time (steal)" in w
    assert agent.device_warnings(before, after, {"steal_limit": 0.10}) == []
    (tmp_path / "stat").write_text("garbage\n")
    assert agent.device_state()["cpu_ticks"] is None


def test_cool_down_waits_until_the_temperature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "SYSFS", str(tmp_path))
    temps = iter([70_000, 65_000, 50_000])
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        _fake_sysfs(tmp_path, [1_000_000], next(temps))

    _fake_sysfs(tmp_path, [1_000_000], 75_000)
    res = agent.cool_down({"until_c": 60, "max_s": 100}, sleep=sleep)
    assert res["reached"] is True and len(sleeps) == 3


def test_generated_inputs_multi_input_int8_and_dynamic_dims() -> None:
    # 8-bit tensors are quantized data (an image): uniform over the dtype's range
    sig = [("image", ["batch", 3, "h", "w"], "float32"), ("ids", ["batch", "seq"], "int8"), ("mask", [2, 20], "uint8")]
    arrays, _ = agent.build_inputs(sig, {}, {"h": 8, "w": 6, "seq": 17}, batch_size=4)
    assert [a.shape for a in arrays] == [(4, 3, 8, 6), (4, 17), (2, 20)]
    assert [a.dtype.name for a in arrays] == ["float32", "int8", "uint8"]
    assert arrays[1].min() >= -128 and arrays[2].max() <= 255
    with pytest.raises(agent.AgentError, match=r"add --dim seq=SIZE"):
        agent.build_inputs(sig, {}, {"h": 8, "w": 6}, batch_size=1)


def test_load_eval_checks_shapes_and_cuts_the_same_quick_subset(tmp_path: Path) -> None:
    x = np.arange(40 * 4, dtype=np.float32).reshape(40, 4)
    y = np.arange(40) % 3
    np.savez(tmp_path / "e.npz", x=x, y=y)
    np.savez(tmp_path / "ref.npz", outputs=x * 2)
    sig: list[tuple[str, list[Any], str]] = [("x", ["batch", 4], "float32")]
    job: dict[str, Any] = {
        "eval": {"path": str(tmp_path / "e.npz"), "limit": 10, "seed": 3, "reference": str(tmp_path / "ref.npz")}
    }
    xs, yy, ref = agent.load_eval(job, sig)
    assert xs is not None and xs[0].shape == (10, 4)
    assert np.array_equal(ref, xs[0] * 2)  # same rows as the data
    assert np.array_equal(yy, (xs[0][:, 0] // 4).astype(int) % 3)
    assert job["eval"]["n_total"] == 40
    with pytest.raises(
        agent.AgentError, match=r"shape \[4\] but input 'x' expects \[5\]: give eval data shaped \[N, 5\]"
    ):
        agent.load_eval({"eval": {"path": str(tmp_path / "e.npz")}}, [("x", ["batch", 5], "float32")])


def test_load_eval_multi_input_by_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "m.npz", a=np.zeros((6, 2), np.float32), b=np.ones((6, 3), np.int64))
    sig: list[tuple[str, list[Any], str]] = [("a", [None, 2], "float32"), ("b", [None, 3], "int64")]
    xs, y, _ = agent.load_eval({"eval": {"path": str(tmp_path / "m.npz")}}, sig)
    assert xs is not None and [x.shape for x in xs] == [(6, 2), (6, 3)] and y is None
    with pytest.raises(agent.AgentError, match=r"no arrays \['c'\]"):
        agent.load_eval({"eval": {"path": str(tmp_path / "m.npz")}}, [*sig, ("c", [None, 1], "float32")])


def test_numpy_abi_error_is_recognised() -> None:
    exc = ImportError("numpy.core.multiarray failed to import")
    assert agent._is_numpy_abi_error(exc)
    assert not agent._is_numpy_abi_error(ImportError("No module named 'tflite_runtime'"))


def test_a_paired_job_times_a_and_b_alternately_in_one_process(tmp_path: Path) -> None:
    from _tiny_onnx import make_tiny_onnx

    a = make_tiny_onnx(tmp_path / "a.onnx", n_in=4, seed=0)
    b = make_tiny_onnx(tmp_path / "b.onnx", n_in=4, seed=1)
    sha = {p: agent.check_sha256(str(p), None) for p in (a, b)}
    job = {
        "artifact": str(b), "sha256": sha[b], "runtime": "onnxruntime", "dims": {"batch": 2},
        "measure": {"min_time_s": 0.05, "min_rounds": 21, "warmup_min_iters": 3, "warmup_min_s": 0.0},
    }  # fmt: skip
    for first in ("a", "b"):
        res = agent.run_job({**job, "paired": {"artifact": str(a), "sha256": sha[a], "first": first}})
        assert res["ok"], res["error"]
        p = res["paired"]
        assert p["first"] == first and p["a_sha256"] == sha[a]
        assert len(p["a_samples_ns"]) == len(p["b_samples_ns"]) >= 21  # the floors hold for each model
        assert res["runtime"]["name"] == "onnxruntime" and "timing" not in res  # latency only, no memory figures
    # the baseline is checked against its sha256 like any artifact
    bad = agent.run_job({**job, "paired": {"artifact": str(a), "sha256": "0" * 64}})
    assert not bad["ok"] and bad["error"]["kind"] == "artifact_changed"
    # models with other inputs cannot be paired: one message naming both
    other = make_tiny_onnx(tmp_path / "c.onnx", n_in=6, seed=2)
    got = agent.run_job({**job, "paired": {"artifact": str(other), "sha256": None}})
    assert got["ok"] is False and got["error"]["kind"] == "bad_job"
    assert "take different inputs (x:float32['batch', 6] vs x:float32['batch', 4])" in got["error"]["message"]
