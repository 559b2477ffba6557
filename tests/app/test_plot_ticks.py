"""Tick labels as drawn: a step axis shows whole numbers only (epochs may be fractional)."""

from __future__ import annotations

import math
import re

import pytest
from textual.app import App, ComposeResult

from tui_lab.data.comparison import Curve
from tui_lab.widgets.metric_plot import MetricPlot, PlotData, percent_ticks
from tui_lab.widgets.replot import integer_ticks
from tui_lab.widgets.schedule_preview import SchedulePreview

from .conftest import screen_text

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


class PlotApp(App):
    def compose(self) -> ComposeResult:
        yield MetricPlot("train_loss", id="plot")
        yield SchedulePreview(id="schedule")


def x_tick_labels(text: str, top: int) -> list[str]:
    """The labels under the first x axis (the line after its └…┘ corner) at or below line `top`."""
    lines = text.splitlines()
    for i in range(top, len(lines) - 1):
        if "└" in lines[i]:
            return NUMBER.findall(lines[i + 1])
    raise AssertionError(f"no x axis below line {top}:\n{text}")


def _curve(xs: list[float]) -> Curve:
    return Curve(label="A", color=0, xs=xs, ys=[1.0 / (1 + i) for i in range(len(xs))])


async def test_a_step_axis_is_labelled_with_whole_numbers_and_an_epoch_axis_may_not_be():
    # 70..600: plotext's own five ticks would be 70, 202.5, 335, 467.5, 600
    xs = [float(s) for s in range(70, 601, 10)]
    app = PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        plot = app.query_one(MetricPlot)
        plot.show(PlotData(title="train loss", curves=[_curve(xs)], x_axis="step"))
        await pilot.pause()
        labels = x_tick_labels(screen_text(app), 0)
        assert len(labels) >= 3 and labels[0] == "70" and labels[-1] == "600", labels
        assert all(float(label).is_integer() and "." not in label for label in labels), labels

        # the same numbers as epochs keep plotext's own (fractional) ticks
        plot.show(PlotData(title="train loss", curves=[_curve(xs)], x_axis="epoch"))
        await pilot.pause()
        assert "202.5" in x_tick_labels(screen_text(app), 0)

        # a small run: 3..13 steps would give 5.5 and 10.5
        plot.show(PlotData(title="train loss", curves=[_curve([float(s) for s in range(3, 14)])], x_axis="step"))
        await pilot.pause()
        labels = x_tick_labels(screen_text(app), 0)
        assert labels and all("." not in label for label in labels), labels


async def test_the_schedule_preview_counts_steps_in_whole_numbers():
    app = PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        preview = app.query_one(SchedulePreview)
        preview.show([(s, 0.1 * (1 - s / 150)) for s in range(0, 151, 5)])  # 0..150: 37.5, 112.5 by default
        await pilot.pause()
        text = screen_text(app)
        top = text.splitlines().index(next(line for line in text.splitlines() if "learning rate schedule" in line))
        labels = x_tick_labels(text, top)
        assert labels[0] == "0" and labels[-1] == "150" and all("." not in label for label in labels), labels


def test_integer_ticks_round_plotexts_ticks_and_stay_in_range():
    assert integer_ticks(70, 600) == ([70.0, 203.0, 335.0, 468.0, 600.0], ["70", "203", "335", "468", "600"])
    assert integer_ticks(20, 600)[1] == ["20", "165", "310", "455", "600"]  # already whole: unchanged
    assert integer_ticks(0, 2)[1] == ["0", "1", "2"]  # no repeats
    assert integer_ticks(0.4, 2.6)[1] == ["1", "2"]  # inside the range
    assert integer_ticks(20, 20) == ([20.0], ["20"])
    assert integer_ticks(0.2, 0.8) == ([], [])
    assert integer_ticks(float("inf"), 3) == ([], [])


