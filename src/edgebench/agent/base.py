"""What every part of the agent shares: its error, the first line of an exception, numpy on demand."""

from typing import Any

# Messages an extension module built for NumPy 1.x raises when imported beside NumPy 2.
NUMPY_ABI_MARKERS = (
    "compiled using NumPy 1.x",
    "numpy.core.multiarray failed to import",
    "_ARRAY_API not found",
    "numpy.core._multiarray_umath",
)


class AgentError(Exception):
    """A failure with a stable kind, reported in the result."""

    def __init__(self, kind: str, message: str) -> None:
        Exception.__init__(self, message)
        self.kind = kind


def np_module() -> Any:
    """numpy, imported on first use (the probe and the board tools run without it)."""
    import numpy

    return numpy


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_numpy_abi_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an extension module built for NumPy 1.x failing beside NumPy 2."""
    text = str(exc)
    return any(marker in text for marker in NUMPY_ABI_MARKERS)
