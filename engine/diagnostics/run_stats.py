"""Cheap whole-run figures for a run's final summary, gathered as the loop goes.

The loop feeds this tracker the per-step training losses it already reads at every `log_every`
(no extra host sync) and tells it when an evaluation ends; at the end ``summary(history)`` gives
flat float figures that the claims, the verdict and the sanity checks read:

- ``initial_train_loss`` / ``initial_val_loss`` / ``initial_train_acc``: the step-0 evaluation
  (before any update). With C balanced classes and a sensible init it is close to ln C.
- ``initial_penalty`` / ``initial_objective``: the L1/L2 penalty at the initial weights, and the
  initial data loss plus it (the quantity the optimizer minimizes). A penalty must raise it.
  ``final_penalty`` / ``final_objective``: the same at the end (training loss of the final
  evaluation plus the penalty of the final weights).
- ``loss_noise``: the standard deviation of the change of the mini-batch training loss from one
  step to the next. Small batches give noisy losses; full-batch descent gives a smooth curve.
- ``train_seconds``, ``sec_per_step`` and ``sec_per_epoch``: wall time of the training steps
  only (evaluations and diagnostics excluded; the loop's own logging included), per optimizer
  update and per pass over the training split.
- ``mean_val_acc``: the mean validation accuracy over all evaluations (the area under the
  validation-accuracy curve, normalized): higher means "got better sooner".
- ``lr_found``: the learning rate the LR range test chose, for runs with ``train.lr_find``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from engine.recipe.config import TrainSpec
from engine.recipe.regularize import penalty


class RunStats:
    """Accumulates the figures above; every method is O(window) host work, no device sync."""

    def __init__(self, model: nn.Module, train: TrainSpec, steps_per_epoch: int,
                 lr_found: float | None = None, extra: dict[str, float] | None = None) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.lr_found = lr_found
        self.extra = dict(extra or {})
        self._model, self._l1, self._l2 = model, train.l1, train.l2
        with torch.no_grad():
            self._penalty = penalty(model, train.l1, train.l2)
        self._last: float | None = None
        self._n = 0
        self._sum = 0.0
        self._sum_sq = 0.0
        self.train_seconds = 0.0
        self.timed_steps = 0
        self._mark: tuple[int, float] | None = None

    def resume(self, step: int) -> None:
        """Training (re)starts at `step` now: time from here on counts as training time."""
        self._mark = (step, time.perf_counter())

    def on_window(self, losses: list[float], step: int) -> None:
        """The per-step losses of the steps up to `step` (as the loop read them)."""
        now = time.perf_counter()
        if self._mark is not None:
            self.train_seconds += now - self._mark[1]
            self.timed_steps += step - self._mark[0]
        self._mark = (step, now)
        for value in losses:
            if not math.isfinite(value):
                self._last = None
                continue
            if self._last is not None:
                d = value - self._last
                self._n += 1
                self._sum += d
                self._sum_sq += d * d
            self._last = value

    @property
    def loss_noise(self) -> float | None:
        if self._n < 2:
            return None
        mean = self._sum / self._n
        return math.sqrt(max(self._sum_sq / self._n - mean * mean, 0.0))

    def summary(self, history: list[dict[str, float]], final: dict[str, float] | None = None) -> dict[str, Any]:
        """Flat float figures (missing ones are left out); `final` is the run's last evaluation."""
        out: dict[str, Any] = dict(self.extra)
        if final and math.isfinite(final.get("train_loss", math.inf)):
            with torch.no_grad():
                pen = penalty(self._model, self._l1, self._l2)
            out["final_penalty"] = float(pen) if pen is not None else 0.0
            out["final_objective"] = float(final["train_loss"]) + out["final_penalty"]
        first = history[0] if history and history[0].get("step") == 0 else None
        if first is not None:
            for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
                if key in first:
                    out[f"initial_{key}"] = float(first[key])
            pen = float(self._penalty) if self._penalty is not None else 0.0
            out["initial_penalty"] = pen
            if "train_loss" in first:
                out["initial_objective"] = float(first["train_loss"]) + pen
        noise = self.loss_noise
        if noise is not None:
            out["loss_noise"] = noise
        if self.timed_steps > 0:
            out["train_seconds"] = self.train_seconds
            out["sec_per_step"] = self.train_seconds / self.timed_steps
            out["sec_per_epoch"] = out["sec_per_step"] * self.steps_per_epoch
        accs = [h["val_acc"] for h in history if "val_acc" in h and math.isfinite(h["val_acc"])]
        if accs:
            out["mean_val_acc"] = sum(accs) / len(accs)
        if self.lr_found is not None:
            out["lr_found"] = self.lr_found
        return out
