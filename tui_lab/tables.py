"""Rich tables that fit a terminal's width: the numbers stay whole and the names give way.

The command line's tables (``dllab runs``, and ``dllab run``'s live progress and results) put the
names of presets and variants beside columns of numbers that none may wrap. When such a table is
too wide, Rich would cut the last columns; `fit_names` cuts the names instead, in the middle
(`clip_name`), measuring the table with Rich until it fits."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from tui_lab.data.fmt import clean

UNLIMITED = 10_000
"""A width no table reaches: what a table is measured in to find its natural width."""

_MEASURER = Console(file=io.StringIO(), width=UNLIMITED, color_system=None)
"""The console tables are measured on (it prints nothing)."""


def clip_name(name: str, width: int, sep: str = " ") -> str:
    """A name in at most `width` cells, cut in the middle so that its last word stays whole (what
    tells runs apart is often there: "dropout 0.2" / "dropout 0.5", a search's "#12"):
    "grid, random plac… #12". The app's tables cut names the same way. Words end at `sep`: "." keeps
    a tensor's last part ("blocks.0.l….weight *"). Control characters are removed first
    (``fmt.clean``: a name from the store is shown, never obeyed)."""
    name = clean(name)
    if cell_len(name) <= width:
        return name
    head, _, last = name.rpartition(sep)
    tail = sep + last if head and cell_len(last) + cell_len(sep) <= width // 2 else ""
    t = Text(head if tail else name)  # the head never fits beside the tail (else the name would)
    t.truncate(max(1, width - cell_len(tail)), overflow="ellipsis")
    return t.plain + tail


def longest(names: Iterable[str]) -> int:
    """The cells the longest of `names` takes (0 for none): a name column's full length."""
    return max((cell_len(clean(name)) for name in names), default=0)


def table_width(table: Table) -> int:
    """The cells `table` takes when nothing in it is wrapped or cut."""
    return Measurement.get(_MEASURER, _MEASURER.options.update_width(UNLIMITED), table).maximum


def fits(table: Table, width: int | None) -> bool:
    """Whether `table` fits in `width` cells whole (any table does when `width` is None)."""
    return width is None or table_width(table) <= width


def fit_names(build: Callable[[dict[str, int]], Table], width: int | None, names: dict[str, int],
              floor: int) -> Table:
    """The table `build` makes, fitted to `width` cells (None: no limit) by shortening names.

    `build(lengths)` makes the table with each name column's cells cut to at most its length
    (`clip_name`); `names` are those columns and their full lengths (their longest names). While
    the table is too wide, the longest names give way first, a cell at a time, down to `floor`
    cells (a name shorter than that stays whole). The other columns are left as they are: at the
    floor the table may still be wider than `width`."""
    lengths = dict(names)
    least = {col: min(floor, n) for col, n in names.items()}
    table = build(lengths)
    while width is not None and (excess := table_width(table) - width) > 0 and _give_way(lengths, least, excess):
        table = build(lengths)
    return table


def _give_way(lengths: dict[str, int], least: dict[str, int], cells: int) -> bool:
    """Takes up to `cells` cells from the names' `lengths`, a cell at a time from the longest one
    above its `least`; whether any was taken."""
    for taken in range(cells):
        if not (longer := [col for col in lengths if lengths[col] > least[col]]):
            return taken > 0
        lengths[max(longer, key=lengths.__getitem__)] -= 1
    return True
