"""Power sources on fake sysfs trees and fake meter commands with known values (`edgebench.agent.power`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edgebench.agent import power
from edgebench.agent.power import NO_SENSOR, CommandMeter, PowerMeter, hwmon_rails, parse_power, rapl_domains


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _rapl(root: Path, zone: str, name: str, energy_uj: int, max_uj: int = 262_143_328_850) -> Path:
    d = root / "sys/class/powercap" / zone
    _write(d / "name", name)
    _write(d / "energy_uj", str(energy_uj))
    _write(d / "max_energy_range_uj", str(max_uj))
    return d


def test_rapl_energy_counts_through_a_wrap_around(tmp_path: Path) -> None:
    d = _rapl(tmp_path, "intel-rapl:0", "package-0", 999_000, max_uj=1_000_000)
    (dom,), problems = rapl_domains(str(tmp_path))
    assert problems == [] and dom.name == "package-0" and dom.covers == "CPU package (cores, caches, uncore), not DRAM"
    _write(d / "energy_uj", "999_500".replace("_", ""))
    assert dom.read_j() == pytest.approx(500e-6)
    _write(d / "energy_uj", "300")  # wrapped at 1 000 000 µJ: 500 + 300 more
    assert dom.read_j() == pytest.approx(1300e-6) and dom.wraps == 1
    _write(d / "energy_uj", "200")  # wrapped again: + 999 900
    assert dom.read_j() == pytest.approx((1300 + 999_900) * 1e-6) and dom.wraps == 2


def test_rapl_domains_say_what_they_cover_and_two_sockets_stay_apart(tmp_path: Path) -> None:
    _rapl(tmp_path, "intel-rapl:0", "package-0", 1)
    _rapl(tmp_path, "intel-rapl:0:0", "core", 1)
    _rapl(tmp_path, "intel-rapl:0:1", "dram", 1)
    _rapl(tmp_path, "intel-rapl:1", "package-1", 1)
    _rapl(tmp_path, "intel-rapl:1:0", "core", 1)
    doms, _ = rapl_domains(str(tmp_path))
    assert [d.name for d in doms] == [
        "package-0", "core (intel-rapl:0:0)", "dram", "package-1", "core (intel-rapl:1:0)",
    ]  # fmt: skip
    assert {d.name: d.covers for d in doms}["dram"] == "DRAM only"


def test_rapl_permission_denied_is_named_not_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rapl(tmp_path, "intel-rapl:0", "package-0", 5)
    real = power._read

    def root_only(path: str) -> str:  # the tests run as root: a chmod would not deny it
        if path.endswith("energy_uj"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(power, "_read", root_only)
    doms, problems = rapl_domains(str(tmp_path))
    assert doms == [] and len(problems) == 1
    assert "permission denied" in problems[0] and "root only on Linux >= 5.10" in problems[0]
    meter = PowerMeter(str(tmp_path))
    block = meter.summary(100, 1.0)
    assert block["available"] is False and "domains" not in block
    assert block["none"].startswith(NO_SENSOR + ": RAPL intel-rapl:0 (package-0): permission denied")


def test_no_powercap_and_no_hwmon_is_no_sensor(tmp_path: Path) -> None:
    meter = PowerMeter(str(tmp_path))
    assert not meter.available() and meter.sample(1.0) == {}
    assert meter.summary(10, 1.0) == {"available": False, "problems": [], "none": NO_SENSOR}


def test_hwmon_ina3221_rails_from_voltage_and_current_and_from_power(tmp_path: Path) -> None:
    ina = tmp_path / "sys/class/hwmon/hwmon1"
    _write(ina / "name", "ina3221")
    for ch, label, mv, ma in (("1", "VDD_IN", 5000, 1200), ("2", "VDD_CPU_GPU_CV", 5000, 400)):
        _write(ina / f"in{ch}_label", label)
        _write(ina / f"in{ch}_input", str(mv))
        _write(ina / f"curr{ch}_input", str(ma))
    _write(ina / "in3_input", "5000")  # a channel without its current: not a rail
    other = tmp_path / "sys/class/hwmon/hwmon2"
    _write(other / "name", "pac1934")
    _write(other / "power1_input", "2500000")  # µW
    _write(tmp_path / "sys/class/hwmon/hwmon0/name", "coretemp")  # no power channel at all
    rails, problems = hwmon_rails(str(tmp_path))
    assert problems == []
    assert [(r.name, round(r.read_w(), 6)) for r in rails] == [
        ("ina3221 VDD_IN", 6.0), ("ina3221 VDD_CPU_GPU_CV", 2.0), ("pac1934 channel 1", 2.5),
    ]  # fmt: skip
    assert rails[0].covers == "rail ina3221 VDD_IN"


def test_energy_integrated_over_known_power_matches_to_one_percent(tmp_path: Path) -> None:
    ina = tmp_path / "sys/class/hwmon/hwmon0"
    _write(ina / "name", "ina3221")
    _write(ina / "in1_label", "VDD_IN")
    _write(ina / "power1_input", "4000000")  # 4 W
    meter = PowerMeter(str(tmp_path))
    meter.prime()
    for _ in range(10):  # ten 0.5 s windows at 4 W: 20 J
        assert meter.sample(0.5) == {"ina3221 VDD_IN": pytest.approx(4.0)}
    (dom,) = meter.summary(4000, 0.5)["domains"]
    assert dom["energy_j"] == pytest.approx(20.0, rel=0.01) and dom["mean_w"] == pytest.approx(4.0, rel=0.01)
    assert dom["mj_per_inference"] == pytest.approx(5.0, rel=0.01)  # 20 J / 4000
    assert dom["sampling"] == "power read once per 0.5 s window, integrated (trapezoid)"


def test_rapl_meter_power_per_window_and_energy_per_inference(tmp_path: Path) -> None:
    d = _rapl(tmp_path, "intel-rapl:0", "package-0", 10_000_000)
    meter = PowerMeter(str(tmp_path))
    meter.prime()
    _write(d / "energy_uj", str(10_000_000 + 3_000_000))  # 3 J in a 1 s window
    assert meter.sample(1.0) == {"package-0": pytest.approx(3.0)}
    _write(d / "energy_uj", str(10_000_000 + 9_000_000))  # 6 J more in 2 s
    assert meter.sample(2.0) == {"package-0": pytest.approx(3.0)}
    (dom,) = meter.summary(900, 1.0)["domains"]
    assert dom["energy_j"] == pytest.approx(9.0) and dom["mean_w"] == pytest.approx(3.0)
    assert dom["mj_per_inference"] == pytest.approx(10.0) and dom["kind"] == "counter" and dom["wraps"] == 0
    assert "not DRAM" in dom["covers"]


@pytest.mark.parametrize(
    ("text", "watts"),
    [("power: 1234 mW", 1.234), ("P=2.5W", 2.5), ("VDD_IN 4500mW/4500mW", 4.5), ("total 12 W\n", 12.0)],
)
def test_the_default_pattern_reads_a_number_and_its_unit(text: str, watts: float) -> None:
    assert parse_power(text) == pytest.approx(watts)


def test_a_stated_pattern_and_garbage() -> None:
    assert parse_power("in=5.0V cur=0.4A pwr=2000", r"pwr=(?P<value>\d+)(?P<unit>mW)?") == pytest.approx(2000.0)
    assert parse_power("meter 750", r"meter (?P<value>\d+)") == pytest.approx(750.0)  # no unit group: W
    with pytest.raises(ValueError, match="no power figure matching"):
        parse_power("nothing here")
    with pytest.raises(ValueError, match="is not mW or W"):
        parse_power("3 kW", r"(?P<value>\d+) (?P<unit>kW)")


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{body}\n")
    os.chmod(path, 0o755)
    return str(path)


def test_a_meter_command_read_and_its_failures_named(tmp_path: Path) -> None:
    good = CommandMeter(_script(tmp_path, "meter", "print('power 1500 mW')"))
    assert good.read_w() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="exited 3: broken"):
        CommandMeter(_script(tmp_path, "fails", "import sys; sys.stderr.write('broken'); sys.exit(3)")).read_w()
    with pytest.raises(ValueError, match=r"hung \(no answer in 0.3 s\)"):
        CommandMeter(_script(tmp_path, "hangs", "import time; time.sleep(30)"), timeout=0.3).read_w()
    with pytest.raises(ValueError, match="no power figure"):
        CommandMeter(_script(tmp_path, "garbage", "print('¯\\\\_(ツ)_/¯')")).read_w()
    with pytest.raises(ValueError, match="could not start"):
        CommandMeter(str(tmp_path / "missing")).read_w()


def test_a_failing_command_is_no_sensor_with_its_reason(tmp_path: Path) -> None:
    meter = PowerMeter(str(tmp_path), command=_script(tmp_path, "fails", "import sys; sys.exit(1)"))
    block = meter.summary(10, 1.0)
    assert block["available"] is False and block["none"].startswith(NO_SENSOR + ": power command")
    ok = PowerMeter(str(tmp_path), command=_script(tmp_path, "meter", "print('2 W')"))
    ok.prime()
    ok.sample(1.0)
    (dom,) = ok.summary(100, 1.0)["domains"]
    assert dom["mean_w"] == pytest.approx(2.0) and dom["mj_per_inference"] == pytest.approx(20.0)
    assert "pattern" in dom["covers"]
