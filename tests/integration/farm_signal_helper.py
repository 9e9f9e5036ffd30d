"""Run only by `test_farm_fixture_signals.py` (not collected by name): holds a farm until signalled."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from edgebench.targets.farm import Farm


@pytest.mark.ssh
def test_hold_the_farm(farm: Farm) -> None:
    out = Path(os.environ["EDGEBENCH_FARM_HELPER_OUT"])
    pids = [m.pid for m in farm.members]
    out.with_suffix(".tmp").write_text(json.dumps({"root": str(farm.root), "pids": pids}))
    out.with_suffix(".tmp").rename(out)
    time.sleep(600)  # until the parent test signals this run
