"""The learning-rate range test ("LR finder", Smith 2017; popularized by fastai).

Train for a short while with the learning rate growing exponentially from ``lr_min`` to
``lr_max``, one mini-batch per step, and record the loss. Read against log(lr), the loss first
stays flat (the rate is too small to matter), then falls (useful rates), then turns up and
explodes (too large). A good rate sits on the falling part, well before the minimum.

Details, as implemented:

- **Sweep**: step i of N uses ``lr_i = lr_min · (lr_max / lr_min)^(i / (N − 1))``, on the run's own
  optimizer (its momentum, betas, weight decay, penalties and clipping), from the run's initial
  weights, on mini-batches of the run's batch size drawn from the training split.
- **Smoothing**: an exponential moving average of the mini-batch losses with bias correction,
  ``a_i = β·a_{i−1} + (1 − β)·loss_i``, ``s_i = a_i / (1 − β^(i+1))`` (β = 0.9 by default: the
  sweep is short, and a heavier average lags behind the loss and shifts the curve to the right).
- **Stop**: when the smoothed loss exceeds ``diverge × best`` (4× by default) or a loss is not
  finite: the rest of the sweep only shows the explosion.
- **Suggestion** (the rule, documented because every tool picks a different one): ignore the
  first 10% of the sweep (the average is still settling and early batches are noisy), find the
  minimum of the smoothed loss, and suggest **one tenth of the rate at the minimum** ("min/10":
  the minimum itself sits at the edge of divergence). The point of **steepest descent** (the most
  negative slope ``d s / d log10(lr)`` before the minimum, as a difference quotient over ±5% of
  the sweep, since a one-step difference follows the batch noise) is reported beside it and can
  be chosen with ``rule="steepest"``. Why min/10 is the default: on the mnist1d MLP (seeds 0-4)
  the steepest point scattered over one to two decades (SGD 0.025-1.9, momentum 0.002-0.076,
  Adam 0.0015-0.009) because the falling part of the curve is nearly straight on a log axis,
  while min/10 stayed within a factor of 3 (SGD 0.12-0.25, momentum 0.035-0.093, Adam
  0.003-0.015), each inside the range where that optimizer trains well.
- **Restored state**: the model's parameters and buffers, the given optimizer's state and torch's
  global RNG state are put back afterwards, so the test can run before training without
  changing the run (tested).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.config import Recipe, RunSpec, TrainSpec

LR_MIN = 1e-5
LR_MAX = 10.0
STEPS = 100
BETA = 0.9
DIVERGE = 4.0
SKIP_START = 0.1
SLOPE_SPAN = 0.05
"""Half-width of the slope's difference quotient, as a share of the sweep (noise-robust)."""
BELOW_MIN = 10.0
RULES = ("min/10", "steepest")
STEEPEST_RULE = "steepest: the rate of steepest descent of the smoothed loss before its minimum (first 10% ignored)"
RULE = (
    "min/10: one tenth of the rate at the minimum of the smoothed loss (first 10% of the sweep "
    "ignored); the steepest-descent rate is reported beside it"
)


