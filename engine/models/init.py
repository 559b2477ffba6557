"""Initial weights by a named scheme (``ModelSpec.init``), drawn from torch's global RNG.

Every weight of a Linear / DropConnectLinear / Conv1d / Conv2d layer (the head included) is set
by the scheme, in module registration order (hidden blocks in order, then the head); biases are
set to ``bias_init``; norm layers get weight 1 and bias 0. ``default`` leaves PyTorch's own
initialization (weights and biases) untouched.

Gains (Xavier, Kaiming) follow the activation: ``init_gain`` when given, else identity 1,
sigmoid 1, tanh 5/3, leaky_relu sqrt(2 / (1 + slope²)), relu / elu / gelu sqrt(2), maxout 1 (a max
of linear pieces, like a linear unit: the max of two i.i.d. zero-mean pieces has the second moment
of one, so sqrt(2) would double the signal's power at every layer).
Kaiming uses fan_in: std = gain / sqrt(fan_in). Xavier: std = gain * sqrt(2 / (fan_in + fan_out)).

``sparse`` (Martens 2010 style): per output unit, exactly ``round(sparse_fraction * fan_in)``
randomly chosen incoming weights are zero (at most fan_in - 1, so every unit keeps an input),
the others are drawn from N(0, init_std²).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from engine.models.layers import NORM_LAYERS, WEIGHT_LAYERS
from engine.recipe.config import ModelSpec


def activation_gain(spec: ModelSpec) -> float:
    """The gain used by Xavier / Kaiming: ``spec.init_gain`` or the activation's recommended gain."""
    if spec.init_gain is not None:
        return float(spec.init_gain)
    name = spec.activation
    if name in ("identity", "maxout"):
        return nn.init.calculate_gain("linear")
    if name in ("sigmoid", "tanh"):
        return nn.init.calculate_gain(name)
    if name == "leaky_relu":
        return nn.init.calculate_gain("leaky_relu", spec.leaky_slope)
    return nn.init.calculate_gain("relu")  # relu, elu, gelu


def fans(weight: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a Linear ``(out, in)`` or Conv ``(out, in, *kernel)`` weight."""
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@torch.no_grad()
def init_weight(weight: Tensor, spec: ModelSpec) -> None:
    """Fill one weight tensor in place according to ``spec.init`` (no-op for ``default``)."""
    scheme = spec.init
    fan_in, fan_out = fans(weight)
    gain = activation_gain(spec)
    if scheme == "default":
        return
    if scheme == "zeros":
        weight.zero_()
    elif scheme == "constant":
        weight.fill_(spec.init_value)
    elif scheme == "normal":
        weight.normal_(0.0, spec.init_std)
    elif scheme == "uniform":
        weight.uniform_(-spec.init_std, spec.init_std)
    elif scheme == "xavier_normal":
        weight.normal_(0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
    elif scheme == "xavier_uniform":
        bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
        weight.uniform_(-bound, bound)
    elif scheme == "kaiming_normal":
        weight.normal_(0.0, gain / math.sqrt(fan_in))
    elif scheme == "kaiming_uniform":
        bound = gain * math.sqrt(3.0 / fan_in)
        weight.uniform_(-bound, bound)
    elif scheme == "sparse":
        n_zero = min(round(spec.sparse_fraction * fan_in), fan_in - 1)
        flat = weight.view(weight.shape[0], fan_in)
        flat.normal_(0.0, spec.init_std)
        if n_zero > 0:
            scores = torch.rand(flat.shape, device=weight.device)
            zero_idx = scores.argsort(dim=1)[:, :n_zero]
            flat.scatter_(1, zero_idx, 0.0)
    else:
        raise ValueError(f"unknown init scheme {scheme!r}")


@torch.no_grad()
def initialize(model: nn.Module, spec: ModelSpec) -> None:
    """Apply ``spec.init`` to every weight layer of ``model`` in registration order (see module doc)."""
    if spec.init == "default":
        return
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS):
            init_weight(module.weight, spec)
            if module.bias is not None:
                module.bias.fill_(spec.bias_init)
        elif isinstance(module, NORM_LAYERS):
            if getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
