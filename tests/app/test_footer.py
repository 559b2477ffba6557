"""The footer at 80 columns: every screen keeps the keys a person needs most (the rest still work,
and ctrl+p "Keys" lists them), and no key is cut at the edge."""

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
        await shows(pilot, "⏎ Run quick", "f Run full", "/ Search", "b Builder", "n New", "^q Quit")
        await pilot.press("2")
        await shows(pilot, "^s Save", "^r Run quick", "^t Run full", "^o Open file", "^n New", "^q Quit")
        await pilot.press("escape", "4")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await shows(pilot, "space Mark", "/ Filter", "o Open", "d Delete", "s Sort", "R Refresh", "^q Quit")
        await pilot.press("5")
        await shows(pilot, "^r Run / stop", "t Next tool", "^q Quit")


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
        await shows(pilot, "l Log loss", "m More plots", "t Next tab", "r Rerun", "^q Quit")

    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.comparison.finished)
        await shows(pilot, "esc Back", "r Rerun", "t Next tab", "m More plots", "^q Quit")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
