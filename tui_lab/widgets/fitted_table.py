"""A result table whose columns fit its width the way the History's do (`run_table.fit_widths`): a
number is never cut; when the table is too narrow, the columns that matter least go first, icon
columns shrink to their first cell ("✔ pass" to "✔"), and names are cut in the middle
(`tables.clip_name`, so their last word stays). The tools' tables (the gradient check, the sanity
checks) use it: at 80 columns the verdict read "PASS ≤ 1" (it is ≤ 1e-7), cut by the pane's edge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.content import Content
from textual.widgets import DataTable

from tui_lab.data.fmt import clean
from tui_lab.tables import clip_name
from tui_lab.widgets.run_table import clip, fit_widths, label_width

Cell = str | Content | Text
GiveWay = tuple[tuple[tuple[str, ...], int | None], ...]


def cell_width(cell: Cell) -> int:
    if isinstance(cell, Content):
        return cell.cell_length
    if isinstance(cell, Text):
        return cell.cell_len
    return cell_len(clean(cell))


class FittedTable(DataTable):
    """`columns`: (key, label, least width). `names`: the columns of names (plain strings), cut in
    the middle when they give way, each with the character its words end at (`clip_name`'s `sep`: " ",
    or "." for a tensor's name); every other column keeps its cells whole. `give_way`: what gives
    way, in order (as `run_table.fit_widths` reads it); `icons`: columns that shrink at once to one
    cell, their label blank. A name shortened on the way gets back the room left over."""

    def __init__(self, columns: Sequence[tuple[str, str, int]], *,
                 names: Mapping[str, str] | None = None, give_way: GiveWay = (), icons: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = tuple(columns)
        self.names = dict(names or {})
        self.give_way = give_way
        self.icon_columns = tuple(icons)
        self.rows_cells: list[tuple[str, Mapping[str, Cell]]] = []
        self.widths: dict[str, int] = {}
        """The columns shown and their widths."""
        self.icons: set[str] = set()
        """The columns shown as icons."""
        self._fitted_to = -1

    def set_rows(self, rows: Sequence[tuple[str, Mapping[str, Cell]]]) -> None:
        """Every row, as (row key, cells by column key); the columns are fitted again."""
        self.rows_cells = list(rows)
        self._render_rows()

    def on_resize(self) -> None:
        if self._available() != self._fitted_to:
            self._render_rows()

    def _available(self) -> int:
        """Cells across for the columns: the table's width, less the vertical scrollbar when the rows
        will not all fit (0 before the table is laid out)."""
        width, height = self.size
        if not width:
            return 0
        rows = len(self.rows_cells)
        scrollbar = self.styles.scrollbar_size_vertical if height and rows > height - self.header_height else 0
        return width - scrollbar

    def natural(self) -> dict[str, int]:
        """Each column's width with nothing cut: its label, its widest cell, its least width."""
        return {key: max([label_width(label), least, *(cell_width(c[key]) for _, c in self.rows_cells)])
                for key, label, least in self.spec}

    def fit(self, available: int) -> dict[str, int]:
        natural = self.natural()
        if not available:
            return natural
        widths = fit_widths(natural, available, 2 * self.cell_padding, give_way=self.give_way,
                            icons=self.icon_columns)
        room = available - sum(widths.values()) - 2 * self.cell_padding * len(widths)
        for key in self.names:
            if room > 0 and key in widths and widths[key] < natural[key]:
                extra = min(room, natural[key] - widths[key])
                widths[key] += extra
                room -= extra
        return widths

    def _render_rows(self) -> None:
        available = self._available()
        self._fitted_to = available
        natural = self.natural()
        self.widths = self.fit(available)
        self.icons = {key for key in self.icon_columns if key in self.widths and self.widths[key] < natural[key]}
        row = self.cursor_row
        self.clear(columns=True)
        for key, label, _ in self.spec:
            if key in self.widths:
                self.add_column("" if key in self.icons else clip(label, self.widths[key]),
                                width=self.widths[key], key=key)
        for row_key, cells in self.rows_cells:
            self.add_row(*(self._fitted(key, cells[key], width) for key, width in self.widths.items()), key=row_key)
        if self.rows_cells and row > 0:
            self.move_cursor(row=min(row, len(self.rows_cells) - 1))

    def _fitted(self, key: str, cell: Cell, width: int) -> Cell:
        if key in self.icons:
            return cell[:1] if isinstance(cell, Content | Text) else clean(cell)[:1]
        if isinstance(cell, str):
            return Text(clip_name(cell, width, self.names[key]) if key in self.names else clean(cell))  # Text: never read as markup
        return cell
