"""The Doctor dialog: the doctor's findings for stored runs (History's and the Dashboard's `D`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class DoctorScreen(ModalScreen[str | None]):
    """Plain text (``tui_lab.data.doctor_text``), scrollable; `escape` or `q` closes it; with
    `ablate` (one run with findings), `a` answers "ablate": run its ablation."""

    BINDINGS = [Binding("escape,q", "close", "Close"), Binding("a", "ablate", "Run the ablation")]

    def __init__(self, text: str, *, ablate: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self.text = text
        self.ablate = ablate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog doctor-dialog"):
            with VerticalScroll():
                yield Static(self.text, classes="dialog-text", markup=False)  # names and reasons from the store
            with Horizontal(classes="dialog-buttons"):
                if self.ablate:
                    yield Button("Run the ablation (a)", id="ablate", variant="success")
                yield Button("Close (esc)", id="close", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss("ablate" if event.button.id == "ablate" else None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.ablate if action == "ablate" else True

    def action_close(self) -> None:
        self.dismiss(None)

    def action_ablate(self) -> None:
        self.dismiss("ablate")


def show_doctor(app, rows: list) -> None:
    """The Doctor dialog for stored runs; for one ended run with findings it offers the ablation,
    which the app then runs as a comparison (``DllabApp.start_ablation``)."""
    from engine.diagnostics.doctor import examine_stored

    one = rows[0] if len(rows) == 1 and rows[0].status not in ("pending", "running") else None
    report = examine_stored(one) if one is not None else None

    def answered(answer: str | None) -> None:
        if answer == "ablate" and one is not None and report is not None:
            app.start_ablation(one, report)

    app.push_screen(DoctorScreen(doctor_text(rows), ablate=report is not None and not report.healthy), answered)


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
