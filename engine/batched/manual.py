"""The stacked MLP's training step without autograd: forward, loss, backward written out.

For a stack of MLPs the backward pass is a handful of batched matrix products; autograd's graph
bookkeeping around them costs about as much again on a CPU (measured: 1.99 → 1.45 ms per step for
8 members of the mnist1d MLP, 0.40 → 0.21 ms for one). The derivatives of the activations are
PyTorch's own backward kernels (``aten.threshold_backward``, ``aten.tanh_backward``, ...), so they
agree with autograd to the last bit; the loss gradients are written from their definitions in
:mod:`engine.recipe.losses`. The tests hold every gradient to autograd's.

Layer ``k`` of a hidden block: ``z = h·Wᵀ + b``, ``a = act(z)``, ``h' = a (+ h if residual)``;
backward: ``dW = dzᵀ·h``, ``db = Σ dz``, ``dh = dz·W (+ dh' if residual)``, ``dz = act'(z)·da``.
With DropConnect, ``W`` is ``W ⊙ mask`` in the forward pass and in ``dh``, and ``dW`` is masked.

Not covered (autograd then): Maxout, normalization layers, bf16 autocast, ``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.batched.losses import loss_groups
from engine.batched.rows import RowSplit
from engine.batched.stacked import StackedMLP
from engine.recipe.config import ModelSpec, TrainSpec

aten = torch.ops.aten
MANUAL_ACTIVATIONS = ("identity", "relu", "leaky_relu", "tanh", "sigmoid", "elu", "gelu")
MANUAL_LOSSES = ("cross_entropy", "mse_onehot", "mse_softmax", "hinge", "mse", "l1", "smooth_l1")


def supported(models: Sequence[ModelSpec], trains: Sequence[TrainSpec]) -> bool:
    """Whether the written-out step covers every member's architecture (its activation) and loss."""
    return (all(m.activation in MANUAL_ACTIVATIONS and m.norm == "none" for m in models)
            and all(t.loss in MANUAL_LOSSES for t in trains))


def _act_backward(name: str, slope: float) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """grad wrt z of the activation, given (grad wrt a, z, a): PyTorch's own backward kernels."""
    if name == "identity":
        return lambda g, z, a: g
    if name == "relu":
        return lambda g, z, a: aten.threshold_backward(g, a, 0)
    if name == "leaky_relu":
        return lambda g, z, a: aten.leaky_relu_backward(g, z, slope, False)
    if name == "tanh":
        return lambda g, z, a: aten.tanh_backward(g, a)
    if name == "sigmoid":
        return lambda g, z, a: aten.sigmoid_backward(g, a)
    if name == "elu":
        return lambda g, z, a: aten.elu_backward(g, 1.0, 1, 1, False, z)
    if name == "gelu":
        return lambda g, z, a: aten.gelu_backward(g, z)
    raise ValueError(f"no manual backward for activation {name!r}")


def _member_act_backward(stack: StackedMLP) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """`_act_backward` of each member's own activation (members whose activations differ)."""
    split = stack.act_split
    assert split is not None
    fns = []
    for rows in split.groups:
        spec = stack.member_specs[rows[0]]
        fns.append(_act_backward(spec.activation, spec.leaky_slope))

    def backward(g: Tensor, z: Tensor, a: Tensor) -> Tensor:
        return split.join([fn(split.take(g, k), split.take(z, k), split.take(a, k)) for k, fn in enumerate(fns)])

    return backward


