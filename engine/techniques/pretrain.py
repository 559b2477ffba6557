"""Pretraining: a first phase on another task, then the body's weights carried over.

``TrainSpec.pretrain`` (a :class:`engine.recipe.config.PretrainSpec`) asks for it; the loop calls
:func:`pretrain_body` once, right after building the network and before building the optimizer:

1. the **pool** is the run's whole training split (the samples before ``n_train``,
   ``train_fraction`` or ``n_unlabeled`` cut it), passed through the run's own fitted
   preprocessing, so validation and test samples are never seen;
2. the **task** is either self-supervised (``transform``: each input gets one of 4 transforms,
   and the network predicts which; rotation prediction for square images, and for 1-D signals
   identity / time reversal / negation / both) or supervised on the pool's labels (``labels``,
   optionally restricted to some ``classes``: a related task);
3. the run's network body is trained on that task with a temporary head of the task's size, in
   place; then the run's own head (freshly initialized, exactly as a from-scratch run of the
   same seed would have it) is put back. ``freeze_body`` switches off the body's gradients for
   the main phase (a linear probe).

Everything is seeded from the run's seed, and the loop reseeds torch's generator afterwards, so
a pretrained run and a from-scratch run of the same seed see the same batches in the main phase.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from engine.recipe.config import PretrainSpec, Recipe, TrainSpec

N_TRANSFORMS = 4
EVAL_SIZE = 2048


def transform(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Apply transform k[i] ∈ {0, 1, 2, 3} to sample x[i].

    Square images ``(N, H, H)`` or ``(N, C, H, H)``: rotation by k·90 degrees. Anything else is
    treated as a flat signal: 0 identity, 1 reversed, 2 negated, 3 reversed and negated.
    """
    out = x.clone()
    square = x.dim() >= 3 and x.shape[-1] == x.shape[-2]
    for j in range(1, N_TRANSFORMS):
        mask = k == j
        if not bool(mask.any()):
            continue
        xs = x[mask]
        if square:
            out[mask] = torch.rot90(xs, j, dims=(-2, -1))
        else:
            flat = xs.flatten(1)
            if j in (1, 3):
                flat = flat.flip(1)
            if j in (2, 3):
                flat = -flat
            out[mask] = flat.reshape(xs.shape)
    return out


def pretraining_pool(recipe: Recipe, data: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of the whole training split, prepared like the run's own inputs."""
    from engine.data import load_data

    seed = recipe.train.seed
    base = recipe.data
    if data is not None and getattr(data, "input_transform", None) is not None:
        raw_spec = base.model_copy(update={"n_train": None, "train_fraction": 1.0, "n_unlabeled": 0,
                                           "preprocess": "none", "scale_features": 1.0})
        raw = load_data(raw_spec, seed=seed, device="cpu")
        x = data.input_transform(raw.x_train)
        y = raw.y_train
    else:
        full_spec = base.model_copy(update={"n_train": None, "train_fraction": 1.0, "n_unlabeled": 0})
        full = load_data(full_spec, seed=seed, device="cpu")
        x, y = full.x_train, full.y_train
    return x.to(device), y.to(device)


def pretrain_body(model: nn.Module, recipe: Recipe, data: Any, device: str | torch.device = "cpu") -> dict[str, float]:
    """Run the pretraining phase of ``recipe.train.pretrain`` on `model` (in place).

    Returns figures for the run's summary (``pretrain_loss``, ``pretrain_acc`` on the pool, and
    ``pretrain_steps``); an empty dict when the recipe has no pretraining.
    """
    spec: PretrainSpec | None = getattr(recipe.train, "pretrain", None)
    if spec is None:
        return {}
    dev = torch.device(device)
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Linear):
        raise ValueError("pretraining needs a network with a linear output head")
    x, y = pretraining_pool(recipe, data, dev)
    if spec.task == "labels":
        if data is not None and getattr(data, "task", "classification") != "classification":
            raise ValueError("pretrain task 'labels' needs a classification data set")
        if spec.classes is not None:
            keep = torch.isin(y, torch.tensor(spec.classes, device=y.device))
            x, y = x[keep], y[keep]
        if len(x) == 0:
            raise ValueError(f"pretraining pool is empty for classes {spec.classes}")
        n_out = int(y.max()) + 1
    else:
        n_out = N_TRANSFORMS
    if spec.n_pool is not None:
        x, y = x[: spec.n_pool], y[: spec.n_pool]

    seed = recipe.train.seed
    torch.manual_seed(seed + 31337)
    pre_head = nn.Linear(head.in_features, n_out).to(dev)
    run_head = model.head
    model.head = pre_head
    train_spec = TrainSpec(optimizer=spec.optimizer, lr=spec.lr, batch_size=spec.batch_size, seed=seed)
    from engine.recipe.optim import build_optimizer

    optimizer = build_optimizer(model.parameters(), train_spec)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator(device="cpu").manual_seed(seed + 4242)
    n = len(x)
    bs = min(spec.batch_size, n)
    per_epoch = math.ceil(n / bs)
    perm = torch.empty(0, dtype=torch.long)
    was_training = model.training
    model.train()
    try:
        for step in range(spec.steps):
            i = step % per_epoch
            if i == 0:
                perm = torch.randperm(n, generator=gen)
            idx = perm[i * bs : (i + 1) * bs]
            xb, target = _task_batch(spec, x[idx.to(dev)], y[idx.to(dev)], gen)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xb), target).backward()
            optimizer.step()
        loss, acc = _evaluate(model, spec, x, y, gen)
    finally:
        model.head = run_head
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    if spec.freeze_body:
        for name, p in model.named_parameters():
            if not name.startswith("head."):
                p.requires_grad_(False)
    return {"pretrain_loss": loss, "pretrain_acc": acc, "pretrain_steps": float(spec.steps),
            "pretrain_pool": float(n)}


def _task_batch(spec: PretrainSpec, xb: torch.Tensor, yb: torch.Tensor,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if spec.task == "labels":
        return xb, yb
    k = torch.randint(0, N_TRANSFORMS, (len(xb),), generator=gen).to(xb.device)
    return transform(xb, k), k


@torch.no_grad()
def _evaluate(model: nn.Module, spec: PretrainSpec, x: torch.Tensor, y: torch.Tensor,
              gen: torch.Generator) -> tuple[float, float]:
    model.eval()
    xb, target = _task_batch(spec, x[:EVAL_SIZE], y[:EVAL_SIZE], gen)
    out = model(xb)
    loss = nn.functional.cross_entropy(out, target)
    acc = (out.argmax(1) == target).float().mean()
    return float(loss), float(acc)
