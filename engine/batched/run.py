"""The runner's side of batching: which runs share a worker's batched model, and running a group
with the same bookkeeping as a solo run (``engine.runs.runner.execute``).

``work_units(specs, workers)`` is :func:`engine.batched.plan.plan`, with big groups split so that
every worker gets a share (on a 2-core CPU, two workers training four variants each beat one
worker training eight: the batched model's matrix products already use the whole core).

``execute_group`` trains one group: each member's events go to the store, then to ``send``; a
member ends with exactly one RunFinished. When the group cannot start (a setup error such as a
loss that does not fit the task), every member runs solo instead, so each gets its own error
message exactly as it would without batching; an exception in the middle of training fails the
members that had not finished, with the reason.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections.abc import Callable, Sequence

from engine.batched.accel import FastPaths
from engine.batched.plan import plan, why_solo
from engine.recipe.config import RunSpec
from engine.runs.events import Event, Message, RunFinished, RunStarted

Emit = Callable[[Event], None]


def work_units(specs: Sequence[RunSpec], workers: int = 1, *, batch: bool = True) -> list[list[int]]:
    """Lists of spec indices, each trained by one call: a batched group, or one solo run.

    Groups are split in halves (never below two members a part) while there are fewer units than
    workers, or a group holds more runs than a worker's even share of all the runs (a dropout
    comparison of 9 batched runs and 3 solo ones on two workers: 5 + 4 + the 3 solo, not one
    worker with the 9 and the other with 3). Units come biggest first. With `fast` paths on, a
    batchable run alone still goes through the batched trainer (a group of one), which is where
    the fast paths live.
    """
    if not batch:
        return [[i] for i in range(len(specs))]
    units = plan(specs)
    workers = max(1, workers)
    share = -(-len(specs) // workers)  # the runs each worker would train, shared out evenly
    while len(units) < workers or (workers > 1 and max(map(len, units)) > share):
        biggest = max(units, key=len)
        if len(biggest) < 4:
            break
        k = units.index(biggest)
        half = len(biggest) // 2
        units[k : k + 1] = [biggest[:half], biggest[half:]]
    # biggest first: a worker that takes a big group early leaves the small units to the others
    return sorted(units, key=len, reverse=True)


def batched_unit(specs: Sequence[RunSpec], unit: Sequence[int], fast: FastPaths | None = None) -> bool:
    """True when this unit goes to the batched trainer (a group, or one run with fast paths)."""
    if len(unit) > 1:
        return True
    return bool(fast and fast.any and why_solo(specs[unit[0]]) is None)


def execute_group(specs: Sequence[RunSpec], run_ids: Sequence[str], device: str, send: Emit,
                  stops: Callable[[], bool] | Sequence[Callable[[], bool]], store, *,
                  fast: FastPaths | None = None,
                  solo: Callable[[RunSpec, str, Callable[[], bool]], RunFinished] | None = None) -> list[RunFinished]:
    """Train `specs` as one batched group with the runner's bookkeeping (see the module docstring).

    `stops`: one should_stop per run, or one for the whole group. `solo(spec, run_id,
    should_stop)` trains one run the runner's usual way; it is the fallback when the group cannot
    start.
    """
    from engine.batched.train import train_batched

    started = time.time()
    finished: dict[str, RunFinished] = {}
    began: set[str] = set()
    last_step: dict[str, int] = {}

    def emit(event: Event) -> None:
        run_id = event.run_id
        if run_id in finished:
            return  # nothing after a run's end
        with contextlib.suppress(Exception):
            store.record(event)
        send(event)
        if isinstance(event, RunStarted):
            began.add(run_id)
        if hasattr(event, "step") and not isinstance(event, RunFinished):
            last_step[run_id] = max(last_step.get(run_id, 0), int(getattr(event, "step", 0)))
        if isinstance(event, RunFinished):
            finished[run_id] = event

    try:
        train_batched(list(specs), emit, stops if callable(stops) else list(stops), device=device,
                      run_ids=list(run_ids), fast=fast)
    except KeyboardInterrupt:
        _end_all(specs, run_ids, finished, last_step, emit, started, "cancelled", "interrupted")
        raise
    except Exception as exc:  # noqa: BLE001 - one group's failure must not take the worker down
        if not began and solo is not None:  # could not start: each run solo, with its own errors
            per_run = [stops] * len(specs) if callable(stops) else list(stops)
            for spec, run_id, stop in zip(specs, run_ids, per_run, strict=True):
                finished[run_id] = solo(spec, run_id, stop)
        else:
            from engine.runs.runner import failure_reason

            detail = "".join(traceback.format_exception(exc)).rstrip()
            for run_id in run_ids:
                if run_id not in finished:
                    emit(Message(run_id=run_id, text=f"batched group failed:\n{detail}", level="error"))
            _end_all(specs, run_ids, finished, last_step, emit, started, "failed", failure_reason(exc, device))
    _end_all(specs, run_ids, finished, last_step, emit, started, "failed",
             "the batched trainer returned without a RunFinished event")
    return [finished[run_id] for run_id in run_ids]


def _end_all(specs, run_ids, finished, last_step, emit, started, status: str, reason: str) -> None:
    for run_id in run_ids:
        if run_id not in finished:
            emit(RunFinished(run_id=run_id, status=status, step=last_step.get(run_id, 0), reason=reason,  # type: ignore[arg-type]
                             final={}, best={}, wall_time=time.time() - started))
