"""Per-layer health of a network: activations, dead units, saturation, weights, gradients, updates.

Measured on a fixed probe batch every few evaluations, so the cost stays small. All figures of
one measurement are stacked and read from the device at once (one host sync).

Vocabulary (CS231n's monitoring advice):
- *dead* unit: never positive over the whole probe batch (a ReLU that outputs 0 for every input
  gets no gradient and never recovers);
- *zero-gradient* unit: the activation's derivative is exactly 0 for every probe sample, so no
  gradient reaches the unit's incoming weights from these inputs. For ReLU it is the same as dead;
  a Leaky ReLU unit can be never positive and still pass gradient (slope > 0), so it is not
  zero-gradient; for Maxout the units counted are the pieces (a piece that is never the max gets
  no gradient);
- *saturated* share: tanh outputs with |a| > 0.99, sigmoid outputs below 0.01 or above 0.99;
- *update ratio*: ‖Δw‖ / ‖w‖ of one optimizer step, healthy around 1e-3;
- *unit spread*: how different the units of a layer are (std across units of their incoming
  weights); exactly 0 means symmetry was never broken.

Per layer, a Diagnostics event carries: ``act_mean``, ``act_std``, ``dead``, ``saturated``,
``act_hist`` (HIST_BINS counts over ``act_hist_range(activation)``), ``weight_norm``,
``near_zero``, ``unit_spread``, ``grad_norm`` and ``grad_hist`` (counts of log10|g| over
GRAD_LOG_RANGE; from the last step's gradients), ``update_ratio`` (when the step before was
snapshotted), and, on the first weight layer now and then, ``weight_images``
(:func:`first_layer_images`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

NEAR_ZERO = 1e-3
HIST_BINS = 24
GRAD_LOG_RANGE = (-8.0, 0.0)
"""Range of ``grad_hist``: log10 of |gradient| entries."""
IMAGE_UNITS = 16
IMAGE_EVERY = 10
"""First-layer weight images go out with every IMAGE_EVERY-th diagnostics (and the first and last)."""


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    names = model.layer_names() if hasattr(model, "layer_names") else []
    layers = [*getattr(model, "blocks", []), getattr(model, "head", None)]
    out = []
    for name, layer in zip(names, layers, strict=False):
        linear = getattr(layer, "linear", layer)
        if linear is not None and getattr(linear, "weight", None) is not None:
            out.append((name, linear))
    return out


@contextmanager
def _capture_activations(
    model: nn.Module, inputs: dict[str, torch.Tensor] | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Post-activation outputs per hidden block (and the pre-activations into ``inputs``, if given)."""
    captured: dict[str, torch.Tensor] = {}
    handles = []
    names = model.layer_names() if hasattr(model, "layer_names") else []
    for name, block in zip(names, getattr(model, "blocks", []), strict=False):
        act = getattr(block, "act", None)
        if act is None:
            continue

        def hook(_m, inp, out, name=name):
            captured[name] = out.detach()
            if inputs is not None:
                inputs[name] = inp[0].detach()

        handles.append(act.register_forward_hook(hook))
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


def _units_view(a: torch.Tensor) -> torch.Tensor:
    """(samples, units): conv outputs count each channel as a unit over batch and positions."""
    if a.dim() == 2:
        return a
    return a.transpose(0, 1).reshape(a.shape[1], -1).T


