"""Config files: TOML loading and ONE validator, with errors that name the file, the table and the field.

Every config file of edgebench (recipes, boards.toml, budgets, nightly, measurement
settings) is read with `load_toml` and checked with `validate`, which turns a mapping
into a typed object (a frozen dataclass or a pydantic model) using pydantic v2::

    @dataclass(frozen=True)
    class Nightly:
        boards: tuple[str, ...]
        recipe: str | None = None
        repeats: Annotated[int, Field(ge=1)] = 1         # bounds come from pydantic's Field
        mode: Literal["fast", "full"] = "fast"             # choices are a Literal or an Enum

        def __post_init__(self) -> None:                   # cross-field rules: raise ValueError
            if not self.boards:                            # with the problem, worded to follow
                raise ValueError("field 'boards' must list at least one board")  # "[table] "

    cfg = validate(Nightly, load_toml(path).get("nightly"), f"{path}: [nightly]")

The rules, the same for every file:

- unknown keys are errors (listing the valid fields, with a "did you mean" when one is close);
- types are strict, as TOML writes them: ``"3"`` is not an integer and ``1`` is not a
  boolean; an integer is accepted for a float; arrays fill ``tuple``/``list`` fields, strings
  fill `Path` and `Enum` (by value) fields; a TOML date or time fills no field (it is refused,
  never turned into a string);
- numbers are finite: ``nan`` and ``inf`` are refused wherever they are written; bounds come
  from ``Field(ge=..., le=...)`` and every number that sizes something has an upper bound too;
- names (boards, models, variants, budget patterns) are `Name`: printable, one line, so that
  no name can forge a line in a log (`check_name`);
- the first problem becomes one `ConfigError` line: ``<where> field '<name>' <problem>: <fix>``,
  e.g. ``r.toml: [models.m] field 'epochs' must be an integer, not string``. A nested
  field is named with dots (``'data.eval_fraction'``), an array item with its index
  (``'runtimes[0]'``). A `ValueError` raised by a validator or ``__post_init__`` gives its
  own text after ``<where>`` (or after ``<where> field '<name>'`` when it belongs to one field).

``where`` is the caller's prefix for the message: ``f"{path}: [table]"`` for one table,
``f"{path}:"`` for a whole file (nested tables then show as ``[table]``), or another
label for a file whose items are not tables (``f"{path}: board 'pi':"``).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import math
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pydantic
import pydantic_core

from edgebench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")

_FORBID = pydantic.ConfigDict(extra="forbid")
_ADAPTERS: dict[Any, pydantic.TypeAdapter[Any]] = {}

# pydantic error type -> our wording; "{t}" is the TOML type name of the bad value.
_PROBLEMS = {
    "missing": "is missing: add it",
    "int_type": "must be an integer, not {t}",
    "int_from_float": "must be an integer, not {t}",
    "float_type": "must be a number, not {t}",
    "string_type": "must be a string, not {t}",
    "bool_type": "must be true or false, not {t}",
    "list_type": "must be an array, not {t}",
    "tuple_type": "must be an array, not {t}",
    "dict_type": "must be a table, not {t}",
    "model_type": "must be a table, not {t}",
    "dataclass_type": "must be a table, not {t}",
}
# the longest name edgebench takes (board, model, variant): it goes into file names, tables and logs
NAME_MAX = 200
# a dynamic input dimension (recipe dims, run --dim, the nightly's dims): a million elements on one axis
DIM_MAX = 1 << 20


def name_problem(name: str) -> str | None:
    """What is wrong with a name (board, model, variant), worded to follow it; None when it is fine.

    A name is refused when it is empty, longer than `NAME_MAX`, or holds a character that
    is not printable (a newline, a NUL, a terminal escape, ...): printed in a CI log, a
    name with a newline could forge a line of its own (``::error::...``, ``regressed: ...``).
    """
    if not name.strip():
        return "is empty: give it a name"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long: it must be at most {NAME_MAX}"
    bad = next((c for c in name if not (c.isprintable() or c == " ")), None)
    if bad is not None:
        return f"holds the control character {bad!r}: it must be one printable line"
    return None


def shown_name(name: str) -> str:
    """``repr(name)``, cut to 60 characters (for messages about a bad name)."""
    text = repr(name)
    return text if len(text) <= 60 else text[:57] + "..."


def check_name(name: str, what: str = "name") -> str:
    """``name`` when `name_problem` finds nothing.

    Raises:
        ValueError: ``<what> <repr> <problem>: <fix>``.
    """
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"{what} {shown_name(name)} {problem}")
    return name


def _name(value: str) -> str:
    problem = name_problem(value)
    if problem is not None:  # its own error type: _message words it as a field's problem
        raise pydantic_core.PydanticCustomError("unsafe_name", problem)
    return value


# a name in a config file: a string `check_name` accepts
Name = Annotated[str, pydantic.AfterValidator(_name)]
# a dynamic dimension's size
DimSize = Annotated[int, pydantic.Field(ge=1, le=DIM_MAX)]

_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}


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


def validate(cls: type[T], data: Any, where: str) -> T:
    """Check a config mapping and build ``cls`` from it (see the module docstring for the rules).

    Args:
        cls: a dataclass (frozen, ideally) or a pydantic model; nested dataclasses are
            checked the same way.
        data: the table as read by `load_toml` (anything not a mapping is refused).
        where: the start of every message, e.g. ``f"{path}: [models.digits]"``.

    Returns:
        The validated instance.

    Raises:
        ConfigError: one line naming ``where``, the field and the problem.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table, not {type_name(data)}")
    _check_values(data, (), where, dates=True)  # everywhere: a table of anything would turn a date into text
    try:
        # JSON mode, strict: TOML values keep their type, arrays fill tuples, strings fill enums/paths
        made: T = _adapter(cls).validate_json(json.dumps(data, default=str), strict=True)
    except pydantic.ValidationError as exc:
        raise ConfigError(_message(cls, exc.errors()[0], where)) from None
    later = _tables_of_anything(cls)  # checked by whoever validates them (a [[budget]], the nightly's settings)
    _check_values({k: v for k, v in data.items() if k not in later}, (), where, dates=False)
    return made


