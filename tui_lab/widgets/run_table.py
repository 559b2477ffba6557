"""Stored runs as a table: filter by text, sort by a column, mark several to open or delete.

The columns fit the table's width, as ``dllab runs`` does: a number is never cut. When the table is
too narrow the form goes first if no run's form is known, then the start time shrinks to its hour (a
run of today) or its day, the run id goes (the History's status line names the highlighted run), long
preset names shorten, the status shrinks to its icon, the preset names shorten further, the steps go
(the form tells a quick run from a full one), and last the preset and variant names shorten further
(with an ellipsis). The start time stays: it used to be the first to go."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from tui_lab.data import fmt

COLUMNS = (
    ("mark", "✓"),
    ("run_id", "run"),
    ("preset", "preset"),
    ("variant", "variant"),
    ("form", "form"),
    ("seed", "seed"),
    ("status", "status"),
    ("val_acc", "val acc"),
    ("train_loss", "train loss\n(eval)"),
    ("step", "steps"),
    ("wall_time", "wall"),
    ("started", "started"),
)
"""(key, label): a label may take two lines ("train loss" is the final evaluation of the training
split, in eval mode: not the minibatch loss the Dashboard shows while a run trains)."""
NUMERIC = ("seed", "val_acc", "train_loss", "step", "wall_time")
"""Columns of numbers: always as wide as their widest value."""
GIVE_WAY: tuple[tuple[tuple[str, ...], int | None], ...] = (
    (("started",), 5),
    (("run_id",), None),
    (("preset",), 12),
    (("status",), 1),
    (("preset",), 8),
    (("step",), None),
    (("preset", "variant"), 6),
)
"""What gives way when the table is too narrow, in this order: a column left out (None), or text
columns shrunk down to a width (each group evenly, the widest first). Before these, the form when it
is "–" for every run shown. The variant names, which tell the runs of one preset apart, keep their
room longest."""
ICONS = ("status", "started")
"""Columns that shrink at once: the status to one cell, its icon (✔ ✘ ■); the start time to five,
its hour for a run started today ("14:05"), else its day ("12-07")."""
COMPACT_LABELS = {"started": "start"}
"""The label of a column shrunk at once (none for the others)."""
HEADER_HEIGHT = max(label.count("\n") + 1 for _, label in COLUMNS)
SORTS: dict[str, tuple[str, bool]] = {
    "started": ("newest first", True),
    "preset": ("preset", False),
    "status": ("status", False),
    "val_acc": ("val acc, best first", True),
    "train_loss": ("train loss, lowest first", False),
    "wall_time": ("wall time, longest first", True),
}


def _sort_value(row: Any, key: str) -> Any:
    if key in ("val_acc", "train_loss"):
        v = row.final.get(key)
        return v if isinstance(v, int | float) and math.isfinite(v) else (-math.inf if key == "val_acc" else math.inf)
    if key == "started":
        return row.started or row.created or 0.0
    if key == "wall_time":
        return row.wall_time or 0.0
    return str(getattr(row, key, "") or "")


def fit_widths(natural: dict[str, int], available: int, padding: int = 2,
               give_way: tuple[tuple[tuple[str, ...], int | None], ...] = GIVE_WAY,
               icons: tuple[str, ...] = ICONS) -> dict[str, int]:
    """The width of each column shown (a column left out is missing) so that the columns and their
    `padding` fit in `available` cells: columns go and names shrink as `give_way` says (`icons`
    shrink to their floor at once). Numbers keep their natural widths even if that overflows (the
    table then scrolls sideways). The Dashboard's run table fits itself with its own order."""
    widths = dict(natural)

    def excess() -> int:
        return sum(widths.values()) + padding * len(widths) - available

    for group, floor in give_way:
        keys = [k for k in group if k in widths]
        if floor is None:
            for key in keys:
                if excess() > 0:
                    del widths[key]
            continue
        for key in [k for k in keys if k in icons]:
            if excess() > 0:
                widths[key] = min(widths[key], floor)
        while excess() > 0 and keys:
            widest = max(keys, key=lambda k: widths[k])
            if widths[widest] <= floor:
                break
            widths[widest] -= 1
    return widths


def label_width(label: str) -> int:
    """The cells across a column's label (its widest line)."""
    return max(cell_len(line) for line in label.splitlines())


