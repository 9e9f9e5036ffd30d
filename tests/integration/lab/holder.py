"""A pipeline that holds boards of a pool: ``python holder.py INVENTORY POOL_REF HOLD_S [--measure VARIANT_DIR]``.

Prints ``HOLDING PLACE[,PLACE] <epoch>`` when it holds its places, then holds them ``HOLD_S``
seconds (sleeping, or measuring VARIANT_DIR on each board in a loop with the real runner),
prints ``RELEASED <epoch>`` and exits 0. Waiting lines go to stdout as they come. SIGINT and
SIGTERM release the places and exit 130 / 143, as the edgebench CLI does. Used by the lab
tests and ``tests/perf/perf_lab.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def _measure(boards: list[object], variant_dir: Path, until: float) -> int:
    from edgebench.bench.repeats import Planned, measure_interleaved
    from edgebench.bench.settings import RunSettings
    from edgebench.compress.variant import load_variant
    from edgebench.targets.registry import driver_for

    variant = load_variant(variant_dir)
    settings = RunSettings(
        repeats=1, warmup_min_iters=3, warmup_min_s=0.0, min_rounds=20, min_time_s=0.2, max_time_s=5.0
    )
    done = 0
    for board in boards:
        driver = driver_for(board)  # type: ignore[arg-type]
        driver.activate()
        try:
            with driver.lock(60):
                while time.time() < until:
                    m = measure_interleaved(driver, [Planned(variant)], settings)[0]
                    assert m.ok, m.error
                    done += 1
        finally:
            driver.deactivate()
    return done


def main() -> int:
    from edgebench.config import load_toml
    from edgebench.targets.lab import lease, parse_pool_ref, parse_pools, resolve_pool

    inventory, ref_text, hold = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    variant_dir = Path(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--measure" else None
    pools = parse_pools(load_toml(inventory)["pools"], inventory)
    ref = parse_pool_ref(ref_text)
    pool = resolve_pool(pools, ref)
    try:
        with lease(pool, ref.count, progress=lambda line: print(line, flush=True), poll_s=0.5) as held:
            t = time.time()
            print(f"HOLDING {','.join(held.places)} {t:.3f} overhead {held.overhead_s:.3f}", flush=True)
            if variant_dir is not None:
                n = _measure(list(held.boards), variant_dir, t + hold)
                print(f"MEASURED {n}", flush=True)
            else:
                time.sleep(hold)
            end = time.time()
        print(f"RELEASED {end:.3f} {time.time():.3f}", flush=True)
    except KeyboardInterrupt as exc:
        signum = int(getattr(exc, "signum", 2))
        print(f"INTERRUPTED {signum} {time.time():.3f}", flush=True)
        return 128 + signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
