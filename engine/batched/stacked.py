"""M same-shaped MLPs as one model: parameters stacked in one ``(M, P)`` buffer, batched matmuls.

Row ``m`` of the buffer is member ``m``'s parameters flattened in the order of the solo model's
``parameters()`` (``torch.nn.utils.parameters_to_vector``), so a member moves between the solo
``Net`` and the stack without any reordering. Each layer's weight and bias are views into that
row buffer, made autograd leaves whose ``.grad`` are views into a second ``(M, P)`` buffer: one
backward fills every member's gradient in place, and an optimizer, a clip or a norm works on a
whole row (or a block of rows) with one tensor operation instead of one per parameter.

A layer is ``baddbmm(b, h, Wᵀ)``: one batched matrix product for all members. Inputs are either
shared by every member, ``(B, F)``, or per member, ``(M, B, F)``.

Measured on the 2-core CPU (docs/performance.md): batched matmuls over stacked weights beat
``torch.func.vmap(functional_call(...))`` for small MLPs, mostly because vmap's per-call Python
overhead is as large as the whole step of a tiny model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from engine.config import ModelSpec
from engine.models import Net

_LAYOUT_WARNING = r"grad and param do not obey the gradient layout contract"


@contextlib.contextmanager
def quiet_layout_warning() -> Iterator[None]:
    """Silence autograd's note that our gradient views are not dense: they share the strides of
    their (row-strided) parameter views on purpose, so every member's gradient lands in its row."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LAYOUT_WARNING)
        yield


