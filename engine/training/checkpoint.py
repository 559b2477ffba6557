"""Checkpoints of a solo run: everything its next step depends on, so that a resumed run goes on
exactly as if it had never stopped (on a CPU: the same series, the same final numbers).

What a checkpoint holds (:func:`capture`): the step and the position in the epoch's batch order
(the permutation), the model, the optimizer, the LR schedule's plateau state, the EMA, every random
stream (the batch order's, mixup's, the augmenter's, the unlabeled batches', torch's global one
that draws the dropout masks, CUDA's), the losses read since the last log line, the ledger (history,
best so far, early stopping's patience, the summary), the whole-run figures gathered so far, the
best weights kept for early stopping, the number of CPU threads (a CPU's sums, and so its last
digits, depend on it: a resumed run uses as many as before), and the wall-clock time it was written
(a resumed run's store keeps what was recorded up to then and nothing after).

It is written atomically (a temporary file, then a rename) to ``$DLLAB_HOME/checkpoints/<run>.pt``
every :data:`EVERY_S` seconds at an evaluation and when the run is cancelled, and read back with
``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts only.

Runs with extra ensemble members are not checkpointed (their members' states are not captured yet):
:func:`supported` says why, and such a run cannot be resumed.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from engine.recipe.config import RunSpec
    from engine.training.loop import SoloRun

EVERY_S = 30.0
"""Seconds between checkpoints of a running run (taken at the first evaluation after that)."""
FORMAT = 1
DIRNAME = "checkpoints"


def checkpoint_path(home: str | Path, run_id: str) -> Path:
    return Path(home) / DIRNAME / f"{run_id}.pt"


def supported(spec: RunSpec) -> str | None:
    """None when a run of `spec` can be checkpointed and resumed, else the reason it cannot."""
    if spec.kind != "network":
        return "only network training is checkpointed"
    if spec.recipe.model.ensemble > 1 or spec.recipe.train.checkpoint_ensemble:
        return "runs with ensemble members are not checkpointed yet"
    return None


class Checkpointer:
    """Writes a run's checkpoints to `path`: when one is due (:meth:`due`), and when asked."""

    def __init__(self, path: Path, every_s: float | None = None) -> None:
        self.path = Path(path)
        self.every_s = EVERY_S if every_s is None else every_s
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every_s

    def write(self, run: SoloRun) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.path.parent, 0o700)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(capture(run), tmp)
        os.replace(tmp, self.path)
        self.last = time.monotonic()


def load(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: a checkpoint of another format ({state.get('format')!r}, this dllab reads {FORMAT})")
    return state


def _generator(gen: torch.Generator | None) -> torch.Tensor | None:
    return None if gen is None else gen.get_state()


def capture(run: SoloRun) -> dict[str, Any]:
    """A run's state between two steps (see the module docstring)."""
    ledger, stats = run.ledger, run.stats
    return {
        "format": FORMAT,
        "run_id": run.run_id,
        "time": time.time(),
        "step": run.step,
        "threads": torch.get_num_threads(),
        "perm": run.perm.cpu(),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state_dict(),
        "ema": None if run.ema is None else run.ema.state_dict(),
        "best_state": run.best_state,
        "window": [float(v) for v in torch.stack(run.window).tolist()] if run.window else [],
        "rng": {
            "batches": _generator(run.batches),
            "noise": _generator(run.noise),
            "augment": _generator(getattr(run.augmenter, "generator", None)),
            "unlabeled": _generator(getattr(run.unlabeled, "generator", None)),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(run.dev) if run.dev.type == "cuda" else None,
        },
        "ledger": {"history": ledger.history, "best": ledger.best, "summary": _plain(ledger.summary),
                   "evals_since_best": ledger.evals_since_best, "diagnosed_at": ledger.diagnosed_at},
        "stats": {"last": stats._last, "n": stats._n, "sum": stats._sum, "sum_sq": stats._sum_sq,
                  "train_seconds": stats.train_seconds, "timed_steps": stats.timed_steps},
    }


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's numbers and strings (what a weights-only load accepts)."""
    return {k: v for k, v in summary.items() if isinstance(v, int | float | str | bool)}


def restore(run: SoloRun, state: dict[str, Any]) -> None:
    """Put a run built from the same spec back where the checkpoint left it."""
    dev = run.dev
    if dev.type == "cpu":  # a CPU's sums depend on how many threads share them: the same as before
        torch.set_num_threads(int(state["threads"]))
    run.step = int(state["step"])
    run.perm = state["perm"].to(dev)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.schedule.load_state_dict(state["schedule"])
    if run.ema is not None and state["ema"] is not None:
        run.ema.load_state_dict(state["ema"])
    run.best_state = None if state["best_state"] is None else {k: v.to(dev) for k, v in state["best_state"].items()}
    run.window = [torch.tensor(v, device=dev) for v in state["window"]]
    rng = state["rng"]
    for gen, saved in ((run.batches, rng["batches"]), (run.noise, rng["noise"]),
                       (getattr(run.augmenter, "generator", None), rng["augment"]),
                       (getattr(run.unlabeled, "generator", None), rng["unlabeled"])):
        if gen is not None and saved is not None:
            gen.set_state(saved)
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and dev.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], dev)
    ledger, saved_ledger = run.ledger, state["ledger"]
    ledger.history = list(saved_ledger["history"])
    ledger.best = dict(saved_ledger["best"])
    ledger.summary.update(saved_ledger["summary"])
    ledger.evals_since_best = int(saved_ledger["evals_since_best"])
    ledger.diagnosed_at = int(saved_ledger["diagnosed_at"])
    stats, saved_stats = run.stats, state["stats"]
    stats._last, stats._n = saved_stats["last"], int(saved_stats["n"])
    stats._sum, stats._sum_sq = float(saved_stats["sum"]), float(saved_stats["sum_sq"])
    stats.train_seconds, stats.timed_steps = float(saved_stats["train_seconds"]), int(saved_stats["timed_steps"])
