"""Builder, your own data and the model before a run: the Data tab says what a data file holds (or
the engine's message naming the line), the Model tab sums up the model of the highlighted variant."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Collapsible, Input, Select, Static, TabbedContent

from tui_lab.screens.builder import BuilderScreen

from .conftest import wait_for


def _write_pets(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pets.csv"
    rows = ["weight,height,label"] + [f"{i * 0.1:.1f},{i % 7},{'cat' if i % 2 else 'dog'}" for i in range(240)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


async def _builder_on_data(app, pilot) -> BuilderScreen:
    await pilot.pause()
    await wait_for(pilot, lambda: isinstance(app.screen, BuilderScreen) and app.screen.query("#f-preset-title"))
    screen = app.screen
    screen.query_one("#builder-tabs", TabbedContent).active = "tab-data"
    await wait_for(pilot, lambda: bool(screen.query("#f-data-name")), what="the data form")
    screen.query_one("#f-data-name", Select).value = "file"
    await wait_for(pilot, lambda: screen.query_one("#f-data-path").display, what="the path field")
    return screen


def _info(screen: BuilderScreen) -> Static:
    return screen.query_one("#i-data-path", Static)


async def _type_path(pilot, screen: BuilderScreen, text: str) -> None:
    box = screen.query_one("#f-data-path", Input)
    box.focus()
    await pilot.press("ctrl+u", *text)


async def test_a_relative_path_to_a_csv_shows_what_it_holds(make_app, dllab_home: Path):
    _write_pets(dllab_home / "presets")  # beside the saved recipe: a relative path finds it
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _builder_on_data(app, pilot)
        await _type_path(pilot, screen, "pets.csv")
        want = "table: 240 samples, 2 features → classification, 2 classes (cat 120, dog 120)"
        await wait_for(pilot, lambda: str(_info(screen).render()) == want, what="the facts line")
        assert not _info(screen).has_class("-error")
        assert _info(screen).display and screen.query_one("#f-data-path").display
        # another data set: the facts go (the path stays, saying that nothing uses it)
        screen.query_one("#f-data-name", Select).value = "mnist1d"
        await wait_for(pilot, lambda: str(_info(screen).render()) == "", what="the facts line cleared")


async def test_a_bad_csv_shows_the_message_naming_its_line(make_app, tmp_path: Path):
    bad = tmp_path / "bad [red]data.csv"  # brackets: shown as written, never read as markup
    bad.write_text("x1,x2,label\n1,2,cat\n3,4,dog\n5,oops,cat\n", encoding="utf-8")
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _builder_on_data(app, pilot)
        await _type_path(pilot, screen, str(bad))
        await wait_for(pilot, lambda: "line 4" in str(_info(screen).render()), what="the message")
        text = str(_info(screen).render())
        assert str(bad) in text and "'x2'" in text and "oops" in text
        assert _info(screen).has_class("-error")


async def test_the_model_summary_counts_the_parameters_the_engine_builds(make_app, dllab_home: Path):
    from engine.data.facts import describe
    from engine.models import build_model

    csv = _write_pets(dllab_home / "presets")
    app = make_app(mode="builder")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _builder_on_data(app, pilot)
        await _type_path(pilot, screen, str(csv))
        await wait_for(pilot, lambda: str(_info(screen).render()).startswith("table:"), what="the facts line")
        screen.query_one("#builder-tabs", TabbedContent).active = "tab-model"
        box = screen.query_one("#model-summary", Collapsible)
        await wait_for(pilot, lambda: "parameters" in str(box.title), timeout=30, what="the model summary")
        spec = screen.loaded.expand(quick=False)[0]
        facts = describe(spec.recipe.data)
        model = build_model(spec.recipe.model, facts.input_shape, facts.n_outputs)
        n = sum(p.numel() for p in model.parameters())
        assert str(box.title).startswith(f"model: 3 layers, {n:,} parameters ("), box.title
        assert "of activations per sample" in str(box.title)
        box.collapsed = False  # the whole layer table
        await pilot.pause()
        table = str(screen.query_one("#model-layers", Static).render())
        assert "blocks.0.linear" in table and "head" in table and f"{3 * 100:,}" in table
