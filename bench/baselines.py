"""Plain hand-written PyTorch training loops: what dllab's engine is measured against.

Both loops train the same architecture (as a plain ``nn.Sequential``) on the same tensors with
the same batch size and plain SGD, and do what a careful hand-written loop does each epoch:
evaluate loss and accuracy on the training split (at most the engine's ``MAX_EVAL_TRAIN``
samples) and the validation split, with a test evaluation at the end. The engine does that much
work too (plus its per-layer diagnostics, its bookkeeping and its events), so the ratio is the
price of the engine's extras, not of work the plain loop skips.

Each calls ``on_epoch`` when an epoch (its steps and its evaluation) is done: the benchmark times
the epochs between those calls.

* :func:`dataloader_loop`: ``DataLoader(TensorDataset(x, y), shuffle=True)``, the textbook way;
  ``loss.item()`` every step, as such loops usually print or accumulate it.
* :func:`slicing_loop`: already the fast way: index slices of one permutation per epoch of
  tensors that stay on the device, the loss read once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from engine.data import DataSplits
from engine.recipe.config import ModelSpec
from engine.training.loop import MAX_EVAL_TRAIN

_ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity, "gelu": nn.GELU}


def plain_mlp(spec: ModelSpec, n_in: int, n_out: int) -> nn.Sequential:
    """The MLP of `spec` as a plain Sequential of Linear and activation layers."""
    layers: list[nn.Module] = []
    width = n_in
    for out in spec.hidden_sizes:
        layers += [nn.Linear(width, out), _ACTS[spec.activation]()]
        width = out
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(nn.Flatten(), *layers)


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> tuple[float, float]:
    model.eval()
    loss, correct = torch.zeros((), device=x.device), torch.zeros((), device=x.device)
    for i in range(0, len(x), chunk):
        out = model(x[i : i + chunk])
        loss += F.cross_entropy(out, y[i : i + chunk], reduction="sum")
        correct += (out.argmax(1) == y[i : i + chunk]).sum()
    model.train()
    n = max(len(x), 1)
    return float(loss) / n, float(correct) / n


def _epoch_end(model: nn.Module, data: DataSplits) -> dict[str, float]:
    tl, ta = _evaluate(model, data.x_train[:MAX_EVAL_TRAIN], data.y_train[:MAX_EVAL_TRAIN])
    vl, va = _evaluate(model, data.x_val, data.y_val)
    return {"train_loss": tl, "train_acc": ta, "val_loss": vl, "val_acc": va}


def dataloader_loop(data: DataSplits, spec: ModelSpec, *, epochs: int, batch_size: int, lr: float,
                    seed: int = 0, on_epoch: Callable[[], object] = lambda: None) -> dict[str, float]:
    """The textbook loop over a DataLoader; returns the final metrics."""
    torch.manual_seed(seed)
    model = plain_mlp(spec, math.prod(data.input_shape), data.n_classes).to(data.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    metrics: dict[str, float] = {}
    for _ in range(epochs):
        running = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        metrics = _epoch_end(model, data)
        metrics["running_loss"] = running / len(loader)
        on_epoch()
    metrics["test_loss"], metrics["test_acc"] = _evaluate(model, data.x_test, data.y_test)
    return metrics


def slicing_loop(data: DataSplits, spec: ModelSpec, *, epochs: int, batch_size: int, lr: float,
                 seed: int = 0, on_epoch: Callable[[], object] = lambda: None) -> dict[str, float]:
    """Index slices of a per-epoch permutation of device tensors; the loss read once per epoch."""
    torch.manual_seed(seed)
    model = plain_mlp(spec, math.prod(data.input_shape), data.n_classes).to(data.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = len(data.x_train)
    metrics: dict[str, float] = {}
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).to(data.device)
        running = torch.zeros((), device=data.device)
        steps = 0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            loss.backward()
            optimizer.step()
            running += loss.detach()
            steps += 1
        metrics = _epoch_end(model, data)
        metrics["running_loss"] = float(running) / steps
        on_epoch()
    metrics["test_loss"], metrics["test_acc"] = _evaluate(model, data.x_test, data.y_test)
    return metrics
