"""`edgebench boards add --trust | check` and `edgebench farm up | down` against real sshd boards."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import require_sshd
from edgebench.cli import main
from edgebench.targets.boards_file import write_boards
from edgebench.targets.farm import Farm, load_farm
from edgebench.targets.ssh import SSHDriver

pytestmark = [pytest.mark.ssh]


def cli(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.output


def test_add_trust_records_the_fingerprint_then_check_is_ready(farm: Farm, tmp_path: Path) -> None:
    b = farm.board("farm-1")
    kh, boards = tmp_path / "known_hosts", tmp_path / "boards.toml"
    common = [
        "--host",
        str(b.host),
        "--port",
        str(b.port),
        "--identity-file",
        str(b.identity_file),
        "--python",
        b.python,
        "--workdir",
        str(tmp_path / "wd"),
        "--known-hosts",
        str(kh),
        "--boards-file",
        str(boards),
    ]
    # without --trust the board is added but refused at connect time: its key is unknown
    code, out = cli("boards", "add", "untrusted", *common)
    assert code == 0, out
    code, out = cli("boards", "check", "untrusted", "--boards-file", str(boards))
    assert code == 1 and "'untrusted' is unreachable" in out and "--trust" in out
    code, out = cli("boards", "add", "trusted", *common, "--trust")
    assert code == 0, out
    pub = Path(farm.member("farm-1").dir) / "ssh_host_ed25519_key.pub"
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert expected in out and expected.startswith("SHA256:")
    assert f"[{b.host}]:{b.port} ssh-ed25519" in kh.read_text()
    code, out = cli("boards", "check", "trusted", "--boards-file", str(boards), "--json")
    assert code == 0, out
    (check,) = json.loads(out)["checks"]
    fp = check["fingerprint"]
    assert check["status"] == "ready" and fp["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "CPUExecutionProvider" in fp["runtimes"]["onnxruntime"]["providers"] and fp["cores"] >= 1
    assert fp["arch"] and fp["memory_bytes"] > 0 and fp["os"]
    recorded = json.loads((tmp_path / "fingerprints.json").read_text())
    assert recorded["trusted"]["status"] == "ready" and recorded["untrusted"]["status"] == "unreachable"


def test_trust_refuses_a_changed_key(farm: Farm, tmp_path: Path) -> None:
    b = farm.board("farm-1")
    other = (Path(farm.member("farm-2").dir) / "ssh_host_ed25519_key.pub").read_text().split()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[{b.host}]:{b.port} {other[0]} {other[1]}\n")
    before = kh.read_text()
    code, out = cli(
        "boards",
        "add",
        "x",
        "--host",
        str(b.host),
        "--port",
        str(b.port),
        "--known-hosts",
        str(kh),
        "--workdir",
        "/tmp/x",
        "--boards-file",
        str(tmp_path / "b.toml"),
        "--trust",
    )
    assert code == 1 and "CHANGED" in out and "delete its line" in out
    assert kh.read_text() == before and not (tmp_path / "b.toml").exists()


def _no_ort_python(tmp_path: Path) -> str:
    """An interpreter with numpy but where onnxruntime cannot be imported."""
    block = tmp_path / "block" / "onnxruntime"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    wrapper = tmp_path / "python-no-ort"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={block.parent} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_check_reports_unfit_boards_with_reasons(farm: Farm, tmp_path: Path) -> None:
    import dataclasses

    base = farm.board("farm-2")
    unwritable = "/proc/edgebench-not-writable" if os.geteuid() == 0 else str(tmp_path / "ro" / "wd")
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o555)
    boards = tmp_path / "boards.toml"
    write_boards(
        boards,
        [
            dataclasses.replace(base, name="nopython", python="/nonexistent/python3"),
            dataclasses.replace(base, name="noruntime", python=_no_ort_python(tmp_path)),
            dataclasses.replace(base, name="readonly", workdir=unwritable),
            dataclasses.replace(base, name="fine"),
        ],
    )
    code, out = cli("boards", "check", "--boards-file", str(boards), "--json")
    assert code == 1
    doc, _ = json.JSONDecoder().raw_decode(out.lstrip())  # the JSON, then the error line naming the boards not ready
    assert doc["schema"] == 1
    rows = {r["name"]: r for r in doc["checks"]}
    assert rows["fine"]["status"] == "ready" and rows["local"]["status"] == "ready"
    assert rows["nopython"]["status"] == "unfit" and "/nonexistent/python3" in rows["nopython"]["reason"]
    assert "set python" in rows["nopython"]["reason"]
    assert (
        rows["noruntime"]["status"] == "unfit" and "runtime onnxruntime is not installed" in rows["noruntime"]["reason"]
    )
    assert rows["readonly"]["status"] == "unfit" and "not writable" in rows["readonly"]["reason"]
    assert unwritable in rows["readonly"]["reason"]
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: ") and "'nopython' is unfit" in last and "'readonly' is unfit" in last


def test_password_is_never_logged(
    farm: Farm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    secret = "s3cr3t-hunter2-pw"
    monkeypatch.setenv("EB_TEST_PASSWORD", secret)
    monkeypatch.setenv("HOME", str(tmp_path))  # no default keys or agent to fall back on
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    board = dataclasses.replace(farm.board("farm-1"), identity_file=None, password_env="EB_TEST_PASSWORD")
    caplog.set_level(logging.DEBUG)
    d = SSHDriver(board, connect_retries=1)
    with pytest.raises(Exception) as info:
        d.activate()
    assert "authentication failed" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(d) and secret not in caplog.text


def test_farm_up_down_cli_cleans_up(tmp_path: Path) -> None:
    require_sshd()
    root = tmp_path / "farm"
    code, out = cli("farm", "up", "--boards", "2", "--dir", str(root), "--json")
    assert code == 0, out
    info = json.loads(out)
    f = load_farm(root)
    pids = [m.pid for m in f.members]
    cgroups = [c for m in f.members for c in m.cgroups]
    assert len(info["boards"]) == 2 and Path(info["boards_file"]).is_file()
    if f.limits:
        assert cgroups and all(Path(c).is_dir() for c in cgroups)
    else:
        assert "cannot" in f.limits_note or "not" in f.limits_note
    code, out = cli("farm", "up", "--dir", str(root))
    assert code == 1 and "already recorded" in out
    code, out = cli("farm", "down", "--dir", str(root))
    assert code == 0 and "stopped 2" in out
    for pid in pids:
        assert (pid is not None and not Path(f"/proc/{pid}").exists()) or _is_zombie(pid)
    assert not any(Path(c).exists() for c in cgroups) and not root.exists()
    code, out = cli("farm", "down", "--dir", str(root))
    assert code == 1 and "no farm is recorded" in out


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
