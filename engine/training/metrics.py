"""Evaluation metrics beside each split's training loss and accuracy.

The loop evaluates every split with the run's own loss, which makes runs trained with different
losses hard to compare. The extras here measure every run the same way:

- regression: ``{split}_mae`` and ``{split}_mse`` (mean absolute / squared error against the
  split's targets, whatever loss trained the model: for ``regression_outliers`` the val and test
  targets are clean, so these say how well the clean function was fitted);
- networks with BatchNorm, final evaluation only: ``{split}_loss_batch_stats`` and
  ``{split}_acc_batch_stats``: the same weights evaluated with *batch* statistics (BatchNorm in
  training mode, consecutive chunks of the training batch size) instead of the running averages
  that eval mode uses; and ``{split}_acc_mode_gap`` / ``{split}_loss_mode_gap``: the absolute
  difference between the eval-mode figure and the batch-statistics one, the train/test mismatch
  of BatchNorm in one number. The running statistics themselves are left untouched.

Every function returns 0-d device tensors (no host sync); the loop reads them with the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from engine.recipe.losses import accuracy

EVAL_CHUNK = 4096
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, _BN) for m in model.modules())


@torch.no_grad()
def regression_errors(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """(mean |o − y|, mean (o − y)²) over (x, y) in eval mode."""
    was_training = model.training
    model.eval()
    abs_sum = torch.zeros((), device=x.device)
    sq_sum = torch.zeros((), device=x.device)
    for i in range(0, len(x), EVAL_CHUNK):
        yb = y[i : i + EVAL_CHUNK]
        diff = model(x[i : i + EVAL_CHUNK]).float().reshape(yb.shape) - yb.float()
        abs_sum += diff.abs().sum()
        sq_sum += diff.pow(2).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return abs_sum / n, sq_sum / n


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    """[start, end) chunks of `size`; a remainder of one sample joins the chunk before it
    (BatchNorm cannot take batch statistics of a single sample)."""
    size = max(2, size)
    bounds = [(i, min(i + size, n)) for i in range(0, n, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds


@torch.no_grad()
def evaluate_with_batch_stats(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    batch_size: int,
    classify: bool,
    batch_stats: bool = True,
) -> tuple[Tensor, Tensor]:
    """Mean loss and accuracy with BatchNorm normalizing by each chunk's own statistics.

    Everything else is in eval mode (no dropout); the BatchNorm buffers are restored afterwards,
    so the model is exactly as it was. ``batch_stats=False`` is the plain eval-mode figure (running
    statistics, chunks of EVAL_CHUNK; ``batch_size`` is then ignored).
    """
    was_training = model.training
    bns = [m for m in model.modules() if isinstance(m, _BN)]
    saved = [{k: v.clone() for k, v in m.named_buffers(recurse=False)} for m in bns]
    model.eval()
    if batch_stats:
        for m in bns:
            m.train()
    else:
        batch_size = EVAL_CHUNK
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    try:
        for start, end in _chunks(len(x), batch_size):
            out = model(x[start:end])
            yb = y[start:end]
            loss_sum += loss_fn(out, yb) * len(yb)
            if classify:
                correct += accuracy(out, yb) * len(yb)
    finally:
        for m, buffers in zip(bns, saved, strict=True):
            for k, v in buffers.items():
                getattr(m, k).copy_(v)
        model.train(was_training)
    n = max(len(x), 1)
    return loss_sum / n, correct / n


def extra_metrics(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    split: str,
    task: str,
    *,
    final: bool,
    batch_size: int,
) -> dict[str, Tensor]:
    """The extras for one split (see the module docstring); empty when none apply."""
    out: dict[str, Tensor] = {}
    if len(x) == 0:
        return out
    if task == "regression":
        out[f"{split}_mae"], out[f"{split}_mse"] = regression_errors(model, x, y)
    if final and split != "train" and len(x) > 1 and has_batch_norm(model):
        classify = task == "classification"
        loss, acc = evaluate_with_batch_stats(model, loss_fn, x, y, batch_size, classify)
        eval_loss, eval_acc = evaluate_with_batch_stats(model, loss_fn, x, y, 0, classify, batch_stats=False)
        out[f"{split}_loss_batch_stats"] = loss
        out[f"{split}_loss_mode_gap"] = (eval_loss - loss).abs()
        if classify:
            out[f"{split}_acc_batch_stats"] = acc
            out[f"{split}_acc_mode_gap"] = (eval_acc - acc).abs()
    return out
