"""Source models and data for a recipe: detect the format, check the file, check the data fits.

Every check here runs before any variant is written, so a bad file or bad data
fails with one message and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgebench import agent, zoo
from edgebench.compress import metrics
from edgebench.compress.distill import load_factory
from edgebench.compress.metrics import one_line
from edgebench.compress.passes import Artifact, Data
from edgebench.compress.tflite import check_keras_data, load_keras
from edgebench.compress.variant import onnx_signature
from edgebench.errors import DataError, ModelError
from edgebench.fsutil import sha256_file
from edgebench.zoo import require_torch

SUFFIXES = {".onnx": "onnx", ".keras": "keras", ".h5": "keras", ".tflite": "tflite"}


@dataclass
class Source:
    """A source model: ``spec`` is a path or ``package.module:factory``."""

    name: str
    spec: str
    fmt: str
    path: Path | None
    weights: Path | None = None
    train_epochs: int = 0

    def content_hash(self) -> str:
        """What identifies this source's content (file hash, or the factory's code and settings)."""
        h = hashlib.sha256()
        if self.path is not None:
            h.update(sha256_file(self.path).encode())
        else:
            h.update(self.spec.encode())
            mod = importlib.import_module(self.spec.partition(":")[0])
            src = inspect.getsourcefile(mod)
            if src:
                h.update(sha256_file(Path(src)).encode())
            h.update(str(self.train_epochs).encode())
            if self.weights is not None:
                h.update(sha256_file(self.weights).encode())
        return h.hexdigest()


def detect(name: str, spec: str, base: Path) -> Source:
    """The `Source` for a recipe's ``source`` field (paths relative to ``base``).

    Raises:
        ModelError: if the file is missing or is not a model edgebench reads.
    """
    path = (base / spec).expanduser()
    if ":" in spec and not path.exists() and "/" not in spec.partition(":")[0]:
        return Source(name, spec, "torch", None)
    if not path.is_file():
        raise ModelError(f"model {name!r}: {path} does not exist: check the source path")
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        head = path.read_bytes()[:8]
        fmt = "tflite" if head[4:8] == b"TFL3" else "onnx"
    return Source(name, spec, fmt, path)


def open_source(src: Source, data: Data, seed: int = 0, train: bool = True) -> Artifact:
    """Check the model file and that the data fits it; build (and train) a torch model.

    Raises:
        ModelError: a file that is not a model, or is truncated.
        DataError: data whose shape or dtype does not match the model's inputs.
        MissingDependency: TensorFlow missing for a Keras model.
    """
    what = f"data for model {src.name!r}"
    if src.fmt == "onnx":
        assert src.path is not None
        metrics.load_onnx(src.path)
        metrics.check_onnx_data(src.path, data.x_eval, f"eval {what}")
        metrics.check_onnx_data(src.path, data.x_calib, f"calibration {what}")
        return Artifact("onnx", src.path)
    if src.fmt == "tflite":
        assert src.path is not None
        it = metrics.tflite_interpreter(src.path)
        want = [int(v) for v in it.get_input_details()[0]["shape"]]
        x = data.x_eval
        if isinstance(x, dict) or x.ndim != len(want) or list(x.shape[1:]) != want[1:]:
            shape = "several arrays" if isinstance(x, dict) else list(x.shape)
            raise DataError(f"eval {what} has shape {shape} but {src.path.name} takes {want}: reshape the data")
        return Artifact("tflite", src.path)
    if src.fmt == "keras":
        assert src.path is not None
        model = load_keras(src.path)
        check_keras_data(model, data.x_eval, f"eval {what}")
        return Artifact("keras", src.path)
    return Artifact("torch", module=build_torch(src, data, seed, train))


def build_torch(src: Source, data: Data, seed: int, train: bool = True) -> Any:
    """Build the torch model from its factory, load weights, train it if asked, check the data fits.

    Raises:
        MissingDependency: without PyTorch (the torch extra).
    """
    torch = require_torch(f"the PyTorch model {src.spec}")
    torch.manual_seed(seed)  # the factory's initial weights: the same recipe and seed make the same model
    module = load_factory(src.spec)
    if not isinstance(module, torch.nn.Module):
        raise ModelError(f"{src.spec} returned {type(module).__name__}, not a torch.nn.Module: fix the factory")
    if src.weights is not None:
        try:
            module.load_state_dict(torch.load(src.weights, map_location="cpu", weights_only=True))
        except Exception as exc:
            raise ModelError(f"{src.weights} cannot be loaded into {src.spec} ({one_line(exc, 160)})") from None
    module.eval()
    for what, x in (("eval", data.x_eval), ("calibration", data.x_calib), ("training", data.x_train)):
        if isinstance(x, dict):
            raise DataError(f"model {src.name!r}: PyTorch sources take one input array x")
        if x.dtype != np.float32:
            raise DataError(
                f"{what} data for model {src.name!r} is {x.dtype.name}; PyTorch models here take float32: "
                "convert it (x.astype('float32'))"
            )
        try:
            with torch.no_grad():
                module(torch.from_numpy(x[:2]))
        except Exception as exc:
            raise DataError(
                f"model {src.name!r} ({src.spec}) does not accept {what} data of shape {list(x.shape)} "
                f"({one_line(exc, 160)}): give data that matches the model"
            ) from None
    if src.train_epochs and train:
        if data.y_train is None:
            raise DataError(f"model {src.name!r}: train_epochs needs labels (y) in the training data")
        zoo.train(module, data.x_train, data.y_train, epochs=src.train_epochs, seed=seed)
    return module.eval()


def load_inputs(path: Path) -> tuple[Any, np.ndarray | None]:
    """Inputs and labels from an npz: ``x`` (one input) or one array per input name, plus optional ``y``.

    Raises:
        DataError: if the file is missing, unreadable or holds no input arrays.
    """
    try:
        with np.load(path) as d:
            arrays = {k: d[k] for k in d.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({exc}): give an npz with x (and y) arrays") from None
    y = arrays.pop("y", None)
    if not arrays:
        raise DataError(f"{path} has no input arrays (only {sorted(arrays) or 'nothing'}): save inputs as x=...")
    arrays.pop("batchless", None)  # `edgebench run`'s list of inputs stored whole (see agent.load_eval)
    for k, v in arrays.items():
        if v.ndim == 0:  # compress data is split into samples: a scalar has none (TypeError on len() before)
            raise DataError(
                f"{path}: array {k!r} is 0-d (one value) but compress data holds one row per sample: save it with a "
                f"sample axis (np.full(N, value)), or drop it and give the input's value in the recipe, "
                f'[models.M] inputs = {{ {k} = "VALUE" }}'
            )
    x: Any = arrays.get("x", arrays)
    lengths = {len(v) for v in (arrays.values() if isinstance(x, dict) else [x])}
    if y is not None:
        lengths.add(len(y))
    if len(lengths) != 1:
        raise DataError(f"{path}: arrays have different numbers of samples ({sorted(lengths)}): fix the file")
    return x, y


def data_hash(d: Data) -> str:
    """A hash of every array of a `Data`, so changed data rebuilds its variants."""
    h = hashlib.sha256()
    for part in (d.x_train, d.y_train, d.x_calib, d.x_eval, d.y_eval):
        for arr in part.values() if isinstance(part, dict) else [part]:
            if arr is not None:
                h.update(str((arr.shape, arr.dtype.name)).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def model_signature(src: Source) -> agent.Signature:
    """The model file's inputs as the agent describes them: ``[(name, shape, dtype)]``.

    Raises:
        DataError: for a model that is not a file (a PyTorch factory, a Keras model).
    """
    if src.path is not None and src.fmt == "onnx":
        ins, _, _ = onnx_signature(src.path)
        return [(d["name"], list(d["shape"]), str(d["dtype"])) for d in ins]
    if src.path is not None and src.fmt == "tflite":
        details = metrics.tflite_interpreter(src.path).get_input_details()
        shapes = [[int(v) if v > 0 else "?" for v in d.get("shape_signature", d["shape"])] for d in details]
        return [(d["name"], shape, np.dtype(d["dtype"]).name) for d, shape in zip(details, shapes, strict=True)]
    raise DataError(
        f"model {src.name!r} is a {src.fmt} model: generated data needs a .onnx or .tflite file: "
        'give [data] source = "data.npz" (or "digits")'
    )


def generated_data(
    src: Source, specs: dict[str, Any], dims: dict[str, Any], n_calib: int, n_eval: int, seed: int
) -> Data:
    """Calibration and eval inputs made from the model's input specs, as `edgebench run` makes them.

    ``specs`` are agent specs (``bench.inputs.job_block``); the arrays come from
    `agent.build_inputs`, one sample per seed, so compress and run generate alike. Batchless
    inputs (scalars, states declared ``:batchless``) are kept whole (`metrics.Batchless`). No
    labels: accuracy is unknown.

    Raises:
        DataError: a dim without size, an integer input without a value, a bad spec (the agent's
            message, naming the recipe fields to add).
    """
    sig = model_signature(src)

    def make(n: int, first_seed: int) -> dict[str, Any]:
        rows: list[list[Any]] = []
        records: list[dict[str, Any]] = []
        for i in range(n):
            try:
                arrays, records = agent.build_inputs(sig, specs, dims, 1, first_seed + i)
            except agent.AgentError as exc:
                fix = str(exc).replace("--input ", "[models.M] inputs = NAME=").replace("--dim ", "dims: ")
                raise DataError(f"model {src.name!r}: generated data: {fix}") from None
            rows.append(arrays)
        out: dict[str, Any] = {}
        for j, (name, _, _) in enumerate(sig):
            if records[j]["batched"]:
                out[name] = np.concatenate([r[j] for r in rows])
            else:
                out[name] = np.asarray(rows[0][j]).view(metrics.Batchless)
        return out

    def one_array(x: dict[str, Any]) -> Any:  # a single batched input is ``x`` (what TFLite and Keras take)
        only = list(x.values())
        return only[0] if len(only) == 1 and not isinstance(only[0], metrics.Batchless) else x

    x_calib = one_array(make(n_calib, seed))
    x_eval = one_array(make(n_eval, seed + n_calib))
    return Data(x_train=x_calib, y_train=None, x_calib=x_calib, x_eval=x_eval, y_eval=None)
