"""Points of several series (a search's trials: score against one hyperparameter), on a log or
linear x axis. The log scale is applied to the data here (ticks labelled with the real values)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tui_lab.data.tools import log_x
from tui_lab.palette import series_colors
from tui_lab.widgets.metric_plot import log_ticks
from tui_lab.widgets.replot import ReplotPlot

MARKERS = ("●", "x", "+", "◆", "*", "o", "#", "%")
"""A marker per series, so they stay apart without colour too."""


@dataclass
class ScatterData:
    series: list[tuple[str, Sequence[float], Sequence[float]]] = field(default_factory=list)
    """(name, xs, ys) per series, in the real units (not log-transformed)."""
    log_x: bool = False
    title: str = ""
    xlabel: str = ""
    empty: str = "no points yet"
    best: tuple[float, float] | None = None
    """A point to ring (the best trial), in real units."""


class ScatterPlot(ReplotPlot):
    """``show(ScatterData)``; colours follow the app's theme (the dashboard's series colours)."""

    DEFAULT_CSS = """
    ScatterPlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.data = ScatterData()

    def show(self, data: ScatterData) -> None:
        self.data = data
        self.replot()

    def replot(self) -> None:
        plt = self.fresh_plot()
        d = self.data
        # the series' key goes in the title: plotext draws a legend box inside the plot's top-left
        # corner, over the points there (a search's small rates at a high loss were hidden by it)
        key = "  ".join(f"{MARKERS[i % len(MARKERS)]} {name}" for i, (name, _, _) in enumerate(d.series)
                        ) if len(d.series) > 1 else ""
        if d.title or key:
            plt.title(f"{d.title}  ·  {key}" if d.title and key else d.title or key)
        colors = series_colors(self.app.theme_variables, max(1, len(d.series))) if self.is_mounted else []
        all_x: list[float] = []
        all_y: list[float] = []
        for i, (_name, xs, ys) in enumerate(d.series):
            if d.log_x:
                px, py = log_x(zip(xs, ys, strict=True))
            else:
                pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
                px, py = [p[0] for p in pairs], [p[1] for p in pairs]
            if not px:
                continue
            all_x += px
            all_y += [y for y in py if math.isfinite(y)]
            color = colors[i % len(colors)].rgb if colors else None
            plt.scatter(px, py, marker=MARKERS[i % len(MARKERS)], color=color)
        if d.best is not None and all_x:
            bx, by = d.best
            if (not d.log_x or bx > 0) and math.isfinite(by):
                plt.scatter([math.log10(bx) if d.log_x else bx], [by], marker="◎")
        if all_y:
            self.nice_yticks(min(all_y), max(all_y))  # round values, evenly spaced (as the curves' axes)
        if not all_x:
            self.draw_empty(d.empty)
        elif d.log_x:
            ticks, labels = log_ticks(min(all_x), max(all_x))
            if ticks:
                plt.xticks(ticks, labels)
        if d.xlabel:
            plt.xlabel(d.xlabel + (" (log)" if d.log_x else ""))
        self.refresh()
