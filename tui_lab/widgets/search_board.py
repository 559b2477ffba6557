"""The dashboard's Search tab for a preset with a ``[search]`` table: per search (a variant × seed)
how many runs are done and the best point found so far, and the score of every finished trial
against a chosen field, one series per search."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import DataTable, Label, Select, Static

from tui_lab.data import fmt
from tui_lab.widgets.scatter_plot import ScatterData, ScatterPlot


class SearchBoard(Vertical):
    """``update_view(comparison)`` with a ``SearchComparison``."""

    DEFAULT_CSS = """
    SearchBoard > #search-board-summary { height: auto; margin-bottom: 1; }
    SearchBoard > DataTable { height: auto; max-height: 10; }
    SearchBoard > Horizontal { height: 1; }
    SearchBoard > Horizontal > Label { width: 9; }
    SearchBoard > Horizontal > Select { width: 36; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.comparison: Any = None
        self._fields: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="search-board-summary")
        yield DataTable(id="search-board-table", cursor_type="row", zebra_stripes=True)
        with Horizontal():
            yield Label("against")
            yield Select([], allow_blank=True, compact=True, id="search-board-against")
        yield ScatterPlot(id="search-board-plot")

    def update_view(self, comparison: Any) -> None:
        self.comparison = comparison
        if not hasattr(comparison, "summary_rows"):
            self.query_one("#search-board-summary", Static).update("not a search comparison")
            return
        c = comparison
        table = self.query_one("#search-board-table", DataTable)
        if self._fields != c.fields:
            self._fields = list(c.fields)
            table.clear(columns=True)
            for key, label in (("variant", "search"), ("seed", "seed"), ("runs", "runs done"),
                               ("best", f"best {c.score}")):
                table.add_column(label, key=key)
            for f in c.fields:
                table.add_column(f"best {f}", key=f)
            select = self.query_one("#search-board-against", Select)
            with self.prevent(Select.Changed):
                select.set_options([(f, f) for f in c.fields])
                select.value = c.fields[0]
        done = sum(r.finished for r in c.runs)
        budgets = sorted({s.budget for s in c.settings.values()})
        state = "finished" if c.finished else f"{done} of {c.expected} runs finished"
        self.query_one("#search-board-summary", Static).update(Content.from_markup(
            "Each variant is a whole search of $b runs, scored by [b]$s[/] ($dir is better): $st. "
            "[$text-muted]The claims are checked on each search's best score (Verdict); the curves show "
            "each search's best run so far.[/]",
            b="/".join(map(str, budgets)), s=c.score, dir="lower" if c.minimize(c.labels[0]) else "higher",
            st=state))
        rows = c.summary_rows()
        keys = [f"{r['variant']}|{r['seed']}" for r in rows]
        if [str(k.value) for k in table.rows] != keys:
            table.clear()
            for key, r in zip(keys, rows, strict=True):
                table.add_row(*self._cells(r, c), key=key)
        else:
            for key, r in zip(keys, rows, strict=True):
                for col, cell in zip(["variant", "seed", "runs", "best", *c.fields], self._cells(r, c), strict=True):
                    table.update_cell(key, col, cell)
        self._plot()

    def _cells(self, r: dict[str, Any], c: Any) -> list[Any]:
        params = r.get("params") or {}
        best = r.get("best")
        return [Text(r["variant"]), str(r["seed"]), f"{r['done']}/{r['started']}",
                fmt.num(best, 4) if isinstance(best, float) and not math.isnan(best) else "–",
                *[fmt.num(params.get(f), 3) if params.get(f) is not None else "–" for f in c.fields]]

    def _plot(self) -> None:
        c = self.comparison
        if c is None or not getattr(c, "fields", None):
            return
        value = self.query_one("#search-board-against", Select).value
        path = value if isinstance(value, str) and value in c.fields else c.fields[0]
        self.query_one(ScatterPlot).show(ScatterData(
            series=c.scatter(path), log_x=c.field_scales.get(path) == "log", title=f"{c.score} of every run",
            xlabel=path, empty="each run's score appears here when it ends"))

    @on(Select.Changed, "#search-board-against")
    def _against(self, event: Select.Changed) -> None:
        event.stop()
        self._plot()
