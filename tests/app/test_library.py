"""Library: the catalogue by chapter, search, the technique's card, running a preset from it."""

from __future__ import annotations

import re

import pytest

from engine.catalogue.presets import catalogue
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


MARKUP_TITLE = "Mine [/b] lr [lr=0.1]"
"""A title and variant names that read as Textual markup: a closing tag (raises), a tag (vanishes)."""
MARKUP_VARIANTS = ("lr [lr=0.1]", "[bold]B")


def _write_markup_recipe(folder) -> None:
    from tiny_presets import tiny_preset

    folder.mkdir(exist_ok=True)
    body = "".join(f'\n[[variants]]\nname = "{name}"\ntrain = {{ lr = 0.1 }}\n' for name in MARKUP_VARIANTS)
    (folder / "mine.toml").write_text(tiny_preset("[base.train]\nsteps = 20\n" + body, title=MARKUP_TITLE))


async def test_a_saved_recipe_with_brackets_in_its_names_shows_them_as_written(make_app, dllab_home):
    from textual.widgets import Select, TabbedContent

    _write_markup_recipe(dllab_home / "presets")
    app = make_app(catalogue=pinned_catalogue)
    async with app.run_test(size=(120, 34)) as pilot:
        await pilot.press("slash", *"mine", "enter")
        tree = app.screen.query_one(CatalogueTree)
        await wait_for(pilot, lambda: tree.current is not None and tree.current.id == "mine")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert text.count(MARKUP_TITLE) == 2, text  # the tree's leaf and the card
        assert all(name in text for name in MARKUP_VARIANTS), text

        await pilot.press("b")
        await wait_for(pilot, lambda: app.current_mode == "builder" and app.screen.query("#variant-list"))
        app.screen.query_one("#builder-tabs", TabbedContent).active = "tab-variants"
        await pilot.pause(0.3)
        text = screen_text(app)
        assert all(name in text for name in MARKUP_VARIANTS), text

        await pilot.press("5")
        await wait_for(pilot, lambda: app.current_mode == "tools")
        view = app.screen.query_one("#view-lr")
        await wait_for(pilot, lambda: bool(view.presets))
        view.query_one("#lr-preset", Select).value = str(dllab_home / "presets" / "mine.toml")
        await wait_for(pilot, lambda: view.loaded is not None and view.loaded.id == "mine")
        await pilot.pause(0.3)
        assert MARKUP_VARIANTS[0] in screen_text(app)  # the variant menu shows the first one


async def test_a_saved_copy_of_a_catalogue_preset_is_marked_as_yours(make_app, dllab_home):
    """The Builder saves an edited catalogue preset under its own id: the Library lists both, the
    user's copy marked (in the tree, the card and the tools' menus), the catalogue's unchanged."""
    import shutil

    from textual.widgets import Select

    from .conftest import PINNED

    (dllab_home / "presets").mkdir()
    shutil.copy(PINNED / "optimizers.toml", dllab_home / "presets" / "optimizers.toml")
    app = make_app(catalogue=pinned_catalogue)
    async with app.run_test(size=(120, 34)) as pilot:
        tree = app.screen.query_one(CatalogueTree)
        await wait_for(pilot, lambda: len(tree.saved) == 1)
        leaves = {leaf.data.path.parent: str(leaf.label) for branch in tree.root.children
                  for leaf in branch.children if leaf.data and leaf.data.id == "optimizers"}
        assert leaves[PINNED] == "Optimizers" and "yours" in leaves[dllab_home / "presets"]

        await pilot.press("slash", *"optimizers", "enter")
        while tree.current is None or tree.current.path.parent != dllab_home / "presets":
            await pilot.press("down")
        await pilot.pause(0.3)
        assert "your recipe" in screen_text(app)
        while tree.current is None or tree.current.path.parent != PINNED:
            await pilot.press("up")
        await pilot.pause(0.3)
        assert "your recipe" not in screen_text(app)

        await pilot.press("5")
        await wait_for(pilot, lambda: app.current_mode == "tools")
        view = app.screen.query_one("#view-lr")
        await wait_for(pilot, lambda: bool(view.presets))
        labels = [str(prompt) for prompt, path in view.preset_options() if "optimizers" in str(prompt)]
        assert sorted(labels) == ["optimizers", "optimizers (yours)"]
        assert view.query_one("#lr-preset", Select).value == str(PINNED / "optimizers.toml")


