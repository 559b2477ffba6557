"""Your own model (``model.kind = "custom"``): ``model.factory = "package.module:function"`` names a
function that takes the data's input shape and its number of outputs and returns an ``nn.Module``
mapping ``(N, *input_shape)`` to ``(N, n_outputs)``.

Importing code named in a file is an explicit opt-in: ``--allow-code`` on the command line (or
``DLLAB_ALLOW_CODE=1``). The opt-in is checked where a comparison starts, before anything is
submitted (``engine.catalogue.preflight``); a shipped preset can never name a factory
(``engine.catalogue.presets``). A custom model trains solo (the batched trainer stacks the lab's
own MLPs only), with every recipe option.

:class:`CustomNet` wraps the module so that the lab's diagnostics read it as they read their own
networks: its weight layers (Linear, Conv, in the order the module registers them) are the
"blocks", each with the activation module that follows it (if any) as its output, and the last
weight layer is the "head".
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

ALLOW_ENV = "DLLAB_ALLOW_CODE"
HOW_TO_ALLOW = "add --allow-code to the command (or set DLLAB_ALLOW_CODE=1)"
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Mish,
               nn.PReLU, nn.SELU, nn.Hardtanh, nn.ReLU6)


class CustomModelError(ValueError):
    """A custom model that cannot be used: not allowed, not importable, or the wrong shape."""


def code_allowed() -> bool:
    return os.environ.get(ALLOW_ENV, "") == "1"


def allow_code() -> None:
    """The person allowed their own code for this process and what it starts (``--allow-code``)."""
    os.environ[ALLOW_ENV] = "1"


def load_factory(name: str) -> Callable[..., Any]:
    module_name, _, attr = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - any import error is the user's code: say which
        raise CustomModelError(f"model.factory {name!r} cannot be imported: {type(exc).__name__}: "
                               f"{str(exc)[:200]} (is its folder on PYTHONPATH?)") from None
    if not callable(obj):
        raise CustomModelError(f"model.factory {name!r} is not a function")
    return obj


class _Layer:
    """A weight layer and the activation after it, as the diagnostics read a block (not a module:
    the wrapped model owns the parameters)."""

    def __init__(self, linear: nn.Module, act: nn.Module | None) -> None:
        self.linear = linear
        self.act = act


class CustomNet(nn.Module):
    """A user's module, with what the lab's diagnostics look for (see the module docstring)."""

    kind = "custom"

    def __init__(self, module: nn.Module, input_shape: tuple[int, ...], n_outputs: int) -> None:
        super().__init__()
        self.module = module
        self.input_shape = tuple(input_shape)
        self.n_outputs = n_outputs
        self.n_conv = 0
        leaves = [m for m in module.modules() if not list(m.children())]
        layers: list[_Layer] = []
        for k, leaf in enumerate(leaves):
            if isinstance(leaf, WEIGHTED):
                act = None
                for later in leaves[k + 1:]:
                    if isinstance(later, WEIGHTED):
                        break
                    if isinstance(later, ACTIVATIONS):
                        act = later
                        break
                layers.append(_Layer(leaf, act))
        self._blocks = layers[:-1]
        # not registered as a submodule (the wrapped module owns it): no second copy in the state_dict
        object.__setattr__(self, "_head", layers[-1].linear if layers else None)

    @property
    def blocks(self) -> list[_Layer]:
        return self._blocks

    @property
    def head(self) -> nn.Module | None:
        return self._head

    def layer_names(self) -> list[str]:
        return [f"block{i + 1}" for i in range(len(self._blocks))] + ["head"]

    def weight_layers(self) -> list[tuple[str, nn.Module]]:
        pairs = [(f"block{i + 1}", b.linear) for i, b in enumerate(self._blocks)]
        return pairs + ([("head", self._head)] if self._head is not None else [])

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x)


def build_custom(factory: str, input_shape: tuple[int, ...], n_outputs: int) -> CustomNet:
    """The user's model for this data, checked on two zero samples: it must return
    ``(2, n_outputs)``. (The opt-in is checked where the comparison starts.)"""
    fn = load_factory(factory)
    try:
        module = fn(tuple(input_shape), int(n_outputs))
    except Exception as exc:  # noqa: BLE001 - the user's code: its error, said plainly
        raise CustomModelError(f"model.factory {factory!r} failed for input shape {tuple(input_shape)} and "
                               f"{n_outputs} outputs: {type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(module, nn.Module):
        raise CustomModelError(f"model.factory {factory!r} returned a {type(module).__name__}, not an nn.Module")
    was = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, *input_shape))
    except Exception as exc:  # noqa: BLE001
        raise CustomModelError(f"model.factory {factory!r}: the model fails on inputs of shape "
                               f"(N, {', '.join(map(str, input_shape))}): {type(exc).__name__}: {str(exc)[:200]}"
                               ) from None
    finally:
        module.train(was)
    if not isinstance(out, Tensor) or tuple(out.shape) != (2, n_outputs):
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise CustomModelError(f"model.factory {factory!r}: the model returns {got} for 2 samples; it must "
                               f"return (N, {n_outputs}): one {'logit per class' if n_outputs > 1 else 'value'}")
    return CustomNet(module, input_shape, n_outputs)
