"""Checkpoints of a batched group: the whole stack between two steps, so that its runs resumed
together go on exactly as if the group had never stopped (on a CPU: the same series, the same
final numbers as the uninterrupted group).

A group's checkpoint holds what a solo checkpoint holds (:mod:`engine.training.checkpoint`), for
the stack: the step, each dataset's epoch permutation and batch-order stream, the stacked
parameters and gradients, the norms' running statistics, the stacked optimizer's state (its
per-rule buffers, step counts), the EMA rows, the alive mask, the loss window not read yet, every
member's dropout, DropConnect and augmentation stream, LR schedule, ledger, whole-run figures and
kept best weights, torch's global streams and the thread count. It also names every run of the
group with its spec (a group resumes as the group it was: the runs that had already ended stay
in the stack where they were, frozen) and which runs were still training (``active``): those are
the runs a resume goes on with.

The file is written once (:func:`engine.training.checkpoint.write_atomic`) and linked under each
training run's name (``$DLLAB_HOME/checkpoints/<run>.pt``), so ``dllab resume`` finds it from any of
them. A run that ends for good (done, early-stopped, diverged) loses its name, and so does a run
cancelled on its own while the rest of its group trains on (the group's later state has moved past
it); the group's other runs keep theirs.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from engine.training.checkpoint import (
    EVERY_S,
    FORMAT,
    global_rng,
    ledger_state,
    restore_global_rng,
    restore_ledger,
    restore_stats,
    set_threads,
    stats_state,
    write_atomic,
)

if TYPE_CHECKING:
    from engine.batched.train import BatchedRun, _Member

KIND = "group"


class GroupCheckpointer:
    """Writes a group's checkpoints into `folder`: when one is due (:meth:`due`), and when asked."""

    def __init__(self, folder: str | Path, every_s: float | None = None) -> None:
        self.folder = Path(folder)
        self.every_s = EVERY_S if every_s is None else every_s
        self.last = time.monotonic()

    def path(self, run_id: str) -> Path:
        return self.folder / f"{run_id}.pt"

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def write(self, run: BatchedRun) -> None:
        """The group's state now, under the name of every run still training."""
        if run.active:
            write_atomic(capture(run), [self.path(m.run_id) for m in run.active])
        self.last = time.monotonic()

    def drop(self, members: list[_Member]) -> None:
        """These runs can no longer go on from the group's checkpoint."""
        for m in members:
            with contextlib.suppress(OSError):
                self.path(m.run_id).unlink(missing_ok=True)


def _generator(gen: torch.Generator | None) -> torch.Tensor | None:
    return None if gen is None else gen.get_state()


def capture(run: BatchedRun) -> dict[str, Any]:
    """The group's state between two steps (see the module docstring)."""
    model, optimizer = run.model, run.optimizer
    in_stack = run.stacked
    norms = [None if n is None or not n.batch else
             {"mean": n.running_mean, "var": n.running_var, "tracked": n.batches_tracked} for n in model.norms]
    return {
        "format": FORMAT,
        "kind": KIND,
        "time": time.time(),
        "step": run.step,
        "elapsed": time.perf_counter() - run.t0,
        "threads": torch.get_num_threads(),
        "specs": [json.dumps(m.spec.model_dump(mode="json")) for m in sorted(run.members, key=lambda m: m.index)],
        "run_ids": [m.run_id for m in sorted(run.members, key=lambda m: m.index)],
        "stack": [m.index for m in in_stack],
        "active": sorted(m.index for m in run.active),
        "perm": run.perm.cpu(),
        "window": torch.stack(run.window).cpu() if run.window else None,
        "params": model.params.detach().cpu(),
        "grads": model.grads.detach().cpu(),
        "norms": norms,
        "optimizer": {"steps_taken": optimizer.steps_taken,
                      "t": optimizer.t.cpu() if isinstance(optimizer.t, torch.Tensor) else optimizer.t,
                      "step_index": optimizer.step_index.cpu(),
                      "blocks": [{k: v.cpu() for k, v in b.state.items()} for b in optimizer.blocks]},
        "ema": None if run.ema_params is None else run.ema_params.cpu(),
        "alive": run.alive.cpu(),
        "rng": {"batches": [g.get_state() for g in run.batches],
                "dropout": None if model.dropout is None else [g.get_state() for g in model.dropout.generators],
                **global_rng(run.dev)},
        "members": {m.index: _member_state(m) for m in in_stack},
    }


