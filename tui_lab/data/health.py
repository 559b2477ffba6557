"""Text renderings of a run's per-layer health (pure functions, no Textual): sparklines of
histograms, histograms over time as character heat maps, the update/weight ratio on a log gauge
with its healthy band, and first-layer weights as small character images.

Used by ``tui_lab.widgets.health_panel``; kept here so they can be tested without an app.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

SPARK = "▁▂▃▄▅▆▇█"
SHADES = " ░▒▓█"
EMPTY = "·"
"""An empty bin of a heat map: a dot, so the axis stays readable (a row of blanks then one block
read as "all at the left end" when the block was the middle bin)."""
GRAY = " .:-=+*#%@"
"""Weight images: the ramp from most negative (blank) to most positive (@), like a grayscale image."""
RATIO_BAND = (3e-4, 3e-3)
"""The healthy update/weight band around CS231n's rule of thumb of 1e-3."""
GAUGE_RANGE = (-6.0, 0.0)
"""log10 range of the update/weight gauge."""
GRAD_LOG_RANGE = (-8.0, 0.0)
"""The bins of ``grad_hist`` (log10 |g|): the same as engine.diagnostics.health's (which imports
torch; the app's UI process need not), held equal by a test."""


def act_hist_range(activation: str) -> tuple[float, float]:
    """The bins of ``act_hist`` (mirrors engine.diagnostics.health.act_hist_range)."""
    return (-1.0, 1.0) if activation in ("tanh", "sigmoid") else (-3.0, 3.0)


def sparkline(counts: Sequence[float]) -> str:
    """One character per bin, the height proportional to the count (the largest bin is █)."""
    if not counts:
        return ""
    top = max(counts)
    if top <= 0 or not math.isfinite(top):
        return SPARK[0] * len(counts)
    out = []
    for c in counts:
        if c <= 0 or not math.isfinite(c):
            out.append(" ")
        else:
            out.append(SPARK[min(len(SPARK) - 1, int(c / top * (len(SPARK) - 1) + 0.5))])
    return "".join(out)


def heat_rows(history: Sequence[Sequence[float]], max_rows: int = 12) -> list[str]:
    """Histograms over time as a heat map: one row per measurement (oldest first), one character
    per bin, shaded by the bin's share of that row's largest bin. At most `max_rows` rows (evenly
    thinned, keeping the first and the last)."""
    rows = list(history)
    if len(rows) > max_rows:
        idx = sorted({round(i * (len(rows) - 1) / (max_rows - 1)) for i in range(max_rows)})
        rows = [rows[i] for i in idx]
    out = []
    for counts in rows:
        top = max(counts) if counts else 0
        if top <= 0:
            out.append(SHADES[0] * len(counts))
            continue
        out.append("".join(SHADES[min(len(SHADES) - 1, math.ceil(c / top * (len(SHADES) - 1)))] if c > 0 else EMPTY
                           for c in counts))
    return out


def ratio_state(ratio: Any) -> str:
    """"low", "ok", "high" against RATIO_BAND, or "" when there is no ratio."""
    if not isinstance(ratio, int | float) or not math.isfinite(ratio) or ratio <= 0:
        return ""
    if ratio < RATIO_BAND[0]:
        return "low"
    if ratio > RATIO_BAND[1]:
        return "high"
    return "ok"


def ratio_gauge(ratio: Any, width: int = 18) -> str:
    """The ratio on a log10 axis from 1e-6 to 1: ``·`` outside the healthy band, ``░`` inside it,
    ``█`` where the ratio is (clamped to the ends)."""
    lo, hi = GAUGE_RANGE
    cells = []
    for i in range(width):
        left = lo + (hi - lo) * i / width
        right = lo + (hi - lo) * (i + 1) / width
        in_band = right > math.log10(RATIO_BAND[0]) and left < math.log10(RATIO_BAND[1])
        cells.append("░" if in_band else "·")
    if ratio_state(ratio):
        x = min(max(math.log10(float(ratio)), lo), hi - 1e-9)
        cells[int((x - lo) / (hi - lo) * width)] = "█"
    return "".join(cells)


def weight_image(tile: Sequence[Sequence[float]]) -> list[str]:
    """One tile (values in [-1, 1]) as lines of characters from GRAY."""
    n = len(GRAY) - 1
    return ["".join(GRAY[min(n, max(0, int((v + 1) / 2 * n + 0.5)))] for v in row) for row in tile]


def weight_tiles(images: dict[str, Any] | None, per_row: int = 8, max_width: int = 60) -> list[str]:
    """A first layer's ``weight_images`` (from a Diagnostics event) as text: tiles side by side
    (``kind = "units"``: one H×W tile per unit) or one block of rows (``"matrix"``: units × inputs,
    wide inputs averaged down to `max_width` columns)."""
    if not images or not images.get("tiles"):
        return []
    tiles = images["tiles"]
    if images.get("kind") == "matrix":
        rows = tiles[0]
        out = []
        for row in rows:
            if len(row) > max_width:
                step = len(row) / max_width
                row = [sum(row[int(i * step): max(int(i * step) + 1, int((i + 1) * step))])
                       / max(1, len(row[int(i * step): max(int(i * step) + 1, int((i + 1) * step))]))
                       for i in range(max_width)]
            out.extend(weight_image([row]))
        return out
    rendered = [weight_image(t) for t in tiles]
    out = []
    for start in range(0, len(rendered), per_row):
        group = rendered[start : start + per_row]
        height = max(len(t) for t in group)
        for r in range(height):
            out.append(" ".join(t[r] if r < len(t) else " " * len(t[0]) for t in group))
        out.append("")
    return out[:-1] if out and out[-1] == "" else out
