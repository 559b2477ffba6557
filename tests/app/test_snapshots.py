"""Snapshots of each screen at 80×24 and 120×40 (fake engine, pinned presets, frozen spinners).

Update after checking the report by eye:  python -m pytest tests/app/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.catalogue.presets import load_preset
from tui_lab.screens.dashboard import DashboardScreen

from .conftest import PINNED as PRESETS
from .conftest import freeze_inputs, pinned_catalogue, store_recorded_runs, wait_for

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
PRESETS_DIR = Path("/home/you/.local/share/dllab/presets")


@pytest.fixture
def snap_app(make_app):
    def factory(**kwargs):
        kwargs.setdefault("catalogue", pinned_catalogue)
        kwargs.setdefault("presets_dir", PRESETS_DIR)
        return make_app(**kwargs)

    return factory


async def _still(pilot) -> None:
    app = pilot.app
    await pilot.pause(0.2)
    freeze_inputs(app)
    app.clear_notifications()
    screen = app.screen
    if isinstance(screen, DashboardScreen):
        screen.redraw()
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", SIZES)
def test_library(snap_app, snap_compare, size):
    async def run_before(pilot):
        from tui_lab.widgets.preset_details import PresetDetails

        await wait_for(pilot, lambda: pilot.app.screen.query(PresetDetails))
        details = pilot.app.screen.query_one(PresetDetails)
        await wait_for(pilot, lambda: details.shown is not None and details._timer is None)
        await pilot.pause(0.3)
        await _still(pilot)

    assert snap_compare(snap_app(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_builder(snap_app, snap_compare, size):
    async def run_before(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.query("#f-preset-title"))
        await pilot.pause(0.4)
        await _still(pilot)

    assert snap_compare(snap_app(mode="builder"), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_while_training(snap_app, snap_compare, size):
    app = snap_app(open_preset=load_preset(PRESETS / "optimizers.toml"), quick=True, hold_at=0.5)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.bridge.live is not None and all(
            r.status == "running" for r in app.bridge.live.comparison.runs)
            and sum(len(r.steps["step"]) for r in app.bridge.live.comparison.runs) > 100)
        await pilot.pause(0.5)
        await _still(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_finished_with_the_verdict(snap_app, snap_compare, size):
    app = snap_app(open_preset=load_preset(PRESETS / "optimizers.toml"), quick=True)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.bridge.live is not None and not app.bridge.live.active)
        await pilot.pause(0.3)
        await pilot.press("l")
        if size[1] >= 40:
            await pilot.press("v")
        await _still(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_history(snap_app, snap_compare, store, size):
    store_recorded_runs(store, [("SGD", 0), ("Momentum", 0), ("Adam", 0)], comparison="cmp-a")
    store_recorded_runs(store, [("AdamW", 0)], preset="my-recipe", comparison="cmp-b")

    async def run_before(pilot):
        await wait_for(pilot, lambda: pilot.app.screen.query("#runs"))
        await pilot.press("space")
        await _still(pilot)

    assert snap_compare(snap_app(mode="history"), terminal_size=size, run_before=run_before)
