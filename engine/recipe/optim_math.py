"""The update rules of the first-order optimizers, written out as plain tensor arithmetic.

Each rule is a pure reference of what ``torch.optim`` does (PyTorch's conventions, not the
textbooks' where they differ, e.g. momentum as ``v = mu*v + g; p -= lr*v``), so that:

* the app's explanations show exactly the formula that ran (:data:`UPDATE_RULES`),
* batched optimizers (many variants stacked in one model) have one spec to match,
* the tests check, step by step, that ``torch.optim`` and these functions agree.

Notation: ``g`` gradient, ``p`` parameter, ``t`` the 1-based step, ``wd`` weight decay.
Coupled weight decay (sgd, momentum, nesterov, adagrad, rmsprop, adam) adds ``wd*p`` to the
gradient first; decoupled weight decay (adamw) shrinks ``p`` by ``lr*wd`` before the update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from engine.recipe.config import TrainSpec

REFERENCE_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")

_RULE_LINES: dict[str, list[str]] = {
    "sgd": [
        "g ← g + wd·p",
        "p ← p − lr·g",
    ],
    "momentum": [
        "g ← g + wd·p",
        "v ← g (first step);  v ← μ·v + (1 − dampening)·g (after)",
        "p ← p − lr·v",
    ],
    "nesterov": [
        "g ← g + wd·p",
        "v ← g (first step);  v ← μ·v + g (after)",
        "p ← p − lr·(g + μ·v)",
    ],
    "adagrad": [
        "g ← g + wd·p",
        "lr_t = lr / (1 + (t − 1)·lr_decay)",
        "G ← G + g²",
        "p ← p − lr_t·g / (√G + ε)",
    ],
    "rmsprop": [
        "g ← g + wd·p",
        "s ← α·s + (1 − α)·g²",
        "without momentum:  p ← p − lr·g / (√s + ε)",
        "with momentum μ:  b ← μ·b + g / (√s + ε);  p ← p − lr·b",
    ],
    "adam": [
        "g ← g + wd·p",
        "m ← β1·m + (1 − β1)·g",
        "v ← β2·v + (1 − β2)·g²   (amsgrad: v̂ ← max(v̂, v), used in place of v)",
        "p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)",
    ],
    "adamw": [
        "p ← p·(1 − lr·wd)",
        "m ← β1·m + (1 − β1)·g",
        "v ← β2·v + (1 − β2)·g²   (amsgrad: v̂ ← max(v̂, v), used in place of v)",
        "p ← p − lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)",
    ],
    "lbfgs": [
        "quasi-Newton: d = −H·g with H built from the last `history` pairs (Δp, Δg);",
        "step length from a strong-Wolfe line search (or lr); up to max_iter inner iterations per step",
    ],
}
UPDATE_RULES: dict[str, str] = {name: "\n".join(lines) for name, lines in _RULE_LINES.items()}
"""Human-readable update rule of each optimizer, as the app shows it."""


def _sgd(p: Tensor, g: Tensor, state: dict[str, Any], spec: TrainSpec, step: int, lr: float) -> None:
    if spec.weight_decay != 0:
        g = g + spec.weight_decay * p
    p.sub_(lr * g)


def _momentum_sgd(
    p: Tensor, g: Tensor, state: dict[str, Any], spec: TrainSpec, step: int, lr: float, nesterov: bool
) -> None:
    if spec.weight_decay != 0:
        g = g + spec.weight_decay * p
    mu = spec.momentum
    dampening = 0.0 if nesterov else spec.dampening
    buf = state.get("momentum_buffer")
    if buf is None:
        buf = g.clone()  # PyTorch: the first step takes the gradient undamped
    else:
        buf = mu * buf + (1 - dampening) * g
    state["momentum_buffer"] = buf
    direction = g + mu * buf if nesterov else buf
    p.sub_(lr * direction)


def _adagrad(p: Tensor, g: Tensor, state: dict[str, Any], spec: TrainSpec, step: int, lr: float) -> None:
    if spec.weight_decay != 0:
        g = g + spec.weight_decay * p
    clr = lr / (1 + (step - 1) * spec.adagrad_lr_decay)
    total = state.get("sum", torch.zeros_like(p)) + g * g
    state["sum"] = total
    p.sub_(clr * g / (total.sqrt() + spec.eps))


def _rmsprop(p: Tensor, g: Tensor, state: dict[str, Any], spec: TrainSpec, step: int, lr: float) -> None:
    if spec.weight_decay != 0:
        g = g + spec.weight_decay * p
    alpha = spec.alpha
    square_avg = alpha * state.get("square_avg", torch.zeros_like(p)) + (1 - alpha) * g * g
    state["square_avg"] = square_avg
    avg = square_avg.sqrt() + spec.eps
    if spec.rmsprop_momentum > 0:
        buf = spec.rmsprop_momentum * state.get("momentum_buffer", torch.zeros_like(p)) + g / avg
        state["momentum_buffer"] = buf
        p.sub_(lr * buf)
    else:
        p.sub_(lr * g / avg)


def _adam(
    p: Tensor, g: Tensor, state: dict[str, Any], spec: TrainSpec, step: int, lr: float, decoupled: bool
) -> None:
    if spec.weight_decay != 0:
        if decoupled:
            p.mul_(1 - lr * spec.weight_decay)
        else:
            g = g + spec.weight_decay * p
    b1, b2 = spec.beta1, spec.beta2
    m = b1 * state.get("exp_avg", torch.zeros_like(p)) + (1 - b1) * g
    v = b2 * state.get("exp_avg_sq", torch.zeros_like(p)) + (1 - b2) * g * g
    state["exp_avg"], state["exp_avg_sq"] = m, v
    if spec.amsgrad:
        v = torch.maximum(state.get("max_exp_avg_sq", torch.zeros_like(p)), v)
        state["max_exp_avg_sq"] = v
    bias_correction1 = 1 - b1**step
    bias_correction2 = 1 - b2**step
    denom = v.sqrt() / bias_correction2**0.5 + spec.eps
    p.sub_((lr / bias_correction1) * m / denom)


_RULES: dict[str, Callable[..., None]] = {
    "sgd": _sgd,
    "momentum": lambda *a: _momentum_sgd(*a, nesterov=False),
    "nesterov": lambda *a: _momentum_sgd(*a, nesterov=True),
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": lambda *a: _adam(*a, decoupled=False),
    "adamw": lambda *a: _adam(*a, decoupled=True),
}


def reference_step(
    name: str,
    p: Tensor,
    g: Tensor,
    state: dict[str, Any],
    spec: TrainSpec,
    step: int,
    *,
    lr: float | None = None,
) -> None:
    """Apply one update of optimizer `name` to `p` in place, given its gradient `g`.

    `state` is this parameter's optimizer state (start with ``{}``; it is filled and updated).
    `step` is the 1-based number of this update (1 on the first call), as in ``torch.optim``.
    `lr` overrides ``spec.lr`` (what a schedule sets for this step). Hyperparameters come from
    `spec` with the same meaning as in :func:`engine.recipe.optim.build_optimizer`.
    """
    if step < 1:
        raise ValueError(f"step counts updates from 1, got {step}")
    rule = _RULES.get(name)
    if rule is None:
        raise ValueError(f"no reference update rule for optimizer {name!r}; known: {', '.join(_RULES)}")
    with torch.no_grad():
        rule(p, g, state, spec, step, spec.lr if lr is None else lr)
