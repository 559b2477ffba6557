"""One metric against step, epoch or time: a line per variant (and a faint min/max band per
variant that has several seeds). The only place besides other widgets here that calls plotext."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from textual.color import Color

from tui_lab.data.comparison import Curve
from tui_lab.data.series import downsample
from tui_lab.widgets.replot import ReplotPlot, plot_range

X_LABELS = {"step": "step", "epoch": "epoch", "time": "seconds"}


@dataclass
class PlotData:
    """What one redraw draws: the curves and how to label them."""

    title: str
    curves: list[Curve] = field(default_factory=list)
    colors: list[Color] = field(default_factory=list)
    band_colors: list[Color] = field(default_factory=list)
    x_axis: str = "step"
    log: bool = False
    percent: bool = False
    """Fractions drawn against an axis labelled in percent (accuracies: 46%, as the table shows them)."""
    empty: str = "waiting for the first points"


def _rgb(color: Color) -> tuple[int, int, int]:
    return color.rgb


def log_ticks(lo: float, hi: float, cells: int = 0, gap: int = 1) -> tuple[list[float], list[str]]:
    """Ticks for data already in log10: at powers of ten (and 2×, 5× when the range is small), on an
    axis of `cells` rows (0: not known) at least `gap` rows apart: the 2× and 5× go first, then
    every other power of ten (every fifth, …), so that no two labels fall on one row (the second
    overwrote the first, and a step of the axis looked twice as long)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    if hi - lo < 1e-9:
        return [lo], [_pow_label(lo)]

    def room(step: float) -> bool:
        return cells <= 1 or (cells - 1) * step / (hi - lo) >= gap

    ticks: list[float] = []
    if hi - lo < 2.5 and room(math.log10(2)):
        for k in range(math.floor(lo) - 1, math.ceil(hi) + 1):
            for m in (1, 2, 5):
                t = k + math.log10(m)
                if lo - 1e-9 <= t <= hi + 1e-9:
                    ticks.append(t)
    else:
        every = next((d for d in (1, 2, 5, 10, 20, 50) if room(d)), 100)
        ticks = [float(k) for k in range(math.ceil(lo - 1e-9), math.floor(hi + 1e-9) + 1) if k % every == 0]
    if len(ticks) < 3 and (inside := _ticks_within_a_decade(lo, hi, cells, gap)):
        return inside
    if len(ticks) < 2:
        ticks = [lo, hi]
    return ticks, [_pow_label(t) for t in ticks]


def _ticks_within_a_decade(lo: float, hi: float, cells: int, gap: int) -> tuple[list[float], list[str]] | None:
    """A log axis over less than about a decade (a loss from 3.14 to 1.18): the 1×, 2×, 5× marks
    leave one tick or none, and the axis read only its two ends. Round values of the data's own
    scale instead (1.5 2.0 2.5 3.0, from `nice_ticks`), as many as keep `gap` rows between any two
    (a log axis spaces them unevenly); None when fewer than three fit."""
    from tui_lab.widgets.replot import nice_ticks

    for most in range(7, 2, -1):
        values, labels = nice_ticks(10**lo, 10**hi, most=most)
        kept = [(math.log10(v), label) for v, label in zip(values, labels, strict=True)
                if v > 0 and lo - 1e-9 <= math.log10(v) <= hi + 1e-9]
        if len(kept) < 3:
            return None
        rows = [(cells - 1) * (t - lo) / (hi - lo) for t, _ in kept]
        if cells <= 1 or min(b - a for a, b in zip(rows, rows[1:], strict=False)) >= gap:
            return [t for t, _ in kept], [label for _, label in kept]
    return None


PERCENT_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 25, 50, 100)
"""Spacings of percent ticks (in points of percent), the finest that keeps the ticks few enough."""


def percent_ticks(lo: float, hi: float, most: int = 7) -> tuple[list[float], list[str]]:
    """Ticks for fractions shown as percentages: at round percentages (every 10%, 5%, 2%, ...)
    inside the data's range `lo`..`hi` (as plotext takes it: a flat line is widened by half its
    value), at most `most` of them; labelled without a decimal when the spacing allows."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    lo, hi = plot_range(lo, hi)
    for step in PERCENT_STEPS:
        first, last = math.ceil(lo * 100 / step - 1e-9), math.floor(hi * 100 / step + 1e-9)
        if last - first + 1 <= max(2, most):
            break
    if last < first:  # no round percentage inside (a range narrower than 0.1%): its ends
        return [lo, hi], [f"{100 * lo:.2f}%", f"{100 * hi:.2f}%"]
    decimals = 0 if float(step).is_integer() else 1
    ticks = [k * step / 100 for k in range(first, last + 1)]
    return ticks, [f"{k * step:.{decimals}f}%" for k in range(first, last + 1)]


def _pow_label(t: float) -> str:
    v = 10**t
    if v < 1e-2 or v >= 1e4:
        return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{v:.4g}"  # 1000, not .3g's "1e+03" beside "1e4"


class MetricPlot(ReplotPlot):
    """A PlotextPlot that redraws from :class:`PlotData` (``show``), downsampled to its width."""

    DEFAULT_CSS = """
    MetricPlot {
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, metric: str, *, title: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.metric = metric
        self.data = PlotData(title=title or metric)

    def show(self, data: PlotData) -> None:
        self.data = data
        self.replot()

    def replot(self) -> None:
        """Rebuild the plot from the data (plotext keeps no state we rely on between builds)."""
        plt = self.fresh_plot()
        d = self.data
        suffix = " (log)" if d.log else ""
        plt.title(f"{d.title}{suffix} · {X_LABELS.get(d.x_axis, d.x_axis)}")
        limit = max(16, 2 * max(1, self.size.width))
        lo, hi = math.inf, -math.inf
        x_lo, x_hi = math.inf, -math.inf
        drawn = 0
        for curve in d.curves:
            color = d.colors[curve.color % len(d.colors)] if d.colors else None
            faint = d.band_colors[curve.color % len(d.band_colors)] if d.band_colors else color
            for bx, by in curve.band:
                if bx:
                    xs, ys = downsample(bx, by, limit)
                    plt.plot(xs, ys, marker="braille", color=_rgb(faint) if faint else None)
                    lo, hi = min(lo, *ys), max(hi, *ys)
                    x_lo, x_hi = min(x_lo, *xs), max(x_hi, *xs)
            if curve.xs:
                xs, ys = downsample(curve.xs, curve.ys, limit)
                plt.plot(xs, ys, marker="braille", color=_rgb(color) if color else None)
                lo, hi = min(lo, *ys), max(hi, *ys)
                x_lo, x_hi = min(x_lo, *xs), max(x_hi, *xs)
                drawn += 1
        if not drawn:
            self.draw_empty(d.empty)
        else:
            if d.x_axis == "step":  # steps are whole numbers (epochs and seconds may be fractional)
                self.integer_xticks(x_lo, x_hi)
            if d.log:
                ticks, labels = log_ticks(lo, hi, self.canvas_rows())
                if ticks:
                    plt.yticks(ticks, labels)
            elif d.percent:  # as many ticks as plotext's own (7) where the plot has the rows for them
                ticks, labels = percent_ticks(lo, hi, most=min(7, max(2, (self.size.height - 2) // 2)))
                if ticks:
                    plt.yticks(ticks, labels)
            else:  # evenly spaced round values: plotext's own ticks collided on a short plot
                self.nice_yticks(lo, hi)
        self.refresh()
