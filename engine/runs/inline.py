"""Runs in this process, one unit after another: the in-process face of the one executor.

``--workers 0``, ``dllab check`` and the preset tests (``engine.catalogue.check``), a search's rounds
(``engine.catalogue.search``) and debugging call :func:`run_inline`: the same planning as the
Runner's workers (``engine.batched.plan.work_units``), the same :func:`engine.runs.executor.run_unit`
for each unit, the same store rows, so a claim is checked on the numbers a user's run produces.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from engine.batched.plan import work_units
from engine.events import Event, RunFinished
from engine.recipe.config import RunSpec
from engine.runs.comparison import NOT_STARTED, new_run_ids, register_pending, with_comparison
from engine.runs.executor import Emit, ShouldStop, TrainFn, WorkUnit, run_unit
from engine.runs.outcomes import OutcomeCollector, RunOutcome
from engine.runs.store import RunStore


def run_inline(specs: list[RunSpec], emit: Emit | None = None, should_stop: ShouldStop | None = None,
               device: str = "auto", store: RunStore | str | Path | None = None, *,
               train_fn: str | TrainFn | None = None, comparison: str | None = None,
               run_ids: list[str] | None = None, batch: bool = True, fast: str = "") -> list[RunFinished]:
    """Train the specs here, unit by unit; returns each run's RunFinished, in spec order.

    Same store writes and failure handling as a worker; ``should_stop()`` applies to every run: a
    unit it reaches before its start is marked cancelled and never trains. `batch`: runs that
    share an architecture train as one batched model; `fast`: opt-in fast paths (both only for
    dllab's own trainers, not a `train_fn`).
    """
    from engine.runs.device import resolve_device

    dev = str(resolve_device(device))
    send = emit or (lambda event: None)
    stop = should_stop or (lambda: False)
    own_store = not isinstance(store, RunStore)
    db = RunStore(store) if own_store else store
    comparison, specs = with_comparison(list(specs), comparison)
    ids = list(run_ids) if run_ids is not None else new_run_ids(len(specs))
    if len(ids) != len(specs):
        raise ValueError(f"{len(ids)} run ids for {len(specs)} specs")
    by_index: dict[int, RunFinished] = {}
    try:
        register_pending(db, specs, ids, comparison, dev)
        units = work_units(specs, 1, batch=batch and train_fn is None)
        try:
            for unit in units:
                if stop():
                    for i in unit:
                        db.mark(ids[i], "cancelled", NOT_STARTED)
                        by_index[i] = RunStore.finished_event(db.get_run(ids[i]))
                        send(by_index[i])
                    continue
                work = WorkUnit(tuple(specs[i] for i in unit), tuple(ids[i] for i in unit),
                                fast if train_fn is None else "", train_fn)
                for i, result in zip(unit, run_unit(work, send, stop, device=dev, store=db), strict=True):
                    by_index[i] = result
        finally:
            for i, run_id in enumerate(ids):
                if i not in by_index:
                    db.mark(run_id, "cancelled", "interrupted before it started")
        return [by_index[i] for i in range(len(specs))]
    finally:
        if own_store:
            db.close()


def run_outcomes(specs: list[RunSpec], *, device: str = "cpu", store: RunStore | str | Path | None = None,
                 on_event: Emit | None = None, should_stop: ShouldStop | None = None,
                 comparison: str | None = None, batch: bool = True) -> list[RunOutcome]:
    """:func:`run_inline`, folded into one outcome per spec, in spec order (what claims and a
    search's scores read). Without a `store` the runs go to a throwaway one."""
    collector = OutcomeCollector()
    ids = new_run_ids(len(specs))
    for run_id, spec in zip(ids, specs, strict=True):  # outcomes in spec order, however they train
        collector.register(run_id, spec.variant, spec.seed)

    def emit(event: Event) -> None:
        collector.add(event)
        if on_event is not None:
            on_event(event)

    with contextlib.ExitStack() as stack:
        where = store if store is not None else stack.enter_context(
            tempfile.TemporaryDirectory(prefix="dllab-inline-"))
        run_inline(specs, emit, should_stop, device, where, run_ids=ids, comparison=comparison, batch=batch)
    return [collector.runs[run_id] for run_id in ids]
