"""Going on with a stopped run from its checkpoint (``dllab resume``).

A solo run checkpoints every few tens of seconds and when it is cancelled
(:mod:`engine.training.checkpoint`). :func:`resumable` says whether a stored run can go on (it has
a checkpoint, it is not finished, nobody trains it now); :func:`resume_inline` reopens its store row
(what was recorded after the checkpoint goes) and trains it on from there through the one executor,
so its series and final numbers are those of a run that never stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.events import RunFinished
from engine.recipe.config import RunSpec
from engine.runs.executor import Emit, ShouldStop, WorkUnit, run_unit
from engine.runs.store import RunRow, RunStore
from engine.training.checkpoint import checkpoint_path, load

ENDED = ("done", "early-stopped", "diverged")
"""Statuses of a run that has nothing left to train."""


def resumable(row: RunRow, home: str | Path, live_runs: set[str] | frozenset[str] = frozenset()) -> str | None:
    """None when the run can go on from a checkpoint, else why it cannot (plain words)."""
    if row.status in ENDED:
        return f"run {row.run_id} has ended ({row.status}): there is nothing left to train"
    if row.run_id in live_runs and not row.is_final:
        return f"run {row.run_id} is still running (`dllab attach` follows it)"
    if not checkpoint_path(home, row.run_id).exists():
        return (f"run {row.run_id} has no checkpoint (a run checkpoints every 30 s and when it is cancelled; "
                "batched runs, surfaces and ensembles do not yet)")
    return None


def reopen(row: RunRow, store: RunStore, live_runs: set[str] | frozenset[str] = frozenset()) -> RunSpec:
    """Check that the run can go on, drop what its store row holds after its checkpoint, and give
    its spec: what every way of resuming does first (in this process, in the runs service)."""
    home = Path(store.path).parent
    if (why := resumable(row, home, live_runs)) is not None:
        raise ValueError(why)
    state = load(checkpoint_path(home, row.run_id))
    store.reopen(row.run_id, float(state["time"]), int(state["step"]))
    return RunSpec.from_stored(row.spec)


def resume_inline(row: RunRow, store: RunStore, emit: Emit | None = None, should_stop: ShouldStop | None = None,
                  device: str | None = None) -> tuple[RunFinished, dict[str, Any]]:
    """Train a stopped run on from its checkpoint in this process; returns its RunFinished and the
    checkpoint's step and time it went on from."""
    from engine.runs.device import resolve_device

    state = load(checkpoint_path(Path(store.path).parent, row.run_id))
    spec = reopen(row, store)
    dev = str(resolve_device(device or row.device or "auto"))
    unit = WorkUnit((spec,), (row.run_id,), resume=True)
    finished = run_unit(unit, emit or (lambda event: None), should_stop or (lambda: False), device=dev,
                        store=store)[0]
    return finished, {"step": int(state["step"]), "time": float(state["time"])}
