"""The top line: the five screens with their keys (click one, or press its number)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

MODES = (("library", "1", "Library"), ("builder", "2", "Builder"), ("dashboard", "3", "Dashboard"),
         ("history", "4", "History"), ("tools", "5", "Tools"))


class ModeBar(Static):
    DEFAULT_CSS = """
    ModeBar {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, active: str, *, status: str = "") -> None:
        super().__init__()
        self.active = active
        self.status = status

    def on_mount(self) -> None:
        self.show()

    def set_status(self, status: str) -> None:
        if status != self.status:
            self.status = status
            self.show()

    def show(self) -> None:
        parts = [Content.from_markup("[b] dllab [/]")]
        for mode, key, title in MODES:
            if mode == self.active:
                parts.append(Content.from_markup(f"[reverse b] {key} {title} [/]"))
            else:
                parts.append(Content.from_markup(f"[@click=app.show_mode('{mode}')] [$accent]{key}[/] {title} [/]"))
        if self.status:
            parts.append(Content.from_markup("  [$text-muted]$s[/]", s=self.status))
        self.update(Content("").join(parts))
