"""The surface view: optimizer paths over a 2-D function's level sets, with a side table.

Mount it in the dashboard as the preset's extra view (``view = "surface"``)::

    from tui_lab.screens.views import register_view
    from tui_lab.widgets.surface_plot import SurfacePlot
    register_view("surface", "Surface", lambda comparison: SurfacePlot())

The dashboard then calls :meth:`SurfacePlot.update_view` with the comparison on its redraw tick
(a few times a second); the paths grow as EvalMetrics bring new ``x``, ``y``. Without a
comparison, :meth:`SurfacePlot.show_paths` draws a list of :class:`SurfacePath` directly.

Keys (when the view has focus; the dashboard binds them too, whenever the view's tab is shown):
``]`` / ``[`` next / previous surface of the comparison, ``e`` every seed or the first seed only. Plotext has no contour plot: level sets are drawn as points
where the banded value of log f changes between neighbouring cells.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Static

from tui_lab.data.surface_paths import (
    SurfacePath,
    function_of,
    level_sets,
    paths_from_comparison,
    surfaces_in,
)
from tui_lab.palette import faint, series_colors
from tui_lab.tables import clip_name, longest
from tui_lab.widgets.replot import ReplotPlot

N_LEVELS = 9


def header_line(which: str, description: str, every_seed: bool, switch: bool, width: int = 0) -> Content:
    """The line over the plot in `width` cells (0: no limit): which surface, its description, the
    legend, the seeds shown and the keys; the keys go first when it is too long (the footer shows
    them too), then the legend, then the seeds, then the description shortens with an ellipsis."""
    seeds = "every seed" if every_seed else "first seed"
    keys = ("[ ] switch · " if switch else "") + "e seeds"
    for parts in ((description, "○ start ● now × min", seeds, keys), (description, "○ start ● now × min", seeds),
                  (description, seeds), (description,)):
        line = Content.from_markup("[b]$which[/b]", which=which) + Content(" · " + " · ".join(parts))
        if not width or line.cell_length <= width:
            return line
    return line.truncate(width, ellipsis=True)


def short_labels(labels: list[str]) -> list[str]:
    """The table's run names without the part before " · " that they all share (the surface's
    name, "Rosenbrock · AdaGrad s0" → "AdaGrad s0": the header names the surface), so that the
    loss and distance columns fit beside them."""
    heads = {label.split(" · ", 1)[0] for label in labels}
    if len(labels) > 1 and len(heads) == 1 and all(" · " in label for label in labels):
        return [label.split(" · ", 1)[1] for label in labels]
    return labels


class SurfaceCanvas(ReplotPlot):
    """The plot itself: level sets, then every path, its start (○) and end (●), the minima (×)."""

    DEFAULT_CSS = """
    SurfaceCanvas {
        width: 1fr;
        height: 1fr;
        min-height: 8;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.surface_key: tuple[str, float] | None = None
        self.paths: list[SurfacePath] = []
        self.path_colors: list[Color] = []
        self.level_colors: list[Color] = []

    def show(self, key: tuple[str, float] | None, paths: list[SurfacePath], colors: list[Color],
             level_colors: list[Color]) -> None:
        self.surface_key, self.paths, self.path_colors, self.level_colors = key, paths, colors, level_colors
        self.replot()

    def replot(self) -> None:
        plt = self.fresh_plot()
        if self.surface_key is None:
            plt.title("no surface runs")
            self.refresh()
            return
        fn = function_of(self.surface_key)
        plt.title(f"{fn.name}: {fn.formula}")
        cols = max(8, self.size.width - 12)
        rows = max(4, self.size.height - 5)
        for k, (xs, ys) in enumerate(level_sets(self.surface_key, cols, rows, N_LEVELS)):
            if xs:
                color = self.level_colors[k % len(self.level_colors)].rgb if self.level_colors else None
                plt.scatter(list(xs), list(ys), marker="·", color=color)
        for path in self.paths:
            if not path.xs:
                continue
            color = self.path_colors[path.color % len(self.path_colors)].rgb if self.path_colors else None
            if len(path.xs) > 1:
                plt.plot(path.xs, path.ys, marker="braille", color=color)
            plt.scatter(path.xs[:1], path.ys[:1], marker="○", color=color)
            plt.scatter(path.xs[-1:], path.ys[-1:], marker="●", color=color)
        targets = fn.minima or ((fn.reference,) if fn.reference else ())
        if targets:
            plt.scatter([t[0] for t in targets], [t[1] for t in targets], marker="×")
        plt.xlim(*fn.xlim)
        plt.ylim(*fn.ylim)
        self.nice_yticks(*fn.ylim)
        self.nice_xticks(*fn.xlim, cols)
        self.refresh()


COLUMNS = ("", "run", "step", "loss", "dist")
"""The runs' table: a colour swatch, the run's name, and its numbers."""
TABLE_WIDTH = 42
"""Cells of the runs' table beside the canvas, at least."""
TABLE_SHARE = 0.45
"""The most of the view's width the table takes when its names need more than `TABLE_WIDTH`: at 120
columns "GD lr 0.01" and "GD lr 0.035" were both cut to "GD lr 0.… s0" with room to spare."""


class SurfacePlot(Vertical, can_focus=True):
    """Paths of a surface comparison: one surface at a time, a row per shown run in the table."""

    DEFAULT_CSS = """
    SurfacePlot {
        height: 1fr;
    }
    SurfacePlot > #surface-header {
        height: 1;
        color: $text-muted;
    }
    SurfacePlot > Horizontal {
        height: 1fr;
    }
    SurfacePlot DataTable {
        width: TABLE_WIDTH;  /* wider where the names need it (redraw) */
        height: 1fr;
    }
    SurfacePlot:focus-within #surface-header {
        color: $text;
    }
    """.replace("TABLE_WIDTH", str(TABLE_WIDTH))

    BINDINGS = [
        Binding("]", "next_surface", "Next surface"),
        Binding("[", "previous_surface", "Prev surface"),
        Binding("e", "toggle_seeds", "Every seed"),
    ]

    class SurfaceChanged(Message):
        """The view switched to another function of the comparison."""

        def __init__(self, plot: SurfacePlot, function: str) -> None:
            super().__init__()
            self.plot = plot
            self.function = function

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.all_paths: list[SurfacePath] = []
        self.index = 0
        """Which of the comparison's surfaces is shown."""
        self.every_seed = False
        """Draw every seed's path (else the first seed of each variant)."""
        self._version: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="surface-header")
        with Horizontal():
            yield SurfaceCanvas(id="surface-canvas")
            yield DataTable(id="surface-table", cursor_type="row", zebra_stripes=False)

    def on_resize(self) -> None:
        self.redraw()  # the header fits its width

    # -- feeding it ---------------------------------------------------------------------------

    def update_view(self, comparison) -> None:
        """The dashboard's hook: re-read the comparison's paths (cheap when nothing changed)."""
        version = getattr(comparison, "version", None)
        if version is not None and version == self._version:
            return
        self._version = version
        self.show_paths(paths_from_comparison(comparison))

    def show_paths(self, paths: list[SurfacePath]) -> None:
        """Draw these paths (grouped by surface; the current surface is kept if still there)."""
        self.all_paths = list(paths)
        self.index = min(self.index, max(0, len(self.surfaces) - 1))
        self.redraw()

    # -- reading -------------------------------------------------------------------------------

    @property
    def surfaces(self) -> list[tuple[str, float]]:
        return surfaces_in(self.all_paths)

    @property
    def current(self) -> tuple[str, float] | None:
        s = self.surfaces
        return s[self.index % len(s)] if s else None

    def shown_paths(self) -> list[SurfacePath]:
        key = self.current
        paths = [p for p in self.all_paths if p.key == key]
        if self.every_seed:
            return paths
        first: dict[str, int] = {}
        for p in paths:
            first[p.variant] = min(first.get(p.variant, p.seed), p.seed)
        return [p for p in paths if p.seed == first[p.variant]]

    # -- drawing -------------------------------------------------------------------------------

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        key = self.current
        paths = self.shown_paths()
        n = max((p.color for p in self.all_paths), default=0) + 1
        variables = self.app.theme_variables
        colors = series_colors(variables, n)
        background = Color.parse(variables.get("surface", variables.get("background", "black")))
        muted = Color.parse(variables.get("foreground", "white"))
        level_colors = [faint(muted, background).blend(background, 0.15 + 0.5 * (1 - k / N_LEVELS))
                        for k in range(N_LEVELS)]
        self.query_one(SurfaceCanvas).show(key, paths, colors, level_colors)
        header = self.query_one("#surface-header", Static)
        if key is None:
            header.update("no runs on a 2-D surface in this comparison")
        else:
            fn = function_of(key)
            count = len(self.surfaces)
            which = f"surface {self.index % count + 1}/{count}" if count > 1 else "surface"
            header.update(header_line(which, fn.description or fn.name, self.every_seed, count > 1,
                                      header.size.width or self.size.width))
        table = self.query_one(DataTable)
        rows = [(str(p.step), "–" if p.loss is None else f"{p.loss:.2g}", "–" if p.dist is None else f"{p.dist:.2g}")
                for p in paths]
        # the numbers stay whole (a long run name pushed "5.8e-05" out as "5.8e-"): the names give way,
        # once the table has taken what it may of the view's width
        number_widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(COLUMNS[2:])]
        fixed = 2 * len(COLUMNS) + 1 + sum(number_widths) + 2  # cell padding, the swatch, a scroll bar
        # one path per variant (its first seed, as the header says): the variant's name, without " s0"
        names = short_labels([p.label if self.every_seed else p.variant for p in paths])
        width = max(TABLE_WIDTH, min(int(self.size.width * TABLE_SHARE), fixed + longest(names)))
        if table.styles.width is None or table.styles.width.cells != width:
            table.styles.width = width
        room = max(6, width - fixed)
        names = [clip_name(name, room) for name in names]
        # every column laid out anew, at the width of what it shows now: a column's own width only grew,
        # so a long name seen once (every seed, a wider terminal) kept it wide and cut the numbers
        table.clear(columns=True)
        for label, cells in zip(COLUMNS, [[1], [longest(names)], *([w] for w in number_widths)], strict=True):
            table.add_column(label, width=max(len(label), *cells))
        for p, name, numbers_of_p in zip(paths, names, rows, strict=True):
            swatch = Text("■", style=colors[p.color % len(colors)].hex) if colors else Text("■")
            table.add_row(swatch, Text(name), *numbers_of_p)

    # -- actions -------------------------------------------------------------------------------

    def _switch(self, delta: int) -> None:
        count = len(self.surfaces)
        if count < 2:
            return
        self.index = (self.index + delta) % count
        self.redraw()
        key = self.current
        if key is not None:
            self.post_message(self.SurfaceChanged(self, key[0]))

    def action_next_surface(self) -> None:
        self._switch(1)

    def action_previous_surface(self) -> None:
        self._switch(-1)

    def action_toggle_seeds(self) -> None:
        self.every_seed = not self.every_seed
        self.redraw()