def _member_state(m: _Member) -> dict[str, Any]:
    return {"schedule": m.schedule.state_dict(), "ledger": ledger_state(m.ledger), "stats": stats_state(m.stats),
            "augment": _generator(getattr(m.augmenter, "generator", None)),
            "best_state": None if m.best_state is None else [t.cpu() for t in m.best_state]}


def group_specs(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored specs (JSON data) of every run of the checkpoint's group, in the group's order."""
    return [json.loads(text) for text in state["specs"]]


def restore(run: BatchedRun, state: dict[str, Any]) -> None:
    """Put a group built from the checkpoint's specs and run ids back where the checkpoint left it:
    shrink the stack to the rows it had, then load every tensor, stream and ledger."""
    dev = run.dev
    set_threads(state, dev)
    by_index = {m.index: m for m in run.members}
    stack = [by_index[i] for i in state["stack"]]
    if len(stack) < run.M:  # the group had dropped finished runs' rows (BatchedRun.compact)
        run.compact(stack)
    run.active = sorted((by_index[i] for i in state["active"]), key=lambda m: m.row)  # row order, as it was
    model, optimizer = run.model, run.optimizer
    with torch.no_grad():
        model.params.copy_(state["params"])
        model.grads.copy_(state["grads"])
        for norm, saved in zip(model.norms, state["norms"], strict=True):
            if norm is not None and saved is not None:
                norm.running_mean.copy_(saved["mean"])
                norm.running_var.copy_(saved["var"])
                norm.batches_tracked.copy_(saved["tracked"])
        if run.ema_params is not None and state["ema"] is not None:
            run.ema_params.copy_(state["ema"])
        run.alive.copy_(state["alive"])
    saved_opt = state["optimizer"]
    optimizer.steps_taken = int(saved_opt["steps_taken"])
    t = saved_opt["t"]
    optimizer.t = t.to(dev) if isinstance(t, torch.Tensor) else t
    optimizer.step_index.copy_(saved_opt["step_index"])
    for block, saved in zip(optimizer.blocks, saved_opt["blocks"], strict=True):
        block.state = {k: v.to(dev) for k, v in saved.items()}
    run.step = int(state["step"])
    run.t0 = time.perf_counter() - float(state.get("elapsed", 0.0))  # the runs' clock goes on where it stopped
    run.perm = state["perm"].to(dev)
    run.window = [] if state["window"] is None else [w.to(dev) for w in state["window"].unbind(0)]
    rng = state["rng"]
    for gen, saved in zip(run.batches, rng["batches"], strict=True):
        gen.set_state(saved)
    if model.dropout is not None and rng["dropout"] is not None:
        for gen, saved in zip(model.dropout.generators, rng["dropout"], strict=True):
            gen.set_state(saved)
    restore_global_rng(rng, dev)
    for m in stack:
        saved = state["members"][m.index]
        m.schedule.load_state_dict(saved["schedule"])
        if m.schedule.kind == "plateau":  # its learning rates from here on, at the factor it had reached
            optimizer.refresh_lr(m.row, run.step)
        restore_ledger(m.ledger, saved["ledger"])
        restore_stats(m.stats, saved["stats"])
        if m.augmenter is not None and saved["augment"] is not None:
            m.augmenter.generator.set_state(saved["augment"])
        m.best_state = None if saved["best_state"] is None else [t.to(dev) for t in saved["best_state"]]
    run.in_shadow = None
