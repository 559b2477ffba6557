"""The start screen: the catalogue by chapter, searchable, with the selected technique's card."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input

from engine.catalogue.presets import LoadedPreset, PresetError, load_preset
from tui_lab.widgets.catalogue_tree import CatalogueTree
from tui_lab.widgets.field_input import FieldInput
from tui_lab.widgets.lab_footer import LabFooter
from tui_lab.widgets.mode_bar import ModeBar
from tui_lab.widgets.preset_details import PresetDetails


def saved_presets(folder: Path) -> tuple[list[LoadedPreset], list[str]]:
    """The recipes saved from the Builder, and the problems of those that do not load."""
    out, problems = [], []
    if folder.is_dir():
        for path in sorted(folder.glob("*.toml")):
            try:
                out.append(load_preset(path))
            except PresetError as exc:
                problems.append(str(exc))
    return out, problems


class LibraryScreen(Screen):
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("b", "open_builder", "Builder", tooltip="Open the highlighted technique in the Builder"),
        Binding("n", "new_recipe", "New", tooltip="A new recipe in the Builder"),
        Binding("escape", "leave_search", "Back to list", show=False),
        Binding("down", "leave_search", "Back to list", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield ModeBar("library")
        with Horizontal(id="library"):
            with Vertical(id="library-left"):
                yield FieldInput(placeholder="/ search techniques", id="library-search", compact=True)
                yield CatalogueTree(id="catalogue")
            yield PresetDetails(id="preset-details")
        yield LabFooter(keep=("run_quick", "run_full", "search", "toggle_help", "open_builder", "new_recipe"))

    def on_mount(self) -> None:
        self.reload()
        self.query_one(CatalogueTree).focus()

    def reload(self) -> None:
        try:
            presets = self.app.catalogue()
        except PresetError as exc:
            presets = []
            self.notify(str(exc), title="A built-in preset does not load", severity="error", timeout=10, markup=False)
        saved, problems = saved_presets(self.app.presets_dir)
        for p in problems:
            self.notify(p, title="A saved recipe does not load", severity="warning", timeout=8, markup=False)
        query = self.query_one("#library-search", Input).value
        self.query_one(CatalogueTree).set_presets(presets, saved, query)

    def on_screen_resume(self) -> None:
        if self.is_mounted and getattr(self.app, "saved_changed", False):
            self.app.saved_changed = False
            self.reload()

    @property
    def current(self) -> LoadedPreset | None:
        return self.query_one(CatalogueTree).current

    @on(Input.Changed, "#library-search")
    def _search(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one(CatalogueTree).filter(event.value)

    @on(Input.Submitted, "#library-search")
    def _search_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(CatalogueTree).focus()

    def on_catalogue_tree_preset_highlighted(self, event: CatalogueTree.PresetHighlighted) -> None:
        if event.loaded is not None or not self.query_one(CatalogueTree).presets:
            tree = self.query_one(CatalogueTree)
            saved = event.loaded is not None and tree.is_saved(event.loaded)
            self.query_one(PresetDetails).show(event.loaded, saved=saved)
        elif self.query_one(CatalogueTree).cursor_node is None:
            self.query_one(PresetDetails).show(None)

    def on_catalogue_tree_run_requested(self, event: CatalogueTree.RunRequested) -> None:
        self.app.start_preset(event.loaded, quick=event.quick)

    def action_search(self) -> None:
        self.query_one("#library-search", Input).focus()

    def action_leave_search(self) -> None:
        self.query_one(CatalogueTree).focus()

    def action_open_builder(self) -> None:
        if self.current is not None:
            self.app.open_in_builder(self.current)

    def action_new_recipe(self) -> None:
        self.app.open_in_builder(None)
