"""The base of every plot: a textual-plotext plot rebuilt from its data on each show and resize."""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

TICKS = 5
"""How many ticks plotext puts on an axis it labels itself (its default ``xfrequency``)."""


def integer_ticks(lo: float, hi: float, count: int = TICKS) -> tuple[list[float], list[str]]:
    """Ticks for an axis of whole numbers (steps): where plotext would put its own `count` ticks
    (evenly from `lo` to `hi`, the data's range), rounded to integers and kept inside the range, so
    that no label reads 132.5 on a step axis. ``([], [])`` when no integer lies in the range."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    lo, hi = min(lo, hi), max(lo, hi)
    first, last = math.ceil(lo - 1e-9), math.floor(hi + 1e-9)
    if first > last:
        return [], []
    if hi - lo < 1e-9:  # a single x: plotext widens the range around it; label the point itself
        ticks = [first]
    else:
        n = max(2, count)
        spots = (lo + k * (hi - lo) / (n - 1) for k in range(n))
        ticks = sorted({min(last, max(first, math.floor(x + 0.5))) for x in spots})
    return [float(t) for t in ticks], [str(t) for t in ticks]


class ReplotPlot(PlotextPlot):
    """plotext keeps no state we rely on between builds: `replot` draws everything from the
    widget's data, on a fresh figure (`fresh_plot`), whenever the data or the size changes."""

    def on_resize(self) -> None:
        self.replot()

    def fresh_plot(self):
        """The plotext module, with the previous figure's data and settings cleared."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        return plt

    def draw_empty(self, message: str) -> None:
        """No data: the message in the middle of a blank, unlabelled frame."""
        plt = self.plt
        plt.xticks([])
        plt.yticks([])
        plt.text(message, 0.5, 0.5, alignment="center")
        plt.xlim(0, 1)
        plt.ylim(0, 1)

    def integer_xticks(self, xs_lo: float, xs_hi: float) -> None:
        """Label the x axis with whole numbers only (an axis of steps), over the data's range."""
        ticks, labels = integer_ticks(xs_lo, xs_hi)
        if ticks:
            self.plt.xticks(ticks, labels)

    def replot(self) -> None:
        raise NotImplementedError
