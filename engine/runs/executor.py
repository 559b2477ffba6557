"""The one executor: a unit of runs in; every run recorded, sent, and ended exactly once.

:func:`run_unit` is what executes runs, wherever they execute: the Runner's worker processes, the
in-process path (``engine.runs.inline``: ``--workers 0``, ``dllab check``, the preset tests, a
search's rounds). It does two things and nothing else:

* **picks the trainer** (:func:`trainer_for`, the only place that decides): a 2-D surface run
  (or a group of them), a gradient check, a batched group (or one run with fast paths on), the
  solo network loop, or a caller's own train function;
* **keeps the books** around it: every event goes to the store, then to ``send``; nothing of a run
  is sent after its RunFinished; a run the trainer leaves without one gets one (a failure with the
  reason in plain words, a traceback as an error Message before it; ``interrupted`` on Ctrl+C).

A :class:`WorkUnit` is plain data (specs, run ids, the fast paths, the train function's name),
picklable, so that another backend (a background service, a Ray task) can execute it by calling
:func:`run_unit` on the other side without touching any trainer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.events import Diagnostics, EvalMetrics, Event, Message, RunFinished, RunStarted, StepMetrics
from engine.recipe.config import RunSpec
from engine.training.runbook import interrupted_reason, out_of_memory_reason

if TYPE_CHECKING:
    from engine.runs.store import RunStore

TrainFn = Callable[..., Any]
Emit = Callable[[Event], None]
ShouldStop = Callable[[], bool]
Interrupted = Callable[[], "str | None"]
RETURNED_WITHOUT_END = "the train function returned without a RunFinished event"
RESUMES = ("", "run", "group")


@dataclass(frozen=True)
class WorkUnit:
    """Runs that one call of :func:`run_unit` trains: a batched group, or one run.

    `fast`: opt-in fast paths of the batched trainer (``engine.batched.accel.FastPaths``).
    `train_fn`: ``"package.module:function"`` (or a function) with the solo loop's signature,
    instead of dllab's trainers (tests, a user's own loop); such runs train one by one.
    `resume`: ``"run"``: the unit's one run goes on from its checkpoint
    (``engine.training.checkpoint``); ``"group"``: the unit's runs go on from their batched group's
    checkpoint (``engine.batched.checkpoint``); ``""``: they start from step 0.
    """

    specs: tuple[RunSpec, ...]
    run_ids: tuple[str, ...]
    fast: str = ""
    train_fn: str | TrainFn | None = None
    resume: str = ""

    def __post_init__(self) -> None:
        if len(self.specs) != len(self.run_ids):
            raise ValueError(f"{len(self.run_ids)} run ids for {len(self.specs)} specs")
        if self.resume not in RESUMES:
            raise ValueError(f"resume must be one of {RESUMES}, got {self.resume!r}")
        if self.resume == "run" and len(self.specs) != 1:
            raise ValueError("a run resumed from its own checkpoint is a unit of its own")

    def one(self, k: int) -> WorkUnit:
        """The unit's `k`-th run as a unit of its own."""
        return WorkUnit((self.specs[k],), (self.run_ids[k],), self.fast, self.train_fn, self.resume)


@dataclass(frozen=True)
class Trainer:
    """A trainer and how it is called: `group` trainers take the whole unit
    (``fn(specs, emit, stops, device=, run_ids=)``), the others one run
    (``fn(spec, emit, should_stop, device=, run_id=)``)."""

    name: str
    fn: TrainFn
    group: bool
    checkpoints: bool = False
    """It takes ``checkpoint=`` (a file: the solo loop) or ``checkpoints=`` (a folder: a batched
    group), and ``resume=``."""


def resolve_train_fn(train_fn: str | TrainFn) -> TrainFn:
    """Import ``"package.module:function"`` (or return a callable as it is)."""
    if callable(train_fn):
        return train_fn
    module_name, sep, attr = str(train_fn).partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"train_fn must look like 'package.module:function', got {train_fn!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"train_fn {train_fn!r} is not callable")
    return obj


