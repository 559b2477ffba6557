"""M small CNNs as one grouped convolution ÷ the same M one after another (forward + backward).

Decides whether ``engine.batched`` should stack CNN variants the way it stacks MLPs: member m's
channels are the m-th slice of one convolution with ``groups=M`` (each member sees only its own
input channels), the dense head is one batched matmul. Each member has its own batch, as members
with their own seeds do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

CASES = {
    # name: (input shape without the batch, channels, kernels, stride, padding, batch, description)
    "mnist1d": ((40,), [25, 25, 25], [5, 3, 3], 2, 1, 100, "the cnn-vs-mlp 1-D CNN (40 → 25-25-25 conv → 10)"),
    "image": ((3, 32, 32), [32, 64], [3, 3], 1, 1, 128, "a 3×32×32 CNN (32-64 conv → 10)"),
}


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv1d if dims == 1 else nn.Conv2d


def _layers(shape: tuple[int, ...], channels: list[int], kernels: list[int], stride: int, padding: int,
            groups: int) -> tuple[nn.Sequential, int]:
    """Conv → ReLU blocks for `groups` members side by side; returns them and one member's flat size."""
    dims = len(shape) - (len(shape) == 3)
    cin = shape[0] if len(shape) == 3 else 1
    size = list(shape[-dims:])
    mods: list[nn.Module] = []
    for c, k in zip(channels, kernels, strict=True):
        mods += [_conv(dims)(cin * groups, c * groups, k, stride=stride, padding=padding, groups=groups), nn.ReLU()]
        cin = c
        size = [(s + 2 * padding - k) // stride + 1 for s in size]
    flat = cin
    for s in size:
        flat *= s
    return nn.Sequential(*mods), flat


def sides(case: str, m: int, device: str, loops: int) -> dict[str, Callable[[], None]]:
    shape, channels, kernels, stride, padding, batch, _ = CASES[case]
    xs = torch.randn(m, batch, *shape, device=device)
    if len(shape) == 1:
        xs = xs.unsqueeze(2)  # (M, B, 1, L)
    ys = torch.randint(0, 10, (m, batch), device=device)

    solos = []
    for _ in range(m):
        body, flat = _layers(shape, channels, kernels, stride, padding, 1)
        solos.append(nn.Sequential(body, nn.Flatten(), nn.Linear(flat, 10)).to(device))

    body, flat = _layers(shape, channels, kernels, stride, padding, m)
    body = body.to(device)
    head_w = (torch.randn(m, flat, 10, device=device) / flat ** 0.5).requires_grad_()
    head_b = torch.zeros(m, 1, 10, device=device, requires_grad=True)
    grouped_x = xs.transpose(0, 1).reshape(batch, -1, *xs.shape[3:])  # (B, M·C, ...): member-major channels
    flat_y = ys.reshape(-1)

    def sequential() -> None:
        for _ in range(loops):
            for model, x, y in zip(solos, xs, ys, strict=True):
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()

    def grouped() -> None:
        for _ in range(loops):
            body.zero_grad(set_to_none=True)
            head_w.grad = head_b.grad = None
            h = body(grouped_x).reshape(batch, m, flat).transpose(0, 1)  # (M, B, flat)
            out = torch.baddbmm(head_b, h, head_w)
            F.cross_entropy(out.reshape(-1, 10), flat_y, reduction="sum").div(batch).backward()

    return {"grouped": grouped, "sequential": sequential}
