"""Per-layer health of one run from its latest Diagnostics event: activation spread, dead and
saturated shares, gradient norm and the update/weight ratio (≈1e-3 is the rule of thumb)."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from tui_lab.data import fmt
from tui_lab.data.comparison import Comparison, RunView

COLUMNS = (
    ("layer", "layer"),
    ("act_mean", "act mean"),
    ("act_std", "act std"),
    ("dead", "dead"),
    ("saturated", "saturated"),
    ("grad_norm", "grad norm"),
    ("update_ratio", "update/weight"),
    ("weight_norm", "weight norm"),
)


def ratio_note(ratio: object) -> str:
    """Plain words for an update/weight ratio (the notes' rule: about 1e-3)."""
    if not isinstance(ratio, int | float) or not math.isfinite(ratio) or ratio <= 0:
        return ""
    if ratio > 1e-2:
        return "high: LR may be too large"
    if ratio < 1e-4:
        return "low: LR may be too small"
    return "ok"


class LayerStats(Vertical):
    """A summary line and a table of the selected run's layers."""

    def compose(self) -> ComposeResult:
        yield Static(id="layer-summary")
        yield DataTable(id="layer-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.add_column("", key="note")
        self.query_one("#layer-summary", Static).update(
            Content.from_markup("[$text-muted]Per-layer statistics appear with the first evaluation.[/]")
        )

    def show(self, comparison: Comparison, run: RunView | None) -> None:
        summary = self.query_one("#layer-summary", Static)
        table = self.query_one(DataTable)
        table.clear()
        if run is None or not run.layers:
            name = comparison.run_title(run) if run is not None else "this run"
            summary.update(Content.from_markup("[$text-muted]No per-layer statistics for $n yet.[/]", n=name))
            return
        s = run.diag_summary
        summary.update(Content.from_markup(
            "[b]$n[/] at step $st: dead units $d, saturated $sa, weight norm $w",
            n=comparison.run_title(run), st=str(run.layers_step), d=fmt.pct(s.get("dead_share")),
            sa=fmt.pct(s.get("saturated_share")), w=fmt.num(s.get("weight_norm"), 3),
        ))
        for name, stats in run.layers.items():
            row = [name]
            for key, _ in COLUMNS[1:]:
                value = stats.get(key)
                row.append(fmt.pct(value) if key in ("dead", "saturated") else fmt.num(value, 3))
            row.append(ratio_note(stats.get("update_ratio")))
            table.add_row(*row, key=name)
