"""Networks built from a ModelSpec, and their initialization.

``build_model(spec, input_shape, n_outputs)`` builds every parameter first, then calls
``initialize`` (torch's global RNG), so ``torch.manual_seed(s)`` before it gives identical weights,
and specs that differ only in shape-free settings (dropout, DropConnect, residual, norm kind,
activation under a shape-free scheme) start from the same random draws.
"""

from __future__ import annotations

from engine.models.cnn import build_cnn
from engine.models.init import activation_gain, initialize
from engine.models.layers import DropConnectLinear, Maxout, make_activation
from engine.models.mlp import build_mlp
from engine.models.net import Block, Net, count_params, mode_matters
from engine.recipe.config import ModelSpec


def build_model(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> Net:
    """Build the network ``spec`` describes for inputs of ``input_shape`` and initialize it."""
    input_shape = tuple(int(n) for n in input_shape)
    if not input_shape or min(input_shape) < 1:
        raise ValueError(f"input_shape must be non-empty and positive, got {input_shape}")
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be at least 1, got {n_outputs}")
    if spec.kind == "custom":
        from engine.models.custom import build_custom

        model = build_custom(spec.factory or "", input_shape, n_outputs)
    elif spec.kind == "cnn":
        model = build_cnn(spec, input_shape, n_outputs)
    elif spec.kind == "gru":
        from engine.models.recurrent import build_gru

        model = build_gru(spec, input_shape, n_outputs)
    else:
        model = build_mlp(spec, input_shape, n_outputs)
    initialize(model, spec)
    return model


__all__ = [
    "Block",
    "DropConnectLinear",
    "Maxout",
    "Net",
    "activation_gain",
    "build_model",
    "count_params",
    "initialize",
    "make_activation",
    "mode_matters",
]
