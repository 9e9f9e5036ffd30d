"""Tables that never cut a number: wrap text columns, drop the least important columns.

rich shrinks an over-wide table by squeezing its wrapable columns and, as a last resort,
every column, which prints figures as ``0.01...``. The tables of `report`, `compare` and
`gate` instead keep figures in ``no_wrap`` columns, let names fold, and drop whole columns
(in a declared order) until the narrowest form of the table fits the console; what was
dropped is said under the table.

Output that is not a terminal (a pipe, a file, a CI log) is `plain_width` wide: ``$COLUMNS``
when set, else `PLAIN_WIDTH` (80), as the README promises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rich.console import Console, ConsoleOptions
from rich.measure import Measurement
from rich.table import Table

PLAIN_WIDTH = 80  # columns of output that is not a terminal, unless $COLUMNS says otherwise


def plain_width(environ: Mapping[str, str]) -> int:
    """Columns for output that is not a terminal: ``$COLUMNS`` in ``environ`` when it is a whole
    number from 20 to 10000, else `PLAIN_WIDTH`."""
    text = environ.get("COLUMNS", "").strip()
    if text.isdigit() and 20 <= int(text) <= 10_000:
        return int(text)
    return PLAIN_WIDTH


def fit_table(
    make: Callable[[Sequence[str]], Table],
    columns: Sequence[str],
    drop: Sequence[str],
    console: Console,
    options: ConsoleOptions,
) -> tuple[Table, list[str]]:
    """Build a table with as many columns as fit ``options.max_width``.

    Args:
        make: builds the table from the names of the columns to show (in ``columns`` order).
        columns: every column, in display order.
        drop: the columns that may go, least important first.

    Returns:
        The table and the names of the columns that were left out.
    """
    shown = list(columns)
    table = make(shown)
    dropped: list[str] = []
    for name in drop:
        if sum(r.minimum for r in _ranges(table, console, options)) + table._extra_width <= options.max_width:
            break
        if name not in shown:
            continue
        shown.remove(name)
        dropped.append(name)
        table = make(shown)
    _set_widths(table, console, options)
    return table, dropped


def _ranges(table: Table, console: Console, options: ConsoleOptions) -> list[Measurement]:
    """Each column's (narrowest, natural) width with padding; a ``no_wrap`` column's narrowest is its natural."""
    wide = options.update_width(10_000)  # rich clamps a measurement to the width it is given
    ranges = [table._measure_column(console, wide, c) for c in table.columns]
    return [Measurement(r.maximum, r.maximum) if c.no_wrap else r for c, r in zip(table.columns, ranges, strict=True)]


def _set_widths(table: Table, console: Console, options: ConsoleOptions) -> None:
    """Fix the column widths of a table too wide for its natural layout.

    rich's own shrinking narrows the widest wrapable column first, below its longest
    word if need be (a note's "0.0218" folds into "0.0" / "218"); here every column keeps at
    least its longest word and the spare room goes to the columns that want more.
    """
    ranges = _ranges(table, console, options)
    available = options.max_width - table._extra_width
    if sum(r.maximum for r in ranges) <= available:
        return
    spare = max(0, available - sum(r.minimum for r in ranges))
    want = [r.maximum - r.minimum for r in ranges]
    for i, (c, r) in enumerate(zip(table.columns, ranges, strict=True)):
        extra = spare * want[i] // sum(want) if sum(want) else 0
        c.width = r.minimum + extra - table._get_padding_width(i)


def dropped_note(dropped: Sequence[str]) -> str:
    """The line under a table that lost columns to the width."""
    return (
        f"[dim](not shown at this width: {', '.join(dropped)}; widen the terminal, or use --json)[/dim]"
        if dropped
        else ""
    )
