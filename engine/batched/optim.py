"""torch.optim's update rules for stacked members, each with its own hyperparameters.

The parameters of M members are the rows of one ``(M, P)`` tensor (see
:mod:`engine.batched.stacked`). Members are ordered so that each update rule owns a contiguous
block of rows; a rule updates its block with a few whole-block tensor operations, whatever the
number of layers. The arithmetic is PyTorch's (``torch.optim``'s single-tensor code paths,
written out in :mod:`engine.recipe.optim_math`): heavy-ball momentum as ``v = μv + (1 − d)g`` starting
from ``v = g``, Nesterov's look-ahead ``g + μv``, Adam's bias corrections, AdaGrad's
``lr / (1 + (t − 1)·lr_decay)``, RMSProp's optional momentum, coupled weight decay for all but
AdamW.

A hyperparameter shared by every member of a block is a Python float (the exact operation
``torch.optim`` runs); one that differs is an ``(m, 1)`` column broadcast over the block.
Learning rates per step come from each member's :class:`engine.recipe.schedules.LRSchedule`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from engine.recipe.config import TrainSpec
from engine.recipe.schedules import LRSchedule

Scalar = float | Tensor


def rule_of(spec: TrainSpec) -> str:
    """The update-rule block a member belongs to (AdamW shares Adam's block: only its decay differs)."""
    name = spec.optimizer
    if name in ("adam", "adamw"):
        return "amsgrad" if spec.amsgrad else "adam"
    if name == "rmsprop":
        return "rmsprop_momentum" if spec.rmsprop_momentum > 0 else "rmsprop"
    return name


RULE_ORDER = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_momentum", "adam", "amsgrad")


@dataclass
class _Block:
    rule: str
    rows: slice
    specs: list[TrainSpec]
    device: torch.device
    dtype: torch.dtype
    state: dict[str, Tensor] = field(default_factory=dict)

    def col(self, values: Sequence[float]) -> Scalar:
        """A Python float when every member has the same value, else an ``(m, 1)`` column."""
        if all(v == values[0] for v in values):
            return float(values[0])
        return torch.tensor(values, dtype=self.dtype, device=self.device).unsqueeze(1)

    def __post_init__(self) -> None:
        s = self.specs
        self.coupled_wd = self.col([t.weight_decay if t.optimizer != "adamw" else 0.0 for t in s])
        self.decoupled_wd = self.col([t.weight_decay if t.optimizer == "adamw" else 0.0 for t in s])
        self.momentum = self.col([t.momentum for t in s])
        self.dampening = self.col([t.dampening for t in s])
        self.beta1 = self.col([t.beta1 for t in s])
        self.beta2 = self.col([t.beta2 for t in s])
        self.alpha = self.col([t.alpha for t in s])
        self.eps = self.col([t.eps for t in s])
        self.rms_momentum = self.col([t.rmsprop_momentum for t in s])
        self.lr_decay = self.col([t.adagrad_lr_decay for t in s])
        if self.device.type != "mps":  # bias corrections 1 − β^t in float64 where the device has it
            if isinstance(self.beta1, Tensor):
                self.beta1 = self.beta1.double()
            if isinstance(self.beta2, Tensor):
                self.beta2 = self.beta2.double()


def _nonzero(x: Scalar) -> bool:
    return not (isinstance(x, float) and x == 0.0)


def _sub_scaled(p: Tensor, x: Tensor, lr: Scalar) -> None:
    """``p -= lr * x`` (``p.add_(x, alpha=-lr)`` when lr is one number)."""
    if isinstance(lr, float):
        p.add_(x, alpha=-lr)
    else:
        p.sub_(x * lr)


class StackedOptimizer:
    """Update rules for blocks of member rows of ``params`` from the gradients in ``grads``."""

    def __init__(self, params: Tensor, grads: Tensor, specs: Sequence[TrainSpec],
                 schedules: Sequence[LRSchedule], *, device_step: bool = False) -> None:
        """`device_step`: keep the step count and the learning rates on the device (no Python
        number that changes from step to step), so the update can be captured in a CUDA graph."""
        if len(specs) != params.shape[0] or len(schedules) != len(specs):
            raise ValueError(f"{params.shape[0]} rows, {len(specs)} specs, {len(schedules)} schedules")
        self.params, self.grads = params, grads
        self.specs = list(specs)
        self.schedules = list(schedules)
        self.device_step = device_step
        self.steps_taken = 0
        self.t: int | Tensor = torch.zeros((), dtype=torch.float32, device=params.device) if device_step else 0
        self.step_index = torch.zeros(1, dtype=torch.long, device=params.device)
        self.blocks: list[_Block] = []
        start = 0
        rules = [rule_of(t) for t in specs]
        for i in range(1, len(rules) + 1):
            if i == len(rules) or rules[i] != rules[start]:
                self.blocks.append(_Block(rules[start], slice(start, i), self.specs[start:i],
                                          params.device, params.dtype))
                start = i
        seen = [b.rule for b in self.blocks]
        if len(set(seen)) != len(seen):
            raise ValueError(f"members must be ordered by update rule (blocks: {seen})")
        self._lr_table: dict[int, Tensor] = {}
        self._uniform_lr: dict[int, bool] = {}
        for k, block in enumerate(self.blocks):
            members = self.schedules[block.rows]
            self._uniform_lr[k] = not device_step and all(
                s.kind != "plateau" and _lr_fields(s.spec) == _lr_fields(members[0].spec) for s in members
            )
            if not self._uniform_lr[k]:
                total = members[0].total_steps
                rows = [[s.lr_at(step) for step in range(total)] for s in members]
                self._lr_table[k] = torch.tensor(rows, dtype=params.dtype, device=params.device)

    def refresh_lr(self, member: int, from_step: int) -> None:
        """Rewrite a member's LR row from ``from_step`` on (after its plateau schedule cut the rate)."""
        for k, block in enumerate(self.blocks):
            if block.rows.start <= member < block.rows.stop and k in self._lr_table:
                sched = self.schedules[member]
                tail = [sched.lr_at(s) for s in range(from_step, sched.total_steps)]
                if tail:
                    row = torch.tensor(tail, dtype=self.params.dtype, device=self.params.device)
                    self._lr_table[k][member - block.rows.start, from_step:] = row

    def _lr(self, k: int, step: int) -> Scalar:
        if self._uniform_lr[k]:
            return self.schedules[self.blocks[k].rows.start].lr_at(step)
        if self.device_step:
            return self._lr_table[k].index_select(1, self.step_index)
        return self._lr_table[k][:, step : step + 1]

    @torch.no_grad()
    def step(self, step: int) -> None:
        """One update of every member; `step` is the 0-based step whose learning rate applies
        (with `device_step`, the device's own step counter is used instead)."""
        self.steps_taken += 1
        if self.device_step:
            self.t.add_(1)  # type: ignore[union-attr]
        else:
            self.t += 1  # type: ignore[operator]
        for k, block in enumerate(self.blocks):
            p, g = self.params[block.rows], self.grads[block.rows]
            getattr(self, f"_{block.rule}")(block, p, g, self._lr(k, step))
        if self.device_step:
            self.step_index.add_(1)

    @torch.no_grad()
    def kept(self, rows: Sequence[int], params: Tensor, grads: Tensor) -> StackedOptimizer:
        """This optimizer for the members `rows` only (ascending; see ``StackedMLP.keep``), on their
        new `params` and `grads`: each keeps its state, step count and learning-rate schedule."""
        new = StackedOptimizer(params, grads, [self.specs[r] for r in rows], [self.schedules[r] for r in rows],
                               device_step=self.device_step)
        new.steps_taken, new.t = self.steps_taken, self.t
        new.step_index.copy_(self.step_index)
        for block in new.blocks:
            old = next(b for b in self.blocks if b.rule == block.rule)
            mine = [r - old.rows.start for r in rows if old.rows.start <= r < old.rows.stop]
            index = torch.tensor(mine, dtype=torch.long, device=params.device)
            block.state = {k: v.index_select(0, index) for k, v in old.state.items()}
        return new

    @torch.no_grad()
    def reset_rows(self, member: int) -> None:
        """Zero a finished member's optimizer state (its row no longer trains)."""
        for block in self.blocks:
            if block.rows.start <= member < block.rows.stop:
                for buf in block.state.values():
                    buf[member - block.rows.start].zero_()

    # -- the rules ----------------------------------------------------------------------------

    def _decayed(self, b: _Block, p: Tensor, g: Tensor) -> Tensor:
        """``g + wd·p`` (a new tensor; the gradient stays as it is, as in torch.optim)."""
        wd = b.coupled_wd
        if not _nonzero(wd):
            return g
        return g.add(p, alpha=wd) if isinstance(wd, float) else g.addcmul(p, wd)

    def _sgd(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar) -> None:
        _sub_scaled(p, self._decayed(b, p, g), lr)

    def _momentum_buffer(self, b: _Block, d: Tensor, dampening: Scalar) -> Tensor:
        buf = b.state.get("momentum_buffer")
        if buf is None:
            buf = b.state["momentum_buffer"] = d.clone()  # the first step takes the gradient undamped
        else:
            buf.mul_(b.momentum)
            if isinstance(dampening, float):
                buf.add_(d, alpha=1 - dampening)
            else:
                buf.addcmul_(d, 1 - dampening)
        return buf

    def _momentum(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar) -> None:
        buf = self._momentum_buffer(b, self._decayed(b, p, g), b.dampening)
        _sub_scaled(p, buf, lr)

    def _nesterov(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar) -> None:
        d = self._decayed(b, p, g)
        buf = self._momentum_buffer(b, d, 0.0)
        mu = b.momentum
        direction = d.add(buf, alpha=mu) if isinstance(mu, float) else d.addcmul(buf, mu)
        _sub_scaled(p, direction, lr)

    def _adagrad(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar) -> None:
        d = self._decayed(b, p, g)
        total = b.state.get("sum")
        if total is None:
            total = b.state["sum"] = torch.zeros_like(p)
        clr = lr / (1 + (self.t - 1) * b.lr_decay)
        total.addcmul_(d, d, value=1)
        std = total.sqrt().add_(b.eps)
        if isinstance(clr, float):
            p.addcdiv_(d, std, value=-clr)
        else:
            p.sub_(d.div(std).mul_(clr))

    def _rmsprop(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar, with_momentum: bool = False) -> None:
        d = self._decayed(b, p, g)
        sq = b.state.get("square_avg")
        if sq is None:
            sq = b.state["square_avg"] = torch.zeros_like(p)
        alpha = b.alpha
        sq.mul_(alpha)
        if isinstance(alpha, float):
            sq.addcmul_(d, d, value=1 - alpha)
        else:
            sq.add_(d.mul(d).mul_(1 - alpha))
        avg = sq.sqrt().add_(b.eps)
        if with_momentum:
            buf = b.state.get("momentum_buffer")
            if buf is None:
                buf = b.state["momentum_buffer"] = torch.zeros_like(p)
            buf.mul_(b.rms_momentum).addcdiv_(d, avg)
            _sub_scaled(p, buf, lr)
        elif isinstance(lr, float):
            p.addcdiv_(d, avg, value=-lr)
        else:
            p.sub_(d.div(avg).mul_(lr))

    def _rmsprop_momentum(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar) -> None:
        self._rmsprop(b, p, g, lr, with_momentum=True)

    def _adam(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar, amsgrad: bool = False) -> None:
        wd = b.decoupled_wd
        if _nonzero(wd):
            p.mul_(1 - lr * wd)
        d = self._decayed(b, p, g)
        if "exp_avg" not in b.state:
            b.state["exp_avg"] = torch.zeros_like(p)
            b.state["exp_avg_sq"] = torch.zeros_like(p)
            if amsgrad:
                b.state["max_exp_avg_sq"] = torch.zeros_like(p)
        m, v = b.state["exp_avg"], b.state["exp_avg_sq"]
        b1, b2 = b.beta1, b.beta2
        m.lerp_(d, (1 - b1) if isinstance(b1, float) else (1 - b1).to(p.dtype))
        v.mul_(b2 if isinstance(b2, float) else b2.to(p.dtype))
        if isinstance(b2, float):
            v.addcmul_(d, d, value=1 - b2)
        else:
            v.add_(d.mul(d).mul_((1 - b2).to(p.dtype)))
        t = self.t
        bc1 = 1 - b1**t
        bc2_sqrt = (1 - b2**t) ** 0.5
        if amsgrad:
            vmax = b.state["max_exp_avg_sq"]
            torch.maximum(vmax, v, out=vmax)
            v = vmax
        if isinstance(bc2_sqrt, Tensor):
            bc2_sqrt = bc2_sqrt.to(p.dtype)
        denom = (v.sqrt() / bc2_sqrt).add_(b.eps)
        step_size = lr / bc1
        if isinstance(step_size, float):
            p.addcdiv_(m, denom, value=-step_size)
        else:
            p.sub_(m.div(denom).mul_(step_size.to(p.dtype)))

    def _amsgrad(self, b: _Block, p: Tensor, g: Tensor, lr: Scalar) -> None:
        self._adam(b, p, g, lr, amsgrad=True)


def _lr_fields(spec: TrainSpec) -> tuple:
    return (spec.lr, spec.schedule, spec.step_size, spec.gamma, spec.decay, spec.min_lr, spec.warmup_steps)
