"""Tables for the terminal: the width they are laid out for, and printing them without cutting a
number.

On a terminal rich measures the window; when the output is piped or redirected it cannot, and
the width is ``COLUMNS`` when that is set (``COLUMNS=200 riskengine backtest … | less``), else a
default. A table that does not fit that width is printed at the width it needs rather than cut:
numbers are never shortened to ``49.…``, only names and messages wrap.
"""

from __future__ import annotations

import os
from typing import IO

from rich.console import Console
from rich.table import Table

__all__ = ["number_column_width", "print_table", "terminal_console", "terminal_width"]

#: The width of piped output when ``COLUMNS`` does not say.
PIPE_WIDTH = 120
#: ``COLUMNS`` below this is ignored (a mistake rather than a terminal).
_MIN_COLUMNS = 20


def terminal_width(is_terminal: bool, default: int = PIPE_WIDTH) -> int | None:
    """The width to lay tables out for: ``COLUMNS`` when set, else the terminal's own (``None``:
    rich measures it), else ``default`` for piped output."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) >= _MIN_COLUMNS:
        return int(columns)
    return None if is_terminal else default


def terminal_console(
    *,
    color: bool,
    stream: IO[str] | None = None,
    default_width: int = PIPE_WIDTH,
    highlight: bool = False,
) -> Console:
    """A console for tables on ``stream`` (standard output by default): colours only when
    ``color``, the width of :func:`terminal_width`."""
    console = Console(file=stream, no_color=not color, highlight=highlight)
    width = terminal_width(console.is_terminal and color, default_width)
    if width is not None:
        console = Console(file=stream, no_color=not color, highlight=highlight, width=width)
    return console


def number_column_width(heading: str, cells: list[str]) -> int:
    """The width a column of numbers needs so that neither a number nor its heading is cut."""
    return max([len(c) for c in cells] + [len(heading)])


def _least_width(table: Table) -> int:
    """The narrowest the table can be laid out without cutting a column: fixed and minimum
    widths as given, other columns as wide as their widest cell or heading."""
    total = 0
    for column in table.columns:
        if column.width is not None:
            inner = column.width
        elif column.min_width is not None:
            inner = column.min_width
        else:
            texts = [str(column.header), *(str(c) for c in column.cells)]
            inner = max((len(line) for t in texts for line in t.splitlines()), default=1)
        total += inner + 2 * table.padding[1]
    return total + len(table.columns) + 1  # the vertical rules


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` at the console's width, or wider when its columns cannot be narrowed to
    fit (a long line is better than a cut number)."""
    needed = _least_width(table)
    if needed <= console.width:
        console.print(table)
        return
    width = console.width
    console.width = needed  # for this table only
    try:
        console.print(table, crop=False)
    finally:
        console.width = width
