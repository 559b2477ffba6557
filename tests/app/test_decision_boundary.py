"""The decision-boundary widget, standalone in a tiny app."""

from __future__ import annotations

import asyncio

import pytest
import torch
from rich.console import Console
from textual.app import App, ComposeResult
from textual.color import Color

from engine.data import load_data
from engine.diagnostics.boundary import boundary_event
from engine.models import build_model
from engine.recipe.config import DataSpec, ModelSpec
from tui_lab.widgets.decision_boundary import (
    FILLS,
    BoundaryPanel,
    DecisionBoundary,
    Plane,
    class_colours,
    render_plane,
)
from tui_lab.widgets.decision_boundary import (
    POINTS as GLYPHS,
)

from .conftest import screen_text

GRID = [[0] * 6 + [1] * 6 for _ in range(3)] + [[2] * 12 for _ in range(3)]  # 6 rows × 12 columns
POINTS = [[-0.9, 0.9, 0], [0.9, 0.9, 1], [0.0, -0.9, 2], [0.9, -0.9, 0]]
RED, GREEN, BLUE = Color(200, 0, 0), Color(0, 200, 0), Color(0, 0, 200)
BLACK = Color(0, 0, 0)


def _cells(text) -> list[list[tuple[str, object]]]:
    """(char, style) per cell, row by row."""
    rows: list[list[tuple[str, object]]] = [[]]
    for segment in text.render(Console()):
        for ch in segment.text:
            if ch == "\n":
                rows.append([])
            else:
                rows[-1].append((ch, segment.style))
    return rows


def test_render_plane_resamples_the_grid_and_places_points() -> None:
    plane = Plane.build(GRID, POINTS, x_range=(-1, 1), y_range=(-1, 1))
    text = render_plane(plane, 24, 6, [RED, GREEN, BLUE], BLACK)
    rows = _cells(text)
    assert len(rows) == 6 and all(len(r) == 24 for r in rows)
    tint = {k: BLACK.blend(c, 0.35).hex.lower() for k, c in enumerate([RED, GREEN, BLUE])}

    def bg(row: int, col: int) -> str:
        return str(rows[row][col][1].bgcolor.name).lower()

    assert bg(1, 2) == tint[0] and bg(1, 20) == tint[1] and bg(4, 12) == tint[2]
    # points: top-left class 0, top-right class 1, bottom-middle class 2, a misfit class-0 point bottom-right
    assert rows[0][1][0] == GLYPHS[0] and str(rows[0][1][1].color.name).lower() == RED.hex.lower()
    assert rows[0][22][0] == GLYPHS[1] and str(rows[0][22][1].color.name).lower() == GREEN.hex.lower()
    assert rows[5][12][0] == GLYPHS[2]
    assert rows[5][22][0] == GLYPHS[0] and str(rows[5][22][1].color.name).lower() == RED.hex.lower()
    assert bg(5, 22) == tint[2]  # drawn on the shade of the predicted class: visibly wrong
    assert sum(ch in GLYPHS for r in rows for ch, _ in r) == 4
    # without colour the regions still read apart: each class has its own fill character
    assert rows[1][2][0] == FILLS[0] and rows[1][20][0] == FILLS[1] and rows[4][13][0] == FILLS[2]


def test_render_plane_handles_tiny_sizes_and_empty_grids() -> None:
    plane = Plane.build(GRID, POINTS)
    assert render_plane(plane, 0, 5, [RED], BLACK).plain == ""
    assert render_plane(Plane.build([], []), 10, 5, [RED], BLACK).plain == ""
    one = render_plane(plane, 1, 1, [RED, GREEN, BLUE], BLACK)
    assert len(one.plain) == 1


def test_class_colours_come_from_the_theme_and_are_distinct() -> None:
    variables = {"primary": "#0178D4", "warning": "#FEA62B", "accent": "#FEA62B", "success": "#4EBF71",
                 "error": "#B93C5B"}
    colours = class_colours(variables, 5)
    assert colours[:4] == [Color.parse(v) for v in ("#0178D4", "#FEA62B", "#4EBF71", "#B93C5B")]
    assert colours[4] == colours[0]  # the theme ran out: cycle rather than repeat accent = warning
    assert class_colours({}, 2)[0] == Color.parse("white")