async def test_a_search_highlights_a_technique_named_by_it_before_one_that_only_mentions_it(make_app):
    """"early" matches dead-relu too ("... nearly all in layer 2"), which comes first in the tree; the
    card used to show Dying ReLU while the learner looked for Early stopping."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tree = app.screen.query_one(CatalogueTree)
        await pilot.press("slash", *"early")
        await pilot.pause(0.3)
        assert _leaves(tree)[0] == "dead-relu" and "early-stopping" in _leaves(tree)
        await wait_for(pilot, lambda: tree.current is not None and tree.current.id == "early-stopping",
                       timeout=3, what="Early stopping highlighted")
        assert "Early stopping" in screen_text(app).splitlines()[1]
        app.screen.query_one("#library-search").value = "dying"  # the title match moves on with the query
        await wait_for(pilot, lambda: tree.current is not None and tree.current.id == "dead-relu", timeout=3)


async def test_the_wrapped_lines_of_a_bullet_stand_under_its_first():
    """A claim, a variant or a labelled line too long for the card wraps under its own first line
    (it used to wrap to the card's left edge, under the bullet), also after a resize."""
    from textual.app import App, ComposeResult

    from tui_lab.widgets.preset_details import PresetDetails

    from .conftest import pinned

    class CardApp(App):
        def compose(self) -> ComposeResult:
            yield PresetDetails()

    loaded = pinned("optimizers")
    claims = [c.text for c in loaded.preset.claims]
    app = CardApp()
    async with app.run_test(size=(44, 60)) as pilot:
        app.query_one(PresetDetails).show(loaded)
        for width in (44, 60):
            await pilot.resize_terminal(width, 60)
            await pilot.pause(0.2)
            # a scroll bar's thumb at the right edge ("▁▁", drawn while the card settles) is not text
            lines = [re.sub(r"[▁▂▃▄▅▆▇█▔▕▏]+\s*$", "", line) for line in screen_text(app).splitlines()]
            for claim in claims:
                i = next(i for i, line in enumerate(lines) if "• " + claim[:20] in line)
                at = lines[i].index("•") + 2
                assert " ".join(" ".join(lines[i:i + 4]).split()[1:]).startswith(claim), lines[i:i + 4]
                assert lines[i + 1][:at].strip() == "" and lines[i + 1][at] != " ", lines[i:i + 2]
            i = next(i for i, line in enumerate(lines) if "what it buys" in line)
            at = lines[i].index("better")
            if not lines[i].rstrip().endswith(")"):  # wrapped: under "better"
                assert lines[i + 1][:at].strip() == "" and lines[i + 1][at] != " ", lines[i:i + 2]


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_a_long_title_ends_with_an_ellipsis_at_the_panel_edge(make_app, size):
    """Textual's Tree clipped a long title at the panel's edge ("├ Covariate shift and impor") and
    scrolled sideways: the title now ends with "…" in the last cell left of the scrollbar."""
    app = make_app()
    async with app.run_test(size=size) as pilot:
        tree = app.screen.query_one(CatalogueTree)
        await wait_for(pilot, lambda: tree.current is not None)
        await pilot.pause(0.3)
        region = tree.scrollable_content_region
        assert tree.virtual_size.width <= region.width, (tree.virtual_size, region)  # nothing to scroll to
        titles = [p.preset.title for p in catalogue()]
        chapters = {p.preset.chapter for p in catalogue()}
        prefixes = {c[:k] for c in chapters for k in range(len(c))}
        cut = 0
        for end in (False, True):  # the top of the tree, then its end
            if end:
                tree.scroll_end(animate=False)
                await pilot.pause(0.3)
            lines = screen_text(app).splitlines()[region.y:region.bottom]
            for line in lines:
                cells = line[region.x:region.right]
                label = cells[2:].rstrip()  # after the guide ("├ ", "└ ") or the chapter's "▼ "
                if not label:
                    continue
                if cells.startswith(("▼", "▶")):  # a chapter keeps its count whole
                    assert re.search(r"\(\d+\)$", label) and (label.split(" (")[0] in chapters
                                                              or label.split("… (")[0] in prefixes), label
                    continue
                if label in titles:
                    continue  # whole
                assert label.endswith("…") and len(cells.rstrip()) == region.width, (cells, region.width)
                assert any(t.startswith(label[:-1]) and len(t) > len(label) - 1 for t in titles), label
                cut += 1
        assert cut, "no title was long enough to be cut"


def test_a_cut_label_keeps_its_yours_mark_and_its_count():
    from rich.text import Text

    from tui_lab.widgets.catalogue_tree import YOURS, fit_label

    assert fit_label(Text("Short"), 20).plain == "Short"
    assert fit_label(Text("Covariate shift and importance weighting"), 20).plain == "Covariate shift and…"
    mine = Text("Covariate shift and importance weighting")
    mine.append(YOURS, style="dim")
    assert fit_label(mine, 24).plain == "Covariate shift… (yours)"
    assert fit_label(mine, 24).cell_len == 24
    assert fit_label(Text("▼ workflow & diagnostics (6)"), 27).plain == "▼ workflow & diagnosti… (6)"


async def test_the_dropout_table_gives_accuracies_in_percent(make_app):
    """The catalogue's dropout explanation measured its quick form's val accuracy as fractions
    (0.41-0.43) beside a paragraph, and an app, that say 44%: its tables say percents too."""
    from textual.widgets import Markdown

    from tui_lab.widgets.preset_details import PresetDetails

    app = make_app()
    async with app.run_test(size=(120, 60)) as pilot:
        tree = app.screen.query_one(CatalogueTree)
        await pilot.press("slash", *"dropout", "enter")
        await wait_for(pilot, lambda: tree.current is not None and tree.current.id == "dropout")
        details = app.screen.query_one(PresetDetails)
        await wait_for(pilot, lambda: details.shown is not None and details._timer is None)
        await pilot.pause(0.5)
        source = app.screen.query_one("#details-explain", Markdown).source
        variants = ("none", "dropout 0.2", "dropout 0.5", "DropConnect 0.5")
        table = [line for line in source.splitlines() if line.startswith(tuple(f"| {v} |" for v in variants))]
        cells = [row.split("|")[-2].strip() for row in table]  # the full form's table, then the quick form's
        assert cells == ["42-48%", "44-50%", "47-54%", "41-46%", "38-43%", "40-46%", "34-39%", "28.5-33%"], table
        details.scroll_to_widget(app.screen.query_one("#details-explain", Markdown), animate=False)
        details.scroll_end(animate=False)
        await pilot.pause(0.3)
        text = screen_text(app)
        assert ("42-48%" in text or "38-43%" in text) and "0.42-0.48" not in text and "0.38-0.43" not in text, text
