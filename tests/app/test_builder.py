"""Builder: forms generated from the recipe's fields, sweeps into variants, validation with the
engine's messages, saving a preset TOML and loading it back the same, running it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static, TabbedContent

from engine.catalogue.presets import PresetError, load_preset, parse_preset
from tui_lab.screens.builder import BuilderScreen
from tui_lab.screens.confirm import ConfirmScreen
from tui_lab.screens.prompt import PromptScreen
from tui_lab.widgets.catalogue_tree import CatalogueTree

from .conftest import live, wait_for


async def _open_builder(app, pilot) -> BuilderScreen:
    await pilot.pause()
    await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.query("#f-preset-title"))
    return app.screen


async def _add_variants(pilot, screen: BuilderScreen, field: str, values: str) -> None:
    """On the Variants tab, pick `field` and `values` and press Add variants (one per value)."""
    await _tab(pilot, screen, "variants")
    screen.query_one("#sweep-field", Select).value = field
    screen.query_one("#sweep-values", Input).value = values
    await pilot.click("#sweep-add")
    await _settle(pilot, screen)


async def _press_b_on(app, pilot, name: str) -> None:
    """In the Library, search `name` and press `b` on the technique found (open it in the Builder)."""
    from tui_lab.screens.library import LibraryScreen

    await pilot.press("1")
    await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
    await pilot.press("slash", "ctrl+u", *name, "enter")
    await pilot.pause()
    await pilot.press("b")


async def _tab(pilot, screen: BuilderScreen, tab: str) -> None:
    screen.query_one("#builder-tabs", TabbedContent).active = f"tab-{tab}"
    await wait_for(pilot, lambda: bool(screen.query(f"#tab-{tab} .field-row")), what=f"the {tab} form")


async def _settle(pilot, screen: BuilderScreen) -> None:
    await pilot.pause(0.35)  # the check runs 0.25 s after the last change
    await wait_for(pilot, lambda: screen._timer is None)


async def test_build_a_two_variant_recipe_save_it_and_load_it_back_the_same(make_app, dllab_home: Path):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        screen.query_one("#f-preset-title", Input).value = "Optimizer test"
        screen.query_one("#f-preset-technique", Input).value = "opt-test"
        await _tab(pilot, screen, "train")
        screen.query_one("#f-train-lr", Input).value = "0.02"
        screen.query_one("#f-train-batch_size", Input).value = "64"
        await _tab(pilot, screen, "model")
        screen.query_one("#f-model-activation", Select).value = "tanh"
        await _add_variants(pilot, screen, "train.optimizer", "sgd, adam")
        assert screen.loaded is not None, screen.problem
        assert [v.name for v in screen.loaded.preset.variants] == ["optimizer=sgd", "optimizer=adam"]

        await pilot.press("ctrl+s")
        path = dllab_home / "presets" / "opt-test.toml"
        await wait_for(pilot, path.exists, what="the saved file")
        saved = load_preset(path)
        assert saved.preset.title == "Optimizer test"
        assert saved.preset.base.train == {"steps": 1000, "lr": 0.02, "batch_size": 64}
        assert saved.preset.base.model == {"activation": "tanh"}
        assert [v.train for v in saved.preset.variants] == [{"optimizer": "sgd"}, {"optimizer": "adam"}]
        draft_before = screen.draft

        await pilot.press("ctrl+n")
        await _settle(pilot, screen)
        assert screen.draft.meta["title"] == "My recipe"

        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = str(path)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        await _settle(pilot, screen)
        assert screen.draft == draft_before
        assert parse_preset(screen.draft.toml(), path).preset == saved.preset
        assert screen.query_one("#f-preset-title", Input).value == "Optimizer test"
        await _tab(pilot, screen, "train")
        assert screen.query_one("#f-train-lr", Input).value == "0.02"

        await pilot.press("escape", "1")  # the Library lists the saved recipe
        await wait_for(pilot, lambda: app.current_mode == "library")
        tree = app.screen.query_one(CatalogueTree)
        await wait_for(pilot, lambda: any(p.id == "opt-test" for p in tree.saved))


async def test_an_invalid_value_is_explained_as_it_is_typed_and_not_saved(make_app, dllab_home: Path):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "train")
        screen.query_one("#f-train-lr", Input).value = "-1"
        await _settle(pilot, screen)
        assert screen.loaded is None and screen.problem.startswith("train.lr: Input should be greater than 0")
        error = screen.query_one("#e-train-lr", Static)
        assert error.display and "greater than 0" in str(error.render())
        await pilot.press("ctrl+s")
        await pilot.pause(0.2)
        assert not (dllab_home / "presets" / "my-recipe.toml").exists()
        screen.query_one("#f-train-lr", Input).value = "0.1"
        await _settle(pilot, screen)
        assert screen.loaded is not None and not screen.query_one("#e-train-lr", Static).display


async def test_preset_errors_read_as_the_command_line_says_them(make_app):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_in_builder(load_preset("optimizers"))  # the built-in one: saving must not write over it
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen))
        screen = app.screen
        await _settle(pilot, screen)
        assert screen.loaded is not None and len(screen.draft.claims) == 2
        assert screen.path is None  # a built-in preset saves to the user's folder, never over itself
        await _tab(pilot, screen, "variants")
        claim = screen.draft.claims[0]
        named = claim.get("right") or (claim["left"] if isinstance(claim["left"], str) else claim["left"][0])
        row = [v.name for v in screen.draft.variants].index(named)
        screen.query_one("#variant-list").move_cursor(row=row)
        await pilot.pause()
        screen.query_one("#variant-name", Input).value = "Renamed"
        screen.query_one("#variant-name", Input).focus()
        await pilot.press("enter")
        await _settle(pilot, screen)
        with pytest.raises(PresetError) as cli:
            parse_preset(screen.draft.toml(), screen.save_path(), "optimizers")
        # the command line's words, about "this recipe": the file it would save to is not there
        assert screen.problem == str(cli.value).replace(f"{screen.save_path()}:", "this recipe:")
        assert screen.problem.startswith("this recipe: claims[0]")
        assert f"names variant {named!r}, which is not one of" in screen.problem


async def test_run_a_recipe_from_the_builder(make_app):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "variants")
        screen.query_one("#sweep-field", Select).value = "model.dropout"
        screen.query_one("#sweep-values", Input).value = "0, 0.5"
        screen.query_one("#sweep-values", Input).focus()
        await pilot.press("enter")
        await _settle(pilot, screen)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        c = live(app)
        assert c.quick and [r.label for r in c.runs] == ["dropout=0.0", "dropout=0.5"]
        assert [s.recipe.train.steps for s in c.specs] == [200, 200]  # the quick form
        assert app.current_mode == "dashboard"


async def test_the_sweep_hint_follows_the_variants_after_new_and_remove(make_app):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _add_variants(pilot, screen, "train.optimizer", "sgd, momentum, adam")

        def hint() -> str:
            return str(screen.query_one("#sweep-hint", Static).render())

        assert "3 variants" in hint()
        await pilot.click("#variant-remove")
        await pilot.pause()
        assert "2 variants" in hint(), hint()
        await pilot.press("ctrl+n")  # a new recipe has one variant: no stale count
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))  # the sweep was not saved
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        await _settle(pilot, screen)
        assert "variants." not in hint() and "Pick a field" in hint(), hint()


async def test_the_builder_asks_before_its_unsaved_changes_are_replaced(make_app):
    from .conftest import pinned_catalogue

    app = make_app(catalogue=pinned_catalogue)
    async with app.run_test(size=(100, 30)) as pilot:
        await _press_b_on(app, pilot, "dropout")
        await wait_for(pilot, lambda: app.current_mode == "builder")
        await pilot.pause(0.3)
        assert not app.screen.has_unsaved_changes()  # loading is not a change
        await _press_b_on(app, pilot, "optimizers")  # nothing changed: no question
        await wait_for(pilot, lambda: app.current_mode == "builder" and app.screen.draft.meta["technique"] == "optimizers")

        builder = app.screen
        builder.query_one(TabbedContent).active = "tab-preset"
        await pilot.pause()
        title = builder.query_one("#f-preset-title", Input)
        title.value = "My optimizers"
        await pilot.pause(0.3)
        assert builder.has_unsaved_changes()
        await _press_b_on(app, pilot, "dropout")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause()
        assert builder.draft.meta["title"] == "My optimizers"
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.current_mode == "builder" and builder.draft.meta["technique"] == "dropout")
        assert not builder.has_unsaved_changes()


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
async def test_the_schedule_preview_fits_inside_the_screen(make_app, size):
    """The preview has a margin of a cell on each side; docked, it used to keep its full width too
    and ran two cells past the right edge (the plot's right border was cut off)."""
    from tui_lab.widgets.schedule_preview import SchedulePreview

    app = make_app(mode="builder")
    async with app.run_test(size=size) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "train")
        await pilot.pause(0.2)
        preview = screen.query_one(SchedulePreview)
        if not preview.display:
            pytest.skip("no preview below 20 rows")
        pane = screen.query_one("#tab-train")
        assert preview.region.x >= pane.region.x + 1
        assert preview.region.right <= pane.region.right - 1, (preview.region, pane.region)


