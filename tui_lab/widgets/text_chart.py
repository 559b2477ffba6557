"""Charts as plain text for the command line (`dllab lr-find`, `dllab search`), drawn by plotext.

Not a Textual widget: functions that return the chart as a string, so a command can print it.
Every plotext call of the command-line tools lives here (the package's rule). Log axes are drawn
by transforming the data to log10 ourselves and labelling the ticks (plotext's own log scale is
fragile across rebuilds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MARKERS = ("o", "x", "+", "*", "#", "@", "%", "&")
"""Scatter markers by series, so series stay apart without colour."""

Series = tuple[str, Sequence[float], Sequence[float]]


def _log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    a, b = math.floor(lo), math.ceil(hi)
    step = max(1, (b - a) // 8)
    ticks = [float(e) for e in range(a, b + 1, step) if lo - 1e-9 <= e <= hi + 1e-9]
    return ticks, [f"1e{int(t)}" for t in ticks]


def _clean(xs: Sequence[float], ys: Sequence[float], log_x: bool) -> tuple[list[float], list[float]]:
    out_x, out_y = [], []
    for x, y in zip(xs, ys, strict=False):
        if not (math.isfinite(x) and math.isfinite(y)) or (log_x and x <= 0):
            continue
        out_x.append(math.log10(x) if log_x else float(x))
        out_y.append(float(y))
    return out_x, out_y


def chart(
    series: Sequence[Series],
    *,
    kind: str = "line",
    log_x: bool = False,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    marks: Sequence[tuple[str, float]] = (),
    width: int = 72,
    height: int = 18,
    color: bool = False,
) -> str:
    """A line (or scatter) chart of named (xs, ys) series; `marks` draw vertical lines (their labels
    are for the caller to print under the chart: plotext has no room for them on the axis)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    if not color:
        plt.theme("clear")
    all_x: list[float] = []
    all_y: list[float] = []
    for i, (name, xs, ys) in enumerate(series):
        x, y = _clean(xs, ys, log_x)
        if not x:
            continue
        all_x += x
        all_y += y
        if kind == "scatter":
            plt.scatter(x, y, label=name if len(series) > 1 else None, marker=MARKERS[i % len(MARKERS)])
        else:
            plt.plot(x, y, label=name if len(series) > 1 else None)
    for _label, value in marks:
        if log_x and value <= 0:
            continue
        plt.vline(math.log10(value) if log_x else value)
        all_x.append(math.log10(value) if log_x else value)
    if log_x and all_x:
        ticks, labels = _log_ticks(min(all_x), max(all_x))
        if ticks:
            plt.xticks(ticks, labels)
    if all_y:  # round, evenly spaced values (plotext's own read 4.03 3.72 3.42)
        from tui_lab.widgets.replot import PLOT_FRAME_ROWS, nice_ticks

        ticks, labels = nice_ticks(min(all_y), max(all_y), max(0, height - PLOT_FRAME_ROWS - bool(xlabel)))
        if ticks:
            plt.yticks(ticks, labels)
    if title:
        plt.title(title)
    if xlabel:
        plt.xlabel(xlabel)
    if ylabel:
        plt.ylabel(ylabel)
    text = plt.build()
    plt.clear_figure()
    return text if color else _ANSI.sub("", text)


def ansi_text(chart_text: str):
    """A chart for ``console.print``: its colour escapes parsed into styles, so rich measures each
    line by its visible characters (a raw string's escapes counted as width wrapped every line)."""
    from rich.text import Text

    return Text.from_ansi(chart_text)
