"""Per-layer health of a network: activations, dead units, saturation, weights, gradients, updates.

Measured on a fixed probe batch every few evaluations, so the cost stays small. All figures of
one measurement are stacked and read from the device at once (one host sync).

Vocabulary (CS231n's monitoring advice):
- *dead* unit: never positive over the whole probe batch (a ReLU that outputs 0 for every input
  gets no gradient and never recovers);
- *saturated* share: tanh outputs with |a| > 0.99, sigmoid outputs below 0.01 or above 0.99;
- *update ratio*: ‖Δw‖ / ‖w‖ of one optimizer step, healthy around 1e-3;
- *unit spread*: how different the units of a layer are (std across units of their incoming
  weights); exactly 0 means symmetry was never broken.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

NEAR_ZERO = 1e-3
HIST_BINS = 24


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
def _capture_activations(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    captured: dict[str, torch.Tensor] = {}
    handles = []
    names = model.layer_names() if hasattr(model, "layer_names") else []
    for name, block in zip(names, getattr(model, "blocks", []), strict=False):
        act = getattr(block, "act", None)
        if act is None:
            continue

        def hook(_m, _inp, out, name=name):
            captured[name] = out.detach()

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
    with torch.no_grad(), _capture_activations(model) as acts:
        model(probe_x)
    model.train(was_training)
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
        lo, hi = (-1.0, 1.0) if activation in ("tanh", "sigmoid") else (-3.0, 3.0)
        hists.append(torch.histc(u.clamp(lo, hi), bins=HIST_BINS, min=lo, max=hi))
        rows.append(torch.stack([u.mean(), u.std(), dead, sat]))
        names.append(name)
    out: dict[str, dict[str, float]] = {}
    if rows:
        values = torch.stack(rows).tolist()
        hist_values = torch.stack(hists).tolist()
        for name, (mean, std, dead, sat), hist in zip(names, values, hist_values, strict=True):
            out[name] = {"act_mean": mean, "act_std": std, "dead": dead, "saturated": sat, "act_hist": hist}
    for name, layer in _weight_layers(model):
        w = layer.weight.detach()
        out.setdefault(name, {})
        stats = torch.stack([w.norm(), (w.abs() < NEAR_ZERO).float().mean(), _unit_spread(w)]).tolist()
        out[name].update({"weight_norm": stats[0], "near_zero": stats[1], "unit_spread": stats[2]})
        if layer.weight.grad is not None:
            out[name]["grad_norm"] = float(layer.weight.grad.detach().norm())
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
        summary["last_act_std"] = hidden[-1][1]["act_std"]
        summary["first_act_std"] = hidden[0][1]["act_std"]
        summary["min_unit_spread"] = min(
            (s["unit_spread"] for _, s in hidden if "unit_spread" in s), default=0.0
        )
    first = next(iter(layers.values()), None)
    if first and "near_zero" in first:
        summary["near_zero_share_first"] = first["near_zero"]
    for name, stats in layers.items():
        for key in ("dead", "act_std", "saturated", "weight_norm", "update_ratio"):
            if key in stats:
                summary[f"{key}.{name}"] = stats[key]
    return summary
