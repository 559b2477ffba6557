"""History: stored runs listed, filtered, sorted; several opened together read-only (replayed
through the live code path); deleted after a confirmation."""

from __future__ import annotations

from tui_lab.screens.confirm import ConfirmScreen
from tui_lab.screens.dashboard import DashboardScreen
from tui_lab.screens.history import HistoryScreen
from tui_lab.widgets.metric_plot import MetricPlot
from tui_lab.widgets.run_table import RunTable

from .conftest import screen_text, store_recorded_runs, wait_for


async def _open_history(app, pilot) -> HistoryScreen:
    await pilot.pause()
    await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
    return app.screen


async def test_open_two_stored_runs_of_different_presets_together(make_app, store):
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)], comparison="cmp-a")
    store_recorded_runs(store, [("Momentum", 0)], preset="my-momentum", comparison="cmp-b")
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        assert table.row_count == 3 and "3 of 3 runs" in screen_text(app)

        await pilot.press("slash", *"sgd", "enter")
        assert table.row_count == 1
        await pilot.press("slash", "ctrl+u", "enter")
        assert table.row_count == 3
        await pilot.press("s", "s", "s")  # sorted by best val acc
        assert [r.variant for r in table.shown][0] == "Adam"

        table.focus()
        table.move_cursor(row=0)
        await pilot.press("space")  # Adam (optimizers)
        mom = [r.run_id for r in table.shown].index("cmp-b-momentum")
        table.move_cursor(row=mom)
        await pilot.press("space")
        assert sorted(table.marked) == ["cmp-a-adam", "cmp-b-momentum"]
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        dash = app.screen
        c = dash.comparison
        await wait_for(pilot, lambda: c.finished and not dash.session.active)
        assert c.read_only and sorted(c.labels) == ["my-momentum:Momentum", "optimizers:Adam"]
        await pilot.pause(0.3)
        plot = dash.query_one("#plot-train_loss", MetricPlot)
        assert len(plot.data.curves) == 2 and all(len(cv.xs) > 20 for cv in plot.data.curves)
        text = screen_text(app)
        assert "read-only" in text and "2/2" in text and "Cancel" not in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)


async def test_a_stored_run_replays_like_the_live_one(make_app, store):
    """Same comparison data from the store as from the recorded event stream."""
    from engine.events import from_dict
    from tui_lab.data.comparison import Comparison

    from .fake_engine import recording

    (run_id,) = store_recorded_runs(store, [("AdamW", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_history(app, pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.comparison.finished)
        stored = app.screen.comparison.runs[0]
    direct = Comparison("direct")
    direct.add_many(from_dict({**e, "run_id": run_id}) for e in recording()[("AdamW", 0)])
    (run,) = direct.runs
    assert stored.steps == run.steps and stored.eval_metrics == run.eval_metrics
    assert stored.final == run.final and stored.status == run.status == "done"


async def test_delete_asks_first(make_app, store):
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        table.focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        assert len(store.list_runs()) == 2
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert len(store.list_runs()) == 1


async def test_the_delete_question_fits_its_count(make_app, store):
    store_recorded_runs(store, [("SGD", 0), ("Adam", 0)])
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        screen.query_one(RunTable).focus()
        await pilot.press("d")  # one run: "its metrics"
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "and its metrics?" in screen_text(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("space", "space", "d")  # two marked runs: "their metrics"
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Delete 2 runs and their metrics?" in screen_text(app)
        await pilot.press("n")


def _whole(value: str, line: str) -> bool:
    """`value` stands whole in `line` (not cut, not part of a longer word)."""
    import re

    return re.search(rf"(?<!\S){re.escape(value)}(?!\S)", line) is not None


async def test_at_80_columns_every_number_is_shown_whole_and_the_names_give_way(make_app, store):
    from tui_lab.widgets.run_table import COLUMNS, NUMERIC

    store_recorded_runs(store, [("SGD", 0), ("Momentum", 0), ("Adam", 0)], preset="a-rather-long-preset-name",
                        comparison="a-long-comparison-name")
    store_recorded_runs(store, [("AdamW", 0)], preset="my-recipe", comparison="cmp-b")
    app = make_app(mode="history")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        lines = screen_text(app).splitlines()
        labels = dict(COLUMNS)
        header = next(line for line in lines if _whole("run", line) and _whole("seed", line))
        for key in NUMERIC:
            assert _whole(labels[key], header), f"the {labels[key]!r} header is cut: {header!r}"
        cut_names = 0
        for run in table.shown:
            cells = table.row_cells(run)
            (line,) = [line for line in lines if _whole(cells["val_acc"], line) and _whole(cells["train_loss"], line)]
            for key in NUMERIC:
                assert _whole(cells[key], line), f"{labels[key]} {cells[key]!r} is not whole in {line!r}"
            assert len(line.rstrip()) <= 80
            cut_names += "…" in line
        assert cut_names >= 3, "the long names should have given way"
        assert "started" not in table.widths  # the start time goes first at 80 columns

        await pilot.resize_terminal(140, 24)  # room again: names whole, the start time back
        await wait_for(pilot, lambda: "started" in table.widths)
        text = screen_text(app)
        assert "a-rather-long-preset-name" in text and "a-long-comparison-name-momentum" in text
        assert "…" not in text


async def test_a_new_sort_shows_the_top_of_the_table(make_app, store):
    """After `s` the table shows the first runs of the new order (the cursor used to stay on its
    run, so the view scrolled to it and the top rows were out of sight)."""
    for c in range(12):
        store_recorded_runs(store, [("SGD", 0), ("Adam", 0), ("Momentum", 0)], comparison=f"cmp{c:02d}")
    app = make_app(mode="history")
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_history(app, pilot)
        table = screen.query_one(RunTable)
        table.focus()
        table.move_cursor(row=34)
        await pilot.pause()
        assert table.scroll_offset.y > 0
        await pilot.press("s")
        await pilot.pause()
        assert table.cursor_row == 0 and table.scroll_offset.y == 0
        first = table.shown[0].run_id
        assert first[:6] in screen_text(app).splitlines()[3]
