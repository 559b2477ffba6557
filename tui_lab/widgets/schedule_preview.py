"""A small plot of a recipe's learning-rate schedule over its steps (``engine.recipe.schedules.schedule_curve``),
for the Builder's Train tab. The points are computed off the UI thread (the engine imports torch);
this only draws them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual.color import Color

from tui_lab.widgets.metric_plot import log_ticks
from tui_lab.widgets.replot import ReplotPlot


class SchedulePreview(ReplotPlot):
    DEFAULT_CSS = """
    SchedulePreview {
        height: 8;
        min-height: 5;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.points: list[tuple[int, float]] = []
        self.total: int | None = None
        """The budget in steps: the step axis ends there (the last point is at step ``total - 1``)."""
        self.plot_title = "learning rate schedule"
        self.message = "the schedule appears when the train fields are valid"

    def show(self, points: Sequence[tuple[int, float]], title: str = "", message: str = "",
             total: int | None = None) -> None:
        """Draw (step, lr) points over a budget of `total` steps (the last point's lr holds to its
        end); with no points, `message` says why."""
        self.points = list(points)
        self.total = total
        self.plot_title = title or self.plot_title
        self.message = message or self.message
        self.replot()

    def replot(self) -> None:
        plt = self.fresh_plot()
        pts = [(s, lr) for s, lr in self.points if math.isfinite(lr)]
        if not pts:
            self.draw_empty(self.message)
            self.refresh()
            return
        positive = [lr for _, lr in pts if lr > 0]
        # a log axis for decays over decades (step, exponential); not for one that ends near 0 (cosine)
        log = (bool(positive) and len(positive) == len(pts)
               and 1e-4 * max(positive) <= min(positive) <= 1e-2 * max(positive))
        if self.total is not None and self.total > pts[-1][0]:
            pts.append((self.total, pts[-1][1]))  # the rate of the last step, to the budget's end
        xs = [float(s) for s, _ in pts]
        ys = [math.log10(lr) for _, lr in pts] if log else [lr for _, lr in pts]
        plt.title(self.plot_title + (" (log)" if log else ""))
        text = self.app.theme_variables.get("accent") if self.is_mounted else None
        plt.plot(xs, ys, marker="braille", color=Color.parse(text).rgb if text else None)
        self.integer_xticks(min(xs), max(xs))  # the x axis counts steps
        if log:
            ticks, labels = log_ticks(min(ys), max(ys), self.canvas_rows())
            if ticks:
                plt.yticks(ticks, labels)
        else:
            top = max(ys)
            plt.ylim(0, top * 1.05 if top > 0 else 1)
            self.nice_yticks(0.0, top if top > 0 else 1.0)  # 0.00 0.01 … 0.05, not 0.0175 0.0350 0.0525
        self.refresh()
