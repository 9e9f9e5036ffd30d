"""Every command on a real PostgreSQL server: the same figures as a folder, a real run, push/pull, a lost server."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pg_server import READER, WRITER, PgServer, free_port, require_postgres

from _tiny_onnx import make_tiny_onnx
from edgebench.cli import main
from edgebench.results import pg
from edgebench.results import store as folder

from ._runs import make_run, store_both

EDGEBENCH = str(Path(sys.executable).with_name("edgebench"))
FAST = ["--min-time", "0.05", "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "2"]


def _json(result: Any) -> dict[str, Any]:
    assert result.exit_code in (0, 3), result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_folder_and_server_give_the_same_json_for_report_compare_and_gate(pg_db: str, tmp_path: Path) -> None:
    results = tmp_path / "results"
    runs = [make_run(i, n=8) for i in range(6)]
    with pg.open_store(pg_db) as store:
        store_both(results, store, runs)
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        'baseline = "latest~2"\n[[budget]]\nmodel = "*"\nmax_p90_ms = 2.2\nmax_regression_pct = 5\nmin_accuracy = 0.5\n'
    )
    r = CliRunner()
    for args in (
        ["report", "--json"],
        ["report", "latest~3", "--json", "--last", "4"],
        ["compare", "latest~1", "--json"],
        ["compare", runs[0].run_id, runs[4].run_id, "--json"],
        ["gate", str(budgets), "--json"],
        ["choose", "--model", "mnist", "--max-p90", "5ms", "--json"],
    ):
        a = r.invoke(main, [*args, "--results", str(results)])
        b = r.invoke(main, [*args, "--results", pg_db])
        assert a.exit_code == b.exit_code, (a.output, b.output)
        da, db = json.loads(a.stdout), json.loads(b.stdout)
        if args[0] == "report":  # the one field that names the store: the run's file / the server and run id
            assert da.pop("run_file").endswith(f"{da['run_id']}.json")
            assert db.pop("run_file") == f"{pg_db} run {db['run_id']}"
        assert json.dumps(da, indent=1) == json.dumps(db, indent=1), args
        assert da.get("trends") or args[0] != "report"  # the history was there to compare


def test_read_only_commands_need_no_write_rights(pg_db: str, pg_server: PgServer, tmp_path: Path) -> None:
    with pg.open_store(pg_db) as store:
        store_both(tmp_path / "r", store, [make_run(i) for i in range(3)])
    name = pg_db.rsplit("/", 1)[1]
    pg_server.sql(f"GRANT USAGE ON SCHEMA edgebench TO {READER}; GRANT SELECT ON ALL TABLES IN SCHEMA edgebench TO "
                  f"{READER}", name, WRITER)  # fmt: skip
    url = pg_server.url(name, READER, password=True)
    got = CliRunner().invoke(main, ["report", "--json", "--results", url])
    assert got.exit_code == 0, got.output
    assert pg_server.password(READER) not in got.output
    wrote = CliRunner().invoke(main, ["run", "--variants", str(tmp_path / "none.onnx"), "--results", url])
    assert wrote.exit_code == 1 and "may not write results here" in wrote.output, wrote.output


def _tiny_variants(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        make_tiny_onnx(root / f"tiny{i}.onnx", n_in=64, n_out=10, seed=i)
    return root


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env.pop("PGPASSWORD", None)
    env.pop("EDGEBENCH_RESULTS", None)
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), EDGEBENCH_SPOOL=str(tmp_path / "spool"), **extra)
    return env


def _cmdlines_while(proc: subprocess.Popen[str]) -> list[str]:
    """Every other process's command line (as `ps` shows it) seen while ``proc`` runs."""
    seen: set[str] = set()
    deadline = time.monotonic() + 300
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the run did not end in 300 s"
        for p in Path("/proc").glob("[0-9]*"):
            try:
                seen.add((p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
        time.sleep(0.05)
    return sorted(seen)


def test_a_real_run_is_stored_on_the_server_and_its_password_is_never_shown(
    pg_db: str, pg_server: PgServer, tmp_path: Path
) -> None:
    name = pg_db.rsplit("/", 1)[1]
    url = pg_server.url(name, password=True)
    secret = pg_server.password(WRITER)
    variants = _tiny_variants(tmp_path / "models", 2)
    cmd = [EDGEBENCH, "run", "--variants", str(variants), "--results", url, *FAST, "--json"]
    with open(tmp_path / "out", "w") as fo, open(tmp_path / "err", "w") as fe:  # never a full pipe
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, env=_env(tmp_path))
        seen = _cmdlines_while(proc)
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert proc.returncode == 0, err
    harness = [c for c in seen if "edgebench.bench.harness" in c]
    assert harness, "the harness's command line was never seen"
    # the password is only in the command line the user typed, never in one edgebench made
    assert [c for c in seen if secret in c and f"{EDGEBENCH} run " not in c] == []
    assert all("postgresql://" not in c for c in harness)
    doc = json.loads(out)
    assert doc["run_file"] == f"{pg.redact(url)} run {doc['run']['edgebench']['run_id']}"
    assert secret not in out and secret not in err
    with pg.open_store(pg_db, read_only=True) as store:
        (run_id,) = pg.list_runs(store)
        run = pg.read_run(store, run_id)
        assert run.complete and len(run.measurements) == 2 and all(m.ok for m in run.measurements)
        assert secret not in pg.run_text(run)
    local = tmp_path / "cache" / "edgebench" / "server" / f"127.0.0.1-{pg_server.port}-{name}"
    log = local / "logs" / f"{run_id}.log"
    assert log.is_file() and secret not in log.read_text()
    assert not folder.list_runs(local)  # the run itself is only on the server
    assert list((local / ".benchmarks").rglob("*.json"))  # pytest-benchmark's copy stays local
    assert (local / "artifacts").is_dir()
    # the server's run reads back through the commands as a folder's would
    got = CliRunner().invoke(main, ["report", "--json", "--results", pg_db])
    assert got.exit_code == 0 and json.loads(got.stdout)["run_id"] == run_id


def test_an_unreachable_server_fails_run_in_one_line_before_measuring(tmp_path: Path) -> None:
    url = f"postgresql://someone:hunter22@127.0.0.1:{free_port()}/bench"
    variants = _tiny_variants(tmp_path / "models", 1)
    cmd = [EDGEBENCH, "run", "--variants", str(variants), "--results", url, *FAST]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: postgresql://someone@127.0.0.1:"), out.stderr
    assert "cannot reach the results server" in lines[0] and "hunter22" not in out.stderr + out.stdout
    assert not (tmp_path / "cache" / "edgebench" / "server").exists()  # nothing written, nothing measured
    assert not (tmp_path / "spool").exists()


def test_results_push_then_pull_round_trip(pg_db: str, tmp_path: Path) -> None:
    here, back = tmp_path / "here", tmp_path / "back"
    for i in range(3):
        folder.save_run(here, make_run(i, n=3))
    r = CliRunner()
    first = r.invoke(main, ["results", "push", str(here), pg_db])
    assert first.exit_code == 0 and first.stdout.strip() == (
        f"{here} -> {pg_db}: 3 run(s) copied, 0 updated, 0 already there"
    ), first.output
    again = r.invoke(main, ["results", "push", str(here), pg_db])
    assert again.stdout.strip().endswith("0 run(s) copied, 0 updated, 3 already there"), again.output
    pulled = r.invoke(main, ["results", "pull", pg_db, str(back)])
    assert pulled.exit_code == 0 and "3 run(s) copied" in pulled.stdout, pulled.output
    assert {p.name: p.read_text() for p in folder.list_runs(back)} == {
        p.name: p.read_text() for p in folder.list_runs(here)
    }
    bad = r.invoke(main, ["results", "push", str(here), "/not/a/url"])
    assert bad.exit_code == 1 and "not a PostgreSQL URL" in bad.output


def _pg_start(server: PgServer) -> None:
    """Start a stopped server again on its data folder (as `PgServer.start` started it)."""
    opts = (
        f"-p {server.port} -k {server.socket_dir} -c listen_addresses={server.host} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB"
    )
    subprocess.run(
        server._as_owner(str(server.bin / "pg_ctl"), "-D", str(server.data), "-l", str(server.root / "log"),
                         "-o", opts, "-w", "-t", "60", "start"),
        check=True, capture_output=True, cwd=server.root,
    )  # fmt: skip


def _measurements(url: str) -> int:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as c:
            row = c.execute("SELECT coalesce(sum(measurements), 0) FROM edgebench.runs").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


@pytest.fixture
def own_server(tmp_path: Path) -> Any:
    """A server of this test's own (it is stopped mid-run: the shared one must not be)."""
    import tempfile

    server = PgServer(require_postgres(), Path(tempfile.mkdtemp(prefix="edgebench-pg-kill-")), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stopped = False
        server.stop()


def kill_mid_run(server: PgServer, tmp_path: Path, boards: list[str] | None = None) -> dict[str, Any]:
    """Run 4 variants against ``server``, stop it (immediate) once the first measurement is stored; what happened."""
    name = server.create_database("k_" + secrets.token_hex(4))
    url = server.url(name)
    env = _env(tmp_path, PGPASSWORD=server.password(WRITER))
    variants = _tiny_variants(tmp_path / "models", 4)
    slow = [*FAST[: FAST.index("--min-time")], "--min-time", "3", *FAST[FAST.index("--min-time") + 2 :]]
    cmd = [EDGEBENCH, "run", "--variants", str(variants), "--results", url, *slow]  # 1.5 s per process
    if boards:
        cmd += ["--boards", ",".join(boards), "--parallel"]
    fo, fe = open(tmp_path / "out", "w"), open(tmp_path / "err", "w")  # noqa: SIM115  # closed below
    proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, env=env)
    with_password = server.url(name, password=True)
    at_kill = 0
    while proc.poll() is None:
        at_kill = _measurements(with_password)
        if at_kill >= 1:
            subprocess.run(
                server._as_owner(str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "-w", "stop"),
                check=True, capture_output=True, cwd=server.root,
            )  # fmt: skip
            break
        time.sleep(0.05)
    proc.wait(timeout=300)
    fo.close()
    fe.close()
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    spool = tmp_path / "spool"
    spooled = [folder.read_run(p) for p in folder.list_runs(spool)] if spool.is_dir() else []
    return {"url": url, "with_password": with_password, "exit": proc.returncode, "err": err, "out": out,
            "at_kill": at_kill, "spooled": spooled, "spool": spool, "env": env}  # fmt: skip


def test_a_server_lost_mid_run_keeps_every_finished_measurement_in_the_spool(
    own_server: PgServer, tmp_path: Path
) -> None:
    got = kill_mid_run(own_server, tmp_path)
    assert got["at_kill"] >= 1, f"the server was never killed: the run ended first: {got['err'][-2000:]}"
    assert got["exit"] == 1, got["err"]
    lines = [ln for ln in got["err"].strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, got["err"]
    line = lines[0]
    push = f"edgebench results push {got['spool']} {got['url']}"
    assert "lost the results server" in line and line.endswith(push), line
    (run,) = got["spooled"]
    assert not run.complete and "lost the results server" in (run.interrupted or "")
    assert len(run.measurements) >= got["at_kill"]  # everything the server had, and what finished after
    assert f"its {len(run.measurements)} finished measurement(s) are kept" in line
    _pg_start(own_server)
    pushed = subprocess.run([EDGEBENCH, "results", "push", str(got["spool"]), got["url"]], capture_output=True,
                            text=True, env=got["env"], timeout=120)  # fmt: skip
    # updated, or copied: the test server runs with synchronous_commit=off, so an immediate stop may lose its copy
    assert pushed.returncode == 0, pushed.stderr
    assert "1 updated" in pushed.stdout or "1 run(s) copied" in pushed.stdout, pushed.stdout
    with pg.open_store(got["with_password"], read_only=True) as store:
        back = pg.read_run(store, run.run_id)
    assert pg.run_text(back) == pg.run_text(run)


def test_nightly_twice_on_the_server_with_its_advisory_lock(
    pg_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("EDGEBENCH_SPOOL", str(tmp_path / "spool"))
    _tiny_variants(tmp_path / "models", 2)
    (tmp_path / "budgets.toml").write_text('[[budget]]\nboard = "local"\nmax_p99_ms = 1000\n')
    (tmp_path / "nightly.toml").write_text(
        '[nightly]\nboards = ["local"]\nvariants = "models"\nbudgets = "budgets.toml"\n'
        "[nightly.settings]\nmin_time_s = 0.05\nmin_rounds = 10\nrepeats = 2\n"
    )
    args = ["nightly", str(tmp_path / "nightly.toml"), "--results", pg_db, "--json"]
    r = CliRunner()
    first = r.invoke(main, args)
    assert first.exit_code == 0, first.output
    d1 = json.loads(first.stdout)
    assert d1["verdict"] == "PASS" and d1["run_file"].startswith(f"{pg_db} run ")
    second = r.invoke(main, args)
    assert second.exit_code == 0, second.output
    d2 = json.loads(second.stdout)
    run1, run2 = d1["run_file"].rsplit(" ", 1)[1], d2["run_file"].rsplit(" ", 1)[1]
    assert d2["baseline"].startswith(f"{run1}, the last nightly that passed")  # found on the server
    with pg.open_store(pg_db, read_only=True) as store:
        assert pg.list_runs(store) == [run1, run2]
        stored = pg.read_run(store, run2)
        assert stored.nightly and stored.nightly["verdict"] == "PASS" and stored.command == "nightly"
        assert all(m.paired is not None for m in stored.measurements)  # the baseline re-measured paired
    with pg.open_store(pg_db) as store, pg.nightly_lock(store, "nightly"):
        busy = r.invoke(main, args)
    assert busy.exit_code == 1 and "another nightly 'nightly' is running" in busy.output, busy.output
    # `edgebench accept` on the server: the next nightly's baseline is the accepted run, with who and why
    took = r.invoke(main, ["accept", run1, "--reason", "the first is the reference", "--by", "ci", "--results", pg_db])
    assert took.exit_code == 0 and f"accepted run {run1}" in took.output, took.output
    with pg.open_store(pg_db, read_only=True) as store:
        assert [(a[0], a[1], a[2]) for a in pg.acceptances(store)] == [(run1, "ci", "the first is the reference")]
    third = r.invoke(main, args)
    assert third.exit_code == 0, third.output
    assert json.loads(third.stdout)["baseline"].startswith(f"{run1}, accepted by ci (the first is the reference)")


def test_commands_that_keep_a_folder_refuse_a_url_in_one_line_without_its_password() -> None:
    url = "postgresql://u:hunter22@127.0.0.1:1/db"
    r = CliRunner()
    for args, code, text in (
        (["demo"], 2, "demo keeps its results in a folder"),
        (["index", "rebuild"], 1, "it has no index to rebuild"),
    ):
        got = r.invoke(main, [*args, "--results", url])
        assert got.exit_code == code and text in got.output, got.output
        assert len(got.output.strip().splitlines()) == 1 and "hunter22" not in got.output
