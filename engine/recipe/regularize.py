"""Regularizers the loop applies around each step: penalties, gradient clipping, EMA, mixup.

Everything works on any device and reads nothing back to the host in the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def penalty(model: nn.Module, l1: float, l2: float) -> Tensor | None:
    """``l1 * sum|w| + (l2 / 2) * sum w**2`` over the weights (parameters with ndim > 1).

    Biases and normalization gains (1-D) are left out, as are frozen parameters. None when both
    coefficients are zero or the model has no weights, so an unused penalty costs nothing.
    """
    if l1 == 0 and l2 == 0:
        return None
    # frozen = an nn.Parameter that does not require grad; plain tensors (a batched member's rows
    # of the stacked weights, read for reporting) count as weights
    weights = [p for p in model.parameters() if p.ndim > 1 and (p.requires_grad or not isinstance(p, nn.Parameter))]
    if not weights:
        return None
    total: Tensor | None = None
    if l1 != 0:
        total = l1 * torch.stack([w.abs().sum() for w in weights]).sum()
    if l2 != 0:
        sq = (l2 / 2) * torch.stack([w.pow(2).sum() for w in weights]).sum()
        total = sq if total is None else total + sq
    return total


def clip_gradients(
    params: Iterable[Tensor], clip_norm: float | None, clip_value: float | None
) -> Tensor | None:
    """Clip gradients in place: by value first (each entry to ±clip_value), then by total L2 norm.

    Returns the total gradient norm measured before norm clipping (after any value clipping), as a
    0-d tensor on the gradients' device (no host sync), or None when norm clipping is off.
    """
    params = [p for p in params if p.grad is not None]
    if clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, clip_value)
    if clip_norm is not None:
        return torch.nn.utils.clip_grad_norm_(params, clip_norm)
    return None


class EMA:
    """Exponential moving average of a model's parameters: ``a <- decay * a + (1 - decay) * w``.

    The average starts at the weights given to the constructor; buffers (BatchNorm statistics)
    are copied, not averaged. Parameters are matched by position in ``model.parameters()``.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        with torch.no_grad():
            self.params = [p.detach().clone() for p in model.parameters()]
            self.buffers = [b.detach().clone() for b in model.buffers()]
        self.n_updates = 0

    def _check(self, model: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
        params = [p.detach() for p in model.parameters()]
        buffers = [b.detach() for b in model.buffers()]
        if len(params) != len(self.params) or len(buffers) != len(self.buffers):
            raise ValueError("EMA was built for a model with a different set of parameters")
        return params, buffers

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average toward `model`'s current weights (foreach ops, no host sync)."""
        params, buffers = self._check(model)
        if params:
            torch._foreach_mul_(self.params, self.decay)
            torch._foreach_add_(self.params, params, alpha=1.0 - self.decay)
        for own, b in zip(self.buffers, buffers, strict=True):
            own.copy_(b)
        self.n_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights (and the copied buffers) into `model`, for good."""
        params, buffers = self._check(model)
        for p, a in zip(params, self.params, strict=True):
            p.copy_(a)
        for b, a in zip(buffers, self.buffers, strict=True):
            b.copy_(a)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily load the averaged weights into `model` (for evaluation); restore on exit."""
        params, buffers = self._check(model)
        with torch.no_grad():
            saved_p = [p.clone() for p in params]
            saved_b = [b.clone() for b in buffers]
            self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, s in zip(params, saved_p, strict=True):
                    p.copy_(s)
                for b, s in zip(buffers, saved_b, strict=True):
                    b.copy_(s)

    def state_dict(self) -> dict[str, Any]:
        return {
            "decay": self.decay,
            "params": self.params,
            "buffers": self.buffers,
            "n_updates": self.n_updates,
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = float(state["decay"])
        for own, a in zip(self.params, state["params"], strict=True):
            own.copy_(a)
        for own, a in zip(self.buffers, state["buffers"], strict=True):
            own.copy_(a)
        self.n_updates = int(state["n_updates"])


def _log_gamma_sample(shape: float, n: int, generator: torch.Generator, candidates: int = 16) -> Tensor:
    """log of n Gamma(shape, 1) draws from `generator`, on its device, without a host sync.

    Marsaglia-Tsang with a fixed number of candidates per draw (each accepted with probability
    > 0.95, so all failing is ~1e-21; the first candidate is then used). For shape < 1 the
    boost ``G(a) = G(a + 1) * U ** (1 / a)`` is taken in log space, so tiny shapes do not underflow.
    """
    device, dtype = generator.device, torch.float64
    a = shape + 1.0 if shape < 1.0 else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    z = torch.randn(n, candidates, generator=generator, device=device, dtype=dtype)
    u = torch.rand(n, candidates, generator=generator, device=device, dtype=dtype)
    v = (1.0 + c * z).pow(3)
    log_v = v.clamp_min(1e-300).log()
    ok = (v > 0) & (u.clamp_min(1e-300).log() < 0.5 * z * z + d - d * v + d * log_v)
    first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)
    log_g = math.log(d) + log_v.gather(1, first).squeeze(1)
    if shape < 1.0:
        u2 = torch.rand(n, generator=generator, device=device, dtype=dtype)
        log_g = log_g + u2.clamp_min(1e-300).log() / shape
    return log_g


def sample_mixup_lambda(alpha: float, generator: torch.Generator) -> Tensor:
    """One λ ~ Beta(α, α), folded to ``max(λ, 1 - λ)``, as a 0-d float64 tensor on the generator's device."""
    log_g = _log_gamma_sample(alpha, 2, generator)
    lam = torch.sigmoid(log_g[0] - log_g[1])  # G1 / (G1 + G2)
    return torch.maximum(lam, 1.0 - lam)


def mixup(
    x: Tensor, y: Tensor, alpha: float, n_classes: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Mix each sample with a partner from a random permutation of the batch.

    ``x' = λ x + (1 - λ) x[perm]`` and the same for the targets, with one λ per batch drawn from
    Beta(α, α) and folded to ``max(λ, 1 - λ)`` (the same mixing, as Beta(α, α) is symmetric, but
    the sample at each index keeps the larger weight; so α → 0 gives the batch back unmixed).
    λ and the permutation come from `generator` (pass one on x's device to keep all on device).

    Integer `y` (class ids) becomes soft targets ``(N, n_classes)`` whose rows sum to 1; float `y`
    (soft targets or regression targets) is mixed as it is. ``alpha <= 0`` turns mixing off
    (class ids still come back as one-hot rows).
    """
    if y.is_floating_point():
        targets = y
    else:
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        targets = F.one_hot(y.long(), n_classes).to(dtype)
    if alpha <= 0:
        return x, targets
    lam_t = sample_mixup_lambda(alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator, device=generator.device)
    perm = perm.to(x.device, non_blocking=True)
    lam: float | Tensor
    if lam_t.device.type == "cpu":
        lam = float(lam_t)  # a CPU scalar: no device sync
    else:
        lam = lam_t.to(x.device, non_blocking=True)  # 0-d: does not change the result dtype
    return x * lam + x[perm] * (1 - lam), targets * lam + targets[perm] * (1 - lam)