def _check_values(data: Any, loc: tuple[int | str, ...], where: str, *, dates: bool) -> None:
    """Refuse what no field takes, wherever it is written: TOML dates and times, ``nan`` and ``inf``.

    Dates (``dates=True``) are checked before the types, so that a date is never turned into
    a string (it would match nothing); non-finite numbers (``dates=False``) after them, so
    that a field's own check words its problem, and a field without one (a table of
    anything, a number without bounds) still never takes one.
    """
    if isinstance(data, Mapping):
        for key, value in data.items():
            _check_values(value, (*loc, str(key)), where, dates=dates)
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            _check_values(value, (*loc, i), where, dates=dates)
    elif not dates and isinstance(data, float) and not math.isfinite(data):
        table, name = _place(where, loc)
        raise ConfigError(f"{table} field '{name}' is {data}: input should be a finite number")
    elif dates and isinstance(data, datetime.date | datetime.time):  # datetime is a date
        table, name = _place(where, loc)
        raise ConfigError(
            f"{table} field '{name}' is the TOML date or time {data.isoformat()}, which no field takes: "
            f'quote it ("{data.isoformat()}") if it is a name'
        )


def _tables_of_anything(cls: Any) -> set[str]:
    """The fields of ``cls`` that take anything somewhere inside (``dict[str, Any]``): validated later."""

    def has_any(tp: Any) -> bool:
        return tp is Any or any(has_any(a) for a in typing.get_args(tp))

    try:
        hints = typing.get_type_hints(cls) if fields_of(cls) else {}
    except (NameError, TypeError):  # pragma: no cover (an unresolvable annotation: check every field)
        return set()
    return {name for name, tp in hints.items() if has_any(tp)}


def fields_of(cls: Any) -> list[str]:
    """The field names of a dataclass or pydantic model (``[]`` for anything else)."""
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
        return list(cls.model_fields)
    return []


def _adapter(cls: Any) -> pydantic.TypeAdapter[Any]:
    if cls not in _ADAPTERS:  # building one compiles a validator: once per class
        _forbid_extra(cls, set())
        _ADAPTERS[cls] = pydantic.TypeAdapter(cls)
    return _ADAPTERS[cls]