async def test_the_schedule_preview_s_step_axis_ends_at_the_budget():
    """A 1000-step budget's schedule has points at steps 0..999: the axis used to end at 999."""
    app = PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        preview = app.query_one(SchedulePreview)
        preview.show([(s, 0.05 * (1 - s / 1000)) for s in range(0, 1000, 9)] + [(999, 0.05 * 1e-3)],
                     "lr: linear, 1000 steps", total=1000)
        await pilot.pause()
        text = screen_text(app)
        top = text.splitlines().index(next(line for line in text.splitlines() if "1000 steps" in line))
        labels = x_tick_labels(text, top)
        assert labels[0] == "0" and labels[-1] == "1000" and "999" not in labels, labels


def y_tick_labels(text: str, top: int) -> list[str]:
    """The labels left of the first plot's y axis (before its ┤ ticks) from line `top` to its └ corner."""
    labels = []
    for line in text.splitlines()[top:]:
        if "└" in line:
            return labels
        head = line.split("┤")[0] if "┤" in line else ""
        if head.strip():
            labels.append(head.strip())
    raise AssertionError(f"no plot below line {top}:\n{text}")


async def test_an_accuracy_axis_reads_in_percent_like_the_table():
    """The val accuracy plot's axis read 0.463 while the table reads 46.3%: it now reads 20%, 30%, …
    (round percentages inside the data's range); other plots keep plotext's own labels."""
    app = PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        plot = app.query_one(MetricPlot)
        xs = [float(s) for s in range(0, 601, 60)]
        accuracy = Curve(label="A", color=0, xs=xs, ys=[0.104 + 0.053 * i for i in range(len(xs))])
        plot.show(PlotData(title="val accuracy", curves=[accuracy], percent=True))
        await pilot.pause()
        labels = y_tick_labels(screen_text(app), 0)
        assert labels and all(re.fullmatch(r"\d+%", label) for label in labels), labels
        assert [int(label[:-1]) % 10 for label in labels] == [0] * len(labels), labels
        assert len(labels) >= 3 and "60%" in labels and "20%" in labels, labels

        plot.show(PlotData(title="val accuracy", curves=[accuracy]))
        await pilot.pause()
        assert all("%" not in label for label in y_tick_labels(screen_text(app), 0))


def test_percent_ticks_are_round_and_inside_the_range():
    assert percent_ticks(0.104, 0.634) == ([0.2, 0.3, 0.4, 0.5, 0.6], ["20%", "30%", "40%", "50%", "60%"])
    assert percent_ticks(0.55, 0.63)[1] == ["56%", "58%", "60%", "62%"]
    assert percent_ticks(0.9012, 0.9048)[1] == ["90.2%", "90.3%", "90.4%"]
    assert percent_ticks(0.0, 1.0, most=3)[1] == ["0%", "50%", "100%"]
    ticks, labels = percent_ticks(0.6, 0.6)  # a flat line: plotext draws 0.3..0.9
    assert ticks[0] >= 0.3 and ticks[-1] <= 0.9 and "60%" in labels
    assert percent_ticks(float("nan"), 1.0) == ([], [])


async def test_the_dashboard_s_accuracy_plot_is_in_percent(make_app):
    from .conftest import live, pinned, wait_for

    app = make_app(open_preset=pinned("optimizers"), quick=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.bridge.live is not None and live(app).finished)
        await pilot.pause(0.3)
        assert app.screen.query_one("#plot-val_acc", MetricPlot).data.percent
        assert not app.screen.query_one("#plot-train_loss", MetricPlot).data.percent
        text = screen_text(app)
        assert re.search(r"│ \d0%┤", text), text  # the accuracy plot's axis, right of the loss plot


def _steps(labels: list[str]) -> list[float]:
    values = [float(label) for label in labels]
    return [round(a - b, 9) for a, b in zip(values, values[1:], strict=False)]


def _round_step(step: float) -> bool:
    mantissa = abs(step) / 10 ** math.floor(math.log10(abs(step)))
    return any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))