async def test_a_recipe_opened_from_the_library_can_be_edited_at_once(make_app):
    """After `b` the focus sat on the tab bar and down did nothing (typing went nowhere useful): down
    now goes into the tab's first field, and a digit there still switches screens. A recipe opened
    gives the tab bar the focus whatever field of the last one had it, and clears its sweep."""
    from textual.widgets import Tabs

    from .conftest import pinned_catalogue

    app = make_app(catalogue=pinned_catalogue)
    async with app.run_test(size=(80, 24)) as pilot:
        async def open_from_library(name: str) -> BuilderScreen:
            await _press_b_on(app, pilot, name)
            await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen)
                           and app.screen.draft.meta.get("technique") == name)
            await pilot.pause(0.3)
            return app.screen

        screen = await open_from_library("dropout")
        assert isinstance(app.focused, Tabs), app.focused
        await pilot.press("down")
        title = screen.query_one("#f-preset-title", Input)
        assert app.focused is title, app.focused
        await pilot.press("end", *" (mine)")  # typing goes into the field
        assert title.value.endswith(" (mine)") and screen.draft.meta["title"].endswith(" (mine)")
        title.value = pinned_catalogue()[1].preset.title  # unchanged again: the next `b` asks nothing

        await _tab(pilot, screen, "variants")
        screen.query_one("#sweep-field", Select).focus()
        screen.query_one("#sweep-field", Select).value = "train.optimizer"
        screen.query_one("#sweep-values", Input).value = "sgd, adam"
        await pilot.pause()
        screen = await open_from_library("optimizers")
        assert screen.query_one("#sweep-field", Select).value is Select.NULL
        assert screen.query_one("#sweep-values", Input).value == ""
        assert isinstance(app.focused, Tabs), app.focused  # not the last recipe's sweep menu
        await pilot.press("down")
        assert app.focused is screen.query_one("#sweep-field", Select), app.focused
        await pilot.press("escape", "right")  # back on the tab bar: the arrows switch tabs
        assert screen.query_one("#builder-tabs", TabbedContent).active == "tab-toml"


