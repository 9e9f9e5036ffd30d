"""Issue 18 item 5: a model's variants made by the real compress passes have the FLOPs of their fp32 parent
(quantized and float16 ops counted as their float counterparts), and only pruning lowers them.

Models: the demo's CNN (`zoo.digits_cnn_32`, which upsamples in the graph: its fp16 variant, a Resize whose
scales pass through a Cast, used to have no figure) exported from PyTorch, and two third-party-style ONNX
files with ``Constant`` weights and all-dynamic dims (`_thirdparty_models.foreign_cnn`,
`_dense_detector.dense_detector`). Each is compressed by `compress.api` (fp16, int8-dynamic, int8-static;
the CNN also prune-channels) on generated data; the manifests' FLOPs are compared, and so are the FLOPs a
run stores at the shape it measured (`metrics.measured_flops`, what `bench/session.py` calls).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from _dense_detector import dense_detector
from _thirdparty_models import foreign_cnn
from edgebench import zoo
from edgebench.compress import metrics
from edgebench.compress.api import build_variant, make_variants
from edgebench.compress.passes import Artifact, Data
from edgebench.compress.variant import Variant, variant_dir

SPECS = [("fp16", "fp16", {}), ("int8-dynamic", "int8-dynamic", {}), ("int8-static", "int8-static", {})]
WIDTH = 8


def _family(root: Path, model: str, source: Artifact, x: np.ndarray, **kw: object) -> dict[str, Variant]:
    """The fp32 parent (as the demo and `compress` describe it) and its variants, by the real passes."""
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's pre-processing advice
    data = Data(x_train=x, y_train=None, x_calib=x[:16], x_eval=x[:8], y_eval=None)
    fp32 = build_variant(
        model=model, variant="fp32", source=source, chain=[], data=data,
        final=variant_dir(root, model, "fp32"), parent=None, ref=None,
    )  # fmt: skip
    specs = SPECS + ([("pruned-50", "prune-channels", {"ratio": 0.5, "fine_tune_epochs": 0})] if kw else [])
    made = make_variants(fp32, specs, root, calib=x[:16], eval_x=x[:8], **kw)  # type: ignore[arg-type]
    return {"fp32": fp32, **{v.name: v for v in made}}


def _assert_same_flops(family: dict[str, Variant]) -> int:
    parent = family["fp32"].manifest.flops
    assert parent is not None and parent > 0
    for name in ("fp16", "int8-dynamic", "int8-static"):
        got = family[name].manifest.flops
        assert got is not None, f"{name}: no FLOPs"
        assert abs(got - parent) <= 0.01 * parent, f"{name}: {got} vs fp32 {parent}"
    return parent


def demo_cnn_macs(w: int) -> int:
    """`zoo.digits_cnn_32(w)` by hand: five 3x3 convs at 32, 32, 16, 16 and 8 px, then Linear(4w, 10)."""
    convs = [(32, 1, w), (32, w, w), (16, w, 2 * w), (16, 2 * w, 2 * w), (8, 2 * w, 4 * w)]
    return sum(px * px * cout * cin * 9 for px, cin, cout in convs) + 4 * w * 10


def test_the_demo_cnn_variants_count_as_the_parent_and_pruning_counts_less(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = zoo.digits_cnn_32(WIDTH).eval()
    x = np.random.default_rng(0).standard_normal((32, 1, 8, 8)).astype(np.float32)
    family = _family(tmp_path, "cnn", Artifact("torch", module=model), x, torch_module=model, train=(x, None))
    parent = _assert_same_flops(family)
    assert parent == 2 * demo_cnn_macs(WIDTH)  # the hand formula: 2 FLOPs per multiply-add
    assert family["fp16"].manifest.flops == parent  # was none: the fp16 Resize's shape did not resolve
    pruned = family["pruned-50"].manifest.flops
    assert pruned is not None and pruned < 0.5 * parent  # half the channels: about a quarter of the MACs


@pytest.mark.parametrize("which", ["foreign-cnn", "dense-detector"])
def test_third_party_variants_count_as_the_parent_at_every_shape(tmp_path: Path, which: str) -> None:
    path = tmp_path / f"{which}.onnx"
    if which == "foreign-cnn":
        foreign_cnn(path)
        x = np.random.default_rng(1).standard_normal((32, 3, 32, 32)).astype(np.float32)
        name, other = "x", [2, 3, 48, 64]
    else:
        dense_detector(path)
        x = np.random.default_rng(1).standard_normal((32, 3, 32, 32)).astype(np.float32)
        name, other = "image", [1, 3, 40, 24]
    family = _family(tmp_path / "variants", which, Artifact("onnx", path), x)
    parent = _assert_same_flops(family)
    assert parent == metrics.onnx_flops(path, {name: [1, 3, 32, 32]})["flops"]
    # what a run stores: the FLOPs at the shape the board measured (another size, a batch of 2)
    inputs = [{"name": name, "shape": other}]
    at_run = {v: metrics.measured_flops("onnx", family[v].artifact, inputs).get("flops") for v in family}
    assert at_run["fp32"] is not None and at_run["fp32"] != parent
    assert set(at_run.values()) == {at_run["fp32"]}, at_run
