"""Stand-in for a preset's extra dashboard view (decision boundary, optimizer surface) until its
widget exists, or when it fails to load (see ``tui_lab.screens.views``)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from tui_lab.data.comparison import Comparison

TEXT = {
    "boundary": "The decision-boundary view of this 2-D comparison is not drawn yet: "
    "it will show each variant's predicted classes over the plane with the training points.",
    "surface": "The optimizer-surface view is not drawn yet: "
    "it will show each optimizer's path over the 2-D test function's contours.",
    "regression": "The regression-fit view is not drawn yet.",
}


class ViewPlaceholder(Static):
    """Says which view will be here, and how many runs it would draw."""

    def __init__(self, view: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.view = view
        self.problem = ""
        """Why the real view could not be built (an import error), if that is why this is here."""

    def update_view(self, comparison: Comparison) -> None:
        problem = "\n\n[$error]The view could not be loaded: $p[/]" if self.problem else ""
        self.update(Content.from_markup(
            "[$text-muted]$t[/]\n\n[$text-muted]$n runs would be drawn here.[/]" + problem,
            t=TEXT.get(self.view, f"The {self.view} view is not drawn yet."), n=str(len(comparison.runs)),
            p=self.problem,
        ))