def status_icon(status: str) -> str:
    """The status in one cell, for a narrow table."""
    return fmt.STATUS_ICON.get(status, "▸" if status == "running" else "?")


def clip(text: str, width: int) -> str:
    """`text` in at most `width` cells, ending with an ellipsis when cut (each line of a label)."""
    if "\n" in text:
        return "\n".join(clip(line, width) for line in text.splitlines())
    if cell_len(text) <= width:
        return text
    t = Text(text)
    t.truncate(width, overflow="ellipsis")
    return t.plain


def form_text(form: bool | None) -> str:
    """A stored run's form (`tui_lab.data.comparison.stored_forms`) in the table."""
    return "–" if form is None else ("quick" if form else "full")


def short_start(started: float | None, now: float | None = None) -> str:
    """A start time in five cells: its hour for a run started today, else its day."""
    if not started:
        return "–"
    when = dt.datetime.fromtimestamp(started)
    today = dt.datetime.fromtimestamp(now).date() if now is not None else dt.date.today()
    return when.strftime("%H:%M" if when.date() == today else "%m-%d")


def row_matches(row: Any, query: str, form: str = "") -> bool:
    text = " ".join(str(x) for x in (row.run_id, row.preset, row.variant, row.status, row.comparison, form)).lower()
    return all(word in text for word in query.lower().split())