def _forbid_extra(tp: Any, seen: set[int]) -> None:
    """Make stdlib dataclasses (here and nested) refuse unknown keys; pydantic ignores them by default."""
    if id(tp) in seen:
        return
    seen.add(id(tp))
    for arg in typing.get_args(tp):
        _forbid_extra(arg, seen)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if "__pydantic_config__" not in vars(tp):
            tp.__pydantic_config__ = _FORBID  # type: ignore[attr-defined]
        for hint in typing.get_type_hints(tp, include_extras=True).values():
            _forbid_extra(hint, seen)


def _type_at(cls: Any, loc: tuple[int | str, ...]) -> Any:
    """The class that holds the last element of ``loc`` (for listing its valid fields)."""
    tp = cls
    for key in loc[:-1]:
        if isinstance(key, int) or not fields_of(tp):
            args = [a for a in typing.get_args(tp) if a is not type(None) and a is not Ellipsis]
            tp = args[-1] if args else None
            continue
        hints = typing.get_type_hints(tp)
        tp = hints.get(key)
        while typing.get_args(tp) and not fields_of(tp):  # Optional[X], X | None
            inner = [a for a in typing.get_args(tp) if fields_of(a)]
            if not inner:
                break
            tp = inner[0]
    return tp


def _place(where: str, loc: tuple[int | str, ...]) -> tuple[str, str]:
    """``(where with the nested table, field name)``: ``[a] + (b, c, x, 0)`` gives ``([a.b.c], 'x[0]')``."""
    last = max((i for i, k in enumerate(loc) if isinstance(k, str)), default=len(loc))
    return _nested(where, loc[:last]), _dotted(loc[last:])


def _dotted(keys: tuple[int | str, ...]) -> str:
    # a key is shown as written unless it would print something else (a newline, a NUL): then quoted
    shown = [k if isinstance(k, int) or name_problem(k) is None else shown_name(k) for k in keys]
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in shown).lstrip(".")


def _nested(where: str, keys: tuple[int | str, ...]) -> str:
    """``where`` with the table at ``keys`` inside it; an array's table as TOML writes it: ``[[budget]] #1``."""
    if not keys:
        return where
    if isinstance(keys[-1], int) and len(keys) > 1:
        table = _nested(where, keys[:-1])
        head, _, name = table[:-1].rpartition("[")
        return f"{head}[[{name}]] #{keys[-1] + 1}"
    return f"{where[:-1]}.{_dotted(keys)}]" if where.endswith("]") else f"{where} [{_dotted(keys)}]"


def _message(cls: Any, err: Any, where: str) -> str:
    loc: tuple[int | str, ...] = tuple(err["loc"])
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):  # raised by the class at loc: loc is its table
        text = str(ctx.get("error", err["msg"]))
        return f"{_nested(where, loc)} {text}"
    key = ""
    if len(loc) >= 2 and loc[-1] == "[key]":  # a bad key of a table field: name the field, then the key
        loc, key = loc[:-2], "key "
    where, name = _place(where, loc)
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        valid = sorted(fields_of(_type_at(cls, loc)))
        problem = f"is unknown; valid fields: {', '.join(valid)}"
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        if close:
            problem += f"; did you mean '{close[0]}'?"
    elif kind in _PROBLEMS:
        problem = _PROBLEMS[kind].format(t=type_name(value))
    elif kind in ("literal_error", "enum"):
        choices = str(ctx.get("expected", "")).replace(" or ", ", ").replace("'", "")
        problem = f"is {value!r}; valid values: {choices}"
    elif kind == "unsafe_name":
        problem = f"{key}{shown_name(str(value))} {err['msg']}"
    elif kind in _BOUNDS:
        limit = next(iter(ctx.values()), "")
        problem = f"is {value!r}; it must be {_BOUNDS[kind]} {limit}"
    elif kind in ("too_short", "too_long"):
        problem = f"has {ctx.get('actual_length')} items; {err['msg'].lower()}"
    else:
        problem = f"is {value!r}: {err['msg'][:1].lower()}{err['msg'][1:]}"
    return f"{where} field '{name}' {problem}"
