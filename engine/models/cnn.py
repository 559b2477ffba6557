"""Convolutional networks (1-D for vector inputs, 2-D for images) built from a ModelSpec."""

from __future__ import annotations

import math

from torch import nn

from engine.models.layers import make_activation, make_dropout, make_norm, pieces
from engine.models.mlp import dense_blocks
from engine.models.net import Block, Net
from engine.recipe.config import ModelSpec


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def kernel_sizes(spec: ModelSpec) -> list[int]:
    """The kernel size of each conv layer: ``spec.kernel_sizes``, else ``kernel_size`` for every layer."""
    if spec.kernel_sizes is not None:
        if len(spec.kernel_sizes) != len(spec.channels):
            raise ValueError(
                f"kernel_sizes has {len(spec.kernel_sizes)} entries but channels has {len(spec.channels)}: "
                "give one kernel size per conv layer"
            )
        return list(spec.kernel_sizes)
    return [spec.kernel_size] * len(spec.channels)


def build_cnn(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> Net:
    """Conv blocks per ``spec.channels``, flatten, dense blocks per ``spec.hidden_sizes``, head.

    Input shapes: ``(L,)`` → one channel, Conv1d; ``(H, W)`` → one channel, Conv2d;
    ``(C, H, W)`` → Conv2d. Layer i uses kernel ``kernel_sizes[i]`` (else ``kernel_size``),
    stride ``stride`` and padding ``padding`` (default: its kernel // 2). Each conv block
    is conv → norm (BatchNorm, or GroupNorm(1, C) for
    "layer") → activation → element-wise dropout; Maxout convs output ``C * pieces`` channels.
    DropConnect applies to the dense blocks only. A conv block is residual when ``residual`` is
    set and its output has the same shape as its input (same channels, stride 1, "same" padding).
    """
    if len(input_shape) == 1:
        in_ch, spatial, add_channel = 1, list(input_shape), True
    elif len(input_shape) == 2:
        in_ch, spatial, add_channel = 1, list(input_shape), True
    elif len(input_shape) == 3:
        in_ch, spatial, add_channel = input_shape[0], list(input_shape[1:]), False
    else:
        raise ValueError(f"cnn needs an input shape (L,), (H, W) or (C, H, W), got {tuple(input_shape)}")
    dims = len(spatial)
    conv_cls = nn.Conv1d if dims == 1 else nn.Conv2d
    s = spec.stride
    m = pieces(spec)

    blocks: list[Block] = []
    for i, (out_ch, k) in enumerate(zip(spec.channels, kernel_sizes(spec), strict=True)):
        p = spec.padding if spec.padding is not None else k // 2
        new_spatial = [conv_out(n, k, s, p) for n in spatial]
        if min(new_spatial) < 1:
            raise ValueError(
                f"conv layer {i + 1} (kernel {k}, stride {s}, padding {p}) shrinks the input "
                f"{tuple(spatial)} to nothing: use fewer channels layers, a smaller stride or more padding"
            )
        blocks.append(
            Block(
                conv_cls(in_ch, out_ch * m, k, stride=s, padding=p),
                make_norm(spec.norm, out_ch * m, dims),
                make_activation(spec),
                make_dropout(spec.dropout),
                residual=spec.residual and out_ch == in_ch and new_spatial == spatial,
            )
        )
        in_ch, spatial = out_ch, new_spatial
    flat = in_ch * math.prod(spatial)
    dense, width = dense_blocks(spec, flat)
    return Net(
        blocks + dense,
        nn.Linear(width, n_outputs),
        input_shape,
        n_outputs,
        n_conv=len(blocks),
        add_channel=add_channel,
        input_dropout=spec.input_dropout,
        kind="cnn",
    )
