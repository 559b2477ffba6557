"""App tests: a tmp DLLAB_HOME for every test, a fake engine, and helpers to wait on the app."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.runs.store import RunStore

from .fake_engine import FakeRunner

PINNED = Path(__file__).parent / "data" / "presets"
"""Copies of presets as they were when the events were recorded: tests that check a preset's
claims or draw its screen use these, so edits to the catalogue do not move them."""


def pinned(preset_id: str):
    from engine.catalogue.presets import load_preset

    return load_preset(PINNED / f"{preset_id}.toml")


def pinned_catalogue():
    return [pinned("optimizers"), pinned("dropout")]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """Run ``async def`` tests in a fresh event loop (no asyncio plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
        return True
    return None


@pytest.fixture(autouse=True)
def dllab_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs and saved recipes of a test go to its own folder, never the user's store; times
    show in UTC so that snapshots do not depend on the machine's time zone."""
    home = tmp_path / "dllab-home"
    home.mkdir()
    monkeypatch.setenv("DLLAB_HOME", str(home))
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    FakeRunner.instances.clear()
    return home


@pytest.fixture
def store(dllab_home: Path):
    s = RunStore(dllab_home)
    yield s
    s.close()


@pytest.fixture
def make_app(dllab_home: Path, store: RunStore):
    """``make_app(hold_at=None, batch=60, **app_kwargs)`` → a DllabApp on the fake engine."""
    from tui_lab.app import DllabApp

    def factory(*, hold_at: float | None = None, batch: int = 60, **kwargs):
        def runner_factory(specs, *, device="auto", store=None):
            return FakeRunner(specs, device=device, store=store, batch=batch, hold_at=hold_at)

        kwargs.setdefault("store", store)
        kwargs.setdefault("presets_dir", dllab_home / "presets")
        kwargs.setdefault("frozen", True)
        return DllabApp(runner_factory=runner_factory, **kwargs)

    return factory


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` holds (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)
    await pilot.pause()


def freeze_inputs(app) -> None:
    """No blinking cursors in snapshots."""
    from textual.widgets import Input, TextArea

    for screen in app.screen_stack:
        for w in screen.query(Input):
            w.cursor_blink = False
        for w in screen.query(TextArea):
            w.cursor_blink = False


def live(app):
    """The app's live comparison (after a run started)."""
    assert app.bridge.live is not None, "no comparison was started"
    return app.bridge.live.comparison


def store_recorded_runs(store: RunStore, keys: list[tuple[str, int]], *, preset: str = "optimizers",
                        comparison: str = "cmp-a") -> list[str]:
    """Write recorded runs into a store, as the runner's workers would (``RunStore.record``)."""
    import dataclasses

    from engine.events import RunStarted, from_dict

    from .fake_engine import recording

    ids = []
    for variant, seed in keys:
        run_id = f"{comparison}-{variant.lower()}"
        for raw in recording()[(variant, seed)]:
            event = from_dict(dict(raw))
            changes = {"run_id": run_id}
            if isinstance(event, RunStarted):
                changes.update(preset=preset, comparison=comparison)
            store.record(dataclasses.replace(event, **changes))
        ids.append(run_id)
    return ids


__all__ = ["wait_for", "freeze_inputs", "live", "screen_text", "store_recorded_runs", "asyncio"]


def screen_text(app) -> str:
    """The current screen as plain text (what a person sees, without colours)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()