def _status(screen: BuilderScreen) -> str:
    return str(screen.query_one("#builder-status", Static).render())


async def test_ctrl_n_asks_before_unsaved_changes_are_replaced(make_app):
    """Ctrl+N replaced the recipe at once, a sweep's variants or an edited title with it. It asks as
    the Library's `n` does; "no" keeps the work, "yes" gives the new recipe."""
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await pilot.press("ctrl+n")  # nothing to lose: no question
        await _settle(pilot, screen)
        assert app.screen is screen and not screen.has_unsaved_changes()

        await _add_variants(pilot, screen, "train.optimizer", "sgd, adam")
        assert [v.name for v in screen.draft.variants] == ["optimizer=sgd", "optimizer=adam"]
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.question == "The Builder has unsaved changes to My recipe. Replace them with a new recipe?"
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        await _settle(pilot, screen)
        assert [v.name for v in screen.draft.variants] == ["optimizer=sgd", "optimizer=adam"]

        screen.query_one("#variant-list").focus()
        await pilot.press("escape")  # the tab bar, then a new title only
        await _tab(pilot, screen, "preset")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen)
        await _settle(pilot, screen)
        assert [v.name for v in screen.draft.variants] == ["base"] and not screen.has_unsaved_changes()

        screen.query_one("#f-preset-title", Input).value = "Only the title"
        await _settle(pilot, screen)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "unsaved changes to Only the title" in app.screen.question
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.draft.meta["title"] == "Only the title"