class ManualStep:
    """``step(x, y, scale) -> per-member data loss``: fills ``stack.grads`` with the gradient of
    ``Σ_m scale[m]·(loss_m + penalty_m)``, where ``loss_m`` is member m's mean loss over the batch."""

    def __init__(self, stack: StackedMLP, model: ModelSpec, trains: Sequence[TrainSpec], task: str,
                 l1: Tensor | None, l2: Tensor | None) -> None:
        """`trains`: each member's training settings, in row order (members may differ in loss)."""
        self.stack = stack
        self.act_backward = _member_act_backward(stack) if stack.act_split is not None else _act_backward(
            model.activation, model.leaky_slope)
        groups = loss_groups(trains)
        self.losses = [spec for spec, _ in groups]
        self.split = RowSplit([rows for _, rows in groups], stack.device) if len(groups) > 1 else None
        self.classify = task == "classification"
        self.l1, self.l2 = l1, l2

    def _loss_and_grad(self, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Per-member mean loss (M,) and d(Σ_m loss_m)/d out, for (M, B, C) outputs: each member's own loss."""
        if y.dim() == 1:
            y = y.expand(out.shape[0], out.shape[1])
        if self.split is None:
            return self._one_loss(self.losses[0], out, y)
        parts = [self._one_loss(spec, self.split.take(out, k), self.split.take(y, k))
                 for k, spec in enumerate(self.losses)]
        return self.split.join([p[0] for p in parts]), self.split.join([p[1] for p in parts])

    @staticmethod
    def _one_loss(spec: TrainSpec, out: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """`_loss_and_grad` for members that share the loss of `spec`; `y` is (M, B)."""
        M, B = out.shape[0], out.shape[1]
        name = spec.loss
        if name == "cross_entropy":
            logp = F.log_softmax(out, dim=-1)
            loss = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1).mean(dim=1)
            grad = logp.exp_()
            grad.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(grad[..., :1], -1.0))
            return loss, grad.div_(B)
        if name in ("mse_onehot", "mse_softmax"):
            t = F.one_hot(y, out.shape[-1]).to(out.dtype)
            if name == "mse_onehot":
                d = out - t
                return d.pow(2).sum(-1).mean(1), d.mul_(2.0 / B)
            s = F.softmax(out, dim=-1)
            d = s - t
            loss = d.pow(2).sum(-1).mean(1)
            ds = d.mul_(2.0 / B)
            return loss, s * (ds - (ds * s).sum(-1, keepdim=True))
        if name == "hinge":
            idx = y.unsqueeze(-1)
            raw = out - out.gather(-1, idx) + spec.hinge_margin
            margins = raw.clamp_min(0.0).scatter(-1, idx, 0.0)
            on = (raw >= 0).to(out.dtype).scatter_(-1, idx, 0.0)
            on.scatter_(-1, idx, -on.sum(-1, keepdim=True))
            return margins.sum(-1).mean(1), on.div_(B)
        o = out.reshape(M, B)
        d = o - y.to(o.dtype)
        if name == "mse":
            loss, g = d.pow(2).mean(1), d * (2.0 / B)
        elif name == "l1":
            loss, g = d.abs().mean(1), d.sign() / B
        else:  # smooth_l1
            ad = d.abs()
            beta = spec.smooth_l1_beta
            loss = torch.where(ad < beta, 0.5 * d * d / beta, ad - 0.5 * beta).mean(1)
            g = torch.where(ad < beta, d / beta, d.sign()) / B
        return loss, g.reshape(out.shape)

    @torch.no_grad()
    def step(self, x: Tensor, y: Tensor, scale: Tensor) -> Tensor:
        s = self.stack
        M = s.n_members
        shared = x.dim() == 1 + len(s.template.input_shape)
        h = x.flatten(1) if shared else x.flatten(2)
        drop = s.dropout  # each member's dropout masks, drawn as the autograd path draws them
        if drop is not None and drop.any_input:
            h = drop(h, drop.input_p)
        inputs: list[Tensor] = []
        cache: list[tuple[Tensor, Tensor, Tensor | None]] = []
        weight_masks: list[Tensor | None] = []
        for k, (_, _, residual) in enumerate(s.blocks):
            inputs.append(h)
            weight_masks.append(s.weight_mask(k, train=True))
            z = s.pre_activation(k, h, True, weight_masks[-1])
            a = s.act(z)
            mask = drop.masks(a, drop.hidden_p) if drop is not None and drop.any_hidden else None
            cache.append((z, a, mask))
            if mask is not None:
                a = a * mask
            h = s.skip(h, a, residual)
        inputs.append(h)
        w_head, b_head = s.head
        out = s._linear(h, w_head, b_head)
        loss, g = self._loss_and_grad(out, y)
        g.mul_(scale.view(M, 1, 1))
        layers = [(w, b, res) for w, b, res in s.blocks] + [(w_head, b_head, False)]
        weight_masks.append(None)  # the head has no DropConnect
        dh_next: Tensor | None = None
        for k in range(len(layers) - 1, -1, -1):
            w, b, residual = layers[k]
            w_mask = weight_masks[k]
            if k < len(layers) - 1:
                z, a, mask = cache[k]
                da = dh_next if mask is None else dh_next * mask  # type: ignore[operator]
                dz = self.act_backward(da, z, a)  # type: ignore[arg-type]
            else:
                dz = g
            h_in = inputs[k]
            if h_in.dim() == 2:  # shared inputs: one matrix product for every member
                dw = torch.matmul(dz.transpose(1, 2), h_in)
            else:
                dw = torch.bmm(dz.transpose(1, 2), h_in)
            w.grad.copy_(dw if w_mask is None else dw.mul_(w_mask))
            b.grad.copy_(dz.sum(dim=1))
            if k > 0:
                dh = torch.bmm(dz, w if w_mask is None else w * w_mask)
                # block k's skip connection passes the gradient of its output straight through
                if residual is True:
                    dh += dh_next
                elif residual is not False:  # only for the members whose block is residual
                    dh.addcmul_(dh_next, residual)
                dh_next = dh
        if self.l1 is not None or self.l2 is not None:
            for w in s.weights:
                extra = torch.zeros_like(w)
                if self.l1 is not None:
                    extra += (self.l1 * scale).view(M, 1, 1) * w.sign()
                if self.l2 is not None:
                    extra += (self.l2 * scale).view(M, 1, 1) * w
                w.grad.add_(extra)
        return loss
