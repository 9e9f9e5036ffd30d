"""A variant's manifest carries the measuring defaults its recipe gave (issue 10): `runner.variant_settings`.

The degraded threshold the manifest was judged by (``fidelity.min_cosine``) and the recipe's ``inputs`` and ``dims``
(``run_defaults``) apply where the run gives none; an explicit ``--min-cosine``/``--input``/``--dim`` wins, and eval
data that holds an input wins over the manifest's spec for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgebench import agent
from edgebench.bench.runner import variant_settings
from edgebench.bench.settings import SETTINGS, RunSettings
from edgebench.compress.variant import Variant
from edgebench.model import Manifest


def _variant(tmp_path: Path, **extra: Any) -> Variant:
    doc = {
        "model": "vad", "variant": "fp16", "format": "onnx", "artifact": "model.onnx", "sha256": "0" * 64, "bytes": 1,
        "inputs": [
            {"name": "input", "shape": [1, "N"], "dtype": "float32"},
            {"name": "state", "shape": [2, 1, 64], "dtype": "float32"},
            {"name": "sr", "shape": [], "dtype": "int64"},
        ],
        **extra,
    }  # fmt: skip
    return Variant(tmp_path, Manifest.from_json(doc))


RECORDED = {
    "fidelity": {"cosine": 0.6, "min_cosine": 0.5, "degraded": False},
    "run_defaults": {"inputs": {"sr": "16000", "state": "zeros:batchless"}, "dims": {"N": 512}},
}


def test_the_manifests_threshold_inputs_and_dims_apply_when_the_run_gives_none(tmp_path: Path) -> None:
    s = variant_settings(RunSettings(), _variant(tmp_path, **RECORDED))
    assert s.min_cosine == 0.5 and s.measure_block()["min_cosine"] == 0.5  # what the agent and the record get
    assert s.inputs == {"sr": "16000", "state": "zeros:batchless"} and s.dims == {"N": 512}
    assert variant_settings(s, _variant(tmp_path, **RECORDED)) == s  # applying it again changes nothing


def test_explicit_run_settings_win(tmp_path: Path) -> None:
    run = RunSettings(min_cosine=0.99, inputs={"sr": "8000"}, dims={"N": 256})
    s = variant_settings(run, _variant(tmp_path, **RECORDED))
    assert s.min_cosine == 0.99  # an explicit threshold is the same for every variant
    assert s.inputs == {"sr": "8000", "state": "zeros:batchless"} and s.dims == {"N": 256}


def test_without_recorded_defaults_the_default_threshold_and_nothing_else(tmp_path: Path) -> None:
    s = variant_settings(RunSettings(), _variant(tmp_path))
    assert s.min_cosine == agent.DEFAULT_MIN_COSINE and s.inputs == {} and s.dims == {}


def test_eval_data_holding_an_input_wins_over_the_manifests_spec(tmp_path: Path) -> None:
    ev = tmp_path / "eval.npz"
    np.savez(ev, input=np.zeros((3, 512), np.float32), state=np.zeros((2, 1, 64), np.float32))
    s = variant_settings(RunSettings(), _variant(tmp_path, **RECORDED), ev)
    assert s.inputs == {"sr": "16000"}  # state comes from the eval data, sr (not in it) from the manifest
    assert variant_settings(s, _variant(tmp_path, **RECORDED), ev) == s


def test_the_flag_has_no_fixed_default_and_its_help_says_where_it_comes_from() -> None:
    [flag] = [x for x in SETTINGS if x.name == "min_cosine"]
    assert flag.default is None and RunSettings().min_cosine is None
    assert "[fidelity] min_cosine" in flag.help and f"else {agent.DEFAULT_MIN_COSINE}" in flag.help
    assert "every variant" in flag.help