async def test_ctrl_o_asks_before_unsaved_changes_are_replaced(make_app, dllab_home: Path):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        screen.query_one("#f-preset-title", Input).value = "Mine"
        await _settle(pilot, screen)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "dropout"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.draft.meta["title"] == "Mine"
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        app.screen.query_one(Input).value = "dropout"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is screen and screen.draft.meta["technique"] == "dropout")
        assert not screen.has_unsaved_changes()


async def test_ctrl_q_asks_when_the_builder_has_unsaved_changes(make_app, dllab_home: Path):
    """Ctrl+Q quit at once with an edited recipe in the Builder. It asks: stay, discard, or save and quit."""
    from tui_lab.screens.library import LibraryScreen

    app = make_app(mode="builder")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_builder(app, pilot)
        screen.query_one("#f-preset-title", Input).value = "Edited"
        screen.query_one("#f-preset-technique", Input).value = "edited"
        await _settle(pilot, screen)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.question == "The Builder has unsaved changes to Edited. Quit without saving them?"
        buttons = [str(b.label) for b in app.screen.query("Button")]
        assert buttons == ["Save and quit (s)", "Discard (y)", "Stay (n)"]
        for b in app.screen.query("Button"):  # all three fit in the dialog at 80 columns
            assert b.region.right <= app.screen.query_one(".dialog").region.right, b
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert app.is_running and screen.draft.meta["title"] == "Edited"

        await pilot.press("escape", "1")  # asked from any screen
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.is_running, what="the app to save and exit")
    saved = load_preset(dllab_home / "presets" / "edited.toml")
    assert saved.preset.title == "Edited"


async def test_ctrl_q_discards_or_stays_when_saving_fails(make_app, dllab_home: Path):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "train")
        screen.query_one("#f-train-lr", Input).value = "-1"  # not valid: "Save and quit" cannot save
        await _settle(pilot, screen)
        await pilot.press("escape", "1")
        await pilot.pause()
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("s")
        await wait_for(pilot, lambda: app.screen is screen, what="the Builder, showing why it did not save")
        assert app.is_running and not list((dllab_home / "presets").glob("*.toml"))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    assert not list((dllab_home / "presets").glob("*.toml"))


async def test_ctrl_q_asks_one_question_for_runs_and_unsaved_changes(make_app):
    from .fake_engine import FakeRunner

    app = make_app(mode="builder", hold_at=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.bridge.live is not None and app.bridge.busy)
        screen.query_one("#f-preset-title", Input).value = "Edited meanwhile"
        await _settle(pilot, screen)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = app.screen.question
        assert question.startswith("Runs are still going, and the Builder has unsaved changes to Edited meanwhile.")
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
        assert not any(isinstance(s, ConfirmScreen) for s in app.screen_stack)  # one question, not two
    runner = FakeRunner.instances[-1]
    assert runner.closed and runner.cancelled


async def test_overrides_that_do_not_parse_make_the_recipe_invalid(make_app):
    """`train.lr = abc` + enter showed a hint but the status said valid and ctrl+r trained the base
    recipe. While the box holds text that does not parse, the status says why and runs are refused."""
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "variants")
        await _settle(pilot, screen)
        assert _status(screen).startswith("✔ valid 1 variant × 1 seed = 1 run")
        box = screen.query_one("#variant-overrides", Input)
        box.focus()
        await pilot.press(*"train.lr = abc", "enter")
        await _settle(pilot, screen)
        assert "train.lr: must be a number (got 'abc')" in str(screen.query_one("#sweep-hint", Static).render())
        assert screen.loaded is None
        status = _status(screen)
        assert status.startswith("✘ variant 'base': train.lr: must be a number (got 'abc')"), status
        assert screen.has_unsaved_changes()
        await pilot.press("ctrl+r")
        await pilot.pause(0.3)
        assert app.bridge.live is None and app.current_mode == "builder"  # nothing ran

        await pilot.press("ctrl+u", *"train.lr = 0.05", "enter")  # fixed
        await _settle(pilot, screen)
        assert screen.loaded is not None and _status(screen).startswith("✔ valid"), _status(screen)
        assert screen.draft.variants[0].overrides == {"train": {"lr": 0.05}}
        box.value = "model.hidden = x"
        await _settle(pilot, screen)
        assert screen.loaded is None and "model.hidden" in _status(screen)
        box.value = ""  # cleared: the variant keeps what the table shows
        await _settle(pilot, screen)
        assert screen.loaded is not None and _status(screen).startswith("✔ valid")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        assert [s.recipe.train.lr for s in live(app).specs] == [0.05]


