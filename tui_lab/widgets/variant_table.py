"""The comparison's runs as table rows: status, progress, current and best metrics, speed, ETA.
The coloured mark before each name is the legend of the plots."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.message import Message
from textual.widgets import DataTable

from tui_lab.data import fmt
from tui_lab.data.comparison import Comparison, RunView

COLUMNS = (
    ("variant", "variant", None),
    ("status", "status", 15),
    ("progress", "progress", 13),
    ("loss", "batch loss", 10),
    ("val_acc", "val acc", 7),
    ("best_acc", "best acc", 8),
    ("val_loss", "val loss", 8),
    ("speed", "steps/s", 7),
    ("eta", "ETA", 6),
    ("step", "step", 11),
    ("epoch", "epoch", 6),
)
"""(key, label, width): fixed widths so the table does not jump as numbers change."""
LEGEND = (
    "The coloured mark before a run is its line in the plots.\n"
    "batch loss: the mean training loss of the latest minibatches (train mode, as the train loss plot "
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
        self.tooltip = LEGEND

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def selected_index(self) -> int | None:
        if not self._rows or self.cursor_row < 0 or self.cursor_row >= len(self._rows):
            return None
        return self.cursor_row

    def show(self, comparison: Comparison, colors: list[Color], frame: int = 0) -> None:
        """Bring every row up to date with the comparison (adding rows for new runs)."""
        for run in comparison.runs:
            key = str(run.index)
            cells = self._cells(comparison, run, colors, frame)
            if key not in self._rows:
                self.add_row(*cells, key=key)
                self._rows.append(key)
            else:
                for (col, _, width), value in zip(COLUMNS, cells, strict=True):
                    self.update_cell(key, col, value, update_width=width is None)

    def _cells(self, c: Comparison, run: RunView, colors: list[Color], frame: int) -> list[object]:
        color = colors[c.color_of(run) % len(colors)] if colors else None
        name = Text.assemble(("━━ ", Style(color=color.rich_color) if color else ""), c.run_title(run))
        status = Text(fmt.status_text(run.status, frame))
        if run.status in ("diverged", "failed"):
            status.stylize("bold")
        total = run.total_steps or 0
        progress = fmt.bar(run.progress, 8) + f" {run.progress * 100:3.0f}%" if total else "–"
        return [
            name,
            status,
            progress,
            fmt.num(run.train_loss),
            fmt.pct(run.last_eval("val_acc")),
            fmt.pct(run.best.get("best_val_acc", run.best_val_acc)),
            fmt.num(run.last_eval("val_loss")),
            fmt.rate(run.speed),
            fmt.duration(run.eta),
            f"{run.step}/{total}" if total else str(run.step),
            f"{run.epoch:.1f}" if run.epoch else "–",
        ]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        key = event.row_key.value
        if key is not None:
            self.post_message(self.RunHighlighted(self, int(key)))
