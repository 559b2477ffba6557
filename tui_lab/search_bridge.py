"""A preset's ``[search]`` comparison, runner-shaped, so a dashboard session drains it like any other.

``engine.catalogue.search.run_search_preset`` decides which trials to train (a coarse-to-fine round depends
on the one before), so the trials are not known up front. :class:`SearchRunner` runs it in a
thread of its own with the engine's ``stored_inline_executor`` (the trials train in that thread,
batched where they can be, one torch thread, every trial in the run store: a round is a handful
of short runs, and worker processes started for each round had cost more than the runs, 45 s
against 7 s for hparam-search's quick form on 2 cores); ``on_event`` puts each trial's events on
a queue that ``poll`` hands to the session's drain thread. A trial's RunStarted is relabelled with
the search (the preset's variant) it belongs to; after each search a
:class:`~tui_lab.data.search_comparison.SearchDone`, at the end a
:class:`~tui_lab.data.search_comparison.SearchFinished` with the outcomes the claims are checked
on. ``cancel()`` (all) stops the search: the running trials stop at their next step (they end
``cancelled`` in the store) and no further round starts.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from engine.catalogue.presets import LoadedPreset
from engine.events import Event, RunStarted
from tui_lab.data.search_comparison import SearchDone, SearchFinished

ExecutorFactory = Callable[..., Callable[[list[Any]], list[Any]]]
"""``factory(on_event=..., device=..., store=..., comparison=...) -> executor`` (an
``engine.catalogue.search.Executor``); tests pass one that replays fake events."""


class SearchCancelled(Exception):
    """Raised inside the search's thread to stop it (from ``on_event`` or between rounds)."""


def default_executor(*, on_event: Callable[[Event], None], device: str = "auto", store: Any = None,
                     comparison: str | None = None, should_stop: Callable[[], bool] | None = None):
    """The engine's in-process executor: the trials train in the search's thread."""
    from engine.catalogue.search import stored_inline_executor

    return stored_inline_executor(device=device, store=store, on_event=on_event,
                                  should_stop=should_stop, comparison=comparison)


class SearchRunner:
    """Runs ``run_search_preset`` in a thread; runner-shaped (``start``/``poll``/``cancel``/``close``)."""

    def __init__(self, loaded: LoadedPreset, *, quick: bool = True, seeds: list[int] | None = None,
                 device: str = "auto", store: Any = None, executor_factory: ExecutorFactory | None = None) -> None:
        self.loaded = loaded
        self.quick = quick
        self.seeds = list(seeds if seeds is not None else loaded.preset.default_seeds(quick))
        self.device = device
        self.store = store
        self.executor_factory = executor_factory or default_executor
        self.comparison = uuid.uuid4().hex[:8]
        """One comparison id for every trial, so the History keeps them together."""
        self.run_ids: list[str] = []
        """Empty at first: trials get their ids as they start (the session attaches them from RunStarted)."""
        self.error = ""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._order = [(v.name, seed) for v in loaded.preset.variants for seed in self.seeds
                       for _ in range(loaded.preset.search_settings(v).repeats)]
        """Which search each executor call belongs to, in run_search_preset's order (checked
        against its progress reports)."""
        self._current = 0

    # -- the search's thread --------------------------------------------------------------

    def _forward(self, event: Event, owner: str) -> None:
        if isinstance(event, RunStarted):
            event = dataclasses.replace(event, variant=owner)
        self._queue.put(event)

    def _execute(self, specs: list[Any]) -> list[Any]:
        if self._cancel.is_set():
            raise SearchCancelled
        owner = self._order[min(self._current, len(self._order) - 1)][0]
        executor = self.executor_factory(on_event=lambda e: self._forward(e, owner), device=self.device,
                                         store=self.store, comparison=self.comparison,
                                         should_stop=self._cancel.is_set)
        return executor(specs)

    def _progress(self, variant: str, seed: int, repeat: int, result: Any) -> None:
        self._queue.put(SearchDone(variant, seed, repeat, result))
        # the search that just ended is the current one (else: resync on the first like it)
        later = [j for j in range(self._current, len(self._order)) if self._order[j] == (variant, seed)]
        self._current = (later[0] if later else self._current) + 1

    def _main(self) -> None:
        import torch

        from engine.catalogue.search import run_search_preset

        torch.set_num_threads(1)  # the trials train in this thread: one torch thread leaves the app a core
        try:
            outcomes, _ = run_search_preset(self.loaded, quick=self.quick, seeds=self.seeds,
                                            executor=self._execute, progress=self._progress)
            if not self._cancel.is_set():  # a cancelled last round ends nothing: no claims on it
                self._queue.put(SearchFinished(outcomes))
        except SearchCancelled:
            pass
        except Exception as exc:  # noqa: BLE001 - handed to the session, which shows it
            self.error = f"{type(exc).__name__}: {exc}"

    # -- runner-shaped ----------------------------------------------------------------------

    def start(self) -> None:
        from tui_lab.engine_bridge import ensure_resource_tracker

        ensure_resource_tracker()
        self._thread = threading.Thread(target=self._main, name=f"search-{self.loaded.id}", daemon=True)
        self._thread.start()

    def poll(self, timeout: float = 0.1) -> list[Any]:
        out: list[Any] = []
        try:
            out.append(self._queue.get(timeout=timeout))
            while True:
                out.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if not out and self.error and self._thread is not None and not self._thread.is_alive():
            error, self.error = self.error, ""
            raise RuntimeError(error)
        return out

    def cancel(self, run_id: str | None = None) -> None:
        if run_id is not None:
            raise KeyError("a search's trials are not cancelled one by one: C cancels the whole search")
        self._cancel.set()

    def close(self, timeout: float = 5.0) -> None:
        if not self.finished:
            self._cancel.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive() and self._queue.empty()
