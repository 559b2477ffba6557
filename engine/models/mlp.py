"""Multi-layer perceptrons (and the plain linear model) built from a ModelSpec."""

from __future__ import annotations

import math

from torch import nn

from engine.models.layers import DropConnectLinear, make_activation, make_dropout, make_norm, pieces
from engine.models.net import Block, Net
from engine.recipe.config import ModelSpec


def dense_blocks(spec: ModelSpec, in_width: int) -> tuple[list[Block], int]:
    """Hidden dense blocks for ``spec.hidden_sizes`` after an input of ``in_width`` features.

    Per block: Linear (DropConnectLinear when ``dropconnect > 0``) → norm → activation → dropout.
    With Maxout the linear layer has ``width * maxout_pieces`` outputs. ``residual`` makes a block
    residual only where its input and output widths are equal; other blocks stay plain (no
    projection, so turning ``residual`` on never changes the parameters).
    Returns the blocks and the width of the last one.
    """
    blocks: list[Block] = []
    width = in_width
    k = pieces(spec)
    for out in spec.hidden_sizes:
        linear: nn.Linear
        if spec.dropconnect > 0.0:
            linear = DropConnectLinear(width, out * k, spec.dropconnect)
        else:
            linear = nn.Linear(width, out * k)
        blocks.append(
            Block(
                linear,
                make_norm(spec.norm, out * k, 0),
                make_activation(spec),
                make_dropout(spec.dropout),
                residual=spec.residual and out == width,
            )
        )
        width = out
    return blocks, width


def build_mlp(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> Net:
    """An MLP (``kind="mlp"``) or a linear model (``kind="linear"``: no hidden blocks), uninitialized."""
    in_width = math.prod(input_shape)
    if spec.kind == "linear":
        blocks: list[Block] = []
        width = in_width
    else:
        blocks, width = dense_blocks(spec, in_width)
    return Net(
        blocks,
        nn.Linear(width, n_outputs),
        input_shape,
        n_outputs,
        input_dropout=spec.input_dropout,
        kind=spec.kind,
    )
