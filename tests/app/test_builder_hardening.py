"""The Builder's hardening: a recipe is never saved where it would go unused (under a catalogue
preset's id), a bad technique id is said in words, and only the settings that apply to the model's
kind, the optimizer, the schedule, ... are shown."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Select, Static

from engine.catalogue.presets import load_preset
from tui_lab.screens.confirm import ConfirmScreen

from .conftest import wait_for
from .test_builder import _open_builder, _press_b_on, _settle, _tab


def _real_optimizers():
    return [load_preset("optimizers")]  # the shipped preset: its id is a catalogue id


async def _open_optimizers(app, pilot):
    from tui_lab.screens.builder import BuilderScreen

    await _press_b_on(app, pilot, "optimizers")
    await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.draft.meta.get("technique")
                   == "optimizers", what="the optimizers preset in the Builder")
    screen = await _open_builder(app, pilot)
    await _settle(pilot, screen)
    return screen


async def test_an_edited_catalogue_preset_is_not_saved_under_the_catalogue_id_but_under_one_of_its_own(
        make_app, dllab_home: Path):
    """Opened from the Library, edited and saved, the catalogue's optimizers went to the saved folder as
    optimizers.toml, where nothing ever used it: `dllab run optimizers` and the Builder's open give the
    catalogue's. Saving now says so and offers an id of the recipe's own (my-optimizers), which the
    command line and the Library then run."""
    app = make_app(catalogue=_real_optimizers)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_optimizers(app, pilot)
        await _tab(pilot, screen, "train")
        screen.query_one("#f-train-lr", Input).value = "0.0123"
        await _settle(pilot, screen)

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        question = app.screen.question
        assert question.startswith("optimizers is the id of a catalogue preset: saved as optimizers.toml"), question
        assert "dllab run optimizers" in question and "Save it as my-optimizers instead" in question, question
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        folder = dllab_home / "presets"
        assert not (folder / "optimizers.toml").exists() and not (folder / "my-optimizers.toml").exists()
        assert screen.has_unsaved_changes()

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")
        saved = folder / "my-optimizers.toml"
        await wait_for(pilot, saved.exists, what="my-optimizers.toml")
        assert not (folder / "optimizers.toml").exists()
        assert screen.draft.meta["technique"] == "my-optimizers" and not screen.has_unsaved_changes()
        assert screen.query_one("#f-preset-technique", Input).value == "my-optimizers"
        mine = load_preset("my-optimizers")  # what `dllab run my-optimizers` runs: the edited recipe
        assert mine.path == saved and mine.preset.base.train["lr"] == 0.0123
        assert load_preset("optimizers").path != saved  # the catalogue's is unchanged
        toasts = [(n.title, n.message) for n in app._notifications]
        assert any(title == "Recipe saved as my-optimizers" and "dllab run my-optimizers" in message
                   for title, message in toasts), toasts

        await pilot.press("ctrl+s")  # its own file and id now: saved again without a question
        await pilot.pause(0.3)
        assert app.screen is screen


async def test_save_as_a_catalogue_id_in_the_saved_folder_asks_too_and_a_second_copy_gets_the_next_id(
        make_app, dllab_home: Path):
    folder = dllab_home / "presets"
    folder.mkdir()
    (folder / "my-optimizers.toml").write_text("# an earlier copy\n")
    app = make_app(catalogue=_real_optimizers)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_optimizers(app, pilot)
        await _tab(pilot, screen, "preset")
        screen.query_one("#save-path", Input).value = str(folder / "optimizers.toml")
        await _settle(pilot, screen)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Save it as my-optimizers-2 instead" in app.screen.question, app.screen.question
        await pilot.press("y")
        await wait_for(pilot, (folder / "my-optimizers-2.toml").exists, what="my-optimizers-2.toml")
        assert (folder / "my-optimizers.toml").read_text() == "# an earlier copy\n"
        assert not (folder / "optimizers.toml").exists()


async def test_a_bad_technique_id_is_explained_in_words_not_with_the_regex(make_app):
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_builder(app, pilot)
        screen.query_one("#f-preset-technique", Input).value = "My Recipe"
        await _settle(pilot, screen)
        error = str(screen.query_one("#e-preset-technique", Static).render())
        status = str(screen.query_one("#builder-status", Static).render())
        for text in (error, status):
            assert "lowercase letters, digits and hyphens, like adam-vs-sgd" in text, text
            assert "pattern" not in text and "[a-z" not in text, text


def _shown(screen, wid: str) -> bool:
    """Whether the row of field `wid` (``f-train-momentum``) is shown."""
    return bool(screen.query_one(f"#{wid}").parent.display)


async def test_only_the_settings_the_recipe_uses_are_shown(make_app):
    """Changing the optimizer from momentum to adam left momentum (and changing the model's kind left
    the MLP's widths) on the form, as if they still did something. A field that only some settings use
    is shown where the recipe uses it; one that holds a value of its own stays, saying nothing uses it."""
    from textual.widgets import Collapsible

    from .test_builder import _add_variants

    app = make_app(mode="builder")
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _open_builder(app, pilot)
        await _tab(pilot, screen, "train")
        assert screen.query_one("#f-train-optimizer", Select).value == "sgd"
        assert not _shown(screen, "f-train-momentum")  # plain SGD has no momentum
        screen.query_one("#f-train-optimizer", Select).value = "momentum"
        await _settle(pilot, screen)
        assert _shown(screen, "f-train-momentum")
        screen.query_one("#more-train", Collapsible).collapsed = False
        await wait_for(pilot, lambda: bool(screen.query("#f-train-beta1")), what="the more fields")
        assert _shown(screen, "f-train-dampening") and not _shown(screen, "f-train-beta1")
        screen.query_one("#f-train-optimizer", Select).value = "adam"
        await _settle(pilot, screen)
        assert not _shown(screen, "f-train-momentum") and not _shown(screen, "f-train-dampening")
        assert _shown(screen, "f-train-beta1") and _shown(screen, "f-train-amsgrad")
        assert not _shown(screen, "f-train-alpha") and not _shown(screen, "f-train-lbfgs_history")
        assert not _shown(screen, "f-train-step_size")
        screen.query_one("#f-train-schedule", Select).value = "step"
        await _settle(pilot, screen)
        assert _shown(screen, "f-train-step_size") and _shown(screen, "f-train-gamma")
        assert "more train fields (" in str(screen.query_one("#more-train", Collapsible).title)

        screen.query_one("#f-train-optimizer", Select).value = "momentum"  # a momentum of its own, then adam
        await _settle(pilot, screen)
        screen.query_one("#f-train-momentum", Input).value = "0.5"
        await _settle(pilot, screen)
        screen.query_one("#f-train-optimizer", Select).value = "adam"
        await _settle(pilot, screen)
        assert _shown(screen, "f-train-momentum")  # it is in the recipe: not hidden away
        note = str(screen.query_one("#e-train-momentum", Static).render())
        assert note == "not used: optimizer is adam (it is used with optimizer momentum or nesterov)", note
        screen.query_one("#f-train-momentum", Input).value = "0.9"  # back to the default: it goes
        await _settle(pilot, screen)
        assert not _shown(screen, "f-train-momentum")

        await _tab(pilot, screen, "model")
        assert _shown(screen, "f-model-hidden") and _shown(screen, "f-model-activation")
        screen.query_one("#f-model-kind", Select).value = "linear"
        await _settle(pilot, screen)
        assert not any(_shown(screen, f"f-model-{name}") for name in ("hidden", "activation", "norm", "dropout"))
        screen.query_one("#f-model-kind", Select).value = "cnn"
        await _settle(pilot, screen)
        screen.query_one("#more-model", Collapsible).collapsed = False
        await wait_for(pilot, lambda: bool(screen.query("#f-model-channels")), what="the more model fields")
        assert _shown(screen, "f-model-channels") and _shown(screen, "f-model-hidden")
        screen.query_one("#f-model-kind", Select).value = "mlp"
        await _settle(pilot, screen)
        assert not _shown(screen, "f-model-channels") and not _shown(screen, "f-model-kernel_size")

        # a base of adam whose variants sweep the optimizer: momentum is the momentum variant's
        await _add_variants(pilot, screen, "train.optimizer", "adam, momentum")
        await _tab(pilot, screen, "train")
        assert screen.query_one("#f-train-optimizer", Select).value == "adam"
        assert _shown(screen, "f-train-momentum")
        assert str(screen.query_one("#e-train-momentum", Static).render()) == ""
