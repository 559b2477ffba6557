"""Runs from the store: filter, sort, mark several (from any presets) and open them together in a
read-only dashboard (replayed through the live code path), or delete them."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from tui_lab.data.comparison import stored_forms
from tui_lab.data.fmt import clean
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.lab_footer import LabFooter
from tui_lab.widgets.mode_bar import ModeBar
from tui_lab.widgets.run_table import SORTS, RunTable

LIST_LIMIT = 2000


class HistoryScreen(Screen):
    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("o", "open", "Open"),
        Binding("d,delete", "delete", "Delete"),
        Binding("u", "resume", "Resume", tooltip="a stopped run goes on from its checkpoint, in the background"),
        Binding("D", "doctor", "Doctor", tooltip="what the run's curves and layers point at, and the remedies"),
        Binding("s", "sort", "Sort"),
        Binding("R", "refresh", "Refresh"),
        Binding("escape", "leave_filter", "Back to list", show=False),
        Binding("down", "leave_filter", "Back to list", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("history")
        yield FieldInput(placeholder="/ filter: preset, variant, form, status or run id", id="history-filter", compact=True)
        yield RunTable(id="runs")
        yield Static("", id="history-status")
        yield LabFooter(keep=("toggle_mark", "mark_shown", "open", "filter", "delete", "toggle_help", "sort", "refresh"))

    def on_mount(self) -> None:
        self.refresh_runs()
        self.query_one(RunTable).focus()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.refresh_runs()

    def on_resize(self) -> None:
        self.call_after_refresh(self._status)  # the table fits its columns again: the run id may come or go

    def refresh_runs(self) -> None:
        try:
            rows = self.app.store.list_runs(limit=LIST_LIMIT)
        except Exception as exc:  # noqa: BLE001 - an unreadable store is a message, not a crash
            self.notify(str(exc), title="Cannot read the run store", severity="error", timeout=10, markup=False)
            rows = []
        self.query_one(RunTable).set_rows(rows, stored_forms(rows))
        self._status()

    def _status(self) -> None:
        """The runs shown, the order, the marks; the highlighted run's id when the table is too narrow
        for its column."""
        table = self.query_one(RunTable)
        marked = len(table.marked)
        text = (f"{len(table.shown)} of {len(table.rows_all)} runs · {SORTS[table.sort_key][0]} · {marked} marked"
                if table.rows_all else "No stored runs yet: run a technique from the Library.")
        current = table.current_run_id()
        if current is not None and "run_id" not in table.widths:
            text = f"run {clean(current)} · {text}"
        hint = " · space marks runs to open together, a all shown" if table.rows_all and not marked else ""
        if len(text) + len(hint) > self.size.width - 2:
            hint = ""
        self.query_one("#history-status", Static).update(
            Content.from_markup("$t[$text-muted]$h[/]", t=text, h=hint))

    @on(Input.Changed, "#history-filter")
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one(RunTable).set_query(event.value)
        self._status()

    @on(Input.Submitted, "#history-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(RunTable).focus()

    def on_run_table_marks_changed(self, event: RunTable.MarksChanged) -> None:
        self._status()

    @on(DataTable.RowHighlighted, "#runs")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._status()

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_filter(self) -> None:
        self.query_one("#history-filter", Input).focus()

    def action_leave_filter(self) -> None:
        self.query_one(RunTable).focus()

    def action_sort(self) -> None:
        self.query_one(RunTable).cycle_sort()
        self._status()

    def action_refresh(self) -> None:
        self.refresh_runs()

    def action_open(self) -> None:
        ids = self.query_one(RunTable).chosen()
        if not ids:
            self.notify("no run to open", severity="warning")
            return
        rows = [r for r in self.query_one(RunTable).rows_all if r.run_id in ids]
        order = {run_id: i for i, run_id in enumerate(ids)}
        rows.sort(key=lambda r: order[r.run_id])
        self.app.open_stored(rows)

    def action_resume(self) -> None:
        """The chosen stopped runs go on from their checkpoints in the runs service; the Dashboard
        follows them (``engine.runs.resume``)."""
        ids = self.query_one(RunTable).chosen()
        rows = [r for r in self.query_one(RunTable).rows_all if r.run_id in ids]
        if not rows:
            self.notify("no run to resume", severity="warning")
            return
        self.app.resume_runs(rows)

    def action_doctor(self) -> None:
        """The doctor's findings for the chosen runs (``engine.diagnostics.doctor``)."""
        from tui_lab.screens.doctor import show_doctor

        ids = self.query_one(RunTable).chosen()
        rows = [r for r in self.query_one(RunTable).rows_all if r.run_id in ids]
        if not rows:
            self.notify("no run to examine", severity="warning")
            return
        show_doctor(self.app, rows[:8])

    def action_delete(self) -> None:
        from tui_lab.screens.confirm import ConfirmScreen

        ids = self.query_one(RunTable).chosen()
        busy = self.app.active_run_ids()
        blocked = [i for i in ids if i in busy]
        ids = [i for i in ids if i not in busy]
        if blocked:
            self.notify(f"{len(blocked)} of them are still running: cancel them first", severity="warning")
        if not ids:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                n = self.app.store.delete(ids)
                self.query_one(RunTable).marked = []
                self.notify(f"deleted {n} run{'s' if n != 1 else ''}")
                self.refresh_runs()

        by_id = {r.run_id: r for r in self.query_one(RunTable).rows_all}
        named = [run_name(by_id[i]) for i in ids[:3] if i in by_id]
        names = "; ".join(named) + ("; …" if len(ids) > len(named) else "")
        what = f"run {clean(ids[0])}" if len(ids) == 1 else f"{len(ids)} runs"
        its = "its" if len(ids) == 1 else "their"
        self.app.push_screen(ConfirmScreen(f"Delete {what} ({names}) and {its} metrics? This cannot be undone.",
                                           yes="Delete", no="Keep"), answered)


def run_name(r) -> str:
    """A stored run as a person tells it apart: preset · variant · seed, status (the delete question
    names them: at 100 columns the run id column is not shown). Text from the store: control
    characters removed (``fmt.clean``)."""
    seed = "" if r.seed is None else f" · seed {r.seed}"
    return clean(f"{r.preset or '–'} · {r.variant or '–'}{seed}, {r.status}")