def trainer_for(unit: WorkUnit) -> Trainer:
    """The trainer a unit goes to: the one place where dllab decides how runs train."""
    if unit.train_fn is not None:
        return Trainer("custom", resolve_train_fn(unit.train_fn), group=False)
    kinds = {spec.kind for spec in unit.specs}
    if kinds == {"surface"}:  # points on a 2-D function: every path of the unit in one tensor
        from engine.surfaces.trainer import train_surfaces

        return Trainer("surfaces", train_surfaces, group=True)
    if kinds == {"gradcheck"} and len(unit.specs) == 1:
        from engine.checks.gradcheck import train_gradcheck

        return Trainer("gradcheck", train_gradcheck, group=False)
    from engine.batched.accel import FastPaths
    from engine.batched.plan import why_solo

    fast = FastPaths.parse(unit.fast)
    if unit.resume == "group" or (not unit.resume and (
            len(unit.specs) > 1 or (fast.any and why_solo(unit.specs[0]) is None))):
        from engine.batched.train import train_batched

        return Trainer("batched", partial(train_batched, fast=fast), group=True, checkpoints=True)
    from engine.training.loop import train

    return Trainer("network", train, group=False, checkpoints=True)


def train_one(spec: RunSpec, emit: Emit, should_stop: ShouldStop = lambda: False, *,
              device: Any = "cpu", run_id: str | None = None) -> RunFinished:
    """Train one run with the trainer its kind needs, no store and no books (tests, tools)."""
    from engine.runs.comparison import new_run_id

    run_id = run_id or new_run_id()
    trainer = trainer_for(WorkUnit((spec,), (run_id,)))
    if trainer.group:
        return trainer.fn([spec], emit, should_stop, device=device, run_ids=[run_id])[0]
    return trainer.fn(spec, emit, should_stop, device=device, run_id=run_id)


def failure_reason(exc: BaseException, device: str) -> str:
    """Plain words for an exception that ended a run."""
    torch = sys.modules.get("torch")
    oom: tuple[type[BaseException], ...] = (MemoryError,)
    if torch is not None and hasattr(torch.cuda, "OutOfMemoryError"):
        oom += (torch.cuda.OutOfMemoryError,)
    message = str(exc).lower()
    if isinstance(exc, oom) or (isinstance(exc, RuntimeError) and any(
            words in message for words in ("out of memory", "can't allocate memory", "cannot allocate memory"))):
        tried = re.search(r"tried to allocate (\d+) bytes", message)  # the CPU allocator says how much
        return out_of_memory_reason(device, f" (it asked for {int(tried.group(1)) / 2**30:.3g} GiB at once)"
                                    if tried else "")
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def free_accelerator_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        import gc

        gc.collect()
        torch.cuda.empty_cache()


class _Books:
    """Record, then send; remember each run's start, last step and end; end what is left open."""

    def __init__(self, unit: WorkUnit, send: Emit, store: RunStore | None,
                 interrupted: Interrupted | None = None) -> None:
        self.run_ids = unit.run_ids
        self.send, self.store = send, store
        self.interrupted = interrupted
        self.started = time.time()
        self.began: set[str] = set()
        self.last_step: dict[str, int] = {}
        self.finished: dict[str, RunFinished] = {}

    def emit(self, event: Event) -> None:
        run_id = event.run_id
        if run_id in self.finished:
            return  # nothing after a run's end
        if (isinstance(event, RunFinished) and event.status == "cancelled" and self.interrupted is not None
                and (why := self.interrupted()) is not None):  # not a user's cancel: say what went away
            from engine.training.checkpoint import resume_hint

            hint = resume_hint(Path(self.store.path).parent, run_id) if self.store is not None else ""
            event = dataclasses.replace(event, status="interrupted", reason=interrupted_reason(event.step, why) + hint)
        if self.store is not None:
            self.store.record(event)
        self.send(event)
        if isinstance(event, RunStarted):
            self.began.add(run_id)
        elif isinstance(event, StepMetrics | EvalMetrics | Diagnostics):
            self.last_step[run_id] = max(self.last_step.get(run_id, 0), event.step)
        elif isinstance(event, RunFinished):
            self.finished[run_id] = event

    def end(self, run_id: str, status: str, reason: str) -> None:
        """A RunFinished the trainer could not send; a store error must not lose the event."""
        event = RunFinished(run_id=run_id, status=status, step=self.last_step.get(run_id, 0),  # type: ignore[arg-type]
                            reason=reason, final={}, best={}, wall_time=time.time() - self.started)
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.record(event)
        self.send(event)
        self.finished[run_id] = event

    def open(self) -> list[str]:
        return [run_id for run_id in self.run_ids if run_id not in self.finished]

    def end_open(self, status: str, reason: str) -> None:
        for run_id in self.open():
            self.end(run_id, status, reason)

    def accept(self, returned: Any) -> None:
        """What the trainer returned: a RunFinished (or a list of them) it did not send itself."""
        for event in returned if isinstance(returned, list | tuple) else [returned]:
            if isinstance(event, RunFinished) and event.run_id in self.open():
                try:
                    self.emit(event)
                except Exception as exc:  # noqa: BLE001 - the store failed: the run still ends
                    self.end(event.run_id, "failed", failure_reason(exc, "store"))

    def failed(self, exc: BaseException, device: str, group: bool) -> None:
        """The trainer raised: the traceback as an error Message, then each open run fails."""
        detail = "".join(traceback.format_exception(exc)).rstrip()
        words = "batched group failed" if group else "run failed"
        for run_id in self.open():
            with contextlib.suppress(Exception):
                self.emit(Message(run_id=run_id, text=f"{words}:\n{detail}", level="error"))
        self.end_open("failed", failure_reason(exc, device))


