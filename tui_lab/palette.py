"""Series colours taken from the app's theme, so plots, legend and table agree in any theme."""

from __future__ import annotations

from textual.color import Color

TOKENS = ("primary", "warning", "success", "error", "accent", "secondary")
"""Theme variables used for the first variants, in this order."""


def series_colors(theme_variables: dict[str, str], n: int) -> list[Color]:
    """``n`` distinct colours from the theme: its named colours, then lighter and darker shades."""
    base: list[Color] = []
    for token in TOKENS:
        text = theme_variables.get(token)
        if not text:
            continue
        try:
            color = Color.parse(text)
        except Exception:  # noqa: BLE001 - a theme without that token
            continue
        if all(_distance(color, c) > 40 for c in base):
            base.append(color)
    if not base:
        base = [Color.parse(theme_variables.get("foreground", "white"))]
    out = list(base)
    shade = 1
    while len(out) < n:
        for c in base:
            out.append(c.lighten(0.18 * shade) if shade % 2 else c.darken(0.15 * shade))
            if len(out) >= n:
                break
        shade += 1
    return out[: max(n, 0)]


def faint(color: Color, background: Color) -> Color:
    """A colour halfway to the background: the min/max band lines across seeds."""
    return background.blend(color, 0.45)


def _distance(a: Color, b: Color) -> float:
    return sum((x - y) ** 2 for x, y in zip(a.rgb, b.rgb, strict=True)) ** 0.5
