"""Loss functions by name, and accuracy.

A loss maps ``(output, target)`` to a scalar tensor, the mean over the batch. For the
classification losses `output` is ``(N, C)`` logits and `target` is either int64 class ids
``(N,)`` or float soft targets ``(N, C)`` whose rows sum to 1 (mixup); every classification loss
takes both.

=================  ==========================================================================
``cross_entropy``  ``-(t * log_softmax(s)).sum(1).mean()`` (hard ids: the usual CE)
``mse_onehot``     ``((s - t) ** 2).sum(1).mean()``: raw logits against the one-hot / soft
                   target; summed over classes, averaged over the batch (so it is C times
                   ``F.mse_loss``, which also averages over classes)
``mse_softmax``    ``((softmax(s) - t) ** 2).sum(1).mean()``: probabilities against the target
                   (the lecture notes' setting), same reduction
``hinge``          multiclass SVM (Weston-Watkins): ``sum_{j != y} max(0, s_j - s_y + margin)``,
                   mean over the batch; soft targets use their argmax class as y
``mse``            ``mean((o - y) ** 2)``           (regression: output reshaped to the target's
``l1``             ``mean(|o - y|)``                 shape, so ``(N, 1)`` outputs meet ``(N,)``
``smooth_l1``      Huber-like with ``beta``          targets)
=================  ==========================================================================

Half-precision outputs are upcast to float32 before the loss.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.recipe.config import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, TrainSpec

LossFn = Callable[[Tensor, Tensor], Tensor]

TASKS = ("classification", "regression")


def _upcast(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _is_soft(target: Tensor) -> bool:
    return target.is_floating_point() and target.ndim == 2


def soft_targets(target: Tensor, n_classes: int, dtype: torch.dtype) -> Tensor:
    """Class ids ``(N,)`` to one-hot rows ``(N, C)`` in `dtype`; soft targets pass through (cast)."""
    if _is_soft(target):
        return target.to(dtype)
    return F.one_hot(target.long(), n_classes).to(dtype)


def hard_targets(target: Tensor) -> Tensor:
    """Soft targets ``(N, C)`` to their argmax class ids; class ids pass through."""
    return target.argmax(dim=1) if _is_soft(target) else target.long()


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """Softmax cross-entropy, with hard ids or soft targets."""
    output = _upcast(output)
    if _is_soft(target):
        return -(target.to(output.dtype) * F.log_softmax(output, dim=1)).sum(dim=1).mean()
    if not torch.is_grad_enabled():  # evaluation: the same value (to float rounding), faster
        return hard_cross_entropy(output, target).mean()
    return F.cross_entropy(output, target.long())


def hard_cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """Per-sample cross-entropy for class ids along the last axis: ``logsumexp(z) - z[y]``.

    ``F.cross_entropy`` goes through ``log_softmax``, which on a CPU took 3-4× longer for a few
    classes (3,200 rows of 10 logits: 340 µs against 86 µs). Used where no gradient is taken
    (evaluation) and by the batched trainer's written-out step.
    """
    y = target.long().unsqueeze(-1)
    return output.logsumexp(dim=-1) - output.gather(-1, y).squeeze(-1)


def mse_onehot(output: Tensor, target: Tensor) -> Tensor:
    """Squared error of the raw logits against the one-hot / soft target (sum over classes)."""
    output = _upcast(output)
    t = soft_targets(target, output.shape[1], output.dtype)
    return (output - t).pow(2).sum(dim=1).mean()


def mse_softmax(output: Tensor, target: Tensor) -> Tensor:
    """Squared error of the softmax probabilities against the target (sum over classes)."""
    output = _upcast(output)
    t = soft_targets(target, output.shape[1], output.dtype)
    return (F.softmax(output, dim=1) - t).pow(2).sum(dim=1).mean()


def multiclass_hinge(output: Tensor, target: Tensor, margin: float = 1.0) -> Tensor:
    """Weston-Watkins multiclass hinge loss, mean over the batch."""
    output = _upcast(output)
    y = hard_targets(target)
    correct = output.gather(1, y.unsqueeze(1))
    margins = (output - correct + margin).clamp_min(0.0)
    margins = margins.scatter(1, y.unsqueeze(1), 0.0)  # j != y
    return margins.sum(dim=1).mean()


def _regression(fn: Callable[[Tensor, Tensor], Tensor]) -> LossFn:
    def loss(output: Tensor, target: Tensor) -> Tensor:
        output = _upcast(output)
        return fn(output.reshape(target.shape), target.to(output.dtype))

    return loss


def build_loss(spec: TrainSpec, task: str, n_classes: int) -> LossFn:
    """The loss `spec.loss` for `task` ("classification" or "regression").

    A classification loss on a regression task (or the reverse) is a ValueError naming both.
    """
    name = spec.loss
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if task == "classification" and name not in CLASSIFICATION_LOSSES:
        raise ValueError(
            f"loss {name!r} is a regression loss and cannot train the classification task; "
            f"use one of {', '.join(CLASSIFICATION_LOSSES)}"
        )
    if task == "regression" and name not in REGRESSION_LOSSES:
        raise ValueError(
            f"loss {name!r} is a classification loss and cannot train the regression task; "
            f"use one of {', '.join(REGRESSION_LOSSES)}"
        )
    if task == "classification" and n_classes < 2:
        raise ValueError(f"loss {name!r} needs at least 2 classes, got n_classes={n_classes}")
    if name == "cross_entropy":
        return cross_entropy
    if name == "mse_onehot":
        return mse_onehot
    if name == "mse_softmax":
        return mse_softmax
    if name == "hinge":
        margin = spec.hinge_margin

        def hinge(output: Tensor, target: Tensor) -> Tensor:
            return multiclass_hinge(output, target, margin)

        return hinge
    if name == "mse":
        return _regression(F.mse_loss)
    if name == "l1":
        return _regression(F.l1_loss)
    if name == "smooth_l1":
        beta = spec.smooth_l1_beta
        return _regression(lambda o, t: F.smooth_l1_loss(o, t, beta=beta))
    raise ValueError(f"unknown loss {name!r}")  # pragma: no cover - config validates the name


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Share of rows whose argmax matches the target class (soft targets: their argmax).

    Returns a 0-d float tensor on the output's device (no host sync).
    """
    return (output.argmax(dim=1) == hard_targets(target)).float().mean()