async def test_a_variant_edit_typed_but_not_entered_is_taken_by_run(make_app):
    """`train.lr = 0.2` typed in the overrides box, then ctrl+r without enter, trained the old
    variant: run (and save) now take the edit first, and say so."""
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "variants")
        await _settle(pilot, screen)
        screen.query_one("#variant-overrides", Input).focus()
        await pilot.press(*"train.lr = 0.2")
        await _settle(pilot, screen)
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        assert [s.recipe.train.lr for s in live(app).specs] == [0.2]
        assert screen.draft.variants[0].overrides == {"train": {"lr": 0.2}}


async def _burst(app, pilot, *keys: str) -> None:
    """Send keys the way a terminal delivers a fast burst (tmux send-keys, a quick typist): all at
    once into the App's queue, with no pause between them (Pilot's `press` waits after each key)."""
    from textual import events
    from textual.app import _character_to_key

    for key in keys:
        if len(key) == 1:
            event = events.Key(key if key.isalnum() else _character_to_key(key), key)
        else:
            event = events.Key(key, None)  # backspace, end, …
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause()


async def test_keys_typed_in_a_burst_apply_in_order(make_app):
    """The tester's keys sent with tmux in one burst: lr "-1", backspace ×2, "nan" read "-1n"; lr "0.01",
    backspace ×4, "0.02" stayed "0.01"; steps "1000", backspace ×4, "500" was lost. Textual runs an
    Input's bound keys (backspace…) only once the key has bubbled up to the App, after the printable
    keys queued behind it were typed; the Builder's text boxes now run their own keys in turn."""
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "train")
        lr = screen.query_one("#f-train-lr", Input)
        lr.focus()
        await pilot.pause()
        await _burst(app, pilot, "end", *["backspace"] * 6, "-", "1", "backspace", "backspace", *"nan")
        assert lr.value == "nan"
        await _settle(pilot, screen)
        assert lr.value == "nan" and "train.lr" in screen.problem
        await _burst(app, pilot, *["backspace"] * 3, *"0.01", *["backspace"] * 4, *"0.02")
        assert lr.value == "0.02"
        await _burst(app, pilot, *["backspace"] * 4, *"0.03")  # while the check of 0.02 is pending
        await _settle(pilot, screen)
        assert lr.value == "0.03" and screen.draft.base["train"]["lr"] == 0.03 and screen.loaded is not None
        steps = screen.query_one("#f-train-steps", Input)
        steps.focus()
        await pilot.pause()
        await _burst(app, pilot, "end", *["backspace"] * 4, *"500", "left", "left", "backspace", "4")
        await _settle(pilot, screen)
        assert steps.value == "400" and screen.draft.base["train"]["steps"] == 400

        await _tab(pilot, screen, "variants")  # the Variants tab's boxes too
        box = screen.query_one("#variant-overrides", Input)
        box.focus()
        await pilot.pause()
        await _burst(app, pilot, *"train.lr = 0.55", "backspace", "backspace", *"1", "enter")
        await _settle(pilot, screen)
        assert screen.draft.variants[0].overrides == {"train": {"lr": 0.1}}


