"""Knowledge distillation: train a smaller student on the teacher's softened logits.

Loss, with the teacher's logits computed on the same input batch::

    alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t / T) || softmax(s / T))

The pass also trains the same student (same initial weights, data order, epochs and
learning rate) without a teacher, the control, and reports teacher, student and
control accuracy and parameter counts, so the benefit of distillation is measured.
"""

from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgebench import zoo
from edgebench.compress.passes import Artifact, Context, Pass, param
from edgebench.compress.prune import shrink
from edgebench.errors import ConfigError, DataError
from edgebench.zoo import require_torch


def kd_loss(s: Any, t: Any, y: Any, alpha: float, temperature: float) -> Any:
    """``alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))`` (batch mean)."""
    import torch.nn.functional as F

    ce = F.cross_entropy(s, y)
    kl = F.kl_div(
        F.log_softmax(s / temperature, dim=1),
        F.log_softmax(t / temperature, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    return alpha * ce + (1.0 - alpha) * temperature**2 * kl


def load_factory(spec: str) -> Any:
    """Call ``package.module:factory`` and return what it builds.

    Raises:
        ConfigError: if the spec is malformed, the module or the factory is missing.
    """
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ConfigError(f"{spec!r} is not an import spec: write it as package.module:factory")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {mod_name!r} from {spec!r} ({exc}): check the module path") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ConfigError(f"{mod_name} has no callable {attr!r} (from {spec!r}): check the factory name")
    return fn()


def count_params(module: Any) -> int:
    """Number of parameters of a torch module."""
    return sum(int(p.numel()) for p in module.parameters())


def reset_parameters(module: Any) -> None:
    """Re-initialize every layer that knows how to (a fresh student, not a pruned teacher)."""
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()


def train_student(
    student: Any,
    teacher: Any | None,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    alpha: float,
    temperature: float,
    seed: int,
    batch_size: int = 32,
) -> Any:
    """Train ``student`` in place: with the KD loss if ``teacher`` is given, plain cross-entropy otherwise."""
    torch = require_torch("distillation")
    if teacher is None:
        return zoo.train(student, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    teacher.eval()

    def loss(logits: Any, xb: Any, yb: Any) -> Any:
        with torch.no_grad():
            t = teacher(xb)
        return kd_loss(logits, t, yb, alpha, temperature)

    return zoo.train(student, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, loss_fn=loss)


@dataclass(frozen=True)
class DistillParams:
    """The parameters of `Distill`."""

    student: str = param("", "student factory `package.module:factory` (empty: the teacher at `width`)")
    width: float = param(
        0.5, "channel fraction of the derived student (about width^2 of the parameters)", lo=0.05, hi=1.0
    )
    alpha: float = param(0.5, "weight of the hard-label cross-entropy", lo=0.0, hi=1.0)
    temperature: float = param(4.0, "softening temperature T", lo=0.1)
    epochs: int = param(20, "training epochs for the student and for the control", lo=1)
    lr: float = param(3e-3, "learning rate", lo=0.0)
    control: bool = param(True, "also train the student without a teacher and report it")


class Distill(Pass[DistillParams]):
    """Distill the (torch) model into a smaller student; report teacher, student and control."""

    name = "distill"
    summary = "knowledge distillation into a narrower student, with a no-teacher control"
    accepts = ("torch",)
    produces = "torch"

    def needs_data(self, params: DistillParams) -> bool:
        """Always: it trains."""
        return True

    def run(self, src: Artifact, params: DistillParams, ctx: Context) -> Artifact:
        """Build the student, train it with and (control) without the teacher, report all three."""
        import torch

        d = ctx.data
        if d.y_train is None or d.y_eval is None or isinstance(d.x_train, dict):
            raise DataError("distill needs one input array and labels (y) in the training and eval data")
        teacher = copy.deepcopy(src.module).eval()
        if params.student:
            student = load_factory(params.student)
        else:
            student = copy.deepcopy(teacher)
            shrink(student, torch.from_numpy(d.x_train[:1]), 1.0 - params.width, "l1", False, None)
            torch.manual_seed(ctx.seed)
            reset_parameters(student)
        init = copy.deepcopy(student.state_dict())

        def train(model: Any, with_teacher: Any | None) -> None:  # the student and the control alike
            assert d.y_train is not None
            train_student(
                model,
                with_teacher,
                d.x_train,
                d.y_train,
                epochs=params.epochs,
                lr=params.lr,
                alpha=params.alpha,
                temperature=params.temperature,
                seed=ctx.seed,
            )

        ctx.log(f"distill: training the student for {params.epochs} epoch(s)")
        train(student, teacher)
        report: dict[str, Any] = {
            "alpha": params.alpha,
            "temperature": params.temperature,
            "teacher": {"params": count_params(teacher), "top1": zoo.accuracy(teacher, d.x_eval, d.y_eval)},
            "student": {"params": count_params(student), "top1": zoo.accuracy(student, d.x_eval, d.y_eval)},
        }
        if params.control:
            ctx.log("distill: training the control (same student, no teacher)")
            control = copy.deepcopy(student)
            control.load_state_dict(init)
            train(control, None)
            report["control"] = {"params": count_params(control), "top1": zoo.accuracy(control, d.x_eval, d.y_eval)}
        report["param_ratio"] = report["student"]["params"] / report["teacher"]["params"]
        report["accuracy_vs_teacher"] = report["student"]["top1"] / max(report["teacher"]["top1"], 1e-12)
        return src.derive("torch", module=student, distill=report)