def test_nice_ticks_are_round_evenly_spaced_and_apart():
    from tui_lab.widgets.replot import nice_ticks

    # the reported axes: plotext's 7 ticks on a short plot, two of them on one row
    assert nice_ticks(0.14, 1.72, 8)[1] == ["0.5", "1.0", "1.5"]
    assert nice_ticks(-4.0, 170.0, 9)[1] == ["0", "50", "100", "150"]
    assert nice_ticks(0.14, 1.72, 16)[1] == ["0.25", "0.50", "0.75", "1.00", "1.25", "1.50"]
    assert nice_ticks(0.6, 0.6)[1] == ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]  # plotext's 0.3..0.9
    assert nice_ticks(1e-5, 3e-5, 10)[1] == ["1.0e-5", "1.5e-5", "2.0e-5", "2.5e-5", "3.0e-5"]
    assert nice_ticks(0.14, 1.72, 3) == ([0.14, 1.72], ["0.14", "1.72"])  # no room for two round values
    assert nice_ticks(float("nan"), 1.0) == ([], [])
    for rows in range(3, 40):
        for lo, hi in ((0.14, 1.72), (-4.0, 170.0), (0.05, 4.36), (-1.0, 3.0), (2.2e-3, 2.9e-3)):
            ticks, labels = nice_ticks(lo, hi, rows)
            assert len(ticks) >= 2 and lo - 1e-12 <= ticks[0] and ticks[-1] <= hi + 1e-12, (rows, lo, hi, labels)
            steps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
            assert all(math.isclose(s, steps[0]) for s in steps), (rows, labels)
            cells = [math.floor(round(0.5 + (rows - 1) * (t - lo) / (hi - lo), 8)) for t in ticks]
            assert len(set(cells)) == len(cells), (rows, lo, hi, labels)  # no two on one row
            assert len({len(label.split(".")[-1]) for label in labels if "." in label}) <= 1, labels


@pytest.mark.parametrize("height", range(9, 31, 3))
async def test_a_loss_axis_keeps_every_tick_evenly_spaced(height):
    """At 80×24 the loss axis read "1.72 1.46 1.19 0.67 0.40 0.14": plotext put 0.93 on the row
    of another tick, so one step looked twice as long. The ticks are now round values, evenly
    spaced, each on a row of its own, at every height."""
    app = PlotApp()
    async with app.run_test(size=(60, height)) as pilot:
        app.query_one(SchedulePreview).display = False
        plot = app.query_one(MetricPlot)
        xs = [float(s) for s in range(0, 801, 10)]
        loss = Curve(label="A", color=0, xs=xs, ys=[0.14 + 1.58 * math.exp(-i / 12) for i in range(len(xs))])
        plot.show(PlotData(title="batch loss", curves=[loss]))
        await pilot.pause()
        labels = y_tick_labels(screen_text(app), 0)
        assert len(labels) >= 2, labels
        steps = _steps(labels)
        assert len(set(steps)) == 1 and _round_step(steps[0]), labels
        rows = [i for i, line in enumerate(screen_text(app).splitlines()) if "┤" in line.split("│")[0]]
        gaps = {b - a for a, b in zip(rows, rows[1:], strict=False)}
        apart = 2 if height >= 12 else 1  # a blank row between ticks where the plot has 8 rows or more
        assert len(rows) == len(labels) and min(gaps) >= apart and max(gaps) - min(gaps) <= 1, (labels, rows)


class ToolPlotsApp(App):
    def compose(self) -> ComposeResult:
        from tui_lab.widgets.lr_curve_plot import LRCurvePlot
        from tui_lab.widgets.scatter_plot import ScatterPlot

        yield LRCurvePlot(id="lr")
        yield ScatterPlot(id="scatter")


@pytest.mark.parametrize("which", ["lr", "scatter"])
async def test_the_lr_test_and_search_plots_read_round_evenly_spaced_values(which):
    """The LR range test's loss axis read "3.35 3.11 2.86 2.62 …" and the search scatter's
    "2.33 1.97 1.60 …" (plotext's own ticks); they now label round values as the curves do."""
    from tui_lab.widgets.lr_curve_plot import LRCurveData
    from tui_lab.widgets.scatter_plot import ScatterData

    app = ToolPlotsApp()
    async with app.run_test(size=(70, 22)) as pilot:
        app.query_one("#scatter" if which == "lr" else "#lr").display = False
        lrs = [10 ** (-5 + k / 10) for k in range(50)]
        losses = [1.88 + 1.47 / (1 + math.exp((k - 25) / 4)) for k in range(50)]
        if which == "lr":
            app.query_one("#lr").show(LRCurveData(points=list(zip(lrs, losses, strict=True))))
        else:
            app.query_one("#scatter").show(ScatterData(series=[("random", lrs, losses)], log_x=True))
        await pilot.pause()
        labels = y_tick_labels(screen_text(app), 0)
        steps = _steps(labels)
        assert len(labels) >= 2 and len(set(steps)) == 1 and _round_step(steps[0]), labels


