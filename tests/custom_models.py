"""Model factories for the custom-model tests (``model.factory = "custom_models:..."``)."""

from __future__ import annotations

import math

from torch import nn


def small_net(input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """A plain Sequential: Flatten, two Linear + ReLU layers, a Linear head."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 24), nn.ReLU(), nn.Linear(24, 12),
                         nn.Tanh(), nn.Linear(12, n_outputs))


def wrong_outputs(input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), n_outputs + 1))


def not_a_module(input_shape: tuple[int, ...], n_outputs: int) -> object:
    return "a string"