class BoundaryApp(App):
    def compose(self) -> ComposeResult:
        yield DecisionBoundary()


def test_widget_mounts_one_panel_per_variant_and_updates_in_place() -> None:
    async def scenario() -> None:
        app = BoundaryApp()
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(DecisionBoundary)
            view.update_boundary("3 units", GRID, POINTS, x_range=(-1, 1), y_range=(-1, 1), step=10)
            view.update_boundary("100 units", GRID, POINTS, step=10)
            await pilot.pause()
            panels = list(app.query(BoundaryPanel))
            assert [p.variant for p in panels] == ["3 units", "100 units"] == view.variants
            assert panels[0].border_title == "3 units" and panels[0].border_subtitle == "step 10"
            assert panels[0].region.width > 10 and panels[1].region.width > 10
            rendered = panels[0].render()
            assert sum(rendered.plain.count(g) for g in GLYPHS) == 4
            assert len(rendered.plain.split("\n")) == panels[0].content_size.height
            view.update_boundary("3 units", [[1] * 12] * 6, POINTS, x_range=(-1, 1), y_range=(-1, 1), step=20)
            await pilot.pause()
            assert len(list(app.query(BoundaryPanel))) == 2
            assert view.panel("3 units").plane.grid[0][0] == 1
            assert view.panel("3 units").border_subtitle == "step 20"
            app.theme = "textual-light"  # a theme change just redraws
            await pilot.pause()
            view.clear()
            await pilot.pause()
            assert not list(app.query(BoundaryPanel)) and view.variants == []

    asyncio.run(scenario())


def test_widget_draws_an_engine_boundary_event() -> None:
    data = load_data(DataSpec(name="spiral", n_samples=150), seed=0)
    torch.manual_seed(0)
    event = boundary_event("r", 5, build_model(ModelSpec(hidden=[8]), data.input_shape, 3), data)
    assert event is not None

    async def scenario() -> None:
        app = BoundaryApp()
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(DecisionBoundary)
            view.show_event("spiral", event)
            await pilot.pause()
            panel = view.panel("spiral")
            assert panel is not None and panel.plane.step == 5
            assert panel.plane.x_range == tuple(event.x_range)
            assert any(g in panel.render().plain for g in GLYPHS)
            plane = panel.plane
            view.show_event("spiral", event)  # the same event on the next redraw tick: nothing rebuilt
            assert panel.plane is plane
            view.update_boundary("spiral", [[0]], [], x_range=(0, 1), y_range=(0, 1))
            view.show_event("spiral", event)  # after a direct update the event is drawn again
            assert panel.plane is not plane and panel.plane.step == 5

    asyncio.run(scenario())


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_panel_waiting_text_before_data(size) -> None:
    async def scenario() -> None:
        class One(App):
            def compose(self) -> ComposeResult:
                yield BoundaryPanel("v")

        app = One()
        async with app.run_test(size=size):
            assert "waiting" in app.query_one(BoundaryPanel).render().plain

    asyncio.run(scenario())


def test_the_view_says_what_its_marks_and_shades_mean_and_which_seed() -> None:
    """The panels have no axes or key: nothing said what ●▲■ and the ·: shading were, nor which seed
    a variant with several showed."""
    from tui_lab.screens.views import feed_boundary

    class _Run:
        def __init__(self, label: str, seed: int) -> None:
            self.label, self.seed, self.latest = label, seed, {}

    class _Comparison:
        runs = [_Run("3 units", 0), _Run("3 units", 1)]

    async def scenario() -> None:
        app = BoundaryApp()
        async with app.run_test(size=(100, 24)) as pilot:
            view = app.query_one(DecisionBoundary)
            view.update_boundary("3 units", GRID, POINTS, x_range=(-1, 1), y_range=(-1, 1), step=10)
            await pilot.pause()
            text = " ".join(screen_text(app).split())
            assert "training points in their true class's colour" in text and "is misclassified" in text
            assert "first seed" not in text
            feed_boundary(view, _Comparison())
            await pilot.pause()
            assert "each variant's first seed" in " ".join(screen_text(app).split())

    asyncio.run(scenario())
