"""Tick labels as drawn: a step axis shows whole numbers only (epochs may be fractional)."""

from __future__ import annotations

import re

from textual.app import App, ComposeResult

from tui_lab.data.comparison import Curve
from tui_lab.widgets.metric_plot import MetricPlot, PlotData
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