def _activation(spec: ModelSpec):
    """The activation as a function of a tensor of any rank (units on the last axis)."""
    name = spec.activation
    if name == "identity":
        return lambda z: z
    if name == "sigmoid":
        return torch.sigmoid
    if name == "tanh":
        return torch.tanh
    if name == "relu":
        return torch.relu
    if name == "leaky_relu":
        slope = spec.leaky_slope
        return lambda z: F.leaky_relu(z, slope)
    if name == "elu":
        return F.elu
    if name == "gelu":
        return F.gelu
    if name == "maxout":
        k = spec.maxout_pieces
        return lambda z: z.unflatten(-1, (z.shape[-1] // k, k)).amax(dim=-1)
    raise ValueError(f"activation {name!r} is not batched")


class MemberDropout:
    """Inverted dropout with each member's own rate and its own random stream.

    Member ``m`` draws its masks from a generator seeded as its solo run seeds the global RNG
    (``seed + DROPOUT_SEED_OFFSET``), in the solo forward pass's order (input, then each hidden
    block) and with ``torch.nn.functional.dropout``'s arithmetic (``bernoulli_(1 - p)``, divided
    by ``1 - p``, times the activations). On a CPU a member's masks are then its solo run's masks,
    bit for bit; a member with rate 0 draws nothing, as its solo ``Identity`` does. (On CUDA the
    solo run's fused dropout kernel has a stream of its own: the same distribution, other draws.)
    """

    def __init__(self, input_p: Sequence[float], hidden_p: Sequence[float], seeds: Sequence[int],
                 device: torch.device) -> None:
        from engine.ensembles import DROPOUT_SEED_OFFSET

        self.input_p, self.hidden_p = list(input_p), list(hidden_p)
        self.any_input = any(p > 0 for p in self.input_p)
        self.any_hidden = any(p > 0 for p in self.hidden_p)
        self.generators = [torch.Generator(device=device).manual_seed(s + DROPOUT_SEED_OFFSET) for s in seeds]

    def masks(self, h: Tensor, rates: Sequence[float]) -> Tensor:
        """The next ``(M, B, U)`` masks for `h` (shared ``(B, U)`` or ``(M, B, U)``), already
        divided by ``1 - p``; ones for a member whose rate is 0."""
        shape = h.shape[-2:]
        masks = []
        for p, g in zip(rates, self.generators, strict=True):
            if p > 0:
                noise = torch.empty(shape, dtype=h.dtype, device=h.device).bernoulli_(1 - p, generator=g)
                masks.append(noise.div_(1 - p))
            else:
                masks.append(torch.ones(shape, dtype=h.dtype, device=h.device))
        return torch.stack(masks)

    def __call__(self, h: Tensor, rates: Sequence[float]) -> Tensor:
        """`h` with member m's units dropped at ``rates[m]``."""
        return h * self.masks(h, rates)


class StackedMLP:
    """Members of one MLP architecture, trained as one model (see the module docstring)."""

    def __init__(self, models: Sequence[Net], spec: ModelSpec, device: torch.device | str) -> None:
        if not models:
            raise ValueError("a stacked model needs at least one member")
        template = models[0]
        if template.kind not in ("mlp", "linear") or template.n_conv:
            raise ValueError(f"only MLP and linear models can be stacked, not {template.kind!r}")
        self.template = template
        self.n_members = len(models)
        self.device = torch.device(device)
        with torch.no_grad():
            self.params = torch.stack([parameters_to_vector(m.parameters()).detach() for m in models]).to(self.device)
        self.grads = torch.zeros_like(self.params)
        self.n_params = self.params.shape[1]
        self.act = _activation(spec)

        M = self.n_members
        views: list[Tensor] = []
        self.weight_mask = torch.zeros(self.n_params, dtype=torch.bool, device=self.device)
        offset = 0
        for p in template.parameters():
            n = p.numel()
            view = self.params[:, offset : offset + n].view(M, *p.shape)
            view.requires_grad_(True)
            view.grad = self.grads[:, offset : offset + n].view(M, *p.shape)
            if p.ndim > 1:
                self.weight_mask[offset : offset + n] = True
            views.append(view)
            offset += n
        self.views = views
        self._offsets = [0]
        for v in views:
            self._offsets.append(self._offsets[-1] + v[0].numel())
        self._grad_buffers: dict[int, list[Tensor]] = {}
        self.weights = [v for v in views if v.ndim > 2]
        # (weight, bias, residual) per hidden block, then the head
        self.blocks: list[tuple[Tensor, Tensor, bool]] = []
        it = iter(views)
        for block in template.blocks:
            w, b = next(it), next(it)
            self.blocks.append((w, b, bool(block.residual)))
        self.head = (next(it), next(it))
        self.dropout: MemberDropout | None = None
        """Each member's dropout (set by the trainer when a member has any); None: no dropout."""

    # -- forward ----------------------------------------------------------------------------

    def _linear(self, h: Tensor, w: Tensor, b: Tensor) -> Tensor:
        if h.dim() == 2:  # the same inputs for every member
            h = h.expand(self.n_members, *h.shape)
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    def __call__(self, x: Tensor, train: bool = False) -> Tensor:
        """``(B, *input_shape)`` shared or ``(M, B, *input_shape)`` per member → ``(M, B, n_out)``.

        `train`: a training forward pass, which draws the members' dropout masks (``dropout``)."""
        shared = x.dim() == 1 + len(self.template.input_shape)
        h = x.flatten(1) if shared else x.flatten(2)
        drop = self.dropout if train else None
        if drop is not None and drop.any_input:
            h = drop(h, drop.input_p)
        for w, b, residual in self.blocks:
            out = self.act(self._linear(h, w, b))
            if drop is not None and drop.any_hidden:
                out = drop(out, drop.hidden_p)
            if residual:
                out = (h if h.dim() == 3 else h.expand(self.n_members, *h.shape)) + out
            h = out
        return self._linear(h, *self.head)

    def capture(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The forward pass's activation inputs and outputs per hidden block, ``(M, B, units)`` each
        (what ``layer_health`` hooks on a solo model's ``block.act``)."""
        shared = x.dim() == 1 + len(self.template.input_shape)
        h = x.flatten(1) if shared else x.flatten(2)
        pre, post = [], []
        for w, b, residual in self.blocks:
            z = self._linear(h, w, b)
            out = self.act(z)
            pre.append(z)
            post.append(out)
            if residual:
                out = (h if h.dim() == 3 else h.expand(self.n_members, *h.shape)) + out
            h = out
        return pre, post

    def offsets_of(self, tensors: Sequence[Tensor]) -> list[tuple[int, int]]:
        """The ``[start, end)`` columns of the parameter rows that hold each of these views."""
        out = []
        for t in tensors:
            k = next(i for i, v in enumerate(self.views) if v is t)
            out.append((self._offsets[k], self._offsets[k + 1]))
        return out

    # -- members in and out -----------------------------------------------------------------

    @torch.no_grad()
    def load_member(self, m: int, model: nn.Module, *, grads: bool = False, params: Tensor | None = None) -> nn.Module:
        """Copy member `m`'s parameters (or the row `params`) into the solo `model`; its gradients too.

        `model` must be one of the solo models the stack was built from (or one of the same shapes).
        """
        targets = list(model.parameters())
        if params is None:
            torch._foreach_copy_(targets, [v[m] for v in self.views])
        else:
            vector_to_parameters(params.to(targets[0].dtype), targets)
        if grads:
            bufs = self._grad_buffers.get(id(model))
            if bufs is None:
                bufs = self._grad_buffers[id(model)] = [torch.empty_like(p) for p in targets]
            torch._foreach_copy_(bufs, [v.grad[m] for v in self.views])
            for p, g in zip(targets, bufs, strict=True):
                p.grad = g
        else:
            for p in targets:
                p.grad = None
        return model

    @torch.no_grad()
    def freeze(self, m: int) -> None:
        """Zero a finished member's row (its weights and gradient), so it costs nothing but FLOPs."""
        self.params[m].zero_()
        self.grads[m].zero_()

    def penalty(self, l1: Tensor | None, l2: Tensor | None) -> Tensor | None:
        """Per member ``l1·Σ|w| + l2/2·Σw²`` over the weights (not biases), as an ``(M,)`` tensor."""
        total: Tensor | None = None
        if l1 is not None:
            total = l1 * torch.stack([w.abs().sum(dim=(1, 2)) for w in self.weights]).sum(0)
        if l2 is not None:
            sq = (l2 / 2) * torch.stack([w.pow(2).sum(dim=(1, 2)) for w in self.weights]).sum(0)
            total = sq if total is None else total + sq
        return total
