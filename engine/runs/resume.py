"""Going on with stopped runs from their checkpoint (``dllab resume``).

A solo run checkpoints every few tens of seconds and when it is cancelled
(:mod:`engine.training.checkpoint`); a batched group checkpoints its whole stack, one file named
after each of its training runs (:mod:`engine.batched.checkpoint`). :func:`resumable` says whether
a stored run can go on (it has a checkpoint, it is not finished, nobody trains it now);
:func:`reopen` turns it into the unit that goes on: the run alone, or every run its group was
training when the checkpoint was taken, each store row reopened (what was recorded after the
checkpoint goes). :func:`resume_inline` trains that unit in this process through the one executor,
so the series and final numbers are those of runs that never stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.events import ENDED, RunFinished
from engine.recipe.config import RunSpec
from engine.runs.executor import Emit, ShouldStop, WorkUnit, run_unit
from engine.runs.store import RunRow, RunStore
from engine.training.checkpoint import checkpoint_path, load


def resumable(row: RunRow, home: str | Path, live_runs: set[str] | frozenset[str] = frozenset()) -> str | None:
    """None when the run can go on from a checkpoint, else why it cannot (plain words)."""
    if row.status in ENDED:
        return f"run {row.run_id} has ended ({row.status}): there is nothing left to train"
    if (row.run_id in live_runs and not row.is_final) or row.status in ("pending", "running"):
        return f"run {row.run_id} is still running (`dllab attach` follows it)"
    if not checkpoint_path(home, row.run_id).exists():
        return (f"run {row.run_id} has no checkpoint (a run checkpoints every 30 s and when it is cancelled; "
                "2-D surfaces and a run cancelled alone out of a batched group do not)")
    return None


def _group_rows(row: RunRow, state: dict[str, Any], store: RunStore,
                live_runs: set[str] | frozenset[str]) -> list[RunRow]:
    """The runs a group checkpoint goes on with: every run it had training (each must be stopped)."""
    group_ids = list(state["run_ids"])
    rows = [row if run_id == row.run_id else store.get_run(run_id) for run_id in
            (group_ids[i] for i in state["active"])]
    for other in rows:
        if (other.run_id in live_runs and not other.is_final) or other.status in ("pending", "running"):
            raise ValueError(f"run {row.run_id} goes on with its batched group, and run {other.run_id} of that "
                             "group is still running (`dllab attach` follows it)")
    return rows


def reopen(row: RunRow, store: RunStore, live_runs: set[str] | frozenset[str] = frozenset()) -> WorkUnit:
    """Check that the run can go on, drop what the store holds after its checkpoint (for its whole
    group when it trained batched) and give the unit that goes on: what every way of resuming does
    first (in this process, in the runs service)."""
    home = Path(store.path).parent
    store.settle_orphans()
    if (why := resumable(row, home, live_runs)) is not None:
        raise ValueError(why)
    state = load(checkpoint_path(home, row.run_id))
    group = state.get("kind") == "group"
    rows = _group_rows(row, state, store, live_runs) if group else [row]
    for each in rows:
        store.reopen(each.run_id, float(state["time"]), int(state["step"]))
    return WorkUnit(tuple(RunSpec.from_stored(each.spec) for each in rows), tuple(each.run_id for each in rows),
                    resume="group" if group else "run")


def resume_inline(row: RunRow, store: RunStore, emit: Emit | None = None, should_stop: ShouldStop | None = None,
                  device: str | None = None) -> tuple[list[RunFinished], dict[str, Any]]:
    """Train a stopped run (with its group, when it trained batched) on from its checkpoint in this
    process; returns each run's RunFinished and the checkpoint's step and time they went on from."""
    from engine.runs.device import resolve_device

    state = load(checkpoint_path(Path(store.path).parent, row.run_id))
    unit = reopen(row, store)
    dev = str(resolve_device(device or row.device or "auto"))
    finished = run_unit(unit, emit or (lambda event: None), should_stop or (lambda: False), device=dev, store=store)
    return finished, {"step": int(state["step"]), "time": float(state["time"])}
