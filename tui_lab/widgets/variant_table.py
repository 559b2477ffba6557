"""The comparison's runs as table rows: status, progress, current and best metrics, speed, ETA.
The coloured mark before each name is the legend of the plots.

The columns fit the table's width the way the History's do (`run_table.fit_widths`), and a number
is never cut: when the table is too narrow the columns that say nothing go first (steps/s and ETA
read "–" for every run once the runs have ended), then epoch, step and steps/s, then the status
shrinks to its icon and the progress bar to its percentage, then long variant names shorten, then
the ETA goes, and last the names shorten further. A name is cut in the middle, with an ellipsis,
so that its last word (a variant's value, a trial's number) stays."""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.message import Message
from textual.widgets import DataTable

from tui_lab.data import fmt
from tui_lab.data.comparison import Comparison, RunView
from tui_lab.tables import clip_name
from tui_lab.widgets.run_table import clip, fit_widths

COLUMNS = (
    ("variant", "variant", 0),
    ("status", "status", 0),
    ("progress", "progress", 13),
    ("loss", "batch loss", 10),
    ("val_acc", "val acc", 7),
    ("best_acc", "best acc", 8),
    ("val_loss", "val loss", 8),
    ("speed", "steps/s", 7),
    ("eta", "ETA", 6),
    ("step", "step", 0),
    ("epoch", "epoch", 6),
)
"""(key, label, least width): the numbers' columns keep a width of their own (wider only for a wider
value) so that the table does not jump as numbers change; the names, the status and the step (padded
to its total's width: "  60/600") take the width of their widest cell."""
GIVE_WAY: tuple[tuple[tuple[str, ...], int | None], ...] = (
    (("epoch",), None),
    (("step",), None),
    (("speed",), None),
    (("status",), 1),
    (("progress",), 4),
    (("variant",), 14),
    (("eta",), None),
    (("variant",), 8),
)
"""What gives way when the table is too narrow, in this order (as `run_table.GIVE_WAY`); before
these, steps/s, ETA, step and epoch when they read "–" for every run."""
ICONS = ("status", "progress")
"""Columns that shrink at once to their floor: the status to its icon (the spinner, ✔ ✘ ■), the
progress bar to its percentage."""
MARK = "━━ "
"""Before each name, in the colour of the run's line in the plots."""
OPTIONAL = ("speed", "eta", "step", "epoch")
"""Columns left out first when every run reads "–" there."""
LEGEND = (
    "The coloured mark before a run is its line in the plots.\n"
    "batch loss: the mean training loss of the latest minibatches (train mode, as the batch loss plot "
    "shows it), not an evaluation.\n"
    "val acc, val loss: the latest evaluation on the validation split; best acc: the best val acc so far.\n"
    "The History's train loss (eval) is the final evaluation on the training split (eval mode; "
    "after early stopping, of the restored best weights)."
)
"""What the columns measure (the table's tooltip)."""


