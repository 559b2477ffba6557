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
- **Readable sweeps**: a sweep of fewer than ``MIN_STEPS`` (20) read points, or one whose steps
  jump more than ``MAX_DECADES_PER_STEP`` (one decade) of rate each, is too coarse to read a rate
  off: the result carries a ``warning`` saying so (the suggestion is still computed, by the same
  rule, but it is a guess). Where no steepest descent can be read, ``steepest_note`` says why
  (the loss never fell; too few points before the minimum; it fell only in the ignored first 10%).
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

from engine.recipe.config import Recipe, RunSpec, TrainSpec

LR_MIN = 1e-5
LR_MAX = 10.0
STEPS = 100
BETA = 0.9
DIVERGE = 4.0
SKIP_START = 0.1
SLOPE_SPAN = 0.05
"""Half-width of the slope's difference quotient, as a share of the sweep (noise-robust)."""
BELOW_MIN = 10.0
MIN_STEPS = 20
"""Fewer read points than this: too coarse a sweep to read a rate off (a warning in the result)."""
MAX_DECADES_PER_STEP = 1.0
"""Steps wider than this (in decades of rate): too coarse a sweep to read a rate off."""
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
    """The rate of the steepest descent (None when none can be read: `steepest_note` says why)."""
    minimum: float
    """The rate at the lowest smoothed loss (the first 10% of the sweep ignored)."""
    best_loss: float
    """The smoothed loss at `minimum` (so the two read off the same point of the curve)."""
    stopped: str
    """Why the sweep ended, in words."""
    rule: str = RULE
    settings: dict[str, Any] = field(default_factory=dict)
    steepest_note: str = ""
    """Why there is no steepest descent ("" when there is one), in words that agree with the curve."""
    warning: str = ""
    """Non-empty when the sweep is too coarse to read a rate off (too few points, or too wide steps)."""

    def steepest_text(self, fmt: Callable[[float], str] = lambda v: f"{v:.3g}") -> str:
        """The steepest-descent rate, or 'none (why)'."""
        if self.steepest is not None:
            return fmt(self.steepest)
        return f"none ({self.steepest_note or 'not read'})"

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
            "steepest_note": self.steepest_note, "warning": self.warning,
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
    start, i_min = _read_range(s, skip_start)
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


def _read_range(s: np.ndarray, skip_start: float) -> tuple[int, int]:
    """(first index read, index of the lowest finite smoothed loss from there)."""
    start = min(int(math.ceil(skip_start * len(s))), len(s) - 1)
    tail = np.where(np.isfinite(s[start:]), s[start:], np.inf)
    return start, start + int(np.argmin(tail))


def steepest_note(lrs: list[float], smoothed: list[float], skip_start: float = SKIP_START) -> str:
    """Why `suggest_lr` reads no steepest descent off this curve, in words that agree with it
    ("" when it reads one)."""
    if suggest_lr(lrs, smoothed, skip_start=skip_start)[1] is not None:
        return ""
    s = np.asarray(smoothed, dtype=float)
    finite = s[np.isfinite(s)]
    if not (np.diff(finite) < 0).any():
        return "the loss never fell"
    start, i_min = _read_range(s, skip_start)
    if i_min - start >= 2:
        return "no slope before the minimum is negative: the fall is within the batch noise"
    if len(s) >= MIN_STEPS:
        return (f"the lowest smoothed loss comes right after the first {skip_start:.0%} of the sweep, which is "
                "not read: no fall is left to read")
    return (f"too few points to read a slope: the loss fell, but a slope needs 3 points from the end of the "
            f"ignored first {skip_start:.0%} of the sweep to the lowest loss, and this sweep of {len(s)} has "
            f"{i_min - start + 1}")


def sweep_warning(lr_min: float, lr_max: float, steps: int, n_read: int | None = None) -> str:
    """Why a sweep is too coarse to read a rate off ("" when it is fine): fewer than `MIN_STEPS`
    steps (or read points, when the sweep stopped early), or steps wider than a decade."""
    why = []
    if steps < MIN_STEPS:
        why.append(f"only {steps} steps")
    elif n_read is not None and n_read < MIN_STEPS:
        why.append(f"the sweep stopped after {n_read} of its {steps} steps")
    decades = math.log10(lr_max / lr_min) / max(1, steps - 1)
    if decades > MAX_DECADES_PER_STEP:
        why.append(f"each step jumps {decades:.3g} decades of lr")
    if not why:
        return ""
    return (f"too coarse to read: {'; '.join(why)}. The suggestion is a guess, not a reading: sweep again with at "
            f"least {MIN_STEPS} steps and at most a decade per step (the default: {STEPS} steps over "
            f"{LR_MIN:g}..{LR_MAX:g})")


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
    from engine.recipe.optim import build_optimizer, needs_closure
    from engine.recipe.regularize import clip_gradients, penalty

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
        best_loss=sm[lrs.index(at_min)], stopped=stopped,
        rule=RULE if rule == "min/10" else STEEPEST_RULE,
        settings={"lr_min": lr_min, "lr_max": lr_max, "steps": steps, "batch_size": bs, "beta": beta,
                  "diverge": diverge, "optimizer": train.optimizer},
        steepest_note=steepest_note(lrs, sm), warning=sweep_warning(lr_min, lr_max, steps, len(lrs)),
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
    from engine.models import build_model
    from engine.recipe.losses import build_loss

    r, t = spec.recipe, spec.recipe.train
    needs_network(spec, "the LR range test")
    dev = torch.device(device)
    data = (data or load_data(r.data, seed=t.seed, device=dev)).to(dev)
    torch.manual_seed(t.seed)
    model = build_model(r.model, data.input_shape, data.n_classes if data.task == "classification" else 1).to(dev)
    loss_fn = build_loss(t, data.task, data.n_classes)
    return lr_range_test(model, loss_fn, data.x_train, data.y_train, t, lr_min=lr_min, lr_max=lr_max, steps=steps,
                         rule=rule)


def needs_network(spec: RunSpec, what: str) -> None:
    if spec.kind != "network":
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
