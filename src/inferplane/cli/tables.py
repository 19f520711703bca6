"""Tables that stay readable on a terminal of any width, and in pipes and files.

Left to itself, a Rich table wider than its terminal squeezes every column and cuts each value
to "…"; and when the output is not a terminal (a pipe, a file) Rich assumes 80 columns and does
the same. Here:

- not on a terminal, a table is printed at its own natural width: nothing is cut, a line per
  row, for ``grep``, ``less -S`` or a file (``--json`` remains the format for programs);
- on a terminal, columns are left out, the least useful first (each command names them in
  order), until the rest fit without cutting a value; text columns may wrap. A note under the
  table names what was left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.table import Column, Table

RULES = frozenset("─━═│┃ ")  # what the tables' boxes draw
#: The narrowest a column that wraps may be (characters).
READABLE = 16
#: The most columns a table is printed in when it is not on a terminal.
MAX_PLAIN_WIDTH = 1000


def show(console: Console, table: Table, drop: Sequence[str] = ()) -> None:
    """Print ``table`` whole off a terminal; on one, without the columns named in ``drop``
    (in that order, header text as given) that it cannot fit."""
    if not console.is_terminal:
        width = console.width
        console.width = natural_width(console, table)  # print() takes no more than this
        try:
            console.print(table)
        finally:
            console.width = width
        return
    readable(console, table)
    fitted, left_out = fit(console, table, console.width, drop)
    console.print(fitted)
    if left_out:
        names = ", ".join(name.replace("\n", " ") for name in left_out)
        console.print(f"[dim]left out at {console.width} columns: {names} (a wider terminal "
                      "shows them; --json has every field)[/dim]", highlight=False)


def natural_width(console: Console, table: Table) -> int:
    """The width ``table`` takes when nothing constrains it."""
    options = console.options.update_width(MAX_PLAIN_WIDTH)
    return min(console.measure(table, options=options).maximum, MAX_PLAIN_WIDTH)


def readable(console: Console, table: Table) -> None:
    """Keep each column that may wrap at least :data:`READABLE` wide (or as wide as its widest
    value, if less): below that a name folds into a tower of letters, and the column should
    rather be left out."""
    options = console.options.update_width(MAX_PLAIN_WIDTH)
    for column in table.columns:
        if column.no_wrap or column.min_width is not None:
            continue
        cells = [column.header, *column.cells]
        widest = max(console.measure(cell, options=options).maximum for cell in cells)
        column.min_width = min(widest, READABLE)


def fit(console: Console, table: Table, width: int, drop: Sequence[str]
        ) -> tuple[Table, list[str]]:
    """``table`` without the columns of ``drop`` it cannot fit in ``width`` columns with no
    value cut, and their headers. Columns are left out in ``drop``'s order until the rest
    fits; then each one left out is put back, the most useful first, where it still fits.
    When even the fewest columns do not fit, Rich squeezes them."""
    everything = list(table.columns)
    kept = list(everything)
    left_out: list[str] = []
    for name in drop:
        if not cuts(console, _with(table, kept), width):
            break
        column = next((c for c in kept if str(c.header) == name), None)
        if column is not None:
            kept.remove(column)
            left_out.append(name)
    for name in reversed(left_out[:-1]):  # the last one left out made it fit
        trial = [c for c in everything if c in kept or str(c.header) == name]
        if not cuts(console, _with(table, trial), width):
            kept = trial
            left_out.remove(name)
    return _with(table, kept), left_out


def _with(table: Table, columns: list[Column]) -> Table:
    """``table`` showing only ``columns`` (in their order)."""
    table.columns = columns
    for index, column in enumerate(columns):
        column._index = index  # Rich pads the first and last columns apart
    return table


def cuts(console: Console, table: Table, width: int) -> bool:
    """Whether printing ``table`` in ``width`` columns cuts a value (or a header) short: its
    characters, but for spaces and the rules, differ from those of the table printed whole
    (wrapping and folding move characters; cutting drops some, and may add "…")."""
    return _ink(console, table, width) != _ink(console, table, natural_width(console, table))


def _ink(console: Console, table: Table, width: int) -> Counter[str]:
    lines = console.render_lines(table, console.options.update_width(width), pad=False)
    return Counter(char for line in lines for segment in line for char in segment.text
                   if not char.isspace() and char not in RULES)
