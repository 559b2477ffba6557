"""Stored runs as a table: filter by text, sort by a column, mark several to open or delete."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from tui_lab.data import fmt

COLUMNS = (
    ("mark", "✓"),
    ("run_id", "run"),
    ("preset", "preset"),
    ("variant", "variant"),
    ("seed", "seed"),
    ("status", "status"),
    ("val_acc", "val acc"),
    ("train_loss", "train loss"),
    ("step", "steps"),
    ("wall_time", "wall"),
    ("started", "started"),
)
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


def row_matches(row: Any, query: str) -> bool:
    text = " ".join(str(x) for x in (row.run_id, row.preset, row.variant, row.status, row.comparison)).lower()
    return all(word in text for word in query.lower().split())


class RunTable(DataTable):
    BINDINGS = [Binding("space", "toggle_mark", "Mark", show=True)]

    class MarksChanged(Message):
        def __init__(self, table: RunTable, marked: list[str]) -> None:
            super().__init__()
            self.table = table
            self.marked = marked

        @property
        def control(self) -> RunTable:
            return self.table

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_all: list[Any] = []
        self.shown: list[Any] = []
        self.marked: list[str] = []
        self.query_text = ""
        self.sort_key = "started"

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def set_rows(self, rows: list[Any]) -> None:
        self.rows_all = list(rows)
        ids = {r.run_id for r in rows}
        self.marked = [m for m in self.marked if m in ids]
        self._render_rows()

    def set_query(self, text: str) -> None:
        self.query_text = text
        self._render_rows()

    def cycle_sort(self) -> str:
        keys = list(SORTS)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self._render_rows()
        return SORTS[self.sort_key][0]

    def sort_by(self, key: str) -> None:
        if key in SORTS:
            self.sort_key = key
            self._render_rows()

    def _render_rows(self) -> None:
        current = self.current_run_id()
        rows = [r for r in self.rows_all if row_matches(r, self.query_text)]
        rows.sort(key=lambda r: _sort_value(r, self.sort_key), reverse=SORTS[self.sort_key][1])
        self.shown = rows
        self.clear()
        for r in rows:
            started = dt.datetime.fromtimestamp(r.started).strftime("%m-%d %H:%M") if r.started else "–"
            self.add_row(
                "✓" if r.run_id in self.marked else " ",
                r.run_id, r.preset or "–", r.variant or "–", "–" if r.seed is None else str(r.seed),
                r.status, fmt.pct(r.final.get("val_acc")), fmt.num(r.final.get("train_loss")),
                str(r.step), fmt.duration(r.wall_time), started, key=r.run_id,
            )
        if current is not None and any(r.run_id == current for r in rows):
            self.move_cursor(row=[r.run_id for r in rows].index(current))

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

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(str(event.column_key.value))
