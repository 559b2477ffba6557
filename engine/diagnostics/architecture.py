"""A model's summary: its layers, each layer's output shape and parameters, and the memory the
parameters and one sample's activations take. The Builder shows it before a run, the Dashboard
and ``dllab show`` for a run.

The walk over the layers and the shapes come from torchinfo (one forward pass of a single sample,
with hooks), which handles any ``nn.Module``: the lab's kinds and a user's own model alike. What
this module adds is the lab's reading of it: the leaf layers by their path in the model
(``blocks.0.linear``), the totals, and :func:`architecture_of`, which builds a run's model from its
spec and its data's facts (no data is loaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from engine.recipe.config import RunSpec

BYTES_PER_PARAM = 4
"""float32 weights."""


@dataclass(frozen=True)
class LayerRow:
    """One leaf layer: its path in the model, its type, one sample's output shape, its parameters."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int


@dataclass(frozen=True)
class Architecture:
    """A model's layers and totals (see the module docstring)."""

    input_shape: tuple[int, ...]
    n_outputs: int
    layers: list[LayerRow] = field(default_factory=list)
    params: int = 0
    trainable: int = 0
    activation_bytes: int = 0
    """Every layer's output for one sample (what a batch multiplies, forward and backward)."""

    @property
    def param_bytes(self) -> int:
        return self.params * BYTES_PER_PARAM

    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape), "n_outputs": self.n_outputs, "params": self.params,
                "trainable": self.trainable, "param_bytes": self.param_bytes,
                "activation_bytes": self.activation_bytes,
                "layers": [{"name": r.name, "kind": r.kind, "output_shape": list(r.output_shape), "params": r.params}
                           for r in self.layers]}


def describe_model(model: nn.Module, input_shape: tuple[int, ...]) -> Architecture:
    """The summary of `model` for inputs of `input_shape` (one sample; the model is left as it was)."""
    import torch
    from torchinfo import summary

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        stats = summary(model, input_size=(1, *input_shape), verbose=0, depth=32, device=device,
                        col_names=("output_size", "num_params"))
    finally:
        model.train(was_training)
    paths = {id(module): name for name, module in model.named_modules()}
    rows = []
    for info in stats.summary_list:
        if not info.is_leaf_layer or info.module is None:
            continue
        own = sum(p.numel() for p in info.module.parameters(recurse=False))
        shape = tuple(int(n) for n in info.output_size[1:]) if info.output_size else ()
        rows.append(LayerRow(paths.get(id(info.module), info.var_name), info.class_name, shape, own))
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Architecture(tuple(input_shape), int(getattr(model, "n_outputs", 0) or 0), rows, params, trainable,
                        int(stats.total_output_bytes))


def architecture_of(spec: RunSpec) -> Architecture:
    """The summary of the model a run of `spec` trains, built on the CPU from its data's facts (its
    input shape after preprocessing, its outputs); DatasetError when the data cannot be described."""
    import torch

    from engine.data.facts import describe
    from engine.models import build_model

    facts = describe(spec.recipe.data)
    with torch.random.fork_rng(devices=[]):
        model = build_model(spec.recipe.model, facts.input_shape, facts.n_outputs)
    arch = describe_model(model, facts.input_shape)
    return Architecture(arch.input_shape, facts.n_outputs, arch.layers, arch.params, arch.trainable,
                        arch.activation_bytes)
