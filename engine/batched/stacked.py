"""M same-shaped MLPs as one model: parameters stacked in one ``(M, P)`` buffer, batched matmuls.

Row ``m`` of the buffer is member ``m``'s parameters flattened in the order of the solo model's
``parameters()`` (``torch.nn.utils.parameters_to_vector``), so a member moves between the solo
``Net`` and the stack without any reordering. Each layer's weight and bias are views into that
row buffer, made autograd leaves whose ``.grad`` are views into a second ``(M, P)`` buffer: one
backward fills every member's gradient in place, and an optimizer, a clip or a norm works on a
whole row (or a block of rows) with one tensor operation instead of one per parameter.

A layer is ``baddbmm(b, h, Wᵀ)``: one batched matrix product for all members. Inputs are either
shared by every member, ``(B, F)``, or per member, ``(M, B, F)``. A block's BatchNorm or LayerNorm
is one ``StackedNorm`` for every member (BatchNorm keeps each member's running statistics), and
each member's dropout and DropConnect masks come from its own random stream (``MemberDropout``).

Measured on the 2-core CPU (docs/performance.md): batched matmuls over stacked weights beat
``torch.func.vmap(functional_call(...))`` for small MLPs, mostly because vmap's per-call Python
overhead is as large as the whole step of a tiny model.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from engine.batched.rows import RowSplit, group_rows
from engine.models import Net
from engine.recipe.config import ModelSpec

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


def _activation_key(spec: ModelSpec) -> tuple:
    return (spec.activation, spec.leaky_slope if spec.activation == "leaky_relu" else None,
            spec.maxout_pieces if spec.activation == "maxout" else None)


def member_activation(specs: Sequence[ModelSpec], device: torch.device) -> tuple[Callable[[Tensor], Tensor],
                                                                                  RowSplit | None]:
    """Each member's activation as one function of ``(M, ...)`` tensors, and the split of the rows by
    activation (None when every member has the same one: then it is that one function)."""
    groups = group_rows([_activation_key(ms) for ms in specs])
    if len(groups) == 1:
        return _activation(specs[0]), None
    fns = [_activation(specs[rows[0]]) for rows in groups]
    split = RowSplit(groups, device)

    def act(z: Tensor) -> Tensor:
        return split.join([fn(split.take(z, k)) for k, fn in enumerate(fns)])

    return act, split


class MemberDropout:
    """Inverted dropout and DropConnect with each member's own rates and its own random stream.

    Member ``m`` draws its masks from a generator seeded as its solo run seeds the global RNG
    (``seed + DROPOUT_SEED_OFFSET``), in the solo forward pass's order (input, then per hidden
    block its DropConnect weight mask and its dropout mask) and with
    ``torch.nn.functional.dropout``'s arithmetic (``bernoulli_(1 - p)``, divided by ``1 - p``,
    times the activations or the weights), which is how the solo layers draw theirs
    (``engine.models.layers.dropout_mask``): a member's masks are its solo run's masks, bit for
    bit; a member with rate 0 draws nothing, as its solo ``Identity`` (or plain ``Linear``) does.
    """

    def __init__(self, input_p: Sequence[float], hidden_p: Sequence[float], seeds: Sequence[int],
                 device: torch.device, weight_p: Sequence[float] | None = None) -> None:
        from engine.techniques.ensembles import DROPOUT_SEED_OFFSET

        self.input_p, self.hidden_p = list(input_p), list(hidden_p)
        self.weight_p = list(weight_p) if weight_p is not None else [0.0] * len(self.input_p)
        self._note_rates()
        self.generators = [torch.Generator(device=device).manual_seed(s + DROPOUT_SEED_OFFSET) for s in seeds]

    @classmethod
    def of(cls, models: Sequence[ModelSpec], seeds: Sequence[int], device: torch.device) -> MemberDropout | None:
        """The members' dropout, input dropout and DropConnect; None when no member has any."""
        if not any(m.dropout > 0 or m.input_dropout > 0 or m.dropconnect > 0 for m in models):
            return None
        return cls([m.input_dropout for m in models], [m.dropout for m in models], seeds, device,
                   [m.dropconnect for m in models])

    def keep(self, rows: Sequence[int]) -> None:
        """Only the members `rows`, each with its own stream where it is (see ``StackedMLP.keep``)."""
        self.input_p = [self.input_p[r] for r in rows]
        self.hidden_p = [self.hidden_p[r] for r in rows]
        self.weight_p = [self.weight_p[r] for r in rows]
        self.generators = [self.generators[r] for r in rows]
        self._note_rates()

    def _note_rates(self) -> None:
        """Which kinds of mask any member draws (the forward pass skips the others)."""
        self.any_input = any(p > 0 for p in self.input_p)
        self.any_hidden = any(p > 0 for p in self.hidden_p)
        self.any_weight = any(p > 0 for p in self.weight_p)

    def masks(self, h: Tensor, rates: Sequence[float]) -> Tensor:
        """The next ``(M, B, U)`` masks for `h` (shared ``(B, U)`` or ``(M, B, U)``; or a weight,
        ``(M, out, in)``), already divided by ``1 - p``; ones for a member whose rate is 0."""
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


