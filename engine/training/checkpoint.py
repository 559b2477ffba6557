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

An ensemble's extra members (weights, optimizers, dropout streams) and its kept snapshots are in
it too. Runs that are not network training (2-D surfaces, gradient checks: a few seconds each)
are not checkpointed: :func:`supported` says why. A batched group's checkpoint
(``engine.batched.checkpoint``) is built from the same parts (:func:`ledger_state`,
:func:`stats_state`, :func:`write_atomic`): one file, linked under each of its runs' names.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from engine.diagnostics.run_stats import RunStats
    from engine.recipe.config import RunSpec
    from engine.training.loop import SoloRun
    from engine.training.runbook import RunLedger

EVERY_S = 30.0
"""Seconds between checkpoints of a running run (taken at the first evaluation after that)."""
FORMAT = 1
DIRNAME = "checkpoints"


def checkpoint_path(home: str | Path, run_id: str) -> Path:
    return Path(home) / DIRNAME / f"{run_id}.pt"


def resume_hint(home: str | Path, run_id: str) -> str:
    """What a stopped run's reason adds when it can go on: the command that does it."""
    return f"; `dllab resume {run_id}` goes on from its checkpoint" if checkpoint_path(home, run_id).exists() else ""


def supported(spec: RunSpec) -> str | None:
    """None when a run of `spec` can be checkpointed and resumed, else the reason it cannot."""
    if spec.kind != "network":
        return "only network training is checkpointed"
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
        write_atomic(capture(run), [self.path])
        self.last = time.monotonic()


def write_atomic(state: dict[str, Any], paths: list[Path]) -> None:
    """Save `state` once and put it at every one of `paths` (hard links: one file, several names),
    each name replaced atomically: a reader finds the old checkpoint or the new one, never half."""
    first = paths[0]
    first.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(first.parent, 0o700)
    tmp = first.with_name(first.name + ".tmp")
    torch.save(state, tmp)
    for path in paths[1:]:
        link = path.with_name(path.name + ".tmp")
        link.unlink(missing_ok=True)
        os.link(tmp, link)
        os.replace(link, path)
    os.replace(tmp, first)


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
        "kind": "run",
        "run_id": run.run_id,
        "time": time.time(),
        "step": run.step,
        "elapsed": time.perf_counter() - run.t0,
        "threads": torch.get_num_threads(),
        "perm": run.perm.cpu(),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state_dict(),
        "ema": None if run.ema is None else run.ema.state_dict(),
        "ensembles": None if run.ensembles is None else run.ensembles.state_dict(),
        "best_state": run.best_state,
        "window": [float(v) for v in torch.stack(run.window).tolist()] if run.window else [],
        "rng": {
            "batches": _generator(run.batches),
            "noise": _generator(run.noise),
            "augment": _generator(getattr(run.augmenter, "generator", None)),
            "unlabeled": _generator(getattr(run.unlabeled, "generator", None)),
            **global_rng(run.dev),
        },
        "ledger": ledger_state(ledger),
        "stats": stats_state(stats),
    }


def ledger_state(ledger: RunLedger) -> dict[str, Any]:
    """What a run has reported so far: its history, best figures, patience and summary."""
    return {"history": ledger.history, "best": ledger.best, "summary": _plain(ledger.summary),
            "evals_since_best": ledger.evals_since_best, "diagnosed_at": ledger.diagnosed_at}


def restore_ledger(ledger: RunLedger, saved: dict[str, Any]) -> None:
    ledger.history = list(saved["history"])
    ledger.best = dict(saved["best"])
    ledger.summary.update(saved["summary"])
    ledger.evals_since_best = int(saved["evals_since_best"])
    ledger.diagnosed_at = int(saved["diagnosed_at"])


def stats_state(stats: RunStats) -> dict[str, Any]:
    """The whole-run figures gathered so far."""
    return {"last": stats._last, "n": stats._n, "sum": stats._sum, "sum_sq": stats._sum_sq,
            "train_seconds": stats.train_seconds, "timed_steps": stats.timed_steps}


def restore_stats(stats: RunStats, saved: dict[str, Any]) -> None:
    stats._last, stats._n = saved["last"], int(saved["n"])
    stats._sum, stats._sum_sq = float(saved["sum"]), float(saved["sum_sq"])
    stats.train_seconds, stats.timed_steps = float(saved["train_seconds"]), int(saved["timed_steps"])


def set_threads(state: dict[str, Any], dev: torch.device) -> None:
    """A CPU's sums depend on how many threads share them: a resumed run uses as many as before."""
    if dev.type == "cpu":
        torch.set_num_threads(int(state["threads"]))


def global_rng(dev: torch.device) -> dict[str, Any]:
    """torch's global random streams (the CPU's, and the device's on CUDA)."""
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None}


def restore_global_rng(rng: dict[str, Any], dev: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") is not None and dev.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], dev)


def _plain(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's numbers and strings (what a weights-only load accepts)."""
    return {k: v for k, v in summary.items() if isinstance(v, int | float | str | bool)}


def restore(run: SoloRun, state: dict[str, Any]) -> None:
    """Put a run built from the same spec back where the checkpoint left it."""
    dev = run.dev
    set_threads(state, dev)
    run.step = int(state["step"])
    run.t0 = time.perf_counter() - float(state.get("elapsed", 0.0))  # its clock goes on where it stopped
    run.perm = state["perm"].to(dev)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.schedule.load_state_dict(state["schedule"])
    if run.ema is not None and state["ema"] is not None:
        run.ema.load_state_dict(state["ema"])
    if run.ensembles is not None and state.get("ensembles") is not None:
        run.ensembles.load_state_dict(state["ensembles"], dev)
    run.best_state = None if state["best_state"] is None else {k: v.to(dev) for k, v in state["best_state"].items()}
    run.window = [torch.tensor(v, device=dev) for v in state["window"]]
    rng = state["rng"]
    for gen, saved in ((run.batches, rng["batches"]), (run.noise, rng["noise"]),
                       (getattr(run.augmenter, "generator", None), rng["augment"]),
                       (getattr(run.unlabeled, "generator", None), rng["unlabeled"])):
        if gen is not None and saved is not None:
            gen.set_state(saved)
    restore_global_rng(rng, dev)
    restore_ledger(run.ledger, state["ledger"])
    restore_stats(run.stats, state["stats"])
