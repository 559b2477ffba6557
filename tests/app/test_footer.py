"""The footer at 80 columns: every screen keeps the keys a person needs most (the rest still work,
and `?` lists them: the key help, tested here too), and no key is cut at the edge."""

from __future__ import annotations

from tui_lab.screens.dashboard import DashboardScreen
from tui_lab.screens.history import HistoryScreen
from tui_lab.widgets.lab_footer import LabFooter

from .conftest import live, pinned, pinned_catalogue, screen_text, store_recorded_runs, wait_for

SIZE = (80, 24)
PALETTE = "▏^p palette"


def footer_line(app) -> str:
    return screen_text(app).rstrip("\n").splitlines()[-1]


async def shows(pilot, *keys: str) -> str:
    """Wait until the footer shows every one of `keys` (whole, as "key Description"), and nothing is cut."""
    app = pilot.app

    def ok() -> bool:
        line = footer_line(app)
        return all(f" {k} " in f"{line} " for k in keys) and line.rstrip().endswith(PALETTE.strip())

    await wait_for(pilot, ok, timeout=10, what=f"{keys} in the footer: {footer_line(app)!r}")
    line = footer_line(app)
    footer = app.screen.query_one(LabFooter)
    shown = [k for k in footer.query("FooterKey") if k.display]
    assert shown and all(k.region.right <= app.size.width for k in shown), line  # no key runs past the edge
    return line


async def test_library_builder_history_and_tools_keep_their_keys_and_quit(make_app, store):
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)])
    app = make_app(catalogue=pinned_catalogue)
    async with app.run_test(size=SIZE) as pilot:
        # "? Keys" before the Library's least used keys: at 80 columns a new user still sees where
        # the rest are (n New is left out)
        await shows(pilot, "⏎ Run quick", "f Run full", "/ Search", "b Builder", "^q Quit", "? Keys")
        await pilot.press("2")
        await shows(pilot, "^s Save", "^r Run quick", "^t Run full", "^o Open file", "^q Quit", "? Keys")
        await pilot.press("escape", "4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await shows(pilot, "space Mark", "a Mark all shown", "/ Filter", "o Open", "d Delete", "^q Quit")
        await pilot.resize_terminal(100, 30)  # the help key before Sort and Refresh
        await shows(pilot, "space Mark", "a Mark all shown", "o Open", "d Delete", "^q Quit", "? Keys")
        await pilot.resize_terminal(*SIZE)
        await pilot.press("5")
        await shows(pilot, "^r Run / stop", "t Next tool", "^q Quit", "? Keys")


async def test_a_busy_dashboard_keeps_cancel_and_quit_and_the_keys_left_out_still_work(make_app):
    app = make_app(open_preset=pinned("optimizers"), quick=True, hold_at=0.5)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" for r in live(app).runs))
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        line = await shows(pilot, "c Cancel run", "C Cancel all", "t Next tab", "m More plots", "^q Quit")
        footer = screen.query_one(LabFooter)
        assert "cycle_smoothing" in footer.left_out and "s Smooth" not in line
        await pilot.press("s")  # left out of the footer, not out of the keyboard
        assert screen.smoothing > 0
        await wait_for(pilot, lambda: "smooth 0." in screen_text(app).splitlines()[1])

        await pilot.resize_terminal(120, 40)  # room for every key again
        await shows(pilot, "l Log loss", "s Smooth", "x X axis", "t Next tab", "c Cancel run", "C Cancel all",
                    "^q Quit")
        assert not [a for a in footer.left_out if a != "rerun"]


async def test_a_finished_dashboard_and_stored_runs_keep_rerun_back_and_quit(make_app, store):
    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await shows(pilot, "l Log loss", "m More plots", "t Next tab", "r Rerun", "^q Quit", "? Keys")

    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.comparison.finished)
        await shows(pilot, "esc Back", "r Rerun", "t Next tab", "m More plots", "^q Quit")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))


def panel_lines(app) -> list[str]:
    """The key help as drawn: the part of each line right of the panel's left edge."""
    from textual.widgets import HelpPanel

    x = app.screen.query_one(HelpPanel).region.x
    return [line[x:].strip(" ▏") for line in screen_text(app).splitlines()[:-1]]


async def test_question_mark_and_f1_open_the_screen_s_keys_and_close_them_again(make_app):
    """`?` and F1 did nothing; the only key list was ctrl+p "Keys", which on the Library began with
    the tree's generic keys, did not close with escape, and squeezed the screen. `?` / F1 now open
    the key help of the screen (its own keys first), `?` / F1 / escape close it, and the screen
    under it keeps its size."""
    from textual.widgets import HelpPanel

    app = make_app(catalogue=pinned_catalogue)
    async with app.run_test(size=(100, 30)) as pilot:
        await shows(pilot, "⏎ Run quick", "? Keys")
        library = app.screen.query_one("#catalogue")
        width = library.size.width
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.query(HelpPanel))
        await pilot.pause(0.3)
        lines = [line for line in panel_lines(app) if line]
        assert lines[0] == "Library keys", lines
        order = [next(i for i, line in enumerate(lines) if line.startswith(k)) for k in
                 ("⏎ Run quick", "b Builder", "Everywhere", "? Keys", "^q Quit", "In the list", "↑ Cursor Up")]
        assert order == sorted(order), lines  # the screen's keys, the app's, then the tree's own
        assert library.size.width == width  # laid over the screen, not squeezing it
        assert footer_line(app).rstrip().endswith(PALETTE.strip())  # the footer stays whole
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: not app.screen.query(HelpPanel))
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen.query(HelpPanel))
        await pilot.press("f1")
        await wait_for(pilot, lambda: not app.screen.query(HelpPanel))
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen.query(HelpPanel))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query(HelpPanel))

        # in a text box `?` is typed; F1 still opens the keys, and escape closes them first
        await pilot.press("slash", "question_mark")
        search = app.screen.focused
        assert getattr(search, "value", None) == "?" and not app.screen.query(HelpPanel)
        await pilot.press("f1")
        await wait_for(pilot, lambda: app.screen.query(HelpPanel))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query(HelpPanel))
        assert app.screen.focused is search  # that escape only closed the keys


async def test_the_dashboard_s_key_help_explains_its_keys_and_does_not_squeeze_the_table(make_app):
    from textual.widgets import HelpPanel

    from tui_lab.widgets.variant_table import VariantTable

    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await pilot.pause(0.3)
        table = app.screen.query_one(VariantTable)
        before = (table.size, dict(table.widths))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: app.screen.query(HelpPanel))
        await pilot.pause(0.3)
        text = " ".join(panel_lines(app))
        assert "Dashboard keys" in text and "l Log loss: the loss plots on a log scale" in text, text
        assert "r Rerun: the same runs again" in text and "? Keys" in text and "esc Close this list" in text
        assert (table.size, dict(table.widths)) == before
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query(HelpPanel))
        assert isinstance(app.screen, DashboardScreen)
