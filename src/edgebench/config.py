"""TOML loading with errors that name the file, the table and the field.

Generic helpers any part of edgebench can use for its own config files::

    doc = load_toml(path)
    t = Table(path, "models.digits", doc["models"]["digits"])
    epochs = t.integer("train_epochs", default=0, minimum=0)
    source = t.text("source")            # required
    t.done()                            # unknown fields fail loudly, listing the valid ones
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edgebench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_MISSING: Any = object()


def load_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file.

    Raises:
        ConfigError: if the file is missing, unreadable or not valid TOML (with the line).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}): give a UTF-8 TOML file") from None
    return parse_toml(text, path)


def parse_toml(text: str, path: Path | str) -> dict[str, Any]:
    """Parse TOML text read from ``path`` (only used in the message).

    Raises:
        ConfigError: if the text is not valid TOML (with the line).
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}): fix the syntax") from None


def type_name(value: Any) -> str:
    """A TOML-ish name of a value's type, for messages."""
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


class Table:
    """One TOML table with typed field getters; every error names file, table and field.

    Args:
        path: the file the table came from (only used in messages).
        where: the table's dotted name, such as ``models.digits``.
        data: the table's contents.
    """

    def __init__(self, path: Path | str, where: str, data: Any) -> None:
        self.path = path
        self.where = where
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [{where}] must be a table, not {type_name(data)}")
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def error(self, field: str, problem: str) -> ConfigError:
        """A `ConfigError` for ``field`` of this table."""
        return ConfigError(f"{self.path}: [{self.where}] field '{field}' {problem}")

    def get(self, field: str, default: Any = _MISSING) -> Any:
        """The raw value of a field; required when no default is given."""
        self.seen.add(field)
        if field in self.data:
            return self.data[field]
        if default is _MISSING:
            raise self.error(field, "is missing: add it")
        return default

    def text(self, field: str, default: Any = _MISSING, choices: Iterable[str] | None = None) -> Any:
        """A string field, optionally one of ``choices``."""
        v = self.get(field, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, str):
            raise self.error(field, f"must be a string, not {type_name(v)}")
        if choices is not None and v not in (opts := list(choices)):
            raise self.error(field, f"is {v!r}; valid values: {', '.join(opts)}")
        return v

    def integer(self, field: str, default: Any = _MISSING, minimum: int | None = None) -> Any:
        """An integer field, optionally at least ``minimum``."""
        v = self.get(field, default)
        if v is default and default is not _MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.error(field, f"must be an integer, not {type_name(v)}")
        if minimum is not None and v < minimum:
            raise self.error(field, f"is {v}; it must be >= {minimum}")
        return v

    def number(self, field: str, default: Any = _MISSING, lo: float | None = None, hi: float | None = None) -> Any:
        """A number field (int accepted), optionally within ``[lo, hi]``."""
        v = self.get(field, default)
        if v is default and default is not _MISSING:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.error(field, f"must be a number, not {type_name(v)}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(field, f"is {v}; it must be within [{lo}, {hi}]")
        return builtins.float(v)

    def boolean(self, field: str, default: Any = _MISSING) -> Any:
        """A boolean field."""
        v = self.get(field, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, bool):
            raise self.error(field, f"must be true or false, not {type_name(v)}")
        return v

    def array(self, field: str, default: Any = _MISSING) -> Any:
        """An array field."""
        v = self.get(field, default)
        if v is default and default is not _MISSING:
            return v
        if not isinstance(v, list):
            raise self.error(field, f"must be an array, not {type_name(v)}")
        return v

    def table(self, field: str, default: Any = _MISSING) -> Table:
        """A sub-table field as a `Table`."""
        v = self.get(field, default)
        return Table(self.path, f"{self.where}.{field}" if self.where else field, v)

    def done(self) -> None:
        """Fail on any field that was never asked for, listing the valid ones.

        Raises:
            ConfigError: naming the unknown field and the known ones.
        """
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.error(unknown[0], f"is unknown; valid fields: {', '.join(sorted(self.seen))}")
