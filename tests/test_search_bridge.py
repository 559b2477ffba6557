"""The app's search runner with the real in-process executor: trials train in its thread, land in
the store under one comparison, and a cancel stops the running trials (cancelled, not failed)."""

from __future__ import annotations

import time

from tiny_presets import SEARCH_HEADER, tiny_preset

from engine.catalogue.presets import parse_preset
from engine.events import RunFinished, RunStarted
from engine.runs.store import RunStore
from tui_lab.data.search_comparison import SearchFinished
from tui_lab.search_bridge import SearchRunner


def search_preset(steps: int) -> str:
    return tiny_preset(f"""
[base.model]
hidden = [8]

[base.train]
steps = {steps}

[search]
budget = 4
fields = [{{ field = "train.lr", low = 1e-3, high = 1.0, scale = "log" }}]

[[variants]]
name = "random"
search = {{ method = "random" }}
""", title="Tiny search", technique="tiny-search", summary="One search.", **SEARCH_HEADER)


def _drain(runner: SearchRunner, until, timeout: float = 60.0) -> list:
    events: list = []
    deadline = time.monotonic() + timeout
    while not until(events):
        assert time.monotonic() < deadline, f"timed out; got {[type(e).__name__ for e in events][-5:]}"
        events += runner.poll(0.05)
    return events


def test_a_search_trains_in_process_and_stores_every_trial(tmp_path) -> None:
    loaded = parse_preset(search_preset(20), tmp_path / "s.toml", "s")
    with RunStore(tmp_path / "home") as store:
        runner = SearchRunner(loaded, quick=False, seeds=[0], device="cpu", store=store)
        runner.start()
        events = _drain(runner, lambda ev: any(isinstance(e, SearchFinished) for e in ev))
        runner.close()
        finished = [e for e in events if isinstance(e, RunFinished)]
        assert len(finished) == 4 and {f.status for f in finished} == {"done"}
        assert all(e.variant == "random" for e in events if isinstance(e, RunStarted))
        rows = store.list_runs()
        assert len(rows) == 4 and len({r.comparison for r in rows}) == 1


def test_cancel_stops_the_running_trials(tmp_path) -> None:
    loaded = parse_preset(search_preset(200_000), tmp_path / "s.toml", "s")
    with RunStore(tmp_path / "home") as store:
        runner = SearchRunner(loaded, quick=False, seeds=[0], device="cpu", store=store)
        runner.start()
        _drain(runner, lambda ev: any(isinstance(e, RunStarted) for e in ev))
        t0 = time.monotonic()
        runner.cancel()
        events = _drain(runner, lambda ev: runner.finished, timeout=30)
        assert time.monotonic() - t0 < 20
        statuses = {e.status for e in events if isinstance(e, RunFinished)}
        assert statuses <= {"cancelled"} and statuses, statuses
        assert not any(isinstance(e, SearchFinished) for e in events)
        assert {r.status for r in store.list_runs()} == {"cancelled"}
