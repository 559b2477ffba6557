"""The base of every plot: a textual-plotext plot rebuilt from its data on each show and resize."""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

TICKS = 5
"""How many ticks plotext puts on an axis it labels itself (its default ``xfrequency``)."""
NICE_STEPS = (1.0, 2.0, 2.5, 5.0)
"""Spacings of round ticks (times a power of ten): 0.25 0.5 0.75 …, 20 40 60 …"""
MOST_TICKS = 7
"""At most as many ticks as plotext's own on a y axis (its ``yfrequency``)."""
PLOT_FRAME_ROWS = 4
"""Rows of a titled plot that are not its canvas: the title, the frame's top, the x axis, its labels."""


def plot_range(lo: float, hi: float) -> tuple[float, float]:
    """The range plotext draws data `lo`..`hi` over (``plotext._utility.get_lim``): a flat line is
    widened by half its value (or to -1..1 at zero)."""
    lo, hi = min(lo, hi), max(lo, hi)
    if hi == lo:
        return (0.5 * lo, 1.5 * lo) if lo > 0 else (1.5 * lo, 0.5 * lo) if lo < 0 else (-1.0, 1.0)
    return lo, hi


def nice_ticks(lo: float, hi: float, cells: int = 0, *, most: int = MOST_TICKS, gap: int = 2,
               ) -> tuple[list[float], list[str]]:
    """Evenly spaced ticks at round values (every 1, 2, 2.5 or 5 times a power of ten) inside the
    range plotext draws `lo`..`hi` over, labelled alike (``0.5 1.0 1.5``).

    The spacing is the finest that gives at most `most` ticks and, on an axis of `cells` rows or
    columns (0: not known), keeps them at least `gap` cells apart. plotext's own ticks (7 evenly from
    the bottom to the top of the data) fell on the same row of a short plot, one label overwrote
    the other, and the axis read ``1.72 1.46 1.19 0.67 0.40``, one step looking twice as long; a
    tick is never dropped here, the step is widened instead. Fewer than two round values fit: the
    range's two ends. ``([], [])`` for a range that is not finite."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [], []
    lo, hi = plot_range(lo, hi)
    span = hi - lo
    for min_gap in (gap, 1):
        step = _nice_step(span, cells, most, min_gap, lo, hi)
        if step is not None:
            break
    else:
        return [lo, hi], [f"{lo:.3g}", f"{hi:.3g}"]
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    ticks = [float(f"{k * step:.12g}") for k in range(first, last + 1)]
    return ticks, _labels(ticks, step)


def _nice_step(span: float, cells: int, most: int, min_gap: int, lo: float, hi: float) -> float | None:
    """The finest round spacing that gives 2..`most` ticks in lo..hi, each `min_gap` cells apart."""
    e = math.floor(math.log10(span / max(1, most))) - 1
    for _ in range(6):
        for m in NICE_STEPS:
            step = m * 10.0**e
            n = math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1
            if n > most or (cells > 1 and (cells - 1) * step / span < min_gap):
                continue
            return step if n >= 2 else None
        e += 1
    return None


def _labels(ticks: list[float], step: float) -> list[str]:
    """Labels alike, with the decimals the step needs (0.25 → two, 0.5 → one, 50 → none); in
    powers of ten (``1.5e-5``) when that would take more than five decimals or seven digits."""
    decimals = max(0, math.ceil(-math.log10(step) - 1e-9))
    while decimals < 12 and abs(round(step, decimals) - step) > 1e-9 * step:
        decimals += 1
    big = max(abs(t) for t in ticks)
    if decimals <= 5 and big < 1e6:
        return [f"{t:.{decimals}f}" for t in ticks]
    power = math.floor(math.log10(big))
    digits = max(0, power - math.floor(math.log10(step) + 1e-9))
    while digits < 12 and abs(round(step / 10**power, digits) - step / 10**power) > 1e-9 * step / 10**power:
        digits += 1
    return [_short_exponent(f"{t:.{digits}e}") if t else "0" for t in ticks]


def _short_exponent(label: str) -> str:
    mantissa, exponent = label.split("e")
    return f"{mantissa}e{int(exponent)}"


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
        """No data: the message in the middle of a blank, unlabelled frame, wrapped to its width
        (one long line was cut at both edges: "memory on cpu (it asked …")."""
        import textwrap

        plt = self.plt
        plt.xticks([])
        plt.yticks([])
        rows = self.canvas_rows() + 1  # without ticks plotext draws no x labels: one more canvas row
        width = max(12, self.size.width - 6)
        lines = textwrap.wrap(message, width) or [""]
        if rows > 1:
            lines = lines[:rows]
        step = 1 / max(1, rows - 1) if rows > 1 else 0.0
        for i, line in enumerate(lines):  # centred as a block, a row apart
            plt.text(line, 0.5, 0.5 + ((len(lines) - 1) / 2 - i) * step, alignment="center")
        plt.xlim(0, 1)
        plt.ylim(0, 1)

    def canvas_rows(self) -> int:
        """The rows of a titled plot's canvas (where its y ticks can go)."""
        return max(0, self.size.height - PLOT_FRAME_ROWS)

    def nice_yticks(self, lo: float, hi: float) -> None:
        """Label the y axis with evenly spaced round values over the data's range `lo`..`hi`
        (`nice_ticks`), as many as the plot's rows leave room for."""
        ticks, labels = nice_ticks(lo, hi, self.canvas_rows())
        if ticks:
            self.plt.yticks(ticks, labels)

    def nice_xticks(self, lo: float, hi: float, cells: int) -> None:
        """Label the x axis (about `cells` columns) with evenly spaced round values, far enough
        apart for their labels (plotext leaves out a label that would touch its neighbour)."""
        widest = max((len(label) for label in nice_ticks(lo, hi)[1]), default=1)
        ticks, labels = nice_ticks(lo, hi, cells, most=9, gap=widest + 2)
        if ticks:
            self.plt.xticks(ticks, labels)

    def integer_xticks(self, xs_lo: float, xs_hi: float) -> None:
        """Label the x axis with whole numbers only (an axis of steps), over the data's range."""
        ticks, labels = integer_ticks(xs_lo, xs_hi)
        if ticks:
            self.plt.xticks(ticks, labels)

    def replot(self) -> None:
        raise NotImplementedError
