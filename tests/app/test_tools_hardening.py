"""The Tools screen at 80 and 100 columns (settings on one line each, menus whose items stay whole, the
critical points' table inside its pane) and its focus (never lost after a tool's run or a switch of
tools; ↓ from the tab bar goes into the settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Select, TabbedContent, Tabs
from tiny_presets import tiny_preset

from engine.catalogue.presets import load_preset
from tui_lab.screens.tools import TOOLS

from .conftest import screen_text, wait_for
from .test_tools import TINY, _run, _tools

LONG_ID = "a-preset-with-a-rather-long-id"


@pytest.fixture
def long_catalogue(tmp_path: Path):
    tiny = tmp_path / "tiny-tools.toml"
    tiny.write_text(TINY, encoding="utf-8")
    long = tmp_path / f"{LONG_ID}.toml"
    long.write_text(tiny_preset("""
[base.model]
hidden = [8]

[base.train]
steps = 20

[[variants]]
name = "only"
""", title="Long id", technique=LONG_ID), encoding="utf-8")
    return lambda: [load_preset(tiny), load_preset(long)]


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_every_setting_of_every_tool_stays_on_one_line(make_app, long_catalogue, size):
    """At 80 columns the gradient check's "demo: hand-written layer", "correct and broken" and "as the
    spec says" took two lines each, the critical points' net three, and "Apply (a)" broke after "(".
    A choice too long for the pane now ends with "…" on its line; the buttons keep their labels."""
    app = make_app(catalogue=long_catalogue, mode="tools")
    async with app.run_test(size=size) as pilot:
        screen = await _tools(app, pilot)
        for tool, _title, _view in TOOLS:
            screen.query_one("#tools-tabs", TabbedContent).active = f"tab-{tool}"
            await pilot.pause(0.3)
            view = screen.view(tool)
            rows = list(view.query(".tool-settings .tool-row"))
            assert rows, tool
            for row in rows:
                assert row.region.height == 1, (tool, row, row.region)
            buttons = view.query_one(".tool-settings .button-row")
            assert buttons.region.height == 1, (tool, buttons.region)
            for button in view.query(Button):
                assert button.region.height == 1, (tool, button)
            if tool == "lr":
                assert "Apply (a)" in screen_text(app)
            if tool == "gradcheck":
                text = screen_text(app)
                assert " preset   demo: hand" in text and "…" in text.split(" preset ")[1].splitlines()[0]


async def test_the_preset_menu_shows_each_id_whole_on_one_line(make_app, long_catalogue):
    """At 80 columns the preset menu was as narrow as its field: "loss-functions" read "loss-function"
    then "s" on the next line. The open menu is as wide as its longest id."""
    app = make_app(catalogue=long_catalogue, mode="tools")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _tools(app, pilot)
        select = screen.view("lr").query_one("#lr-preset", Select)
        select.focus()
        select.expanded = True
        await pilot.pause(0.4)
        lines = screen_text(app).splitlines()
        assert any(LONG_ID in line for line in lines), "\n".join(lines)
        assert any("tiny-tools" in line for line in lines)
        overlay = select.query_one("SelectOverlay")
        assert overlay.region.height == overlay.option_count + 2  # an item a line, and the frame
        assert overlay.region.right <= 80


async def test_the_critical_points_table_fits_its_pane_at_80_columns(make_app, tiny):
    """At 80×24 the points' table ran past the pane's edge: the eigenvalues (what the kinds are read
    from) and the starts were cut. Now ‖∇L‖ goes first, the kind shrinks to its mark (+ − ± 0, the signs
    of the eigenvalues), then the starts; the point, its loss and its eigenvalues stay whole."""
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _tools(app, pilot)
        screen.query_one("#tools-tabs", TabbedContent).active = "tab-critical"
        screen.view("critical").query_one("#critical-starts", Input).value = "6"
        view = await _run(pilot, screen, "critical")
        for wid in ("#critical-points", "#critical-known"):
            table = view.query_one(wid, DataTable)
            assert table.virtual_size.width <= table.size.width, (wid, table.virtual_size, table.size)
        points = view.query_one("#critical-points", DataTable)
        assert list(points.widths) == ["kind", "point", "loss", "eigenvalues"], points.widths
        first = [str(c) for c in points.get_row_at(0)]
        assert first == ["±", "(0, 0)", "1", "(-2, 2)"], first
        note = str(view.query_one("#critical-note").render())
        assert "± saddle (both signs)" in note and "0 degenerate (one ≈ 0)" in note
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(120, 40)) as pilot:  # room for every column: the words come back
        screen = await _tools(app, pilot)
        screen.query_one("#tools-tabs", TabbedContent).active = "tab-critical"
        screen.view("critical").query_one("#critical-starts", Input).value = "6"
        view = await _run(pilot, screen, "critical")
        points = view.query_one("#critical-points", DataTable)
        assert list(points.widths) == ["kind", "point", "loss", "grad", "eigenvalues", "starts"], points.widths
        assert str(points.get_row_at(0)[0]) == "± saddle"


@pytest.fixture
def tiny(tmp_path: Path):
    path = tmp_path / "tiny-tools.toml"
    path.write_text(TINY, encoding="utf-8")
    return load_preset(path)


async def test_down_from_the_tab_bar_goes_into_the_settings_and_the_focus_is_never_lost(make_app, tiny):
    """The tab bar had the focus and ↓ did nothing; `t` from a setting hid it with its tool, and a run
    started with the focus nowhere ended with it nowhere: keys did nothing until a click."""
    app = make_app(catalogue=lambda: [tiny], mode="tools")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _tools(app, pilot)
        tabs = screen.query_one("#tools-tabs", TabbedContent).query_one(Tabs)
        tabs.focus()
        await pilot.pause()
        await pilot.press("down")
        assert app.focused is screen.view("lr").query_one("#lr-preset", Select)
        await pilot.press("escape")
        assert isinstance(app.focused, Tabs)
        await pilot.press("right", "down")  # the next tool's first setting
        assert app.focused is screen.view("sanity").query_one("#sanity-preset", Select)

        screen.query_one("#tools-tabs", TabbedContent).active = "tab-critical"
        await pilot.pause()
        net = screen.view("critical").query_one("#critical-net", Select)
        net.focus()
        screen.view("critical").query_one("#critical-starts", Input).value = "4"
        await _run(pilot, screen, "critical")
        assert app.focused is net
        await pilot.press("t")  # the critical points' tab goes, and its setting with it
        await pilot.pause()
        assert screen.active_tool == "search" and isinstance(app.focused, Tabs), app.focused
        await pilot.press("down")
        assert app.focused is screen.view("search").query_one("#search-preset", Select)

        screen.query_one("#tools-tabs", TabbedContent).active = "tab-critical"
        await pilot.pause()
        screen.set_focus(None)  # a click on the plot or the text: the focus nowhere
        await pilot.pause()
        await _run(pilot, screen, "critical")
        await wait_for(pilot, lambda: app.focused is not None, what="the focus back")
        assert isinstance(app.focused, Tabs)