class RunTable(DataTable):
    BINDINGS = [Binding("space", "toggle_mark", "Mark", show=True),
                Binding("a", "mark_shown", "Mark all shown", show=True)]

    class MarksChanged(Message):
        def __init__(self, table: RunTable, marked: list[str]) -> None:
            super().__init__()
            self.table = table
            self.marked = marked

        @property
        def control(self) -> RunTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True, header_height=HEADER_HEIGHT)
        self.rows_all: list[Any] = []
        self.shown: list[Any] = []
        self.marked: list[str] = []
        self.forms: dict[str, bool | None] = {}
        """Each run's form by run id: quick (True), full (False), not known (None or missing)."""
        self.query_text = ""
        self.sort_key = "started"
        self.widths: dict[str, int] = {}
        """The columns shown and their widths (after `fit_widths`)."""
        self.icons: set[str] = set()
        """The columns shown as icons (the status, when the table is narrow)."""
        self._fitted_to = -1

    def on_mount(self) -> None:
        self._render_rows()

    def on_resize(self) -> None:
        if self._available() != self._fitted_to:
            self._render_rows()

    def _available(self) -> int:
        """Cells across for the columns: the table's width, less the vertical scrollbar when the rows
        will not all fit."""
        width, height = self.size
        if not width:
            return 0
        scrollbar = self.styles.scrollbar_size_vertical if len(self.shown) > height - self.header_height else 0
        return width - scrollbar

    def set_rows(self, rows: list[Any], forms: dict[str, bool | None] | None = None) -> None:
        """The stored runs, and their forms (`tui_lab.data.comparison.stored_forms`) if known."""
        self.rows_all = list(rows)
        self.forms = dict(forms or {})
        ids = {r.run_id for r in rows}
        self.marked = [m for m in self.marked if m in ids]
        self._render_rows()

    def set_query(self, text: str) -> None:
        self.query_text = text
        self._render_rows()

    def cycle_sort(self) -> str:
        keys = list(SORTS)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self._render_rows(to_top=True)
        return SORTS[self.sort_key][0]

    def sort_by(self, key: str) -> None:
        if key in SORTS:
            self.sort_key = key
            self._render_rows(to_top=True)

    def _render_rows(self, to_top: bool = False) -> None:
        """Fill the table. The cursor stays on its run (a refresh, a filter), except after a new
        sort (`to_top`): then the table shows its top, the first runs of that order."""
        current = None if to_top else self.current_run_id()
        rows = [r for r in self.rows_all if row_matches(r, self.query_text, form_text(self.forms.get(r.run_id)))]
        rows.sort(key=lambda r: _sort_value(r, self.sort_key), reverse=SORTS[self.sort_key][1])
        self.shown = rows
        cells = [self.row_cells(r) for r in rows]
        natural = {key: max([label_width(label), *(cell_len(c[key]) for c in cells)]) for key, label in COLUMNS}
        available = self._available()
        self._fitted_to = available
        blank = ("form",) if all(c["form"] == "–" for c in cells) else ()
        self.widths = (fit_widths(natural, available, 2 * self.cell_padding, give_way=((blank, None), *GIVE_WAY))
                       if available else natural)
        room = available - sum(self.widths.values()) - 2 * self.cell_padding * len(self.widths)
        for key in ("variant", "preset"):  # a name shortened on the way gets back what is left over,
            if room > 0 and key in self.widths and self.widths[key] < natural[key]:
                extra = min(room, natural[key] - self.widths[key])
                self.widths[key] += extra
                room -= extra
        for key in ("started", "status"):  # then a column shrunk at once, whole again if it fits
            if key in self.widths and 0 < natural[key] - self.widths[key] <= room:
                room -= natural[key] - self.widths[key]
                self.widths[key] = natural[key]
        self.icons = {key for key in ICONS if key in self.widths and self.widths[key] < natural[key]}
        self.clear(columns=True)
        for key, label in COLUMNS:
            if key in self.widths:
                shown = COMPACT_LABELS.get(key, "") if key in self.icons else label
                self.add_column(clip(shown, self.widths[key]), width=self.widths[key], key=key)
        for r, c in zip(rows, cells, strict=True):
            if "status" in self.icons:
                c["status"] = status_icon(r.status)
            if "started" in self.icons:
                c["started"] = short_start(r.started)
            self.add_row(*(Text(clip(c[key], w)) for key, w in self.widths.items()), key=r.run_id)
        if current is not None and any(r.run_id == current for r in rows):
            self.move_cursor(row=[r.run_id for r in rows].index(current))
        elif to_top and rows:
            self.move_cursor(row=0)
            self.scroll_home(animate=False)

    def row_cells(self, r: Any) -> dict[str, str]:
        """A run's cells, whole (`_render_rows` shortens the names that must give way). Plain text:
        `_render_rows` adds them as `Text`, since a str cell is read as markup and the names are the
        user's ("lr [lr=0.1]" would lose its brackets, "[/b]" would raise). Text from the store loses
        its control characters (`fmt.clean`: older versions stored what presets held)."""
        started = dt.datetime.fromtimestamp(r.started).strftime("%m-%d %H:%M") if r.started else "–"
        return {
            "mark": "✓" if r.run_id in self.marked else " ", "run_id": fmt.clean(r.run_id),
            "preset": fmt.clean(r.preset or "–"), "variant": fmt.clean(r.variant or "–"),
            "form": form_text(self.forms.get(r.run_id)),
            "seed": "–" if r.seed is None else str(r.seed), "status": fmt.clean(r.status),
            "val_acc": fmt.pct(r.final.get("val_acc")), "train_loss": fmt.num(r.final.get("train_loss")),
            "step": str(r.step), "wall_time": fmt.duration(r.wall_time), "started": started,
        }

    def current_run_id(self) -> str | None:
        if not self.shown or not 0 <= self.cursor_row < len(self.shown):
            return None
        return self.shown[self.cursor_row].run_id

    def chosen(self) -> list[str]:
        """The marked runs (in table order), or the one under the cursor when none is marked."""
        if self.marked:
            order = {r.run_id: i for i, r in enumerate(self.rows_all)}
            return sorted(self.marked, key=lambda m: order.get(m, 0))
        current = self.current_run_id()
        return [current] if current else []

    def action_toggle_mark(self) -> None:
        run_id = self.current_run_id()
        if run_id is None:
            return
        if run_id in self.marked:
            self.marked.remove(run_id)
        else:
            self.marked.append(run_id)
        self.update_cell(run_id, "mark", "✓" if run_id in self.marked else " ")
        if self.cursor_row < len(self.shown) - 1:
            self.move_cursor(row=self.cursor_row + 1)
        self.post_message(self.MarksChanged(self, list(self.marked)))

    def action_mark_shown(self) -> None:
        """Mark every run the filter shows (a whole comparison, say: filter by its preset, then a);
        when they are all marked already, unmark them."""
        shown = [r.run_id for r in self.shown]
        if shown and all(run_id in self.marked for run_id in shown):
            self.marked = [m for m in self.marked if m not in set(shown)]
        else:
            self.marked += [run_id for run_id in shown if run_id not in self.marked]
        for run_id in shown:
            self.update_cell(run_id, "mark", "✓" if run_id in self.marked else " ")
        self.post_message(self.MarksChanged(self, list(self.marked)))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))