def layer_health(model: nn.Module, probe_x: torch.Tensor, activation: str) -> dict[str, dict[str, float]]:
    """Activation statistics per hidden layer (eval mode, no grad), plus weight norms per layer."""
    was_training = model.training
    model.eval()
    pre: dict[str, torch.Tensor] = {}
    with torch.no_grad(), _capture_activations(model, pre) as acts:
        model(probe_x)
    model.train(was_training)
    zero_grad = zero_grad_shares(model, pre)
    names, rows, hists = [], [], []
    for name, a in acts.items():
        u = _units_view(a.float())
        dead = (u.amax(dim=0) <= 0).float().mean()
        if activation == "tanh":
            sat = (u.abs() > 0.99).float().mean()
        elif activation == "sigmoid":
            sat = ((u < 0.01) | (u > 0.99)).float().mean()
        else:
            sat = torch.zeros((), device=u.device)
        lo, hi = act_hist_range(activation)
        hists.append(torch.histc(u.clamp(lo, hi), bins=HIST_BINS, min=lo, max=hi))
        rows.append(torch.stack([u.mean(), u.std(), dead, sat, zero_grad.get(name, dead)]))
        names.append(name)
    out: dict[str, dict[str, float]] = {}
    if rows:
        values = torch.stack(rows).tolist()
        hist_values = torch.stack(hists).tolist()
        for name, (mean, std, dead, sat, zero), hist in zip(names, values, hist_values, strict=True):
            out[name] = {"act_mean": mean, "act_std": std, "dead": dead, "saturated": sat,
                         "zero_grad": zero, "act_hist": hist}
    for name, layer in _weight_layers(model):
        w = layer.weight.detach()
        out.setdefault(name, {})
        stats = torch.stack([w.norm(), (w.abs() < NEAR_ZERO).float().mean(), _unit_spread(w)]).tolist()
        out[name].update({"weight_norm": stats[0], "near_zero": stats[1], "unit_spread": stats[2]})
        if layer.weight.grad is not None:
            g = layer.weight.grad.detach()
            out[name]["grad_norm"] = float(g.norm())
            out[name]["grad_hist"] = grad_histogram(g)
    return out


def act_hist_range(activation: str) -> tuple[float, float]:
    """The value range of ``act_hist`` (HIST_BINS equal bins; values outside are clamped in)."""
    return (-1.0, 1.0) if activation in ("tanh", "sigmoid") else (-3.0, 3.0)


def grad_histogram(g: torch.Tensor) -> list[float]:
    """Counts of log10|g| over GRAD_LOG_RANGE in HIST_BINS bins (exact zeros fall in the first bin).

    A log scale shows every layer's gradients on one axis: vanishing gradients pile up on the
    left, exploding ones on the right, whatever the layer's size.
    """
    lo, hi = GRAD_LOG_RANGE
    logs = torch.log10(g.float().abs().flatten().clamp_min(10.0**lo)).clamp(lo, hi)
    return torch.histc(logs, bins=HIST_BINS, min=lo, max=hi).tolist()


def first_layer_images(model: nn.Module, max_units: int = IMAGE_UNITS) -> dict[str, Any] | None:
    """The first weight layer as small 2-D arrays, for a picture of what it has learned.

    - dense layer on image inputs ``(H, W)`` or ``(C, H, W)``: one ``H×W`` tile per unit (the mean
      over channels for colour images), for the first `max_units` units;
    - 2-D conv layer: one ``k×k`` tile per output channel (mean over input channels);
    - anything else (1-D signals, tabular inputs, 1-D convs): one tile whose rows are the units'
      incoming weights (``units × inputs``).

    Values are divided by the largest |w| of the shown tiles (``scale``) and rounded to 3
    decimals, so the tiles fill [-1, 1] and stay small in the store. None for a model without
    weight layers.
    """
    layers = _weight_layers(model)
    if not layers:
        return None
    name, layer = layers[0]
    w = layer.weight.detach().float()
    input_shape = tuple(getattr(model, "input_shape", ()))
    if w.dim() == 4:
        tiles = w[:max_units].mean(dim=1)
        kind = "units"
    elif w.dim() == 2 and len(input_shape) in (2, 3) and w.shape[1] == _prod(input_shape):
        img = w[:max_units].reshape(-1, *input_shape)
        tiles = img.mean(dim=1) if len(input_shape) == 3 else img
        kind = "units"
    else:
        rows = w.reshape(w.shape[0], -1) if w.dim() != 3 else w.mean(dim=1)
        tiles = rows[: 2 * max_units].unsqueeze(0)
        kind = "matrix"
    scale = float(tiles.abs().max().clamp_min(1e-12))
    values = torch.round(tiles / scale * 1000) / 1000
    return {"layer": name, "kind": kind, "scale": scale, "tiles": values.tolist()}


