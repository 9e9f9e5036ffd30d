"""Many writers at once on a real server (8 processes, a fresh database), and the nightly's advisory lock."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import psycopg
import pytest

from edgebench.errors import NightlyBusy
from edgebench.results import schema
from edgebench.results.pg import SCHEMA_VERSION, list_runs, nightly_lock, open_store, read_run, save_run

from ._runs import measurement

WRITERS, RUNS, MEASUREMENTS = 8, 4, 5


def writer(url: str, w: int, go: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    """One CI runner: opens the store (the first ones migrate a fresh database) and writes runs as they go."""
    go.wait(30)
    with open_store(url) as s:
        for r in range(RUNS):
            run = dataclasses.replace(schema.new_run("nightly", f"20260301T000000Z-w{w}r{r}"))
            save_run(s, run)
            for k in range(MEASUREMENTS):
                run = schema.add_measurement(run, measurement(f"b{w}", "m", f"v{k}", seed=w * 100 + r * 10 + k))
                save_run(s, run)
            save_run(s, schema.finish(run))


def test_eight_writers_lose_and_duplicate_nothing(pg_db: str) -> None:
    ctx = mp.get_context("fork")
    go = ctx.Event()
    procs = [ctx.Process(target=writer, args=(pg_db, w, go)) for w in range(WRITERS)]
    for p in procs:
        p.start()
    go.set()  # all at once: eight first writers race to create the schema
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * WRITERS
    with psycopg.connect(pg_db) as c:
        assert c.execute("SELECT count(*), sum(complete) FROM edgebench.runs").fetchone() == (WRITERS * RUNS,) * 2
        n = WRITERS * RUNS * MEASUREMENTS
        assert c.execute("SELECT count(*), count(DISTINCT (run_id, pos)) FROM edgebench.rows").fetchone() == (n, n)
        # each row belongs to its own run: board b<w> only in runs of writer w
        mixed = c.execute("SELECT count(*) FROM edgebench.rows WHERE run_id NOT LIKE '%-w' || substr(board, 2) || 'r%'")
        assert mixed.fetchone() == (0,)
        assert [r[0] for r in c.execute("SELECT version FROM edgebench.edgebench_schema ORDER BY 1")] == list(
            range(1, SCHEMA_VERSION + 1)
        )
    with open_store(pg_db, read_only=True) as s:
        ids = list_runs(s)
        assert len(ids) == len(set(ids)) == WRITERS * RUNS
        assert all(len(read_run(s, i).measurements) == MEASUREMENTS for i in ids)


def test_the_nightly_lock_excludes_a_second_holder(pg_db: str) -> None:
    with open_store(pg_db) as s:
        with nightly_lock(s, "main"):
            with pytest.raises(NightlyBusy) as exc, nightly_lock(s, "main"):
                pass
            msg = str(exc.value)
            assert msg.startswith(f"another nightly 'main' is running on {pg_db} (edgebench nightly main (pid ")
            assert msg.endswith("): wait for it to finish; two nightlies never overlap")
            with nightly_lock(s, "release-gate"):  # another name is another lock
                pass
            t0 = time.monotonic()
            with pytest.raises(NightlyBusy), nightly_lock(s, "main", timeout=0.5):
                pass
            assert time.monotonic() - t0 >= 0.45
        with nightly_lock(s, "main"):  # released at the end of the block
            pass


def test_a_killed_holder_leaves_no_lock(pg_db: str) -> None:
    code = textwrap.dedent(f"""
        import sys, time
        from edgebench.results.pg import nightly_lock, open_store
        with open_store({pg_db!r}) as s, nightly_lock(s, "main"):
            print("held", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with open_store(pg_db) as s:
            with pytest.raises(NightlyBusy), nightly_lock(s, "main"):
                pass
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(10)
            with nightly_lock(s, "main", timeout=10):  # the server drops it with the dead holder's connection
                pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
