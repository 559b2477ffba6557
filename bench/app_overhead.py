"""App open ÷ headless: one comparison run with the Textual app watching, and by the engine alone.

Both sides use the app's own runner (``tui_lab.engine_bridge.local_runner``: on a CPU
one core stays with the app), the same preset (the optimizers comparison, quick form) and a
fresh store; the app side runs ``DllabApp(open_preset=...)`` under ``App.run_test()`` (headless
Textual: it composes, lays out and redraws every widget, it just paints to no terminal) and waits
until the comparison has ended. Worker start-up is on both sides.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.rows import Row, measured_row, not_row
from bench.timing import Timing, turn

PRESET = "optimizers"
WHAT = "optimizers preset (quick form) with the app open (run_test, no terminal) ÷ the same headless"


def _headless(specs, device: str, store_dir: Path) -> None:
    from engine.runs.store import RunStore
    from tui_lab.engine_bridge import local_runner

    with RunStore(store_dir) as store:
        runner = local_runner(specs, device=device, store=store)
        try:
            runner.start()
            while not runner.finished:
                runner.poll(timeout=0.2)
        finally:
            runner.close()


async def _with_app(loaded, device: str, store_dir: Path, limit_s: float) -> None:
    from engine.runs.store import RunStore
    from tui_lab.app import DllabApp
    from tui_lab.engine_bridge import local_runner

    with RunStore(store_dir) as store:  # the app's own workers, as the headless side (not the runs service)
        app = DllabApp(open_preset=loaded, quick=True, device=device, store=store, presets_dir=store_dir / "presets",
                       frozen=True, runner_factory=local_runner)
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + limit_s
            while True:
                live = app.bridge.live
                if live is not None and not live.active:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the comparison did not end within {limit_s:.0f} s")
                await pilot.pause(0.2)


def training_span(store_dir: Path) -> float:
    """Seconds from the first run's start to the last run's end, as the workers recorded them:
    the training itself, without the app's (or the command's) own start-up."""
    from engine.runs.store import RunStore

    with RunStore(store_dir) as store:
        rows = store.list_runs()
    return max(r.finished for r in rows) - min(r.started for r in rows)


def measure(device: str, quick: bool, repeats: int) -> list[Row]:
    if quick:
        return [not_row("app/headless", "app open ÷ headless", WHAT, "not measured",
                        "full mode only: each side spawns worker processes and runs a whole comparison")]
    from engine.catalogue.presets import load_preset

    loaded = load_preset(PRESET)
    specs = loaded.expand(quick=True)
    sides = {"headless": Timing(), "app": Timing()}
    spans = {"headless": Timing(), "app": Timing()}
    reps = max(1, min(repeats, 3))
    with tempfile.TemporaryDirectory(prefix="dllab-bench-") as tmp:
        for r in range(reps):
            for name in turn(["headless", "app"], r):
                store_dir = Path(tmp) / f"{name}{r}"
                store_dir.mkdir()
                w0, c0 = time.perf_counter(), time.process_time()
                if name == "headless":
                    _headless(specs, device, store_dir)
                else:
                    asyncio.run(_with_app(loaded, device, store_dir, limit_s=600))
                sides[name].add(time.perf_counter() - w0, time.process_time() - c0)
                span = training_span(store_dir)
                spans[name].add(span, span)
    return [
        measured_row("app/headless", "app open ÷ headless, training",
                     WHAT + "; first run start to last run end", spans["app"], spans["headless"], target=1.10,
                     note="from the runs' own start and end times in the store "
                          "(the training, not the app's start-up)"),
        measured_row("app/headless-total", "app open ÷ headless, end to end",
                     WHAT + "; including the app's start-up",
                     sides["app"], sides["headless"],
                     note="CPU ratio counts this process only (the app's UI thread; training is in workers)"),
    ]
