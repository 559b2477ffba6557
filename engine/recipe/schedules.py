"""Learning-rate schedules, as pure functions of the (0-based) optimizer step.

With ``lr`` the base rate, ``W = warmup_steps`` and ``s = step - W`` (the step after warmup):

========================  =====================================================================
warmup (``step < W``)     ``lr * (step + 1) / W``: a linear ramp that reaches ``lr`` at step W-1
``constant``              ``lr``
``step``                  ``lr * gamma ** (s // step_size)``
``exponential``           ``lr * gamma ** s``; note gamma is per *step* (not per epoch), so
                          useful values are close to 1 (0.999 halves the rate every ~690 steps)
``inverse_time``          ``lr / (1 + decay * s)``
``cosine``                ``min_lr + (lr - min_lr) * (1 + cos(pi * s / T)) / 2`` with
                          ``T = total_steps - W``; stays at min_lr after T
``plateau``               ``lr * factor``; ``factor`` starts at 1 and is multiplied by gamma
                          after ``plateau_patience`` evaluations in a row without a relative
                          improvement of 1e-4 in the validation loss (see ``on_eval``)
========================  =====================================================================

The decaying schedules (step, exponential, inverse_time, plateau) never go below ``min_lr``;
``constant`` ignores it and the warmup ramp starts below it by design. A ``min_lr`` above ``lr``
is an error for the decaying schedules.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from engine.recipe.config import TrainSpec

PLATEAU_THRESHOLD = 1e-4
"""Relative improvement of the validation loss that counts as progress for ``plateau``."""


class LRSchedule:
    """The learning rate of every step of one run; `apply` writes it into an optimizer."""

    def __init__(self, spec: TrainSpec, total_steps: int) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps}")
        if spec.schedule != "constant" and spec.min_lr > spec.lr:
            raise ValueError(
                f"min_lr ({spec.min_lr:g}) is above lr ({spec.lr:g}) for schedule {spec.schedule!r}"
            )
        self.spec = spec
        self.kind = spec.schedule
        self.total_steps = total_steps
        self.base_lr = spec.lr
        self.min_lr = spec.min_lr
        self.warmup_steps = spec.warmup_steps
        # plateau state
        self.factor = 1.0
        self.best = math.inf
        self.bad_evals = 0
        self.n_cuts = 0

    def _decayed(self, s: int) -> float:
        """The schedule's value `s` steps after warmup."""
        spec, lr, floor = self.spec, self.base_lr, self.min_lr
        if self.kind == "constant":
            return lr
        if self.kind == "step":
            return max(floor, lr * spec.gamma ** (s // spec.step_size))
        if self.kind == "exponential":
            return max(floor, lr * spec.gamma**s)
        if self.kind == "inverse_time":
            return max(floor, lr / (1.0 + spec.decay * s))
        if self.kind == "cosine":
            horizon = self.total_steps - self.warmup_steps
            if horizon <= 0:
                return lr
            t = min(s, horizon)
            return floor + (lr - floor) * (1.0 + math.cos(math.pi * t / horizon)) / 2.0
        if self.kind == "plateau":
            return max(floor, lr * self.factor)
        raise ValueError(f"unknown schedule {self.kind!r}")  # pragma: no cover

    def lr_at(self, step: int) -> float:
        """The learning rate of 0-based optimizer step `step` (plateau: at the current factor)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        return self._decayed(step - self.warmup_steps)

    def on_eval(self, val_loss: float) -> None:
        """Record one evaluation's validation loss (only ``plateau`` reacts; NaN is no progress)."""
        if self.kind != "plateau":
            return
        if math.isnan(val_loss):
            improved = False
        elif self.best == math.inf:
            improved = val_loss < math.inf
        else:
            improved = val_loss < self.best - abs(self.best) * PLATEAU_THRESHOLD
        if improved:
            self.best = val_loss
            self.bad_evals = 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.spec.plateau_patience:
            self.bad_evals = 0
            if self.base_lr * self.factor > self.min_lr:
                self.factor *= self.spec.gamma
                self.n_cuts += 1

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every param group's lr to ``lr_at(step)`` and return it.

        A group with an ``lr_scale`` entry gets ``lr_at(step) * lr_scale``. A tensor lr (capturable
        / compiled optimizers) is filled in place, so no new graph is needed.
        """
        lr = self.lr_at(step)
        for group in optimizer.param_groups:
            value = lr * group.get("lr_scale", 1.0)
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(value)
            else:
                group["lr"] = value
        return lr

    def state_dict(self) -> dict[str, Any]:
        """The plateau state (the only mutable part), for checkpoints."""
        return {"factor": self.factor, "best": self.best, "bad_evals": self.bad_evals, "n_cuts": self.n_cuts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.factor = float(state["factor"])
        self.best = float(state["best"])
        self.bad_evals = int(state["bad_evals"])
        self.n_cuts = int(state["n_cuts"])


def schedule_curve(spec: TrainSpec, total_steps: int, n_points: int = 200) -> list[tuple[int, float]]:
    """(step, lr) pairs at up to `n_points` evenly spaced steps of ``0..total_steps-1``, for plots.

    ``plateau`` depends on the validation losses a run will see, so its curve is drawn as the
    constant base rate (after any warmup): the cuts are known only while training.
    """
    schedule = LRSchedule(spec, total_steps)
    n = max(2, n_points)
    if total_steps <= n:
        steps = list(range(total_steps))
    else:
        steps = sorted({round(i * (total_steps - 1) / (n - 1)) for i in range(n)})
    # Warmup ends are corners of the curve: make sure they are drawn.
    for corner in (schedule.warmup_steps - 1, schedule.warmup_steps):
        if 0 <= corner < total_steps and corner not in steps:
            steps.append(corner)
    return [(s, schedule.lr_at(s)) for s in sorted(steps)]
