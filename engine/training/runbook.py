"""The run ledger: the bookkeeping every trainer keeps for each of its runs, in one set of words.

A trainer (the solo loop, the batched trainer with one ledger per member, the surface trainer, the
gradient check) decides *how* to compute; the ledger decides what a run reports about it:

* the spacing of a run: its batch size and step budget (:func:`budget`), how often it evaluates
  (:func:`eval_every`) and diagnoses (:func:`diagnostics_every`);
* the ``RunStarted`` it announces, with the library versions and the data's description
  (:func:`run_started`);
* each evaluation folded in: the history, the best-so-far figures, the patience of early
  stopping (:meth:`RunLedger.on_eval`);
* the divergence scan of the losses the trainer reads (:meth:`RunLedger.divergence`);
* the ``RunFinished`` with its reason (:meth:`RunLedger.finish`), and the reasons' words
  (:func:`finished_reason`, :func:`cancelled_reason`, :func:`out_of_memory_reason`, …).

Nothing here touches a model or a device: the ledger reads plain floats, so the batched trainer
keeps one per member and the numbers match its solo run's by construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.events import EvalMetrics, Message, RunFinished, RunStarted
from engine.training.versions import library_versions

if TYPE_CHECKING:
    from engine.diagnostics.run_stats import RunStats
    from engine.recipe.config import RunSpec

MAX_EVALS = 50
"""Evaluations a run makes at most when the recipe does not set `eval_every`."""
DIAG_MIN_STEPS = 50
"""Default spacing of per-layer diagnostics, in steps at least: a diagnosis costs a few training
steps' worth of compute, so one per evaluation would be a quarter of a run with short epochs."""
RESTORED = "restored the best weights (step {step:.0f})"


# -- a run's spacing ---------------------------------------------------------------------------


def budget(spec: RunSpec, n_train: int) -> tuple[int, int, int]:
    """(batch size, steps per epoch, total steps) of a run over `n_train` samples."""
    t = spec.recipe.train
    bs = n_train if t.batch_size == 0 else min(t.batch_size, n_train)
    per_epoch = math.ceil(n_train / bs)
    if spec.recipe.model.norm == "batch" and n_train % bs == 1 and n_train > 1:
        per_epoch -= 1  # BatchNorm cannot normalize a batch of one: drop that last sample each epoch
    total = t.steps if t.steps is not None else (t.epochs or 20) * per_epoch
    return bs, per_epoch, total