class VariantTable(DataTable):
    """One row per run (variant × seed), updated in place so the cursor stays where it is."""

    class RunHighlighted(Message):
        """The cursor moved to a run (its index in the comparison)."""

        def __init__(self, table: VariantTable, index: int) -> None:
            super().__init__()
            self.table = table
            self.index = index

        @property
        def control(self) -> VariantTable:
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._rows: list[str] = []
        self.widths: dict[str, int] = {}
        """The columns shown and their widths (after `fit`)."""
        self.compact: set[str] = set()
        """The columns shown in their short form (`ICONS`: the status icon, the percentage)."""
        self._shown: tuple[Comparison, list[Color], int] | None = None
        self._fitted_to = -1
        self.tooltip = LEGEND

    def on_resize(self) -> None:
        if self._shown is not None and self._available(len(self._rows)) != self._fitted_to:
            self.show(*self._shown)

    def _available(self, n_rows: int) -> int:
        """Cells across for the columns: the table's width, less the vertical scrollbar when the rows
        will not all fit."""
        width, height = self.size
        if not width:
            return 0
        scrollbar = self.styles.scrollbar_size_vertical if n_rows > height - self.header_height else 0
        return width - scrollbar

    def selected_index(self) -> int | None:
        if not self._rows or self.cursor_row < 0 or self.cursor_row >= len(self._rows):
            return None
        return self.cursor_row

    def show(self, comparison: Comparison, colors: list[Color], frame: int = 0) -> None:
        """Bring every row up to date with the comparison (adding rows for new runs). The columns
        are laid out again only when their widths change (a new run, a wider value, a resize)."""
        self._shown = (comparison, colors, frame)
        runs = {str(run.index): self._cells(comparison, run, colors, frame) for run in comparison.runs}
        available = self._available(len(runs))
        self._fitted_to = available
        widths = fit(runs.values(), available, 2 * self.cell_padding)
        compact = {key for key in ICONS if key in widths and widths[key] < natural_width(key, runs.values())}
        if widths != self.widths or compact != self.compact or any(key not in runs for key in self._rows):
            self._rebuild(runs, widths, compact)
            return
        for key, cells in runs.items():
            values = [self._fitted(col, cells[col], w) for col, w in widths.items()]
            if key not in self._rows:
                self.add_row(*values, key=key)
                self._rows.append(key)
            else:
                for col, value in zip(widths, values, strict=True):
                    self.update_cell(key, col, value)

    def _rebuild(self, runs: dict[str, dict[str, Text]], widths: dict[str, int], compact: set[str]) -> None:
        row = self.cursor_row
        self.widths, self.compact = widths, compact
        self.clear(columns=True)
        for key, label, _ in COLUMNS:
            if key in widths:
                self.add_column("" if key in compact else clip(label, widths[key]), width=widths[key], key=key)
        for key, cells in runs.items():
            self.add_row(*(self._fitted(col, cells[col], w) for col, w in widths.items()), key=key)
        self._rows = list(runs)
        if self._rows and row > 0:
            self.move_cursor(row=min(row, len(self._rows) - 1))

    def _fitted(self, col: str, cell: Text, width: int) -> Text:
        """A cell in its column's width: the short form of a compact column, a name cut in the
        middle (`clip_name`; numbers are never cut: their columns are never narrower than they are)."""
        if col == "status" and col in self.compact:
            cell = cell[:1]  # the icon (a spinner frame while running), bold for a failure
        elif col == "progress" and col in self.compact:
            cell = Text(cell.plain[-4:] if cell.plain.endswith("%") else cell.plain)  # " 45%", "100%"
        if col == "variant" and cell.cell_len > width:
            mark = cell[:len(MARK)]
            return mark + Text(clip_name(cell.plain[len(MARK):], width - mark.cell_len))
        if cell.cell_len > width:
            cell = cell.copy()
            cell.truncate(width, overflow="ellipsis")
        return cell

    def _cells(self, c: Comparison, run: RunView, colors: list[Color], frame: int) -> dict[str, Text]:
        color = colors[c.color_of(run) % len(colors)] if colors else None
        name = Text.assemble((MARK, Style(color=color.rich_color) if color else ""), c.run_title(run))
        status = Text(fmt.status_text(run.status, frame))
        if run.status in ("diverged", "failed"):
            status.stylize("bold")
        total = run.total_steps or 0
        progress = fmt.bar(run.progress, 8) + f" {run.progress * 100:3.0f}%" if total else "–"
        return {
            "variant": name,
            "status": status,
            "progress": Text(progress),
            "loss": Text(fmt.num(run.train_loss)),
            "val_acc": Text(fmt.pct(run.last_eval("val_acc"))),
            "best_acc": Text(fmt.pct(run.best.get("best_val_acc", run.best_val_acc))),
            "val_loss": Text(fmt.num(run.last_eval("val_loss"))),
            "speed": Text(fmt.rate(run.speed)),
            "eta": Text(fmt.duration(run.eta)),
            # the step as wide as the total, so that the column keeps its width as the run goes
            "step": Text(f"{run.step:>{len(str(total))}}/{total}" if total else str(run.step)),
            "epoch": Text(f"{run.epoch:.1f}" if run.epoch else "–"),
        }

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None:
            self.post_message(self.RunHighlighted(self, int(key)))


def natural_width(key: str, rows: Iterable[dict[str, Text]]) -> int:
    """A column's width with nothing cut: its label, its widest cell, its least width."""
    label, least = next((label, least) for k, label, least in COLUMNS if k == key)
    return max([cell_len(label), least, *(row[key].cell_len for row in rows)])


def fit(rows: Iterable[dict[str, Text]], available: int, padding: int = 2) -> dict[str, int]:
    """The columns shown and their widths for `available` cells (all, at their natural widths, when
    `available` is 0: the table is not laid out yet). A name shortened on the way gets back the
    room that columns left out later have made."""
    rows = list(rows)
    natural = {key: natural_width(key, rows) for key, _, _ in COLUMNS}
    if not available:
        return natural
    blank = tuple(k for k in OPTIONAL if rows and all(row[k].plain == "–" for row in rows))
    widths = fit_widths(natural, available, padding, give_way=((blank, None), *GIVE_WAY), icons=ICONS)
    room = available - sum(widths.values()) - padding * len(widths)
    if room > 0 and "variant" in widths:
        widths["variant"] = min(natural["variant"], widths["variant"] + room)
    return widths