def test_a_log_axis_within_a_decade_reads_round_values_not_only_its_ends():
    """A val loss from 3.14 down to 1.18 on the log scale showed only "3.14" and "1.18": the 1×, 2×,
    5× marks left one tick. Round values of the data's own scale now fill it, rows apart."""
    from tui_lab.widgets.metric_plot import log_ticks

    lo, hi = math.log10(1.18), math.log10(3.14)
    ticks, labels = log_ticks(lo, hi, cells=10)
    assert labels == ["1.5", "2.0", "2.5", "3.0"], labels
    assert all(lo <= t <= hi for t in ticks)
    rows = [9 * (t - lo) / (hi - lo) for t in ticks]
    assert min(b - a for a, b in zip(rows, rows[1:], strict=False)) >= 1
    assert log_ticks(lo, hi, cells=4)[1] == ["1.18", "3.14"]  # too short for three: the ends
    assert log_ticks(math.log10(1e-4), 0.0, cells=10)[1] == ["1e-4", "1e-3", "0.01", "0.1", "1"]  # decades stay
    assert log_ticks(1.0, 5.0, cells=20)[1] == ["10", "100", "1000", "1e4", "1e5"]  # not "1e+03" beside "1e4"


async def test_the_schedule_preview_s_rate_axis_reads_round_values():
    """A constant lr 0.05 read 0.0525 / 0.0350 / 0.0175 / 0.0000 (plotext's own ticks)."""
    app = PlotApp()
    async with app.run_test(size=(100, 30)) as pilot:
        preview = app.query_one(SchedulePreview)
        preview.show([(s, 0.05) for s in range(0, 101, 5)])
        await pilot.pause()
        lines = screen_text(app).splitlines()
        top = lines.index(next(line for line in lines if "learning rate schedule" in line))
        labels = [m.group(1) for line in lines[top:] if (m := re.match(r"\s*(\d+\.\d+)\s*[┤┼│]", line))]
        assert labels and "0.05" in [f"{float(x):g}" for x in labels], labels
        assert all(round(float(x) * 100, 9).is_integer() for x in labels), labels  # 0.00, 0.01, ... 0.05


async def test_a_scatter_of_several_series_keys_them_in_its_title_not_over_its_points():
    """plotext's legend box sat inside the plot's top-left corner, over the points there."""
    from tui_lab.widgets.scatter_plot import ScatterData, ScatterPlot

    class ScatterApp(App):
        def compose(self) -> ComposeResult:
            yield ScatterPlot(id="scatter")

    app = ScatterApp()
    async with app.run_test(size=(90, 24)) as pilot:
        plot = app.query_one(ScatterPlot)
        plot.show(ScatterData(title="val_loss", series=[("grid", [1e-4, 1e-3], [2.3, 1.0]),
                                                        ("random", [1e-2, 1e-1], [0.8, 2.0])], log_x=True))
        await pilot.pause()
        lines = screen_text(app).splitlines()
        title = next(i for i, line in enumerate(lines) if "val_loss" in line)
        assert "● grid" in lines[title] and "x random" in lines[title], lines[title]
        assert not any("grid" in line for line in lines[title + 1:]), lines  # no legend box in the plot


async def test_an_empty_plot_wraps_its_message_to_its_width():
    """"no points: the run failed: out of memory on cpu (…)" was one line, cut at both edges."""
    app = PlotApp()
    message = "no points: the run failed: out of memory on cpu (it asked for 149 GiB at once): try a smaller model"
    async with app.run_test(size=(50, 30)) as pilot:
        app.query_one(MetricPlot).show(PlotData(title="val accuracy", empty=message))
        await pilot.pause()
        text = " ".join(screen_text(app).replace("│", " ").split())
        assert message in text, text