async def test_a_new_recipe_never_replaces_a_saved_one_without_asking(make_app, dllab_home: Path):
    """A 4-variant recipe saved as my-recipe.toml, then ctrl+n and ctrl+s: the new one-variant recipe
    wrote over it without a word (every new recipe was my-recipe). A new recipe now takes a free id,
    and saving onto a file this recipe was not opened from or saved to asks first."""
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _add_variants(pilot, screen, "train.optimizer", "sgd, momentum, adam, rmsprop")
        await pilot.press("ctrl+s")
        first = dllab_home / "presets" / "my-recipe.toml"
        await wait_for(pilot, first.exists, what="the first recipe saved")
        saved = first.read_text()
        assert len(load_preset(first).preset.variants) == 4

        await pilot.press("ctrl+n")  # nothing unsaved: no question
        await _settle(pilot, screen)
        assert not isinstance(app.screen, ConfirmScreen)
        assert screen.draft.meta["technique"] == "my-recipe-2" and screen.draft.meta["title"] == "My recipe 2"
        assert not screen.has_unsaved_changes()  # the free id is the new recipe's, not an edit
        await pilot.press("ctrl+s")
        second = dllab_home / "presets" / "my-recipe-2.toml"
        await wait_for(pilot, second.exists, what="the new recipe saved beside the first")
        assert first.read_text() == saved
        await pilot.press("ctrl+s")  # its own file, saved again: no question
        await pilot.pause(0.2)
        assert app.screen is screen

        await _tab(pilot, screen, "preset")  # now onto the first one's file ("save as")
        screen.query_one("#save-path", Input).value = str(first)
        await _settle(pilot, screen)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.question.startswith(f"{first} already exists")
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert first.read_text() == saved
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")  # asked, and said yes
        await wait_for(pilot, lambda: app.screen is screen and first.read_text() != saved)
        assert len(load_preset(first).preset.variants) == 1 and not screen.has_unsaved_changes()

        await pilot.press("ctrl+n")  # both ids taken now
        await _settle(pilot, screen)
        assert screen.draft.meta["technique"] == "my-recipe-3"
        screen.query_one("#f-preset-technique", Input).value = "my-recipe-2"  # by its id: asks too
        await _settle(pilot, screen)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.question.startswith(f"{second} already exists")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.has_unsaved_changes()


async def test_save_and_quit_asks_before_replacing_a_file(make_app, dllab_home: Path):
    """Quitting's "Save and quit" goes through the same question; "yes" saves, then quits."""
    from tui_lab.screens.library import LibraryScreen

    other = dllab_home / "presets" / "taken.toml"
    other.parent.mkdir(parents=True)
    other.write_text("# someone else's\n")
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        screen.query_one("#f-preset-technique", Input).value = "taken"
        await _settle(pilot, screen)
        await pilot.press("escape", "1")
        await wait_for(pilot, lambda: isinstance(app.screen, LibraryScreen))
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("s")  # save and quit: the file is in the way, so it asks, on the Builder
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and "already exists" in app.screen.question)
        assert app.current_mode == "builder" and other.read_text() == "# someone else's\n"
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to save and exit")
    assert load_preset(other).preset.technique == "taken"


async def test_an_empty_steps_field_says_what_budget_it_falls_back_to(make_app):
    """Steps cleared read as valid and the preview said "640 steps", from nowhere. The empty box and
    its help line say what an empty budget means, and the preview says where its number comes from."""
    from engine.recipe.config import Recipe, RunSpec
    from engine.training.runbook import budget
    from tui_lab.screens.builder import DEFAULT_EPOCHS
    from tui_lab.widgets.schedule_preview import SchedulePreview

    spec = RunSpec(recipe=Recipe.model_validate({"data": {"name": "mnist1d"}}), variant="v")
    assert budget(spec, 100)[1:] == (1, DEFAULT_EPOCHS)  # the engine's own fallback: what the Builder says
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "train")
        preview = screen.query_one(SchedulePreview)
        await wait_for(pilot, lambda: preview.plot_title.endswith(", 1000 steps"), timeout=30)
        steps = screen.query_one("#f-train-steps", Input)
        steps.focus()
        await pilot.press("ctrl+u")
        await _settle(pilot, screen)
        assert steps.value == "" and screen.loaded is not None
        assert steps.placeholder == "empty: set by epochs, else 20 epochs"
        assert "else 20 epochs" in str(screen.query_one("#help-train", Static).render())
        await wait_for(pilot, lambda: "epochs" in preview.plot_title, timeout=30)
        assert preview.plot_title == "lr: constant, 640 steps = default 20 epochs × 32"
        screen.query_one("#f-train-epochs", Input).value = "3"
        await _settle(pilot, screen)
        await wait_for(pilot, lambda: preview.plot_title == "lr: constant, 96 steps = 3 epochs × 32", timeout=30)


