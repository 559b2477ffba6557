"""Decision-boundary view: the predicted class over the input plane, one panel per variant.

Each panel is a character heat map: every terminal cell is shaded with the colour of the class the
model predicts there (a tint of the class colour over the panel background), and the training
points sit on top as ``●`` in their true class's full colour, so a point on a differently shaded
cell is one the model gets wrong. The grid (e.g. 60 × 30 cells from the engine's ``Boundary``
event) is resampled to whatever size the panel has, so the view works at 80 × 24 and larger.

Colours come from the app theme (primary, warning, success, error, secondary, accent, then their
lighter shades), never hard-coded; a theme change redraws.

API (the dashboard calls it from the UI thread)::

    view = DecisionBoundary()
    view.update_boundary("20 units", grid, points, x_range=(x0, x1), y_range=(y0, y1), step=500)
    view.show_event("20 units", boundary_event)   # the same, from an engine.events.Boundary
    view.clear()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from engine.events import Boundary
from tui_lab.data.fmt import clean

POINTS = "●▲■◆✚★"
"""Training points, one glyph per class (the class colour too)."""
FILLS = " ·:-=+"
"""The predicted class's fill character (on its tint), so classes read apart without colour."""
TINT = 0.35
"""How much of the class colour shades a cell (the rest is the panel background)."""
CLASS_TOKENS = (
    "primary", "warning", "success", "error", "secondary", "accent",
    "primary-lighten-2", "warning-lighten-2", "success-lighten-2", "error-lighten-2",
    "secondary-lighten-2", "accent-lighten-2", "primary-darken-2", "warning-darken-2",
)
"""Theme variables tried for classes 0, 1, 2, … (a token whose colour is already taken is skipped)."""


@dataclass(frozen=True)
class Plane:
    """What one panel draws: the class grid (row 0 at the top) and the training points."""

    grid: tuple[tuple[int, ...], ...]
    points: tuple[tuple[float, float, int], ...]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    step: int | None = None

    @classmethod
    def build(
        cls,
        grid: Sequence[Sequence[int]],
        points: Sequence[Sequence[float]],
        x_range: Sequence[float] | None = None,
        y_range: Sequence[float] | None = None,
        step: int | None = None,
    ) -> Plane:
        pts = tuple((float(p[0]), float(p[1]), int(p[2])) for p in points)
        return cls(
            grid=tuple(tuple(int(c) for c in row) for row in grid),
            points=pts,
            x_range=_range(x_range, [p[0] for p in pts]),
            y_range=_range(y_range, [p[1] for p in pts]),
            step=step,
        )


def _range(given: Sequence[float] | None, values: list[float]) -> tuple[float, float]:
    if given is not None:
        lo, hi = float(given[0]), float(given[1])
    elif values:
        lo, hi = min(values), max(values)
        pad = 0.1 * (hi - lo or 1.0)
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = 0.0, 1.0
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def class_colours(variables: dict[str, str], n: int) -> list[Color]:
    """``n`` distinct class colours from the theme's CSS variables, cycling when the theme runs out."""
    distinct: list[Color] = []
    for token in CLASS_TOKENS:
        value = variables.get(token)
        if not value:
            continue
        try:
            colour = Color.parse(value)
        except Exception:  # noqa: BLE001 - a theme value we cannot parse is skipped
            continue
        if colour not in distinct:
            distinct.append(colour)
    if not distinct:
        distinct = [Color.parse(variables.get("foreground", "white"))]
    return [distinct[i % len(distinct)] for i in range(n)]


def render_plane(plane: Plane, width: int, height: int, colours: Sequence[Color], background: Color) -> Text:
    """The plane as ``height`` lines of ``width`` cells (nearest-cell resampling of the grid)."""
    text = Text(no_wrap=True, overflow="crop")
    if width < 1 or height < 1 or not plane.grid or not plane.grid[0]:
        return text
    ny, nx = len(plane.grid), len(plane.grid[0])
    n_colours = max(len(colours), 1)
    tints = [background.blend(c, TINT).hex for c in colours] or [background.hex]
    full = [c.hex for c in colours] or ["default"]
    (x0, x1), (y0, y1) = plane.x_range, plane.y_range
    marks: dict[tuple[int, int], int] = {}
    for x, y, k in plane.points:
        col = int((x - x0) / (x1 - x0) * width)
        row = int((y1 - y) / (y1 - y0) * height)
        if 0 <= col < width and 0 <= row < height:
            marks[(row, col)] = k
    for row in range(height):
        grid_row = plane.grid[min(ny - 1, int((row + 0.5) * ny / height))]
        run_style: Style | None = None
        run = ""
        for col in range(width):
            predicted = grid_row[min(nx - 1, int((col + 0.5) * nx / width))]
            bg = tints[predicted % n_colours]
            point = marks.get((row, col))
            if point is None:  # the class also shows as a fill character: readable without colour
                char = FILLS[predicted % len(FILLS)]
                style = Style(color=full[predicted % n_colours], bgcolor=bg, dim=True)
            else:
                char = POINTS[point % len(POINTS)]
                style = Style(color=full[point % n_colours], bgcolor=bg, bold=True)
            if style != run_style and run:
                text.append(run, run_style)
                run = ""
            run_style = style
            run += char
        if run:
            text.append(run, run_style)
        if row < height - 1:
            text.append("\n")
    return text