class StackedNorm:
    """One hidden block's BatchNorm or LayerNorm for every member, each with its own gain and shift
    (``(M, U)`` views of the stacked rows) and, for BatchNorm, its own running statistics.

    BatchNorm runs ``torch.nn.functional.batch_norm`` on the ``(B, M·U)`` matrix of every member's
    pre-activations: each (member, unit) pair is one channel, so each member is normalized over its
    own batch with the solo kernel, and its running mean and variance are updated as its solo
    ``BatchNorm1d`` updates them (same momentum, same unbiased variance). Training forward passes
    use batch statistics, evaluation the running ones, as in the solo model's train / eval modes.
    LayerNorm normalizes each sample over its units, then applies each member's affine.
    """

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        """The members' solo norm `modules`; ``weight`` and ``bias`` (the ``(M, U)`` views of the
        stacked rows) are set by the stack."""
        template = modules[0]
        self.batch = isinstance(template, nn.BatchNorm1d)
        if not self.batch and not isinstance(template, nn.LayerNorm):
            raise ValueError(f"{type(template).__name__} is not batched")
        self.weight: Tensor
        self.bias: Tensor
        self.eps = float(template.eps)
        self.units = template.weight.shape[0]
        if self.batch:
            if template.momentum is None or not template.track_running_stats:
                raise ValueError("only BatchNorm with running statistics and a momentum is batched")
            self.momentum = float(template.momentum)
            with torch.no_grad():  # flat (M·U,): batch_norm updates them in place
                self.running_mean = torch.cat([m.running_mean for m in modules])
                self.running_var = torch.cat([m.running_var for m in modules])
                self.batches_tracked = torch.stack([m.num_batches_tracked for m in modules])

    def to(self, device: torch.device) -> StackedNorm:
        if self.batch:
            self.running_mean = self.running_mean.to(device)
            self.running_var = self.running_var.to(device)
            self.batches_tracked = self.batches_tracked.to(device)
        return self

    def keep(self, index: Tensor) -> None:
        """Only the members `index` (see ``StackedMLP.keep``)."""
        if self.batch:
            M = len(self.batches_tracked)
            self.running_mean = self.running_mean.view(M, -1).index_select(0, index).flatten()
            self.running_var = self.running_var.view(M, -1).index_select(0, index).flatten()
            self.batches_tracked = self.batches_tracked.index_select(0, index)

    def __call__(self, z: Tensor, train: bool) -> Tensor:
        """``(M, B, U)`` pre-activations → normalized, scaled and shifted, per member."""
        M, B, U = z.shape
        if not self.batch:
            zhat = F.layer_norm(z, (U,), eps=self.eps)
            return torch.addcmul(self.bias.unsqueeze(1), zhat, self.weight.unsqueeze(1))
        if train:
            self.batches_tracked += 1
        flat = z.transpose(0, 1).reshape(B, M * U)
        out = F.batch_norm(flat, self.running_mean, self.running_var, self.weight.reshape(-1),
                           self.bias.reshape(-1), train, self.momentum, self.eps)
        return out.view(B, M, U).transpose(0, 1)

    def _rows(self, m: int) -> slice:
        return slice(m * self.units, (m + 1) * self.units)

    def member_state(self, m: int) -> list[Tensor]:
        """Copies of member `m`'s running statistics (none for LayerNorm)."""
        if not self.batch:
            return []
        rows = self._rows(m)
        return [self.running_mean[rows].clone(), self.running_var[rows].clone(), self.batches_tracked[m].clone()]

    def load_member_state(self, m: int, state: Sequence[Tensor]) -> int:
        """Put back member `m`'s running statistics from the start of `state`; how many it took."""
        if not self.batch:
            return 0
        rows = self._rows(m)
        self.running_mean[rows].copy_(state[0])
        self.running_var[rows].copy_(state[1])
        self.batches_tracked[m].copy_(state[2])
        return 3

    @torch.no_grad()
    def load_member(self, m: int, module: nn.Module) -> None:
        """Copy member `m`'s running statistics into its solo BatchNorm `module`."""
        if self.batch:
            rows = self._rows(m)
            module.running_mean.copy_(self.running_mean[rows])
            module.running_var.copy_(self.running_var[rows])
            module.num_batches_tracked.copy_(self.batches_tracked[m])


