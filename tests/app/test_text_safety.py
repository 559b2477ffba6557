"""The app shows names and titles from files as written: no Rich markup read in them (a title with
"[bold red]" or "[link=...]" changed the display), no bidirectional control or line separator reaching
the terminal."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Select
from tiny_presets import tiny_preset

from tui_lab.screens.builder import BuilderScreen
from tui_lab.screens.tools import ToolsScreen
from tui_lab.widgets.catalogue_tree import CatalogueTree
from tui_lab.widgets.decision_boundary import BoundaryPanel, DecisionBoundary

from .conftest import screen_text, wait_for
from .test_decision_boundary import GRID, POINTS, BoundaryApp

RLO = "\u202e"
"""RIGHT-TO-LEFT OVERRIDE: the rest of the line reads backwards."""
LS = "\u2028"
"""LINE SEPARATOR."""
TITLE = f"[bold red]Evil[/] {RLO}eltit{LS}more"
VARIANT = f"[i]two{RLO}owt"
EVIL = tiny_preset(f"""
[base.model]
hidden = [8]

[base.train]
steps = 20

[[variants]]
name = "[bold red]Red[/] v"

[[variants]]
name = "{VARIANT}"
""", title=TITLE, technique="evil", summary="[u]sum[/u] mary")


def _write_evil(home: Path) -> Path:
    folder = home / "presets"
    folder.mkdir(exist_ok=True)
    path = folder / "evil.toml"
    path.write_text(EVIL, encoding="utf-8")
    return path


def _no_controls(text: str) -> None:
    assert RLO not in text and LS not in text, [line for line in text.splitlines() if RLO in line or LS in line]


async def test_the_library_builder_and_tools_show_a_title_and_names_as_written(make_app, dllab_home: Path):
    _write_evil(dllab_home)
    app = make_app(catalogue=lambda: [])
    async with app.run_test(size=(120, 40)) as pilot:
        tree = app.screen.query_one(CatalogueTree)
        await wait_for(pilot, lambda: len(tree.saved) == 1)
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "[bold red]Evil[/] eltit more" in text, text  # the card: markup as written, no controls
        assert "[u]sum[/u] mary" in text and "[bold red]Red[/] v" in text and "[i]twoowt" in text, text
        _no_controls(text)

        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.query("#variant-list"))
        screen = app.screen
        screen.query_one("#builder-tabs").active = "tab-variants"
        await pilot.pause(0.5)
        names = [str(screen.query_one("#variant-list", DataTable).get_row_at(i)[0]) for i in range(2)]
        assert names == ["[bold red]Red[/] v", "[i]twoowt"], names
        _no_controls(screen_text(app))

        await pilot.press("escape", "5")
        await wait_for(pilot, lambda: isinstance(app.screen, ToolsScreen) and app.screen.query("#view-lr"))
        view = app.screen.view("lr")
        await wait_for(pilot, lambda: view.loaded is not None and view.loaded.id == "evil")
        labels = [str(label) for label, _ in view.variant_options(view.loaded)]
        assert labels == ["[bold red]Red[/] v", "[i]twoowt"], labels
        select = view.query_one("#lr-variant", Select)
        select.value = VARIANT  # the value is the name as the file has it
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "[i]twoowt" in text, text
        _no_controls(text)


async def test_a_decision_boundary_panel_is_titled_with_the_variant_as_written():
    """A panel's border title was the variant's name as markup: "[bold red]Red[/] v" showed a bold red
    "Red v"."""
    app = BoundaryApp()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(DecisionBoundary)
        view.update_boundary("[bold red]Red[/] v", GRID, POINTS, x_range=(-1, 1), y_range=(-1, 1), step=10)
        view.update_boundary("[link=x.test]L[/link]", GRID, POINTS, x_range=(-1, 1), y_range=(-1, 1), step=10)
        await pilot.pause()
        text = screen_text(app)
        assert "[bold red]Red[/] v" in text and "[link=x.test]L[/link]" in text, text
        assert len(list(app.query(BoundaryPanel))) == 2