def _checkpointing(trainer: Trainer, unit: WorkUnit, store: RunStore | None) -> dict[str, Any]:
    """Network runs that write to a store in a home checkpoint there (and resume from there): a solo
    run into its own file, a batched group into the folder (one file, a name per run)."""
    from engine.training.checkpoint import checkpoint_path, supported

    why = next((why for spec in unit.specs if (why := supported(spec)) is not None), None)
    if not trainer.checkpoints or store is None or why is not None:
        if unit.resume:
            raise ValueError(why or "a resumed run needs the store of its home")
        return {}
    path = checkpoint_path(Path(store.path).parent, unit.run_ids[0])
    if trainer.group:
        return {"checkpoints": path.parent, "resume": bool(unit.resume)}
    return {"checkpoint": path, "resume": bool(unit.resume)}


def run_unit(unit: WorkUnit, send: Emit, should_stop: ShouldStop | Sequence[ShouldStop], *, device: str,
             store: RunStore | None = None, interrupted: Interrupted | None = None) -> list[RunFinished]:
    """Train a unit; returns each run's RunFinished in the unit's order (see the module docstring).

    `should_stop`: one function for the whole unit, or one per run. A group that cannot start (a
    setup error, data that do not stack) trains its runs one by one instead, so each gets the
    error message it would get alone. KeyboardInterrupt ends the open runs ``cancelled`` and is
    raised again. `interrupted`: asked when a run ends cancelled, it says why when nobody asked
    for that (the process driving the runs went away, the terminal closed): the run then ends
    ``interrupted`` with those words.
    """
    stops = [should_stop] * len(unit.specs) if callable(should_stop) else list(should_stop)
    if len(stops) != len(unit.specs):
        raise ValueError(f"{len(stops)} should_stop functions for {len(unit.specs)} runs")
    books = _Books(unit, send, store, interrupted)
    try:
        trainer = trainer_for(unit)
    except Exception as exc:  # noqa: BLE001 - a train function that cannot load fails every run
        name = unit.train_fn if isinstance(unit.train_fn, str) else getattr(unit.train_fn, "__name__", "?")
        books.end_open("failed", f"could not load train function {name!r}: {failure_reason(exc, device)}")
        return [books.finished[run_id] for run_id in unit.run_ids]
    if not trainer.group and len(unit.specs) > 1:  # solo trainers: one run after another
        return [run_unit(unit.one(k), send, stops[k], device=device, store=store, interrupted=interrupted)[0]
                for k in range(len(unit.specs))]
    crashed = False
    try:
        if trainer.group:
            returned = trainer.fn(list(unit.specs), books.emit, stops, device=device, run_ids=list(unit.run_ids),
                                  **_checkpointing(trainer, unit, store))
        else:
            returned = trainer.fn(unit.specs[0], books.emit, stops[0], device=device, run_id=unit.run_ids[0],
                                  **_checkpointing(trainer, unit, store))
    except KeyboardInterrupt:
        books.end_open("cancelled", "interrupted")
        raise
    except BaseException as exc:  # noqa: BLE001 - a run's failure must never take its executor down
        crashed = True
        if trainer.name == "batched" and not books.began and not unit.resume:  # could not start: each run alone
            for k in range(len(unit.specs)):
                books.finished[unit.run_ids[k]] = run_unit(unit.one(k), send, stops[k], device=device,
                                                           store=store, interrupted=interrupted)[0]
        else:
            books.failed(exc, device, trainer.group and len(unit.specs) > 1)
    else:
        books.accept(returned)
    books.end_open("failed", RETURNED_WITHOUT_END)
    if crashed:  # the traceback's frames are gone now: give their memory back for the next unit
        free_accelerator_memory()
    return [books.finished[run_id] for run_id in unit.run_ids]
