"""A recurrent network (``model.kind = "gru"``): a GRU reads the input as a sequence and a linear
head reads its last hidden state (the mnist1d paper's fourth model, beside logistic regression, the
MLP and the CNN).

How an input becomes a sequence: a 1-D signal ``(L,)`` is L steps of one value; ``(C, L)`` is L
steps of C values; an image ``(C, H, W)`` is H rows, each a step of C·W values. The GRU has
``len(hidden)`` layers of ``hidden[0]`` units (``depth`` and ``width`` work as for an MLP); dropout
applies between its layers and to its output.

It is a :class:`~engine.models.net.Net` of one block, so the lab's diagnostics read it as they read
the others: the block's weight layer is the GRU (its ``weight`` is the first layer's input weights),
its output is the last hidden state, and the head is the linear layer.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.layers import make_dropout
from engine.models.net import Block, Net
from engine.recipe.config import ModelSpec
from engine.recipe.footprint import sequence_shape


class GRULayer(nn.Module):
    """``(N, *input_shape)`` → the GRU's last hidden state ``(N, units)``."""

    def __init__(self, input_shape: tuple[int, ...], units: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.steps, self.values = sequence_shape(self.input_shape)
        self.gru = nn.GRU(self.values, units, num_layers=layers, batch_first=True,
                          dropout=dropout if layers > 1 else 0.0)

    @property
    def weight(self) -> nn.Parameter:
        """The weights the diagnostics read: the first layer's input weights."""
        return self.gru.weight_ih_l0

    def forward(self, x: Tensor) -> Tensor:
        if len(self.input_shape) == 1:
            seq = x.unsqueeze(-1)  # (N, L, 1)
        elif len(self.input_shape) == 2:
            seq = x.transpose(1, 2)  # (N, C, L) → (N, L, C)
        else:
            seq = x.permute(0, 2, 1, 3).flatten(2)  # (N, C, H, W) → (N, H, C·W)
        out, _ = self.gru(seq)
        return out[:, -1]


def build_gru(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> Net:
    sizes = spec.hidden_sizes or [64]
    units = sizes[0]
    layer = GRULayer(input_shape, units, len(sizes), spec.dropout)
    block = Block(layer, nn.Identity(), nn.Identity(), make_dropout(spec.dropout))
    # n_conv=1: the block takes the input as it is (a conv body's rule: no flattening before it)
    return Net([block], nn.Linear(units, n_outputs), input_shape, n_outputs, n_conv=1,
               input_dropout=spec.input_dropout, kind="gru")
