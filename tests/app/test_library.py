"""Library: the catalogue by chapter, search, the technique's card, running a preset from it."""

from __future__ import annotations

from engine.presets import catalogue
from tui_lab.screens.dashboard import DashboardScreen
from tui_lab.screens.library import LibraryScreen
from tui_lab.widgets.catalogue_tree import CatalogueTree
from tui_lab.widgets.variant_table import VariantTable

from .conftest import live, pinned_catalogue, screen_text, wait_for
from .fake_engine import FakeRunner


def _leaves(tree: CatalogueTree) -> list[str]:
    return [leaf.data.id for branch in tree.root.children for leaf in branch.children if leaf.data]


async def test_catalogue_is_grouped_by_chapter_and_searchable(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LibraryScreen)
        tree = app.screen.query_one(CatalogueTree)
        chapters = [str(branch.label).rsplit(" (", 1)[0] for branch in tree.root.children]
        expected = list(dict.fromkeys(p.preset.chapter for p in catalogue()))
        assert chapters == expected
        assert sorted(_leaves(tree)) == sorted(p.id for p in catalogue())

        await pilot.press("slash", *"optimizers")
        await pilot.pause()
        assert "optimizers" in _leaves(tree) and "dropout" not in _leaves(tree)
        await pilot.press("enter")  # leaves the search for the list
        while tree.current is None or tree.current.id != "optimizers":
            await pilot.press("down")
        await wait_for(pilot, lambda: tree.current is not None and tree.current.id == "optimizers")
        text = screen_text(app)
        for words in ("Optimizers", "step it changes", "what it buys", "Variants (7", "Adam", "Claims"):
            assert words in text

        app.screen.query_one("#library-search").value = "nothing matches this"
        await pilot.pause()
        assert _leaves(tree) == []
        assert "No technique matches" in screen_text(app)


async def test_enter_runs_the_preset_quick_and_the_dashboard_fills_and_finishes(make_app):
    app = make_app(batch=25, catalogue=pinned_catalogue)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash", *"optimizers", "enter")
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_mode == "dashboard" and app.bridge.live is not None)
        c = live(app)
        assert c.quick and [r.label for r in c.runs] == ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp",
                                                          "Adam", "AdamW"]
        await wait_for(pilot, lambda: c.finished, what="the comparison to finish")
        await wait_for(pilot, lambda: not app.bridge.live.active, what="the runner to close")
        runner = FakeRunner.instances[-1]
        assert runner.started and runner.closed and runner.polls > 3  # drained over many polls
        # every event the runner gave reached the comparison: none dropped
        steps = sum(1 for e in runner.emitted if type(e).__name__ == "StepMetrics")
        assert sum(len(r.steps["step"]) for r in c.runs) == steps
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await pilot.pause(0.3)
        table = screen.query_one(VariantTable)
        assert table.row_count == 7
        text = screen_text(app)
        assert "finished 7/7" in text and "✔ done" in text
        await pilot.press("v")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "✔ holds" in text and "Momentum reaches a training loss" in text and "Curves" in text


async def test_f_runs_full_and_b_opens_the_builder(make_app):
    app = make_app(hold_at=0.2, catalogue=pinned_catalogue)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("slash", *"dropout", "enter")
        await pilot.pause()
        await pilot.press("b")
        await wait_for(pilot, lambda: app.current_mode == "builder")
        assert app.screen.draft.meta["technique"] == "dropout"
        await pilot.press("1")
        await wait_for(pilot, lambda: app.current_mode == "library")
        await pilot.press("f")
        await wait_for(pilot, lambda: app.bridge.live is not None and app.current_mode == "dashboard")
        assert not live(app).quick


async def test_text_typed_in_a_focused_compact_field_is_visible(make_app):
    """The focused field stands out; a one-line (compact) field does it with a tint, not a border
    that would leave no row for the text (what was typed used to vanish until focus left)."""
    from textual.widgets import Input

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("/", "a", "d", "a", "m")
        await pilot.pause()
        field = app.screen.query_one("#library-search", Input)
        assert app.focused is field and field.content_region.height == 1
        assert "adam" in screen_text(app).splitlines()[1]