def eval_every(spec: RunSpec, per_epoch: int, total: int) -> int:
    """Steps between evaluations: the recipe's `eval_every`, else once an epoch, at most MAX_EVALS
    times a run (a run shorter than an epoch evaluates ten times)."""
    if spec.recipe.train.eval_every:
        return spec.recipe.train.eval_every
    return max(per_epoch, math.ceil(total / MAX_EVALS)) if total > per_epoch else max(1, total // 10)


def diagnostics_every(spec: RunSpec, every_eval: int) -> int:
    """Steps between per-layer diagnostics: the recipe's `diagnostics_every`, else the first
    multiple of the evaluation interval that spans at least DIAG_MIN_STEPS steps. Diagnostics
    are taken at step 0, on those evaluations, and at the end."""
    if spec.recipe.train.diagnostics_every:
        return spec.recipe.train.diagnostics_every
    return every_eval * max(1, math.ceil(DIAG_MIN_STEPS / every_eval))


# -- the words of a run's ending ---------------------------------------------------------------


def finished_reason(total: int) -> str:
    return f"finished {total} steps"


def cancelled_reason(step: int) -> str:
    return f"cancelled at step {step}"


def interrupted_reason(step: int, why: str) -> str:
    """A run stopped because what drove it went away (`why`: "the terminal closed (SIGHUP)", ...)."""
    return f"interrupted at step {step}: {why}"


def diverged_reason(value: float, step: int) -> str:
    return f"loss became {value:.3g} at step {step}"


def nonfinite_eval_reason(step: int) -> str:
    return f"evaluation loss became non-finite at step {step}"


def early_stop_reason(patience: int, best_step: float) -> str:
    return f"no val-loss improvement for {patience} evaluations; best at step {best_step:.0f}"


def out_of_memory_reason(device: Any, asked: str = "", hint: str = "try a smaller batch_size or model") -> str:
    """``out of memory on cuda:0 (it asked for 3 GiB at once): try a smaller batch_size or model``."""
    return f"out of memory on {device}{asked}" + (f": {hint}" if hint else "")


def infinite_losses(final: dict[str, float]) -> dict[str, float]:
    """A diverged run's final figures: its losses and gaps count as infinitely bad in claims."""
    return {k: (math.inf if k.endswith("loss") or k.endswith("gap") else v) for k, v in final.items()}


def numeric(summary: dict[str, Any]) -> dict[str, float]:
    """The figures of a summary that a RunFinished carries (numbers only)."""
    return {k: v for k, v in summary.items() if isinstance(v, int | float)}


def run_started(spec: RunSpec, run_id: str, device: Any, n_params: int, total: int, per_epoch: int,
                data_info: dict[str, Any] | None = None) -> RunStarted:
    """The RunStarted of a run: its spec as JSON, with the library versions and the data's description."""
    spec_json: dict[str, Any] = spec.model_dump(mode="json")
    spec_json["versions"] = library_versions()
    if data_info is not None:
        spec_json["data_info"] = data_info
    return RunStarted(run_id, spec.variant, spec.recipe.train.seed, spec.preset, spec.comparison, spec_json,
                      str(device), n_params, total, per_epoch)


# -- one run's ledger --------------------------------------------------------------------------


@dataclass
class RunLedger:
    """What one run has reported so far: its evaluations, its best, its patience, its summary."""

    spec: RunSpec
    run_id: str
    classify: bool
    per_epoch: int
    total: int
    stats: RunStats | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    evals_since_best: int = 0
    improved: bool = False
    """The last evaluation was the best so far (a trainer keeping the best weights copies them then)."""
    diagnosed_at: int = -1
    """The step of the last Diagnostics."""
    finished: RunFinished | None = None

    @property
    def train(self):
        return self.spec.recipe.train

    @property
    def keeps_best(self) -> bool:
        """Early stopping puts the best weights back at the end: the trainer keeps a copy."""
        return bool(self.train.early_stopping and self.train.restore_best)

    @property
    def out_of_patience(self) -> bool:
        return bool(self.train.early_stopping and self.evals_since_best >= self.train.patience)

    @staticmethod
    def watched(values: dict[str, float]) -> float:
        """The figure early stopping and the best checkpoint watch: the validation loss (the
        training loss when there is no validation split)."""
        return values.get("val_loss", values.get("train_loss", math.inf))

    def started(self, device: Any, n_params: int, data_info: dict[str, Any] | None = None) -> RunStarted:
        return run_started(self.spec, self.run_id, device, n_params, self.total, self.per_epoch, data_info)

    def on_eval(self, step: int, values: dict[str, float], elapsed: float) -> EvalMetrics:
        """Fold one evaluation in (history, best so far, patience); returns the event to emit."""
        epoch = step / self.per_epoch
        self.history.append({"step": step, "epoch": epoch, **values})
        best = self.best
        val_loss = self.watched(values)
        self.improved = math.isfinite(val_loss) and val_loss < best.get("best_val_loss", math.inf)
        if self.improved:
            best.update(best_val_loss=val_loss, best_step=step, best_epoch=epoch)
            if self.classify:
                best["best_val_acc_at_best_loss"] = values.get("val_acc", 0.0)
            self.evals_since_best = 0
        else:
            self.evals_since_best += 1
        if self.classify:
            best["best_val_acc"] = max(best.get("best_val_acc", 0.0), values.get("val_acc", 0.0))
        best["min_train_loss"] = min(best.get("min_train_loss", math.inf), values.get("train_loss", math.inf))
        return EvalMetrics(self.run_id, step, epoch, values, elapsed)

    def divergence(self, losses: list[float], step: int) -> str | None:
        """The reason this run diverged within the window of losses that ends at `step`, or None."""
        limit = self.train.diverge_threshold
        bad = next((i for i, v in enumerate(losses) if not math.isfinite(v) or abs(v) > limit), None)
        return None if bad is None else diverged_reason(losses[bad], step - len(losses) + bad + 1)

    def early_stop_reason(self) -> str:
        return early_stop_reason(self.train.patience, self.best.get("best_step", 0))

    def restored(self) -> Message:
        """The message of a run whose best weights were put back after it stopped early."""
        return Message(self.run_id, RESTORED.format(step=self.best.get("best_step", 0)))

    def finish(self, status: str, reason: str, step: int, final: dict[str, float], wall: float) -> RunFinished:
        """The run's RunFinished: `final` (its last evaluation, {} when there is none) with the
        epoch and step count, a diverged run's losses made infinite, the whole-run summary."""
        final = infinite_losses(final) if status == "diverged" else dict(final)
        final["epoch"] = step / self.per_epoch
        final["steps"] = float(step)
        if self.stats is not None:
            self.summary.update(self.stats.summary(self.history, final))
        self.finished = RunFinished(self.run_id, status, step, reason, final, self.best, wall,  # type: ignore[arg-type]
                                    numeric(self.summary))
        return self.finished
