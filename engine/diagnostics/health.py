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

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from engine.models import mode_matters

NEAR_ZERO = 1e-3
HIST_BINS = 24
GRAD_LOG_RANGE = (-8.0, 0.0)
"""Range of ``grad_hist``: log10 of |gradient| entries."""
IMAGE_UNITS = 16
IMAGE_EVERY = 10
"""First-layer weight images go out with every IMAGE_EVERY-th diagnostics (and the first and last)."""


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of each layer of `model` with a weight (a block's linear or conv layer, the
    head), named as ``layer_names()`` names them: the layers the diagnostics report on."""
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
    """Activation statistics per hidden layer (eval mode, no grad), plus weight and gradient
    figures per weight layer; every figure is computed on the device and read in one sync."""
    pre: dict[str, torch.Tensor] = {}
    with eval_mode(model), torch.no_grad(), _capture_activations(model, pre) as acts:
        model(probe_x)
    # a ReLU's derivative is 0 exactly where its input is <= 0, so its zero-gradient share is its
    # dead share; other activations take the derivative through autograd
    zero_grad = {} if activation == "relu" else zero_grad_shares(model, pre)
    names = list(acts)
    units = [_units_view(a.float()) for a in acts.values()]
    rows = []
    for name, u in zip(names, units, strict=True):
        dead = (u.amax(dim=0) <= 0).float().mean()
        if activation == "tanh":
            sat = (u.abs() > 0.99).float().mean()
        elif activation == "sigmoid":
            sat = ((u < 0.01) | (u > 0.99)).float().mean()
        else:
            sat = torch.zeros((), device=u.device)
        rows.append(torch.stack([u.mean(), sample_std(u), dead, sat, zero_grad.get(name, dead)]))
    lo, hi = act_hist_range(activation)
    weighted = weight_layers(model)
    w_rows = []
    g_names, g_norms, g_logs = [], [], []
    glo, ghi = GRAD_LOG_RANGE
    for name, layer in weighted:
        w = layer.weight.detach()
        w_rows.append(torch.stack([w.norm(), (w.abs() < NEAR_ZERO).float().mean(), _unit_spread(w)]))
        if layer.weight.grad is not None:
            g = layer.weight.grad.detach()
            g_names.append(name)
            g_norms.append(g.norm().float())
            g_logs.append(_log_grads(g))
    parts = [
        torch.stack(rows).flatten() if rows else None,
        histograms([u.clamp(lo, hi) for u in units], lo, hi).flatten() if units else None,
        torch.stack(w_rows).flatten() if w_rows else None,
        torch.stack(g_norms) if g_norms else None,
        histograms(g_logs, glo, ghi).flatten() if g_logs else None,
    ]
    present = [p.float() for p in parts if p is not None]
    if not present:
        return {}
    flat = torch.cat(present).tolist()  # the one host read
    pos = 0

    def take(n: int) -> list[float]:
        nonlocal pos
        pos += n
        return flat[pos - n : pos]

    out: dict[str, dict[str, float]] = {}
    stats = take(5 * len(rows))
    hists = take(HIST_BINS * len(units))
    for k, name in enumerate(names):
        mean, std, dead, sat, zero = stats[5 * k : 5 * k + 5]
        out[name] = {"act_mean": mean, "act_std": std, "dead": dead, "saturated": sat,
                     "zero_grad": zero, "act_hist": hists[HIST_BINS * k : HIST_BINS * (k + 1)]}
    w_stats = take(3 * len(w_rows))
    for k, (name, _) in enumerate(weighted):
        norm, near, spread = w_stats[3 * k : 3 * k + 3]
        out.setdefault(name, {}).update({"weight_norm": norm, "near_zero": near, "unit_spread": spread})
    g_values = take(len(g_norms))
    g_hists = take(HIST_BINS * len(g_logs))
    for k, name in enumerate(g_names):
        out[name]["grad_norm"] = g_values[k]
        out[name]["grad_hist"] = g_hists[HIST_BINS * k : HIST_BINS * (k + 1)]
    return out


def histograms(parts: list[torch.Tensor], lo: float, hi: float, bins: int = HIST_BINS) -> torch.Tensor:
    """Counts of each tensor's values (already clamped to [lo, hi]) in `bins` equal bins, as
    ``torch.histc`` counts them (the maximum falls in the last bin): (len(parts), bins) floats,
    from one ``bincount`` over all of them. The batched diagnostics use it too (rows of a stack)."""
    scale = bins / (hi - lo)
    pos = torch.cat([(p.reshape(-1) - lo).mul_(scale).long().clamp_(0, bins - 1).add_(k * bins)
                     for k, p in enumerate(parts)])
    return torch.bincount(pos, minlength=len(parts) * bins).view(len(parts), bins).float()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """The model in eval mode inside the block, restored after; no walk over the modules at all
    when none of them behaves differently in training (``engine.models.mode_matters``)."""
    if not mode_matters(model) or not model.training:
        yield
        return
    model.eval()
    try:
        yield
    finally:
        model.train()


def _log_grads(g: torch.Tensor) -> torch.Tensor:
    lo, hi = GRAD_LOG_RANGE
    return torch.log10(g.float().abs().flatten().clamp_min(10.0**lo)).clamp(lo, hi)


def act_hist_range(activation: str) -> tuple[float, float]:
    """The value range of ``act_hist`` (HIST_BINS equal bins; values outside are clamped in)."""
    return (-1.0, 1.0) if activation in ("tanh", "sigmoid") else (-3.0, 3.0)


def grad_histogram(g: torch.Tensor) -> list[float]:
    """Counts of log10|g| over GRAD_LOG_RANGE in HIST_BINS bins (exact zeros fall in the first bin).

    A log scale shows every layer's gradients on one axis: vanishing gradients pile up on the
    left, exploding ones on the right, whatever the layer's size.
    """
    lo, hi = GRAD_LOG_RANGE
    return histograms([_log_grads(g)], lo, hi)[0].tolist()


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
    layers = weight_layers(model)
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


def sample_std(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The sample standard deviation (n - 1), over `dim` or all entries, written out: on a CPU,
    ``Tensor.std`` over a strided dimension took 14× longer (430 µs for eight 100×100 weights).
    The batched diagnostics use it too, so both sides compute the same formula."""
    if dim is None:
        x, dim = x.reshape(-1), 0
    n = x.shape[dim]
    centered = x - x.mean(dim=dim, keepdim=True)
    if n < 2:  # as Tensor.std: undefined for one sample
        return torch.full_like(centered.sum(dim=dim), math.nan)
    return (centered.square().sum(dim=dim) / (n - 1)).sqrt()


def _unit_spread(w: torch.Tensor) -> torch.Tensor:
    rows = w.reshape(w.shape[0], -1)
    if rows.shape[0] < 2:
        return torch.zeros((), device=w.device)
    return sample_std(rows, 0).mean()


def snapshot_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: layer.weight.detach().clone() for name, layer in weight_layers(model)}


def update_ratios(before: dict[str, torch.Tensor], model: nn.Module) -> dict[str, float]:
    """‖w_after − w_before‖ / ‖w_before‖ per layer, read in one sync."""
    names, vals = [], []
    for name, layer in weight_layers(model):
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
