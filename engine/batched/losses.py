"""The losses of :mod:`engine.recipe.losses`, per sample and per member: ``(M, B, C)`` outputs in, ``(M, B)`` out.

Each is the summand of the solo loss, so the solo loss of member ``m`` is ``per_sample(...)[m].mean()``.
Targets are ``(B,)`` (shared by every member) or ``(M, B)``. Members of a group may train on
different losses (``member_loss``): each loss then runs on its own members' rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.batched.rows import RowSplit, group_rows
from engine.recipe.config import TrainSpec
from engine.recipe.losses import build_loss, hard_cross_entropy

PerSample = Callable[[Tensor, Tensor], Tensor]


def _upcast(x: Tensor) -> Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _targets(out: Tensor, y: Tensor) -> Tensor:
    return y.expand(out.shape[0], *y.shape) if y.dim() == out.dim() - 2 else y


def per_sample_loss(spec: TrainSpec, task: str, n_classes: int) -> PerSample:
    """The per-sample, per-member form of ``build_loss(spec, task, n_classes)``."""
    build_loss(spec, task, n_classes)  # the same checks (and errors) as the solo loop
    name = spec.loss

    if name == "cross_entropy":

        def loss(out: Tensor, y: Tensor) -> Tensor:
            out = _upcast(out)
            y = _targets(out, y)
            if not torch.is_grad_enabled():  # evaluation: logsumexp - z[y], the same value, faster
                return hard_cross_entropy(out, y)
            return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none").view(y.shape)

    elif name in ("mse_onehot", "mse_softmax"):
        softmax = name == "mse_softmax"

        def loss(out: Tensor, y: Tensor) -> Tensor:
            out = _upcast(out)
            t = F.one_hot(_targets(out, y), out.shape[-1]).to(out.dtype)
            s = F.softmax(out, dim=-1) if softmax else out
            return (s - t).pow(2).sum(dim=-1)

    elif name == "hinge":
        margin = spec.hinge_margin

        def loss(out: Tensor, y: Tensor) -> Tensor:
            out = _upcast(out)
            idx = _targets(out, y).unsqueeze(-1)
            correct = out.gather(-1, idx)
            margins = (out - correct + margin).clamp_min(0.0).scatter(-1, idx, 0.0)
            return margins.sum(dim=-1)

    elif name in ("mse", "l1", "smooth_l1"):
        beta = spec.smooth_l1_beta

        def loss(out: Tensor, y: Tensor) -> Tensor:
            out = _upcast(out)
            y = _targets(out, y)
            o = out.reshape(y.shape)
            t = y.to(o.dtype)
            if name == "mse":
                return (o - t).pow(2)
            if name == "l1":
                return (o - t).abs()
            return F.smooth_l1_loss(o, t, beta=beta, reduction="none")

    else:  # pragma: no cover - config validates the name
        raise ValueError(f"unknown loss {name!r}")
    return loss


LOSS_FIELDS = ("loss", "hinge_margin", "smooth_l1_beta")
"""The settings that make a loss: members equal in these share one loss function."""


def loss_groups(specs: Sequence[TrainSpec]) -> list[tuple[TrainSpec, list[int]]]:
    """The distinct losses of the members `specs` (row order), each with the rows that train on it."""
    rows = group_rows([tuple(getattr(spec, f) for f in LOSS_FIELDS) for spec in specs])
    return [(specs[group[0]], group) for group in rows]


def member_loss(specs: Sequence[TrainSpec], task: str, n_classes: int, device: torch.device | str) -> PerSample:
    """``per_sample_loss`` of each member: one function when the members share their loss, else each
    loss on the rows of the members that train on it."""
    groups = loss_groups(specs)
    fns = [per_sample_loss(spec, task, n_classes) for spec, _ in groups]
    if len(fns) == 1:
        return fns[0]
    split = RowSplit([rows for _, rows in groups], device)

    def loss(out: Tensor, y: Tensor) -> Tensor:
        y = _targets(out, y)
        return split.join([fn(split.take(out, k), split.take(y, k)) for k, fn in enumerate(fns)])

    return loss


def per_sample_correct(out: Tensor, y: Tensor) -> Tensor:
    """1.0 where a member's argmax is the target class, else 0.0: ``(M, B)``."""
    return (out.argmax(dim=-1) == _targets(out, y)).to(torch.float32)