class BoundaryPanel(Widget):
    """One variant's plane, titled with the variant's name (and the step it shows)."""

    DEFAULT_CSS = """
    BoundaryPanel {
        width: 1fr;
        height: 1fr;
        min-width: 12;
        border: round $panel-lighten-2;
        border-title-color: $foreground;
        border-subtitle-color: $foreground-muted;
    }
    """

    def __init__(self, variant: str, plane: Plane | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.variant = variant
        self.plane = plane
        self.border_title = Content(clean(variant))  # a str title is read as markup: the name is shown as written

    def set_plane(self, plane: Plane) -> None:
        self.plane = plane
        self.border_subtitle = f"step {plane.step}" if plane.step is not None else ""
        self.refresh()

    def render(self) -> Text:
        if self.plane is None:
            return Text("waiting for the first evaluation…", style="italic")
        variables = self.app.get_css_variables()
        n = max([max(row) for row in self.plane.grid if row] + [p[2] for p in self.plane.points] + [0]) + 1
        background = Color.parse(variables.get("surface", variables.get("background", "black")))
        size = self.content_size
        return render_plane(self.plane, size.width, size.height, class_colours(variables, n), background)


class DecisionBoundary(Widget):
    """Side-by-side decision-boundary panels, one per variant, created on first update."""

    DEFAULT_CSS = """
    DecisionBoundary {
        layout: horizontal;
        height: 1fr;
        min-height: 8;
    }
    DecisionBoundary > #boundary-legend {
        dock: top;
        height: auto;
        color: $text-muted;
    }
    """

    LEGEND = (f"{POINTS[:3]}… training points in their true class's colour · shade and fill "
              f"({FILLS[1:4]}…): the class the network predicts there · a point on another class's shade "
              "is misclassified")
    """What the panels show (they have no axes or key of their own)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._panels: dict[str, BoundaryPanel] = {}
        self._events: dict[str, Boundary] = {}
        self.note = ""

    def compose(self):
        yield Static(self.LEGEND, id="boundary-legend", markup=False)

    def set_note(self, note: str) -> None:
        """A word on what the panels show beside the legend (e.g. which seed)."""
        if note != self.note:
            self.note = note
            self.query_one("#boundary-legend", Static).update(self.LEGEND + (f" · {note}" if note else ""))

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self, _theme: str) -> None:
        for panel in self._panels.values():
            panel.refresh()

    @property
    def variants(self) -> list[str]:
        return list(self._panels)

    def panel(self, variant: str) -> BoundaryPanel | None:
        return self._panels.get(variant)

    def update_boundary(
        self,
        variant: str,
        grid: Sequence[Sequence[int]],
        points: Sequence[Sequence[float]],
        *,
        x_range: Sequence[float] | None = None,
        y_range: Sequence[float] | None = None,
        step: int | None = None,
    ) -> None:
        """Show `variant`'s predicted-class grid (row 0 at the top) and training points [x, y, class].

        Without ranges the plane is fitted around the points.
        """
        self._events.pop(variant, None)
        self._show(variant, Plane.build(grid, points, x_range, y_range, step))

    def show_event(self, variant: str, event: Boundary) -> None:
        """``update_boundary`` from an engine ``Boundary`` event (the same event again is a no-op)."""
        if self._events.get(variant) is event:
            return
        self._show(variant, Plane.build(event.grid, event.points, event.x_range, event.y_range, event.step))
        self._events[variant] = event

    def _show(self, variant: str, plane: Plane) -> None:
        panel = self._panels.get(variant)
        if panel is None:
            panel = BoundaryPanel(variant)
            self._panels[variant] = panel
            self.mount(panel)
        panel.set_plane(plane)

    def clear(self) -> None:
        """Remove every panel (a new comparison)."""
        for panel in self._panels.values():
            panel.remove()
        self._panels.clear()
        self._events.clear()