async def test_a_duplicate_variant_name_is_not_called_updated(make_app, dllab_home: Path):
    """Renaming a variant to another's name said "variant '…' updated" while the status line said
    "✘ $DLLAB_HOME/presets/my-recipe.toml: variant names must be unique", a file not there."""
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await _add_variants(pilot, screen, "train.optimizer", "sgd, adam")
        screen.query_one("#variant-list").move_cursor(row=1)
        await pilot.pause()
        name = screen.query_one("#variant-name", Input)
        name.focus()
        await pilot.press("ctrl+u", *"optimizer=sgd", "enter")
        await _settle(pilot, screen)
        status = _status(screen)
        assert status.startswith("✘ this recipe: variant names must be unique"), status
        assert str(dllab_home) not in status
        hint = str(screen.query_one("#sweep-hint", Static).render())
        assert "updated" not in hint and "not valid" in hint, hint

        await pilot.press("ctrl+u", *"optimizer=adam", "enter")  # fixed: an edit that keeps it valid
        await _settle(pilot, screen)
        assert _status(screen).startswith("✔ valid")
        assert str(screen.query_one("#sweep-hint", Static).render()) == "variant 'optimizer=adam' updated"


async def test_ctrl_o_opens_a_saved_recipe_by_typing_its_name_after_the_folder(make_app, dllab_home: Path):
    """The box starts with the saved recipes' folder, selected whole, and without its slash: typing a
    name replaced the folder ("my-recipe" alone was then unknown). Now the cursor waits after the
    folder's slash, and a name typed there (without .toml) opens the saved recipe."""
    src = load_preset("optimizers").path.read_text(encoding="utf-8").replace('technique = "optimizers"',
                                                                              'technique = "mine"')
    (dllab_home / "presets").mkdir(exist_ok=True)
    (dllab_home / "presets" / "mine.toml").write_text(src, encoding="utf-8")
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptScreen))
        box = app.screen.query_one(Input)
        assert box.value.endswith(("/", "\\")) and box.value.rstrip("/\\") == str(dllab_home / "presets")
        await pilot.press(*"mine", "enter")
        await wait_for(pilot, lambda: app.screen is screen and screen.draft.meta.get("technique") == "mine")
        assert screen.path == dllab_home / "presets" / "mine.toml"


async def test_a_recipe_that_cannot_run_is_not_called_valid_and_does_not_start(make_app, dllab_home: Path):
    """`loss = "l1"` on mnist1d: the Builder said "✔ valid", ctrl+r started it, and the run failed 17 s
    later. The preflight's words are on the status line, the run does not start, saving still works."""
    path = dllab_home / "l1.toml"
    path.write_text('title = "L1"\ntechnique = "l1"\nchapter = "optimization"\nstep = "optimization"\n'
                    'benefit = "optimization"\nsummary = "x"\nexplain = "x"\n[base.data]\nname = "mnist1d"\n'
                    '[base.train]\nloss = "l1"\nsteps = 20\n[[variants]]\nname = "A"\n')
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_in_builder(load_preset(path))
        await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen))
        screen = app.screen
        await _settle(pilot, screen)
        status = _status(screen)
        assert status.startswith("✘ cannot run: variant 'A': loss 'l1' is a regression loss"), status
        assert "valid" not in status and screen.loaded is not None  # a valid recipe: it may be saved
        await pilot.press("ctrl+r")
        await pilot.pause(0.3)
        assert app.bridge.live is None and app.current_mode == "builder"  # nothing ran
        assert any("cannot train mnist1d" in n.message for n in app._notifications)

        await _tab(pilot, screen, "train")
        screen.query_one("#f-train-loss", Select).value = "cross_entropy"
        await _settle(pilot, screen)
        assert _status(screen).startswith("✔ valid"), _status(screen)
