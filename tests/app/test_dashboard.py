"""Dashboard: opening a preset at start, toggles, cancelling, rerunning, seeds, extra views, quitting."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.catalogue.presets import load_preset
from tui_lab.screens.confirm import ConfirmScreen
from tui_lab.screens.dashboard import DashboardScreen
from tui_lab.widgets.metric_plot import MetricPlot
from tui_lab.widgets.variant_table import VariantTable

from .conftest import live, pinned, screen_text, wait_for
from .fake_engine import FakeRunner


async def test_open_preset_starts_at_once_and_the_toggles_change_the_plots(make_app):
    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and app.current_mode == "dashboard"
        await pilot.pause(0.3)
        plot = screen.query_one("#plot-train_loss", MetricPlot)
        assert [c.label for c in plot.data.curves] == live(app).labels and not plot.data.log
        linear_max = max(max(c.ys) for c in plot.data.curves)

        await pilot.press("l")
        assert plot.data.log and max(max(c.ys) for c in plot.data.curves) < linear_max
        assert screen.query_one("#plot-val_acc", MetricPlot).data.log is False  # accuracy stays linear
        await pilot.press("s")
        assert screen.smoothing > 0
        await pilot.press("x")
        assert screen.x_axis == "epoch" and plot.data.x_axis == "epoch"
        await pilot.press("x")
        assert screen.x_axis == "time"
        header = screen_text(app).splitlines()[1]
        assert "loss log" in header and "x time" in header and "finished 7/7" in header
        # the LR plot of this comparison (0.05 vs 1e-3) is drawn on a log scale by itself
        assert screen.query_one("#plot-lr", MetricPlot).data.log

        await pilot.press("t")
        await pilot.pause()
        assert "Claims" in screen_text(app)
        await pilot.press("t")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "block1" in text and "update/weight" in text


async def test_cancel_the_selected_run_then_all(make_app):
    app = make_app(open_preset=pinned("optimizers"), quick=True, hold_at=0.4)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" for r in live(app).runs))
        screen = app.screen
        table = screen.query_one(VariantTable)
        table.focus()
        await pilot.press("down")  # Momentum
        await pilot.press("c")
        await wait_for(pilot, lambda: live(app).runs[1].status == "cancelled")
        assert [r.status for r in live(app).runs].count("running") == 6
        await pilot.press("C")
        await wait_for(pilot, lambda: live(app).finished)
        assert {r.status for r in live(app).runs} == {"cancelled"}
        await wait_for(pilot, lambda: FakeRunner.instances[-1].closed)
        await pilot.press("v")
        await pilot.pause(0.3)
        assert "is cancelled: not checked" in screen_text(app)


async def test_arrows_move_the_highlighted_run_without_focusing_the_table(make_app):
    app = make_app(open_preset=pinned("optimizers"), quick=True, hold_at=0.4)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" for r in live(app).runs))
        table = app.screen.query_one(VariantTable)
        assert not table.has_focus
        await pilot.press("down", "down", "up", "down")  # Nesterov, the third run
        await pilot.press("c")
        await wait_for(pilot, lambda: live(app).runs[2].status == "cancelled")
        assert [r.status for r in live(app).runs].count("running") == 6
        await pilot.press("C")
        await wait_for(pilot, lambda: live(app).finished)


async def test_rerun_starts_the_same_specs_again(make_app):
    app = make_app(open_preset=pinned("dropout"), quick=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and not app.bridge.live.active)
        first = app.bridge.live
        await pilot.press("r")
        await wait_for(pilot, lambda: app.bridge.live is not first and live(app).finished)
        assert len(FakeRunner.instances) == 2
        assert [s.recipe for s in FakeRunner.instances[1].specs] == [s.recipe for s in FakeRunner.instances[0].specs]
        await pilot.pause(0.4)
        assert app.screen.session is app.bridge.live  # the dashboard follows the new comparison


async def test_several_seeds_draw_a_mean_and_a_band(make_app):
    app = make_app(open_preset=pinned("dropout"), quick=True, seeds=[0, 1])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await pilot.pause(0.3)
        c = live(app)
        assert len(c.runs) == 2 * len(c.labels) and c.multi_seed
        plot = app.screen.query_one("#plot-train_loss", MetricPlot)
        assert all(len(curve.band) == 2 for curve in plot.data.curves)
        assert " s1" in screen_text(app)  # table rows name the seed


async def test_a_boundary_preset_gets_its_view_tab_fed_with_boundary_events(make_app, tmp_path: Path):
    from engine.events import Boundary

    source = pinned("optimizers").path.read_text(encoding="utf-8")
    source = source.replace('technique = "optimizers"', 'technique = "spiral-test"\nview = "boundary"')
    path = tmp_path / "spiral-test.toml"
    path.write_text(source, encoding="utf-8")
    app = make_app(open_preset=load_preset(path), quick=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        screen = app.screen
        c = live(app)
        grid = [[(i + j) % 2 for i in range(8)] for j in range(4)]
        c.add(Boundary(c.runs[0].run_id, 600, [-1.0, 1.0], [-1.0, 1.0], grid, [[0.1, 0.2, 1]], 2))
        await pilot.pause(0.3)
        assert "Boundary" in screen_text(app)
        for _ in range(3):
            await pilot.press("t")
        await pilot.pause(0.5)
        view = screen.query_one("#extra-view")
        assert c.runs[0].latest["Boundary"].step == 600
        if hasattr(view, "variants"):  # the decision-boundary widget (else its placeholder)
            assert view.variants == [c.runs[0].label]


async def test_quitting_while_runs_go_asks_first_and_closes_the_runner(make_app):
    app = make_app(open_preset=pinned("optimizers"), quick=True, hold_at=0.3)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and app.bridge.busy)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.is_running and app.bridge.busy
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    runner = FakeRunner.instances[-1]
    assert runner.closed and runner.cancelled == set(range(len(runner.specs)))


async def test_quitting_when_nothing_runs_does_not_ask(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running)


async def test_a_runner_that_cannot_start_is_a_message_not_a_crash(make_app, store):
    from tui_lab.app import DllabApp

    def broken(specs, *, device="auto", store=None):
        raise ValueError("device 'cuda' is not available: no CUDA GPU found")

    app = DllabApp(runner_factory=broken, store=store, open_preset=pinned("dropout"), quick=True, frozen=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and not app.bridge.live.active)
        c = live(app)
        assert c.finished and {r.status for r in c.runs} == {"failed"}
        assert "no CUDA GPU" in c.error
        await pilot.pause(0.3)
        assert "runner failed" in screen_text(app)


async def test_switching_the_theme_recolours_the_lines(make_app):
    app = make_app(open_preset=pinned("dropout"), quick=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await pilot.pause(0.3)
        screen = app.screen
        before = list(screen._colors)
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await pilot.pause(0.4)
        assert screen._colors != before
        plot = screen.query_one("#plot-train_loss", MetricPlot)
        assert plot.data.colors == screen._colors  # redrawn with the new theme's colours


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_header_counts_running_runs_apart_from_finished_ones(make_app, size):
    """Mid-training (a batched group's members end together) the header used to read "running 0/7":
    0 was the finished count, read as "none of 7 running". At 80 columns the toggles still fit."""
    app = make_app(open_preset=pinned("optimizers"), quick=True, hold_at=0.4)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" for r in live(app).runs))
        await pilot.press("s")  # smoothing 0.6: the longest toggles
        await pilot.pause(0.4)
        header = screen_text(app).splitlines()[1]
        assert "7 running · 0/7 ended" in header and "running 0/7" not in header, header
        assert header.rstrip().endswith("smooth 0.6 · x step"), header
        await pilot.press("C")
        await wait_for(pilot, lambda: live(app).finished)
        await pilot.pause(0.4)
        assert "cancelled 7/7" in screen_text(app).splitlines()[1]


def test_the_header_says_a_run_waits_once_others_have_ended():
    """With four runs ended and the fifth waiting for a worker the header read "starting · 4/5 ended"."""
    from textual.content import Content

    from engine.events import RunFinished, RunStarted
    from engine.recipe.config import DataSpec, Recipe, RunSpec
    from tui_lab.data.comparison import Comparison
    from tui_lab.widgets.comparison_header import progress

    c = Comparison("Five", quick=True)
    c.add_specs([RunSpec(recipe=Recipe(data=DataSpec(name="xor")), variant=f"v{i}", preset="p") for i in range(5)])

    def state() -> str:
        return Content.from_markup(progress(c)).plain

    assert state() == "starting · 0/5 ended"
    c.attach([f"r{i}" for i in range(5)])
    assert state() == "starting · 0/5 ended"  # no run has started or ended yet
    for i in range(4):
        c.add(RunStarted(f"r{i}", f"v{i}", 0, "p", "c", {}, "cpu", 10, 100, 10))
    assert state() == "4 running · 0/5 ended"
    for i in range(4):
        c.add(RunFinished(f"r{i}", "done", 100, "finished", {}, {}, 1.0))
    assert state() == "1 waiting · 4/5 ended"
    c.add(RunStarted("r4", "v4", 0, "p", "c", {}, "cpu", 10, 100, 10))
    assert state() == "1 running · 4/5 ended"
    c.add(RunFinished("r4", "done", 100, "finished", {}, {}, 1.0))
    assert state() == "finished 5/5"


def _toasts(app) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications]


async def test_a_cancelled_comparison_reads_cancelled_not_finished_and_failed(make_app):
    """`C` on dropout read "finished 4/4" and "finished: 0/4 claims hold · 4 not checked", as if the
    runs had ended and every claim failed. The header and the toast now say they were cancelled."""
    app = make_app(open_preset=pinned("dropout"), quick=True, hold_at=0.4)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" for r in live(app).runs))
        await pilot.press("C")
        await wait_for(pilot, lambda: not app.bridge.live.active and _toasts(app)[-1][0].endswith("cancelled"))
        await pilot.pause(0.4)
        header = screen_text(app).splitlines()[1]
        assert "cancelled 4/4" in header and "finished" not in header, header
        title, message = _toasts(app)[-1]
        assert title == "Dropout and DropConnect: cancelled", title
        assert "all 4 runs cancelled — claims not checked" in message and "claims hold" not in message, message


async def test_a_partly_cancelled_comparison_says_which_claims_went_unchecked(make_app):
    """One run of seven cancelled: the header counts it apart, and the toast says that the claim
    comparing it was not checked, and how the others came out."""
    app = make_app(open_preset=pinned("optimizers"), quick=True, hold_at=0.4)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" for r in live(app).runs))
        await pilot.press("down")  # Momentum
        await pilot.press("c")
        await wait_for(pilot, lambda: live(app).runs[1].status == "cancelled")
        FakeRunner.instances[-1].release()
        await wait_for(pilot, lambda: not app.bridge.live.active and _toasts(app)
                       and "finished" in _toasts(app)[-1][0])
        await pilot.pause(0.4)
        header = screen_text(app).splitlines()[1]
        assert "finished 6/7 · 1 cancelled" in header, header
        title, message = _toasts(app)[-1]
        assert title == "Optimizers: finished, 1 cancelled", title
        assert message.startswith("1 of 7 runs cancelled · 1/1 checked claims hold · 1 not checked: it needs "
                                  "the cancelled run ·"), message


async def test_on_the_layers_tab_the_arrows_switch_the_run_shown_at_once(make_app):
    """Up / down on the Layers tab pick another run (as the tab says); the panel used to keep the old
    run until the tab was left and opened again, since a finished comparison never redraws by itself."""
    from textual.widgets import Static, TabbedContent

    from tui_lab.widgets.health_panel import HealthPanel

    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        screen = app.screen
        c = live(app)
        screen.query_one("#dash-tabs", TabbedContent).active = "tab-layers"
        await pilot.pause(0.4)
        title = screen.query_one("#layers-run", Static)
        assert str(title.render()).startswith(c.run_title(c.runs[0]))
        assert "↑/↓" in str(title.render())
        await pilot.press("down", "down")  # the third run
        await pilot.pause(0.4)
        assert str(title.render()).startswith(c.run_title(c.runs[2]))
        assert screen.query_one(HealthPanel).step == c.runs[2].diagnostics[-1].step


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
async def test_the_layers_table_fits_its_width_and_every_header_is_whole(make_app, size):
    """At 100 columns the per-layer table was cut after "activation" and scrolled sideways: it now
    fits, the sparklines and then the gauge give way, and every header and number shown is whole."""
    from textual.widgets import DataTable, TabbedContent

    from tui_lab.data import fmt
    from tui_lab.widgets.health_panel import COLUMNS, HealthPanel, column_label

    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        app.screen.query_one("#dash-tabs", TabbedContent).active = "tab-layers"
        await pilot.pause(0.4)
        panel = app.screen.query_one(HealthPanel)
        table = panel.query_one(DataTable)
        assert table.row_count == len(panel.layer_stats) > 0
        assert table.virtual_size.width <= table.size.width, (table.virtual_size, table.size)
        text = screen_text(app)
        header = next(line for line in text.splitlines() if "update/weight" in line and "layer" in line)
        shown = [key for key, _ in COLUMNS if key in panel.widths]
        for key in shown:
            assert f" {column_label(key, panel.widths[key])} " in f"{header} ", (key, header)
        if "gauge" in panel.widths:  # the header's picture is the gauge's, cell for cell
            label = column_label("gauge", panel.widths["gauge"])
            at = header.index(label)
            for name in panel.layer_stats:
                row = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
                gauge = row[at:at + len(label)]
                assert len(label) == panel.widths["gauge"] and set(gauge) <= {"·", "░", "█"}, (label, gauge)
                assert all(h == g or g == "█" or h not in "·░" for h, g in zip(label, gauge, strict=True)), (label, gauge)
        assert {"layer", "ratio", "act_mean", "act_std", "dead", "saturated", "grad_norm"} <= set(shown)
        if size[0] == 100:
            assert "gauge" in shown, shown
        for name, stats in panel.layer_stats.items():
            row = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
            for number in (fmt.num(stats.get("act_mean"), 3), fmt.pct(stats.get("dead")),
                           fmt.num(stats.get("grad_norm"), 3)):
                assert f" {number} " in f"{row} ", (number, row)


async def test_the_step_column_is_as_wide_as_its_steps(make_app):
    """The step column had a least width of 11, so "600/600" stood before a wide gap."""
    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await pilot.pause(0.3)
        run = live(app).runs[0]
        steps = f"{run.step}/{run.total_steps}"
        assert app.screen.query_one(VariantTable).widths["step"] == len(steps), steps
        row = _table_rows(app)[0]
        assert f" {steps}  {run.epoch:.1f}" in row, row  # the step, then the epoch after the padding


async def test_each_loss_reading_says_what_it_is(make_app):
    """Three readings of a run's training loss, once all labelled "loss" / "train loss": the table's
    mean of the latest minibatches ("batch loss", explained by the table's tooltip), the verdict's
    first → last evaluation (a note by "Curves"), the History's final evaluation ("train loss (eval)")."""
    from tui_lab.widgets.verdict_panel import CURVES_NOTE

    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await pilot.pause(0.3)
        screen = app.screen
        table = screen.query_one(VariantTable)
        header = next(line for line in screen_text(app).splitlines() if "variant" in line and "status" in line)
        assert "batch loss" in header and "val acc" in header, header
        assert "minibatches" in str(table.tooltip) and "train loss (eval)" in str(table.tooltip)
        assert "batch loss plot" in str(table.tooltip)
        # the plot of that reading says "batch loss" too (it said "train loss", the History's name
        # for the final evaluation on the training split)
        text = screen_text(app)
        assert "batch loss · step" in text and "train loss" not in text, text
        assert screen.query_one("#plot-train_loss", MetricPlot).data.title == "batch loss"
        await pilot.press("l")
        await pilot.pause(0.3)
        assert "batch loss (log) · step" in screen_text(app)
        run = live(app).runs[0]
        assert run.train_loss == run.steps["train_loss"][-1] != run.final["train_loss"]
        await pilot.press("v")
        await pilot.pause(0.3)
        text = " ".join(screen_text(app).split())
        assert "Curves " + " ".join(CURVES_NOTE.split()) in text and "eval mode" in CURVES_NOTE


def _table_rows(app) -> list[str]:
    """The run table's rows as drawn (each starts with a run's coloured mark)."""
    return [line for line in screen_text(app).splitlines() if line.startswith(" ━━ ")]


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
async def test_the_run_table_fits_its_width_and_keeps_every_number_whole(make_app, size):
    """The dropout preset's full form at 100 columns showed "steps/" and no ETA (the columns ran off
    to the right once "loss" became "batch loss"): the columns now fit, the less important ones give
    way, and every number shown is whole."""
    from tui_lab.data import fmt

    app = make_app(open_preset=pinned("dropout"), quick=False, hold_at=0.4)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" and r.speed for r in live(app).runs))
        await pilot.pause(0.4)
        c = live(app)
        table = app.screen.query_one(VariantTable)
        assert table.virtual_size.width <= table.size.width, (table.virtual_size, table.size)
        rows = _table_rows(app)
        assert len(rows) == len(c.runs)
        for run, row in zip(c.runs, rows, strict=True):
            assert c.run_title(run) in row, row  # "DropConnect 0.5" whole at both widths
            for number in (fmt.num(run.train_loss), fmt.pct(run.last_eval("val_acc")),
                           fmt.num(run.last_eval("val_loss")), fmt.duration(run.eta)):
                assert f" {number} " in f"{row} ", (number, row)
        header = next(line for line in screen_text(app).splitlines() if "batch loss" in line and "variant" in line)
        assert header.rstrip().endswith("ETA"), header
        if size[0] == 100:  # room for the status words and the progress bars
            assert all("running" in row and "░" in row for row in rows), rows


@pytest.mark.parametrize("width", [100, 80])
async def test_a_long_header_gives_way_in_whole_pieces(width):
    """hparam-search's header at 80 columns read "… 2.5s  linear · smooth 0 · x": cut mid-way. The
    settings now go one whole piece at a time, then the title shortens with an ellipsis."""
    from textual.app import App, ComposeResult

    from engine.events import RunFinished, RunStarted
    from tui_lab.data.comparison import Comparison
    from tui_lab.widgets.comparison_header import ComparisonHeader

    class HeaderApp(App):
        def compose(self) -> ComposeResult:
            yield ComparisonHeader()

    def comparison(title: str, n: int, done: int) -> Comparison:
        c = Comparison(title, quick=True)
        for i in range(n):
            c.add(RunStarted(f"r{i}", "grid", i, "p", "c", {}, "cpu", 10, 100, 10))
            if i < done:
                c.add(RunFinished(f"r{i}", "done", 100, "finished", {}, {}, 1.0))
        return c

    settings = ["linear", "smooth 0.6", "x step"]
    whole = {"", *(p + " · ".join(settings[:k]) for k in range(1, 4) for p in ("", "loss "))}
    app = HeaderApp()
    async with app.run_test(size=(width, 3)) as pilot:
        header = app.query_one(ComparisonHeader)
        cases = [
            ("Hyperparameter search: grid against random", 64, 64, "finished 64/64  2.5s"),
            ("Reading learning curves: underfitting, normal, overfitting", 9, 2, "7 running · 2/9 ended  2.5s"),
        ]
        for title, n, done, middle in cases:
            header.show(comparison(title, n, done), log=False, smoothing=0.6, x_axis="step", elapsed=2.5)
            await pilot.pause()
            line = screen_text(app).splitlines()[0].strip()
            assert len(line) <= width and middle in line, line
            head, rest = line.split(middle)
            assert rest.strip() in whole, line  # no "· x" left dangling
            assert head.strip() == f"{title} (quick)" or (head.strip().endswith("… (quick)") and not rest), line


async def test_the_clock_stops_when_the_last_run_ends(make_app, monkeypatch):
    """The header's time went on counting after "finished" (8.6 s → 8.8 s, 50 s → 51 s) while the
    runner wound its workers down: it stops when the comparison's last run has ended."""
    import re
    import time

    real_close = FakeRunner.close

    def slow_close(self, timeout: float = 5.0) -> None:  # worker processes take a while to exit
        time.sleep(6.0)  # long enough to see the clock held under a loaded machine too
        real_close(self, timeout)

    monkeypatch.setattr(FakeRunner, "close", slow_close)
    app = make_app(open_preset=pinned("optimizers"), quick=True, frozen=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)

        def clock() -> str:
            header = screen_text(app).splitlines()[1]
            found = re.search(r"finished 7/7  (\S+)", header)
            assert found, header
            return found.group(1)

        await pilot.pause(0.3)
        first = clock()
        await pilot.pause(0.8)
        assert app.bridge.live.active  # still closing its workers
        assert clock() == first
        await wait_for(pilot, lambda: not app.bridge.live.active)
        await pilot.pause(0.3)
        assert clock() == first


SURFACES_PRESET = """
title = "Two surfaces"
technique = "two-surfaces"
chapter = "optimization"
step = "optimization"
benefit = "optimization"
summary = "GD on a bowl, Adam on Rosenbrock."
view = "surface"
explain = "Two paths."

[base.data]
name = "surface"
surface = "quadratic"
start = [-5.0, 1.0]

[base.train]
optimizer = "sgd"
lr = 0.01
steps = 40

[[variants]]
name = "Bowl · GD"

[[variants]]
name = "Banana · Adam"
train = { optimizer = "adam", lr = 0.1 }
[variants.data]
surface = "rosenbrock"
start = [-1.5, 2.0]
"""


class SurfaceRunner(FakeRunner):
    """The fake runner on the real events of 2-D surface runs (they train in a blink, in-process)."""

    def __init__(self, specs, **kwargs) -> None:
        super().__init__(specs, **kwargs)
        from engine.runs.executor import train_one as train

        for i, (spec, run_id) in enumerate(zip(self.specs, self.run_ids, strict=True)):
            events: list = []
            train(spec, events.append, run_id=run_id)
            self.queues[i] = events
        self.limits = [len(q) for q in self.queues]


def surfaces_app(store, tmp_path: Path):
    from tui_lab.app import DllabApp

    path = tmp_path / "two-surfaces.toml"
    path.write_text(SURFACES_PRESET, encoding="utf-8")

    def runner_factory(specs, *, device="auto", store=None):
        return SurfaceRunner(specs, device=device, store=store)

    return DllabApp(runner_factory=runner_factory, store=store, open_preset=load_preset(path), quick=True,
                    frozen=True)


async def test_surface_runs_say_they_have_no_layers(store, tmp_path: Path):
    """The Layers tab of a surface comparison said "Layer health appears with the first
    diagnostics." after the runs had ended: these runs have no layers, and it now says so."""
    from textual.widgets import TabbedContent

    app = surfaces_app(store, tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        app.screen.query_one("#dash-tabs", TabbedContent).active = "tab-layers"
        await pilot.pause(0.4)
        text = " ".join(screen_text(app).split())
        assert "no network layers to show" in text and "first diagnostics" not in text, text
        assert "update/weight" not in text  # no table header over nothing


async def test_a_finished_run_without_diagnostics_says_none_were_recorded(make_app, monkeypatch):
    from textual.widgets import TabbedContent

    from engine.events import Diagnostics

    real_init = FakeRunner.__init__

    def no_diagnostics(self, specs, **kwargs):
        real_init(self, specs, **kwargs)
        self.queues = [[e for e in q if not isinstance(e, Diagnostics)] for q in self.queues]
        self.limits = [len(q) for q in self.queues]

    monkeypatch.setattr(FakeRunner, "__init__", no_diagnostics)
    app = make_app(open_preset=pinned("dropout"), quick=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        app.screen.query_one("#dash-tabs", TabbedContent).active = "tab-layers"
        await pilot.pause(0.4)
        text = " ".join(screen_text(app).split())
        assert "No diagnostics were recorded in these runs." in text and "first diagnostics" not in text, text


@pytest.mark.parametrize("size", [(100, 30), (80, 24)])
async def test_the_surface_keys_work_from_the_tab_bar_and_show_in_the_footer(store, tmp_path: Path, size):
    """After a surface run the Surface tab read "surface 1/2" but `]` did nothing while the tab bar
    had the focus, and the footer showed the key only once the plot had it."""
    from textual.widgets import Tabs

    from tui_lab.widgets.surface_plot import SurfacePlot

    app = surfaces_app(store, tmp_path)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        for _ in range(3):
            await pilot.press("t")
        await pilot.pause(0.4)
        screen = app.screen
        assert isinstance(app.focused, Tabs), app.focused
        plot = screen.query_one(SurfacePlot)
        assert len(plot.surfaces) == 2 and plot.index == 0
        footer = screen_text(app).rstrip("\n").splitlines()[-1]
        assert "] Next surface" in footer, footer
        await pilot.press("]")
        await pilot.pause(0.2)
        assert plot.index == 1 and "surface 2/2" in screen_text(app)
        await pilot.press("[")
        await pilot.pause(0.2)
        assert plot.index == 0 and "surface 1/2" in screen_text(app)
        await pilot.press("e")
        assert plot.every_seed
        await pilot.press("t")  # the Curves tab: no surface keys
        await pilot.pause(0.3)
        assert "Next surface" not in screen_text(app).rstrip("\n").splitlines()[-1]
        await pilot.press("]")
        assert plot.index == 0


async def test_a_comparison_whose_runs_failed_reads_failed_and_says_why(make_app):
    """A recipe too big for memory: the run failed before its first evaluation. The header read
    "finished 1/1", the toast "1 ended failed" and the plots "not measured in these runs"; the
    reason was only in the Verdict."""
    from engine.events import RunFinished, RunStarted
    from tui_lab.app import DllabApp

    reason = "out of memory on cpu (it asked for 149 GiB at once): try a smaller batch_size or model"

    class FailingRunner(FakeRunner):
        def __init__(self, specs, **kwargs) -> None:
            super().__init__(specs, **kwargs)
            self.queues = [[q[0], RunFinished(rid, "failed", 0, reason, {}, {}, 0.0)]
                           for q, rid in zip(self.queues, self.run_ids, strict=True)]
            self.limits = [2] * len(self.queues)
            assert all(isinstance(q[0], RunStarted) for q in self.queues)

    app = make_app(open_preset=pinned("dropout"), quick=True)
    assert isinstance(app, DllabApp)
    app.bridge.runner_factory = lambda specs, *, device="auto", store=None: FailingRunner(specs, device=device,
                                                                                          store=store)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished and _toasts(app))
        await pilot.pause(0.4)
        header = screen_text(app).splitlines()[1]
        assert "failed 4/4" in header and "finished" not in header, header
        title, message = _toasts(app)[-1]
        assert title == "Dropout and DropConnect: failed", title
        assert f"4 of 4 runs failed: {reason}" in message, message
        plot = app.screen.query_one("#plot-val_acc", MetricPlot)
        assert plot.data.empty == f"no points: all 4 runs failed: {reason}", plot.data.empty


async def test_the_verdict_wraps_under_its_headings_at_80_columns(make_app):
    """A claim's text and evidence that wrap stay in their column ("    ...", under "✔ holds ")
    instead of running on at the left edge, where they read as new entries."""
    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await pilot.press("v")
        await pilot.pause(0.5)
        lines = screen_text(app).splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip() == "Claims")
        end = next(i for i, line in enumerate(lines) if line.strip().startswith("Curves ("))
        claims = [line for line in lines[start + 1:end] if line.strip()]
        assert len(claims) > 4, claims  # some wrapped
        for line in claims:
            assert line.startswith((" ✔ holds ", " ✘ fails ", "     ")), lines[start:end]


class DetachedFake(FakeRunner):
    """A comparison the runs service trains: closing only stops following (the runs go on)."""

    detached = True

    def close(self, timeout: float = 5.0) -> None:
        self.closed = True


def _detached_app(store, dllab_home):
    from tui_lab.app import DllabApp

    def factory(specs, *, device="auto", store=None):
        return DetachedFake(specs, device=device, store=store, hold_at=0.3)

    return DllabApp(runner_factory=factory, store=store, presets_dir=dllab_home / "presets",
                    open_preset=pinned("optimizers"), quick=True, frozen=True)


@pytest.mark.parametrize("answer", ["y", "s"])
async def test_quitting_while_the_runs_service_trains_asks_to_keep_or_cancel(store, dllab_home, answer):
    """Runs in the background service outlive the app: quitting asks whether to keep them (the
    default) or cancel them; keeping them only stops following."""
    app = _detached_app(store, dllab_home)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and app.bridge.detached_going)
        assert not app.bridge.busy  # not the app's own workers: no "cancel them and quit?"
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "background" in app.screen.question and app.screen.yes == "Keep running"
        await pilot.press(answer)
        await wait_for(pilot, lambda: not app.is_running, what="the app to exit")
    runner = FakeRunner.instances[-1]
    assert runner.closed
    assert runner.cancelled == (set() if answer == "y" else set(range(len(runner.specs))))