def add_weight_images(layers: dict[str, dict[str, Any]], model: nn.Module, step: int, every: int,
                      total: int) -> None:
    """Add ``weight_images`` to the first layer's entry at step 0, at the end, and every `every`
    steps (the loop passes ``diagnostics_every × IMAGE_EVERY``): the images are the one bulky
    figure of a Diagnostics event, so they are emitted sparingly."""
    if not (step == 0 or step >= total or (every > 0 and step % every == 0)):
        return
    images = first_layer_images(model)
    if images is not None:
        layers.setdefault(images["layer"], {})["weight_images"] = images


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def zero_grad_shares(model: nn.Module, pre: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per block: share of pre-activation units whose activation derivative is 0 on every sample.

    ``pre`` maps block names to the activation's inputs on the probe batch. The derivative is taken
    with autograd through the block's own activation module (d sum(act(z)) / dz), so it is exact
    for every activation: 0 where a ReLU input is <= 0, the slope for Leaky ReLU, 1 for the
    winning Maxout piece and 0 for the others. Returns 0-d device tensors (no host sync).
    """
    names = model.layer_names() if hasattr(model, "layer_names") else []
    out: dict[str, torch.Tensor] = {}
    for name, block in zip(names, getattr(model, "blocks", []), strict=False):
        act = getattr(block, "act", None)
        if act is None or name not in pre:
            continue
        z = pre[name].float().detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(act(z).sum(), z)
        out[name] = (_units_view(grad).abs().amax(dim=0) == 0).float().mean()
    return out


def _unit_spread(w: torch.Tensor) -> torch.Tensor:
    rows = w.reshape(w.shape[0], -1)
    if rows.shape[0] < 2:
        return torch.zeros((), device=w.device)
    return rows.std(dim=0).mean()


def snapshot_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: layer.weight.detach().clone() for name, layer in _weight_layers(model)}


def update_ratios(before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float]:
    """‖w_after − w_before‖ / ‖w_before‖ per layer, read in one sync."""
    names, vals = [], []
    for name, layer in _weight_layers(model):
        if name in before:
            w0 = before[name]
            vals.append((layer.weight.detach() - w0).norm() / w0.norm().clamp_min(1e-12))
            names.append(name)
    if not vals:
        return {}
    return dict(zip(names, torch.stack(vals).tolist(), strict=True))


def model_summary(model: nn.Module, layers: dict[str, dict[str, float]]) -> dict[str, float]:
    """Whole-model figures the claims and the verdict use (flat keys, floats)."""
    weights = [p.detach() for p in model.parameters() if p.dim() > 1]
    summary: dict[str, float] = {}
    if weights:
        flat = torch.cat([w.flatten() for w in weights])
        vals = torch.stack([flat.norm(), (flat.abs() < NEAR_ZERO).float().mean()]).tolist()
        summary["weight_norm"], summary["near_zero_share"] = vals
    hidden = [(n, s) for n, s in layers.items() if "dead" in s]
    if hidden:
        summary["dead_share"] = sum(s["dead"] for _, s in hidden) / len(hidden)
        summary["max_dead_share"] = max(s["dead"] for _, s in hidden)
        summary["saturated_share"] = sum(s["saturated"] for _, s in hidden) / len(hidden)
        summary["zero_grad_share"] = sum(s.get("zero_grad", s["dead"]) for _, s in hidden) / len(hidden)
        summary["max_zero_grad_share"] = max(s.get("zero_grad", s["dead"]) for _, s in hidden)
        summary["last_act_std"] = hidden[-1][1]["act_std"]
        summary["first_act_std"] = hidden[0][1]["act_std"]
        summary["min_unit_spread"] = min(
            (s["unit_spread"] for _, s in hidden if "unit_spread" in s), default=0.0
        )
    first = next(iter(layers.values()), None)
    if first and "near_zero" in first:
        summary["near_zero_share_first"] = first["near_zero"]
    for name, stats in layers.items():
        for key in ("dead", "act_std", "saturated", "weight_norm", "update_ratio", "zero_grad"):
            if key in stats:
                summary[f"{key}.{name}"] = stats[key]
    return summary
