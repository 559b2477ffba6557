"""The Doctor dialog: the doctor's findings for stored runs (History's and the Dashboard's `D`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class DoctorScreen(ModalScreen[None]):
    """Plain text (``tui_lab.data.doctor_text``), scrollable; `escape` or `q` closes it."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__(classes="dialog-screen")
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog doctor-dialog"):
            with VerticalScroll():
                yield Static(self.text, classes="dialog-text", markup=False)  # names and reasons from the store
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)


def doctor_text(rows: list) -> str:
    """The report of each ended run of `rows` (running ones are said to be running)."""
    from engine.diagnostics.doctor import examine_stored
    from tui_lab.data.doctor_text import report_lines, run_heading

    parts: list[str] = []
    for row in rows:
        parts.append(run_heading(row))
        if row.status in ("pending", "running"):
            parts.append("still running: the doctor reads a run that has ended")
        else:
            parts += report_lines(examine_stored(row))
        parts.append("")
    return "\n".join(parts).rstrip()
