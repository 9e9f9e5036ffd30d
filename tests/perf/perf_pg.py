"""The PostgreSQL results store, against a real server (print figures; no timed asserts).

Run with ``pytest tests/perf/perf_pg.py -s -p no:cacheprovider -o python_files='perf_*.py'``
(``nox -s perf`` does). It starts its own PostgreSQL 15 (``tests/integration/pg_server.py``).

* writers: 8 processes (like 8 CI runners) x 25 runs x 10 measurements, each run saved after
  every measurement, against one fresh database: runs and rows stored, lost, duplicated,
  wall time;
* history: 100,000 stored measurements (2,000 runs x 50), what `report` and `gate` ask the
  store (``find_run('latest')``, ``open_run``, ``history`` of the latest run's keys over the last
  30 runs, ``runs_by``) from the server vs from a folder's SQLite index (as a writing command
  sees it, and as a read-only command does: index copied into memory and caught up).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from pg_server import PgServer, pg_server

from edgebench.fsutil import write_text_atomic
from edgebench.model import Measurement, Run
from edgebench.results import index, schema
from edgebench.results import store as folder
from edgebench.results.pg import (
    PgStore,
    find_run,
    history,
    open_run,
    open_store,
    run_text,
    runs_by,
    save_run,
)

__all__ = ["pg_server"]

WRITERS, WRITER_RUNS, WRITER_MEASUREMENTS = 8, 25, 10
HISTORY_RUNS, HISTORY_MEASUREMENTS = 2000, 50  # 100,000 measurements


def slim(board: str, variant: str, seed: int, ms: float) -> Measurement:
    """A measurement with what a report reads (5 samples, so 100,000 of them fit a test database)."""
    rng = random.Random(seed)
    return Measurement.from_json({
        "board": board, "model": "cnn", "variant": variant, "ok": True, "batch_size": 1, "format": "onnx",
        "bytes": 1000, "samples_ns": [int(ms * 1e6 * rng.uniform(0.95, 1.1)) for _ in range(5)],
        "runtime": {"name": "onnxruntime", "version": "1.17.0", "threads": 2},
        "memory": {"peak_rss": 50_000_000}, "accuracy": {"top1": 0.9},
    })  # fmt: skip


_TEMPLATES: list[Run] = []


def history_run(i: int) -> Run:
    """Run ``i`` of the history: one of 10 measured templates (the statistics are the slow part), re-dated."""
    if not _TEMPLATES:
        for t in range(10):
            run = schema.new_run("nightly")
            for k in range(HISTORY_MEASUREMENTS):
                run = schema.add_measurement(run, slim(f"board{k % 5}", f"v{k // 5}", t * 100 + k, 2.0 + t * 0.01))
            _TEMPLATES.append(schema.finish(run))
    start = f"2026-{1 + i // 200 % 12:02d}-{1 + i // 8 % 25:02d}T{i % 8 * 3:02d}:{i % 60:02d}:00+00:00"
    return dataclasses.replace(
        _TEMPLATES[i % 10],
        run_id=f"2026{i:06d}T000000Z-{i:06x}",
        started=start,
        commit_info={"id": f"{i:040x}", "branch": "main", "dirty": False},
    )


def _writer(url: str, w: int, go: Any) -> None:
    go.wait(60)
    with open_store(url) as s:
        for r in range(WRITER_RUNS):
            run = schema.new_run("nightly", f"20260301T000000Z-w{w:02d}r{r:03d}")
            save_run(s, run)
            for k in range(WRITER_MEASUREMENTS):
                run = schema.add_measurement(run, slim(f"b{w}", f"v{k}", w * 1000 + r * 10 + k, 2.0))
                save_run(s, run)
            save_run(s, schema.finish(run))


def test_eight_concurrent_writers(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    db = pg_server.create_database("perf_writers")
    monkeypatch.setenv("PGPASSWORD", pg_server.password("eb_writer"))
    url = pg_server.url(db)
    ctx = mp.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(url, w, go)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join(600)
    wall = time.perf_counter() - t0
    with psycopg.connect(url) as c:
        runs, complete = c.execute("SELECT count(*), sum(complete) FROM edgebench.runs").fetchone()  # type: ignore[misc]
        rows, distinct = c.execute("SELECT count(*), count(DISTINCT (run_id, pos)) FROM edgebench.rows").fetchone()  # type: ignore[misc]
        bad = c.execute(
            "SELECT count(*) FROM edgebench.runs u WHERE measurements <> (SELECT count(*) FROM edgebench.rows r "
            "WHERE r.run_id = u.run_id)"
        ).fetchone()[0]  # type: ignore[index]
    want_runs, want_rows = WRITERS * WRITER_RUNS, WRITERS * WRITER_RUNS * WRITER_MEASUREMENTS
    saves = WRITERS * WRITER_RUNS * (WRITER_MEASUREMENTS + 2)
    print(
        f"\n[pg writers] {WRITERS} processes x {WRITER_RUNS} runs x {WRITER_MEASUREMENTS} measurements "
        f"(saved after each): exit codes {[p.exitcode for p in procs]}\n"
        f"  runs stored {runs}/{want_runs} (complete {complete}), rows stored {rows}/{want_rows}, "
        f"lost {want_rows - distinct}, duplicated {rows - distinct}, runs whose rows differ from their document {bad}\n"
        f"  wall {wall:.2f} s ({saves} saves, {saves / wall:.0f} saves/s over all writers)"
    )
    assert rows == distinct == want_rows and runs == want_runs  # correctness, not time


def _time(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def test_history_over_100k_measurements(pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = pg_server.create_database("perf_history")
    monkeypatch.setenv("PGPASSWORD", pg_server.password("eb_writer"))
    url = pg_server.url(db)
    results = tmp_path / "results"
    t_pg = t_folder = 0.0
    folder.prepare(results)
    with open_store(url) as s:
        for i in range(HISTORY_RUNS):
            run = history_run(i)
            text = run_text(run)  # the bytes both stores keep; computed once here
            t0 = time.perf_counter()
            save_run(s, run, text=text)
            t_pg += time.perf_counter() - t0
            t0 = time.perf_counter()
            write_text_atomic(folder.run_path(results, run.run_id), text)
            t_folder += time.perf_counter() - t0
    t0 = time.perf_counter()
    folder.sync(results)
    t_folder += time.perf_counter() - t0
    n = HISTORY_RUNS * HISTORY_MEASUREMENTS
    print(
        f"\n[pg history] stored {HISTORY_RUNS} runs x {HISTORY_MEASUREMENTS} = {n} measurements: "
        f"server {t_pg:.1f} s ({HISTORY_RUNS / t_pg:.0f} runs/s), folder files + one index sync {t_folder:.1f} s"
    )

    def on_server(store: PgStore) -> tuple[Any, ...]:
        latest = open_run(store, find_run(store, "latest"))
        keys = [m.key for m in latest.measurements]
        base = find_run(store, "latest~1")
        return latest.run_id, base, history(store, keys, last=30), len(runs_by(store, "nightly"))

    def in_folder() -> tuple[Any, ...]:
        latest = folder.open_run(results, "latest")
        keys = [m.key for m in latest.measurements]
        base = folder.find_run(results, "latest~1").stem
        return latest.run_id, base, index.history(results, keys, last=30), len(index.runs_by(results, "nightly"))

    def read_only_folder() -> tuple[Any, ...]:
        with index.read_only(results):
            folder.sync(results, warn=False)
            return in_folder()

    with open_store(url, read_only=True) as s:
        t_srv, got_srv = _time(lambda: on_server(s))
        t_one = _time(lambda: find_run(s, "latest~1"))[0]
        t_hist = _time(lambda: history(s, [m.key for m in history_run(0).measurements], last=30))[0]
    t_fold, got_fold = _time(in_folder)
    t_ro, _ = _time(read_only_folder, repeat=2)
    t_open = _time(lambda: open_store(url, read_only=True).close())[0]
    assert got_srv == got_fold  # the same answers
    print(
        f"  report/gate store work (find latest, open it, latest~1, history of its {HISTORY_MEASUREMENTS} keys x "
        f"last 30, runs_by): server {t_srv * 1000:.0f} ms (+ connect {t_open * 1000:.0f} ms), "
        f"folder index {t_fold * 1000:.0f} ms, folder read-only (index copied to memory + sync) {t_ro * 1000:.0f} ms\n"
        f"  server alone: find_run('latest~1') {t_one * 1000:.1f} ms, history of 50 keys {t_hist * 1000:.1f} ms"
    )


def test_server_killed_mid_farm_run(tmp_path: Path) -> None:
    """SIGKILL the postmaster in the middle of a 4-board farm run: measurements finished vs kept (spool, then push)."""
    import os
    import secrets
    import signal
    import subprocess
    import tempfile

    from pg.test_pg_commands import _env, _measurements, _pg_start
    from pg_server import WRITER, free_port, require_postgres

    from _tiny_onnx import make_tiny_onnx
    from edgebench.targets.farm import farm_down, farm_up

    server = PgServer(require_postgres(), Path(tempfile.mkdtemp(prefix="edgebench-pg-perf-kill-")), free_port())
    server.start()
    farm = farm_up(tmp_path / "farm", 4, limits=False)
    try:
        name = server.create_database("k_" + secrets.token_hex(4))
        url, with_password = server.url(name), server.url(name, password=True)
        env = _env(tmp_path, PGPASSWORD=server.password(WRITER))
        models = tmp_path / "models"
        models.mkdir()
        for i in range(3):
            make_tiny_onnx(models / f"tiny{i}.onnx", n_in=64, n_out=10, seed=i)
        boards = ",".join(b.name for b in farm.members)
        cmd = [str(Path(sys.executable).with_name("edgebench")), "run", "--variants", str(models), "--results", url,
               "--boards", boards, "--boards-file", str(farm.boards_file), "--parallel", "--min-time", "2",
               "--min-rounds", "10", "--warmup-iters", "2", "--warmup-time", "0", "--repeats", "2"]  # fmt: skip
        err_file = tmp_path / "err"
        t0 = time.perf_counter()
        with open(err_file, "w") as fe:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fe, env=env)
            at_kill = 0
            while proc.poll() is None:
                at_kill = _measurements(with_password)
                if at_kill >= 1:
                    pid = int((server.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
                    break
                time.sleep(0.05)
            proc.wait(600)
        wall = time.perf_counter() - t0
        err = err_file.read_text()
        finished = sum(1 for ln in err.splitlines() if ln.startswith("measured "))
        spooled = (
            [folder.read_run(p) for p in folder.list_runs(tmp_path / "spool")] if (tmp_path / "spool").is_dir() else []
        )
        kept = sum(len(r.measurements) for r in spooled)
        subprocess.run(server._as_owner(str(server.bin / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop"),
                       capture_output=True, cwd=server.root)  # fmt: skip
        time.sleep(0.5)
        _pg_start(server)
        pushed = subprocess.run([cmd[0], "results", "push", str(tmp_path / "spool"), url], capture_output=True,
                                text=True, env=env)  # fmt: skip
        after = _measurements(with_password)
        line = next((ln for ln in err.splitlines() if ln.startswith("error:")), "")
        print(
            f"\n[pg killed mid-run] 4 farm boards x 3 variants (--parallel, 2 processes each), postmaster SIGKILLed "
            f"when the server held {at_kill} measurement(s), {wall:.1f} s: exit {proc.returncode}\n"
            f"  measurements finished {finished}, kept in the spool {kept} ({len(spooled)} run), on the server "
            f"after `results push` {after} ({pushed.stdout.strip()})\n  the line: {line}"
        )
        assert at_kill >= 1 and proc.returncode == 1 and kept == finished == after
    finally:
        farm_down(farm.root)
        server.stop()
