"""The LR range test's curve: smoothed loss against the learning rate on a log axis (the data are
log-transformed here), with vertical lines at the suggestion, the minimum and the steepest descent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from textual.color import Color

from tui_lab.data.series import downsample
from tui_lab.data.tools import log_x
from tui_lab.widgets.metric_plot import log_ticks
from tui_lab.widgets.replot import ReplotPlot

MARK_TOKENS = {"suggestion": "success", "minimum": "error", "steepest": "warning"}
"""The theme colour of each marked rate."""


@dataclass
class LRCurveData:
    points: Sequence[tuple[float, float]] = field(default_factory=list)
    """(lr, smoothed loss), the blow-up clipped (``LRFindResult.display_curve()``)."""
    marks: Sequence[tuple[str, float | None]] = field(default_factory=list)
    """(name, lr) drawn as vertical lines: ``suggestion``, ``minimum``, ``steepest``."""
    empty: str = "run the test to see the curve"


class LRCurvePlot(ReplotPlot):
    DEFAULT_CSS = """
    LRCurvePlot {
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.data = LRCurveData()

    def show(self, data: LRCurveData) -> None:
        self.data = data
        self.replot()

    def _color(self, token: str) -> tuple[int, int, int] | None:
        text = self.app.theme_variables.get(token) if self.is_mounted else None
        try:
            return Color.parse(text).rgb if text else None
        except Exception:  # noqa: BLE001 - a theme without that token
            return None

    def replot(self) -> None:
        plt = self.fresh_plot()
        d = self.data
        xs, ys = log_x(d.points)
        if not xs:
            self.draw_empty(d.empty)
            self.refresh()
            return
        plt.title("smoothed loss · learning rate (log)")
        xs, ys = downsample(xs, ys, max(16, 2 * max(1, self.size.width)))
        plt.plot(xs, ys, marker="braille", color=self._color("primary"))
        finite = [y for y in ys if math.isfinite(y)]
        if finite:
            self.nice_yticks(min(finite), max(finite))
        lo, hi = min(xs), max(xs)
        for name, lr in d.marks:
            if lr is None or not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
                continue
            x = math.log10(lr)
            plt.vline(x, color=self._color(MARK_TOKENS.get(name, "accent")))
            lo, hi = min(lo, x), max(hi, x)
        ticks, labels = log_ticks(lo, hi)
        if ticks:
            plt.xticks(ticks, labels)
        self.refresh()