@dataclass(frozen=True)
class LRFindResult:
    """One sweep: the curve, where it stopped, and the suggested rate."""

    lrs: list[float]
    losses: list[float]
    """Raw mini-batch losses, one per step."""
    smoothed: list[float]
    suggestion: float
    steepest: float | None
    """The rate of the steepest descent (None when the curve never fell)."""
    minimum: float
    """The rate at the lowest smoothed loss."""
    best_loss: float
    stopped: str
    """Why the sweep ended, in words."""
    rule: str = RULE
    settings: dict[str, Any] = field(default_factory=dict)

    def curve(self) -> list[tuple[float, float]]:
        """(lr, smoothed loss) pairs: what to plot, log-scaled on the lr axis."""
        return list(zip(self.lrs, self.smoothed, strict=True))

    def display_curve(self, headroom: float = 1.2) -> list[tuple[float, float]]:
        """The curve for a plot, the final blow-up clipped so the useful part stays readable:
        values above `headroom` × the highest smoothed loss of the first tenth of the sweep (and
        non-finite ones) are cut to that level."""
        head = [v for v in self.smoothed[: max(1, len(self.smoothed) // 10)] if math.isfinite(v)]
        top = headroom * max(head) if head else max((v for v in self.smoothed if math.isfinite(v)), default=1.0)
        return [(lr, min(v, top) if math.isfinite(v) else top) for lr, v in zip(self.lrs, self.smoothed, strict=True)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "suggestion": self.suggestion, "steepest": self.steepest, "minimum": self.minimum,
            "best_loss": self.best_loss, "stopped": self.stopped, "rule": self.rule,
            "settings": self.settings, "lrs": self.lrs, "losses": self.losses, "smoothed": self.smoothed,
        }


def lr_schedule(lr_min: float, lr_max: float, steps: int) -> list[float]:
    """The exponential sweep: `steps` rates from lr_min to lr_max (both included)."""
    if not 0 < lr_min < lr_max:
        raise ValueError(f"need 0 < lr_min < lr_max, got {lr_min:g} and {lr_max:g}")
    if steps < 2:
        raise ValueError(f"the sweep needs at least 2 steps, got {steps}")
    ratio = lr_max / lr_min
    return [lr_min * ratio ** (i / (steps - 1)) for i in range(steps)]


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """Bias-corrected exponential moving average (see the module docstring)."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def suggest_lr(lrs: list[float], smoothed: list[float], rule: str = "min/10", skip_start: float = SKIP_START,
               below_min: float = BELOW_MIN) -> tuple[float, float | None, float]:
    """(suggestion, steepest, lr at the minimum) by `rule` ("min/10" or "steepest"; see the module
    docstring). The first `skip_start` of the sweep is ignored for both the minimum and the slope."""
    if len(lrs) != len(smoothed) or not lrs:
        raise ValueError("lrs and smoothed must be non-empty and of the same length")
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; choose one of {', '.join(RULES)}")
    s = np.asarray(smoothed, dtype=float)
    start = min(int(math.ceil(skip_start * len(lrs))), len(lrs) - 1)
    tail = np.where(np.isfinite(s[start:]), s[start:], np.inf)
    i_min = start + int(np.argmin(tail))
    lr_min_loss = lrs[i_min]
    cap = lr_min_loss / below_min
    k = max(1, round(SLOPE_SPAN * len(lrs)))
    x = np.log10(np.asarray(lrs, dtype=float))
    steepest = None
    best_slope = 0.0
    for i in range(start, i_min + 1):
        lo, hi = max(start, i - k), min(i_min, i + k)
        if hi - lo < 2:
            continue
        slope = (s[hi] - s[lo]) / (x[hi] - x[lo])
        if slope < best_slope:
            best_slope, steepest = slope, float(lrs[i])
    if rule == "steepest" and steepest is not None:
        suggestion = steepest
    else:
        suggestion = cap
    return float(suggestion), steepest, float(lr_min_loss)


def lr_range_test(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    train: TrainSpec,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    lr_min: float = LR_MIN,
    lr_max: float = LR_MAX,
    steps: int = STEPS,
    batch_size: int | None = None,
    beta: float = BETA,
    diverge: float = DIVERGE,
    seed: int | None = None,
    rule: str = "min/10",
) -> LRFindResult:
    """Sweep the learning rate on `model` (restored afterwards) and suggest one.

    `optimizer`: use this one (its state is restored afterwards); by default a fresh optimizer of
    the `train` spec's kind. `batch_size`: default the spec's (0 = full batch).
    """
    from engine.optim import build_optimizer, needs_closure
    from engine.regularize import clip_gradients, penalty

    if needs_closure(train):
        raise ValueError("the LR range test needs a first-order optimizer; L-BFGS picks its own step by line search")
    rates = lr_schedule(lr_min, lr_max, steps)
    n = len(x)
    bs = batch_size if batch_size is not None else train.batch_size
    bs = n if bs in (0, None) else min(bs, n)
    gen = torch.Generator(device="cpu").manual_seed(train.seed if seed is None else seed)

    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_opt = _clone_state(optimizer.state_dict()) if optimizer is not None else None
    saved_rng = torch.get_rng_state()
    was_training = model.training
    opt = optimizer or build_optimizer(model.parameters(), train)
    lrs: list[float] = []
    losses: list[float] = []
    stopped = f"reached lr_max = {lr_max:g}"
    best = math.inf
    avg = 0.0
    perm = torch.empty(0, dtype=torch.long)
    try:
        model.train()
        per_epoch = math.ceil(n / bs)
        for i, lr in enumerate(rates):
            j = i % per_epoch
            if j == 0:
                perm = torch.randperm(n, generator=gen).to(x.device)
            idx = perm[j * bs : (j + 1) * bs]
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            pen = penalty(model, train.l1, train.l2)
            total = loss if pen is None else loss + pen
            total.backward()
            clip_gradients(model.parameters(), train.clip_norm, train.clip_value)
            opt.step()
            value = float(loss.detach())  # a host sync per step: fine for a short tool sweep
            lrs.append(lr)
            losses.append(value)
            if not math.isfinite(value):
                stopped = f"the loss became {value} at lr = {lr:.3g}"
                break
            avg = beta * avg + (1 - beta) * value
            smoothed = avg / (1 - beta ** (i + 1))
            best = min(best, smoothed)
            if i > 0 and smoothed > diverge * best:
                stopped = f"diverged at lr = {lr:.3g} (smoothed loss above {diverge:g}× its best)"
                break
    finally:
        model.load_state_dict(saved_model)
        model.train(was_training)
        if optimizer is not None and saved_opt is not None:
            optimizer.load_state_dict(saved_opt)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        else:
            model.zero_grad(set_to_none=True)
        torch.set_rng_state(saved_rng)

    finite = [v if math.isfinite(v) else math.inf for v in losses]
    # the last (non-finite) point does not enter the average
    sm = smooth([v for v in finite if math.isfinite(v)], beta)
    sm += [math.inf] * (len(finite) - len(sm))
    if not any(math.isfinite(v) for v in sm):
        raise ValueError(f"the LR range test failed from the first step: {stopped}")
    suggestion, steepest, at_min = suggest_lr(lrs, sm, rule)
    return LRFindResult(
        lrs=lrs, losses=losses, smoothed=sm, suggestion=suggestion, steepest=steepest, minimum=at_min,
        best_loss=min(v for v in sm if math.isfinite(v)), stopped=stopped,
        rule=RULE if rule == "min/10" else STEEPEST_RULE,
        settings={"lr_min": lr_min, "lr_max": lr_max, "steps": steps, "batch_size": bs, "beta": beta,
                  "diverge": diverge, "optimizer": train.optimizer},
    )


def _clone_state(state: Any) -> Any:
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: _clone_state(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_clone_state(v) for v in state]
    if isinstance(state, tuple):
        return tuple(_clone_state(v) for v in state)
    return state


def find_lr(spec: RunSpec, *, device: str | torch.device = "cpu", data: Any = None,
            lr_min: float = LR_MIN, lr_max: float = LR_MAX, steps: int = STEPS, rule: str = "min/10") -> LRFindResult:
    """The range test on a run's recipe: its data, its network (initialized as the loop would
    initialize it for the run's seed) and its optimizer."""
    from engine.data import load_data
    from engine.losses import build_loss
    from engine.models import build_model

    r, t = spec.recipe, spec.recipe.train
    _needs_network(spec, "the LR range test")
    dev = torch.device(device)
    data = (data or load_data(r.data, seed=t.seed, device=dev)).to(dev)
    torch.manual_seed(t.seed)
    model = build_model(r.model, data.input_shape, data.n_classes if data.task == "classification" else 1).to(dev)
    loss_fn = build_loss(t, data.task, data.n_classes)
    return lr_range_test(model, loss_fn, data.x_train, data.y_train, t, lr_min=lr_min, lr_max=lr_max, steps=steps,
                         rule=rule)


def _needs_network(spec: RunSpec, what: str) -> None:
    from engine.dispatch import special_trainer

    if special_trainer(spec) is not None:
        raise ValueError(f"{what}: {spec.variant!r} is not a network trained on data "
                         "(a 2-D surface or a gradient check); pick another preset or variant")


def apply_suggestion(target: RunSpec | Recipe, result: LRFindResult | float) -> RunSpec | Recipe:
    """A copy of the run spec (or recipe) with ``train.lr`` set to the suggestion (what the app's
    "apply" button does). ``lr_find`` is switched off so the rate is used as it is."""
    lr = result.suggestion if isinstance(result, LRFindResult) else float(result)
    recipe = target.recipe if isinstance(target, RunSpec) else target
    train = recipe.train.model_copy(update={"lr": lr, **({"lr_find": False} if "lr_find" in TrainSpec.model_fields else {})})
    new_recipe = recipe.model_copy(update={"train": train})
    if isinstance(target, RunSpec):
        return target.model_copy(update={"recipe": new_recipe})
    return new_recipe


def lr_find_hook(model: nn.Module, data: Any, loss_fn: Callable, train: TrainSpec) -> tuple[TrainSpec, float | None]:
    """The loop's call site: with ``train.lr_find`` run the range test on the training split and
    return the spec to train with (``lr`` = the suggestion) and the rate; otherwise no-op."""
    if not getattr(train, "lr_find", False):
        return train, None
    result = lr_range_test(model, loss_fn, data.x_train, data.y_train, train)
    return train.model_copy(update={"lr": result.suggestion}), result.suggestion
