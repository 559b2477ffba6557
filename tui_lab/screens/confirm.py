"""A yes/no question in a modal (quitting while runs go, deleting runs, replacing a comparison), with an
optional third answer (quitting with unsaved changes: "Save and quit")."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

OTHER = "other"
"""What the dialog answers when its third button (`other`, key `s`) is chosen."""


class ConfirmScreen(ModalScreen[bool | str]):
    """Answers True (`y`), False (`n`, `escape`) or, when it was given an `other` answer, ``OTHER`` (`s`)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("s", "answer_other", "Other", show=False),
    ]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No", other: str | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.yes, self.no, self.other = yes, no, other

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="dialog-text", markup=False)  # it may hold a user's title
            with Horizontal(classes="dialog-buttons"):
                if self.other is not None:
                    yield Button(f"{self.other} (s)", id="other", variant="success")
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button(f"{self.no} (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "answer_other":
            return self.other is not None
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(OTHER if event.button.id == "other" else event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def action_answer_other(self) -> None:
        self.dismiss(OTHER)