Residual = bool | Tensor
"""Whether a block is residual: for every member (True / False), or an (M, 1, 1) mask of 1s and 0s."""


class StackedMLP:
    """Members of one MLP architecture, trained as one model (see the module docstring)."""

    def __init__(self, models: Sequence[Net], spec: ModelSpec, device: torch.device | str,
                 member_specs: Sequence[ModelSpec] | None = None) -> None:
        """`spec`: the architecture; `member_specs`: each member's own ModelSpec (row order), where
        members differ in their activation (else every member uses `spec`'s)."""
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
        self.member_specs = list(member_specs) if member_specs is not None else [spec] * len(models)
        self.act, self.act_split = member_activation(self.member_specs, self.device)
        self._act_modules = [[block.act for block in m.blocks] for m in models]

        self.residual_flags = [[bool(m.blocks[k].residual) for m in models] for k in range(len(template.blocks))]
        """[block][member]: whether the member's block is residual (the skip has no parameters)."""
        self.norms: list[StackedNorm | None] = [
            None if isinstance(block.norm, nn.Identity) else StackedNorm([m.blocks[k].norm for m in models]).to(
                self.device)
            for k, block in enumerate(template.blocks)
        ]
        self.dropout: MemberDropout | None = None
        """Each member's dropout (set by the trainer when a member has any); None: no dropout."""
        self._views()

    @property
    def activations(self) -> list[str]:
        """Each member's activation name (row order)."""
        return [ms.activation for ms in self.member_specs]

    def _views(self) -> None:
        """The per-layer views of the parameter rows (autograd leaves, gradients in ``grads``)."""
        M = self.n_members
        views: list[Tensor] = []
        offset = 0
        for p in self.template.parameters():
            n = p.numel()
            view = self.params[:, offset : offset + n].view(M, *p.shape)
            view.requires_grad_(True)
            view.grad = self.grads[:, offset : offset + n].view(M, *p.shape)
            views.append(view)
            offset += n
        self.views = views
        self._offsets = [0]
        for v in views:
            self._offsets.append(self._offsets[-1] + v[0].numel())
        self._grad_buffers: dict[int, list[Tensor]] = {}
        self.weights = [v for v in views if v.ndim > 2]
        # (weight, bias, residual) per hidden block, then the head; the blocks' norms beside them.
        # residual: True / False when every member's block is / is not residual, else an (M, 1, 1)
        # mask of 1s and 0s (members differ only there: the skip adds nothing to parameters)
        self.blocks: list[tuple[Tensor, Tensor, Residual]] = []
        it = iter(views)
        for flags, norm in zip(self.residual_flags, self.norms, strict=True):
            w, b = next(it), next(it)
            residual: Residual = flags[0] if len(set(flags)) == 1 else torch.tensor(
                flags, dtype=self.params.dtype, device=self.device).view(M, 1, 1)
            self.blocks.append((w, b, residual))
            if norm is not None:  # the solo parameter order: linear weight and bias, then the norm's gain and shift
                norm.weight, norm.bias = next(it), next(it)
        self.head = (next(it), next(it))

    @torch.no_grad()
    def keep(self, rows: Sequence[int]) -> None:
        """Shrink the stack to the members `rows` (ascending), which become rows 0, 1, ...: the
        members that finished stop costing FLOPs. Parameters, norms' statistics, dropout streams
        and per-member settings move along; gradients start at zero (the next step fills them)."""
        index = torch.tensor(list(rows), dtype=torch.long, device=self.device)
        self.params = self.params.index_select(0, index)
        self.grads = torch.zeros_like(self.params)
        self.n_members = len(rows)
        self.member_specs = [self.member_specs[r] for r in rows]
        self.act, self.act_split = member_activation(self.member_specs, self.device)
        self._act_modules = [self._act_modules[r] for r in rows]
        self.residual_flags = [[flags[r] for r in rows] for flags in self.residual_flags]
        for norm in self.norms:
            if norm is not None:
                norm.keep(index)
        if self.dropout is not None:
            self.dropout.keep(rows)
        self._views()

    # -- forward ----------------------------------------------------------------------------

    def _linear(self, h: Tensor, w: Tensor, b: Tensor) -> Tensor:
        if h.dim() == 2:  # the same inputs for every member
            h = h.expand(self.n_members, *h.shape)
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    def pre_activation(self, k: int, h: Tensor, train: bool, weight_mask: Tensor | None = None) -> Tensor:
        """Hidden block `k`'s input to its activation: linear layer (its weights times
        `weight_mask`, DropConnect's, when given), then the block's norm if it has one."""
        w, b, _ = self.blocks[k]
        z = self._linear(h, w if weight_mask is None else w * weight_mask, b)
        norm = self.norms[k]
        return z if norm is None else norm(z, train)

    def weight_mask(self, k: int, train: bool) -> Tensor | None:
        """The next DropConnect masks of hidden block `k`'s weights (None: no DropConnect now)."""
        drop = self.dropout
        if not train or drop is None or not drop.any_weight:
            return None
        return drop.masks(self.blocks[k][0], drop.weight_p)

    def __call__(self, x: Tensor, train: bool = False) -> Tensor:
        """``(B, *input_shape)`` shared or ``(M, B, *input_shape)`` per member → ``(M, B, n_out)``.

        `train`: a training forward pass, which draws the members' dropout and DropConnect masks
        (``dropout``) and normalizes with batch statistics (updating BatchNorm's running ones)."""
        shared = x.dim() == 1 + len(self.template.input_shape)
        h = x.flatten(1) if shared else x.flatten(2)
        drop = self.dropout if train else None
        if drop is not None and drop.any_input:
            h = drop(h, drop.input_p)
        for k, (_, _, residual) in enumerate(self.blocks):
            out = self.act(self.pre_activation(k, h, train, self.weight_mask(k, train)))
            if drop is not None and drop.any_hidden:
                out = drop(out, drop.hidden_p)
            h = self.skip(h, out, residual)
        return self._linear(h, *self.head)

    def skip(self, h: Tensor, out: Tensor, residual: Residual) -> Tensor:
        """A block's output `out` plus its input `h` where the block is residual."""
        if residual is False:
            return out
        h = h if h.dim() == 3 else h.expand(self.n_members, *h.shape)
        return h + out if residual is True else torch.addcmul(out, h, residual)

    def capture(self, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """The forward pass's activation inputs and outputs per hidden block, ``(M, B, units)`` each
        (what ``layer_health`` hooks on a solo model's ``block.act``)."""
        shared = x.dim() == 1 + len(self.template.input_shape)
        h = x.flatten(1) if shared else x.flatten(2)
        pre, post = [], []
        for k, (_, _, residual) in enumerate(self.blocks):
            z = self.pre_activation(k, h, train=False)
            out = self.act(z)
            pre.append(z)
            post.append(out)
            h = self.skip(h, out, residual)
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
        for k, (norm, flags, block) in enumerate(zip(self.norms, self.residual_flags, model.blocks, strict=True)):
            if norm is not None:
                norm.load_member(m, block.norm)
            # the shadow model may have been built as another member: its skips and activations
            block.residual = flags[m]
            block.act = self._act_modules[m][k]
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
    def member_state(self, m: int) -> list[Tensor]:
        """A copy of member `m`'s state: its parameter row, then its norms' running statistics."""
        state = [self.params[m].clone()]
        for norm in self.norms:
            if norm is not None:
                state += norm.member_state(m)
        return state

    @torch.no_grad()
    def load_member_state(self, m: int, state: Sequence[Tensor]) -> None:
        """Put back what ``member_state(m)`` copied."""
        self.params[m].copy_(state[0])
        k = 1
        for norm in self.norms:
            if norm is not None:
                k += norm.load_member_state(m, state[k:])

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
