"""Many optimizers at once: one tensor of points (paths × dims), per-path hyperparameters.

``PathOptimizer`` is a ``torch.optim.Optimizer``: build it over a parameter of shape ``(P, D)``
(P paths of a D-dimensional point), call ``zero_grad()``, backward (or set ``.grad``), then
``step()``, exactly as with ``torch.optim``. Each row (path) has its own algorithm and
hyperparameters, given as tensors (or lists, or floats) of length P. Every row follows PyTorch's
update rule *and operation order* for its algorithm (see :mod:`engine.recipe.optim_math` for the rules
written out), so a row matches a ``torch.optim`` run on that single point to within rounding
(about 1e-15 in float64; the tests hold it to that).

The rules are merged into one fixed sequence of tensor operations: every row computes the
momentum-style and the Adam-style first moment, and ``torch.where`` keeps the right one, so a
step costs the same few dozen operations whether it moves 1 path or 10,000, and whatever the mix
of algorithms. The per-step constants (Adam's bias corrections, AdaGrad's decayed rate) are
computed on the host in float64 as PyTorch does, in blocks, never read back from the device.

``BatchedSGD``, ``BatchedAdagrad``, ``BatchedRMSprop``, ``BatchedAdam`` and ``BatchedAdamW``
have ``torch.optim``'s signatures and defaults, with tensor hyperparameters allowed.

Not supported (a clear ``ValueError``): RMSProp's momentum or centered form, AMSGrad, Adagrad's
initial accumulator, ``maximize``, changing ``lr`` after construction (schedules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

ALGORITHMS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
_CODE = {name: i for i, name in enumerate(ALGORITHMS)}
CONST_BLOCK = 256
"""Steps of per-path constants computed per host round."""

Scalarish = float | Sequence[float] | Tensor | np.ndarray


def _per_path(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value.detach().cpu() if isinstance(value, Tensor) else value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.reshape(-1)
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} values for {n} paths")
    return arr


class PathOptimizer(torch.optim.Optimizer):
    """One optimizer over a (P, D) parameter whose rows each run their own algorithm.

    ``algorithm``: one name for all rows or a list of P names from :data:`ALGORITHMS`. The other
    hyperparameters are floats or length-P sequences/tensors, with torch.optim's meaning:
    ``momentum`` and ``dampening`` (momentum, nesterov), ``alpha`` (rmsprop), ``betas`` (adam,
    adamw), ``eps``, ``lr_decay`` (adagrad), ``weight_decay`` (coupled, or decoupled for adamw).
    ``clip_norm`` / ``clip_value`` (optional, per row, ``inf`` = off) clip each row's gradient
    inside ``step`` as ``torch.nn.utils.clip_grad_value_`` then ``clip_grad_norm_`` would for
    that row's point alone.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        algorithm: str | Sequence[str] = "sgd",
        *,
        lr: Scalarish = 1e-3,
        momentum: Scalarish = 0.0,
        dampening: Scalarish = 0.0,
        alpha: Scalarish = 0.99,
        betas: tuple[Scalarish, Scalarish] = (0.9, 0.999),
        eps: Scalarish = 1e-8,
        lr_decay: Scalarish = 0.0,
        weight_decay: Scalarish = 0.0,
        clip_norm: Scalarish | None = None,
        clip_value: Scalarish | None = None,
    ) -> None:
        params = list(params)
        if len(params) != 1 or params[0].dim() != 2:
            raise ValueError("PathOptimizer takes exactly one parameter of shape (paths, dims)")
        p = params[0]
        n = p.shape[0]
        names = [algorithm] * n if isinstance(algorithm, str) else list(algorithm)
        if len(names) != n:
            raise ValueError(f"{len(names)} algorithms for {n} paths")
        unknown = sorted({a for a in names if a not in _CODE})
        if unknown:
            raise ValueError(f"unknown algorithm(s) {unknown}; choose from {', '.join(ALGORITHMS)}")
        hp = {
            "lr": _per_path(lr, n, "lr"),
            "momentum": _per_path(momentum, n, "momentum"),
            "dampening": _per_path(dampening, n, "dampening"),
            "alpha": _per_path(alpha, n, "alpha"),
            "beta1": _per_path(betas[0], n, "betas[0]"),
            "beta2": _per_path(betas[1], n, "betas[1]"),
            "eps": _per_path(eps, n, "eps"),
            "lr_decay": _per_path(lr_decay, n, "lr_decay"),
            "weight_decay": _per_path(weight_decay, n, "weight_decay"),
            "clip_norm": _per_path(np.inf if clip_norm is None else clip_norm, n, "clip_norm"),
            "clip_value": _per_path(np.inf if clip_value is None else clip_value, n, "clip_value"),
        }
        codes = np.array([_CODE[a] for a in names])
        nesterov = codes == _CODE["nesterov"]
        if np.any(nesterov & ((hp["momentum"] <= 0) | (hp["dampening"] != 0))):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": hp["lr"]})
        self.algorithms = names
        self._hp = hp
        self._codes = codes
        dev, dt = p.device, p.dtype

        def col(values: np.ndarray | list) -> Tensor:
            return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=dt).to(dev).reshape(n, 1)

        def mask(selected: np.ndarray) -> Tensor:
            return torch.as_tensor(selected).to(dev).reshape(n, 1)

        is_adam = (codes == _CODE["adam"]) | (codes == _CODE["adamw"])
        is_adaptive = is_adam | (codes == _CODE["adagrad"]) | (codes == _CODE["rmsprop"])
        decoupled = codes == _CODE["adamw"]
        uses_buffer = (codes == _CODE["momentum"]) | nesterov
        # which moment formula, which numerator, which denominator each row uses
        self._m_is_adam = mask(is_adam)
        self._num_is_m = mask(is_adam | (uses_buffer & ~nesterov))
        self._nesterov = mask(nesterov)
        self._adaptive = mask(is_adaptive)
        self._mu = col(hp["momentum"])
        self._one_minus_damp = col(1 - hp["dampening"])
        self._lerp_w = col(1 - hp["beta1"])
        # second moment: v*a2 + (b2*g)*g: adagrad (1, 1), rmsprop (alpha, 1-alpha), adam (beta2, 1-beta2)
        a2 = np.where(codes == _CODE["adagrad"], 1.0, np.where(codes == _CODE["rmsprop"], hp["alpha"], hp["beta2"]))
        b2 = np.where(codes == _CODE["adagrad"], 1.0,
                      np.where(codes == _CODE["rmsprop"], 1 - hp["alpha"], 1 - hp["beta2"]))
        self._a2, self._b2 = col(a2), col(b2)
        self._eps = col(hp["eps"])
        self._wd_coupled = col(np.where(decoupled, 0.0, hp["weight_decay"]))
        self._any_coupled = bool(np.any(~decoupled & (hp["weight_decay"] != 0)))
        self._any_decoupled = bool(np.any(decoupled & (hp["weight_decay"] != 0)))
        self._decay_factor = col(np.where(decoupled, 1 - hp["lr"] * hp["weight_decay"], 1.0))
        self._clip_norm = col(hp["clip_norm"])
        self._clip_value = col(hp["clip_value"])
        self._any_clip_norm = bool(np.any(np.isfinite(hp["clip_norm"])))
        self._any_clip_value = bool(np.any(np.isfinite(hp["clip_value"])))
        self._block_start = -1
        self._block: tuple[Tensor, Tensor] | None = None
        # which formulas this batch needs at all (a batch of one algorithm skips the others)
        plain_g = (codes == _CODE["sgd"]) | (codes == _CODE["adagrad"]) | (codes == _CODE["rmsprop"])
        self._flags = {
            "buffer": bool(uses_buffer.any()), "adam": bool(is_adam.any()), "nesterov": bool(nesterov.any()),
            "adaptive": bool(is_adaptive.any()), "sgd_family": bool((~is_adaptive).any()),
            "plain_g": bool(plain_g.any()),
        }

    # -- per-step constants ------------------------------------------------------------------
    def _constants(self, step: int) -> tuple[Tensor, Tensor]:
        """(−step size, √bias_correction2) for every row at the 1-based `step`, each (P, 1)."""
        start = (step - 1) // CONST_BLOCK * CONST_BLOCK + 1
        if self._block is None or start != self._block_start:
            hp, codes = self._hp, self._codes
            steps = np.arange(start, start + CONST_BLOCK, dtype=np.float64)[:, None]
            lr = hp["lr"][None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                adam = lr / (1 - hp["beta1"][None, :] ** steps)
                adagrad = lr / (1 + (steps - 1) * hp["lr_decay"][None, :])
                bc2 = (1 - hp["beta2"][None, :] ** steps) ** 0.5
            is_adam = (codes == _CODE["adam"]) | (codes == _CODE["adamw"])
            size = np.where(is_adam, adam, np.where(codes == _CODE["adagrad"], adagrad, lr))
            bc2 = np.where(is_adam, bc2, 1.0)
            p = self.param_groups[0]["params"][0]
            as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a)).to(p.device, p.dtype)  # noqa: E731
            self._block = (as_t(-size), as_t(bc2))
            self._block_start = start
        i = step - self._block_start
        neg, bc2s = self._block
        return neg[i].unsqueeze(1), bc2s[i].unsqueeze(1)

    # -- the step ------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.update()
        return loss

    @torch.no_grad()
    def update(self) -> None:
        """One step from the gradient in ``.grad`` (``step`` without torch.optim's hooks and closure)."""
        p = self.param_groups[0]["params"][0]
        if p.grad is None:
            return
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["m"] = torch.zeros_like(p)
            state["v"] = torch.zeros_like(p)
        state["step"] += 1
        t = state["step"]
        g = p.grad
        flags = self._flags
        if self._any_clip_value:
            g = torch.maximum(torch.minimum(g, self._clip_value), -self._clip_value)
        if self._any_clip_norm:
            total = torch.linalg.vector_norm(g, dim=1, keepdim=True)
            g = g * (self._clip_norm / (total + 1e-6)).clamp(max=1.0)
        if self._any_decoupled:
            p.mul_(self._decay_factor)
        if self._any_coupled:
            g = g + self._wd_coupled * p
        m, v = state["m"], state["v"]
        # first moment: momentum buffer (torch: g on the first step, then m*mu + (1-d)*g) or Adam's lerp
        if flags["buffer"]:
            m_sgd = g.clone() if t == 1 else m * self._mu + self._one_minus_damp * g
        if flags["adam"]:
            m_adam = torch.lerp(m, g, self._lerp_w)
        if flags["buffer"] and flags["adam"]:
            m = torch.where(self._m_is_adam, m_adam, m_sgd)
        elif flags["buffer"] or flags["adam"]:
            m = m_sgd if flags["buffer"] else m_adam
        state["m"] = m
        neg_size, bc2s = self._constants(t)
        if flags["nesterov"]:
            num = torch.where(self._nesterov, g + self._mu * m, torch.where(self._num_is_m, m, g))
        elif flags["buffer"] or flags["adam"]:
            num = torch.where(self._num_is_m, m, g) if flags["plain_g"] else m
        else:
            num = g
        if flags["adaptive"]:
            # second moment (unused by the SGD family): v*a2 + (b2*g)*g
            v = v * self._a2 + (self._b2 * g) * g
            state["v"] = v
            denom = v.sqrt() / bc2s + self._eps
            if flags["sgd_family"]:
                denom = torch.where(self._adaptive, denom, torch.ones_like(v))
            p.add_((neg_size * num) / denom)
        else:
            p.add_(neg_size * num)


def BatchedSGD(params, lr: Scalarish = 1e-3, momentum: Scalarish = 0.0, dampening: Scalarish = 0.0,
               weight_decay: Scalarish = 0.0, nesterov: bool | Sequence[bool] = False) -> PathOptimizer:
    """``torch.optim.SGD``'s signature over (P, D) points; momentum may differ per row."""
    params = list(params)
    n = params[0].shape[0]
    mom = _per_path(momentum, n, "momentum")
    nest = np.broadcast_to(np.asarray(nesterov, dtype=bool), (n,))
    names = ["nesterov" if nv else ("momentum" if mv != 0 else "sgd") for nv, mv in zip(nest, mom, strict=True)]
    return PathOptimizer(params, names, lr=lr, momentum=mom, dampening=dampening, weight_decay=weight_decay)


def BatchedAdagrad(params, lr: Scalarish = 1e-2, lr_decay: Scalarish = 0.0, weight_decay: Scalarish = 0.0,
                   eps: Scalarish = 1e-10) -> PathOptimizer:
    """``torch.optim.Adagrad``'s signature (and defaults) over (P, D) points."""
    return PathOptimizer(params, "adagrad", lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)


def BatchedRMSprop(params, lr: Scalarish = 1e-2, alpha: Scalarish = 0.99, eps: Scalarish = 1e-8,
                   weight_decay: Scalarish = 0.0) -> PathOptimizer:
    """``torch.optim.RMSprop``'s signature (and defaults, without momentum) over (P, D) points."""
    return PathOptimizer(params, "rmsprop", lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay)


def BatchedAdam(params, lr: Scalarish = 1e-3, betas=(0.9, 0.999), eps: Scalarish = 1e-8,
                weight_decay: Scalarish = 0.0) -> PathOptimizer:
    """``torch.optim.Adam``'s signature (and defaults, without amsgrad) over (P, D) points."""
    return PathOptimizer(params, "adam", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def BatchedAdamW(params, lr: Scalarish = 1e-3, betas=(0.9, 0.999), eps: Scalarish = 1e-8,
                 weight_decay: Scalarish = 1e-2) -> PathOptimizer:
    """``torch.optim.AdamW``'s signature (and defaults, without amsgrad) over (P, D) points."""
    return PathOptimizer(params, "adamw", lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def path_hparams(specs: Sequence[Any]) -> dict[str, Any]:
    """PathOptimizer keywords for a list of TrainSpecs (or dicts of TrainSpec fields), one per row.

    Uses the same vocabulary as :func:`engine.recipe.optim.optimizer_kwargs` (so ``eps`` applies to
    AdaGrad as well). Raises ``ValueError`` for what the batched optimizer cannot do.
    """
    from engine.recipe.config import TrainSpec

    train = [s if isinstance(s, TrainSpec) else TrainSpec(**dict(s)) for s in specs]
    for i, t in enumerate(train):
        problems = []
        if t.optimizer not in _CODE:
            problems.append(f"optimizer {t.optimizer!r}")
        if t.rmsprop_momentum:
            problems.append("rmsprop_momentum")
        if t.amsgrad:
            problems.append("amsgrad")
        if t.schedule != "constant" or t.warmup_steps:
            problems.append(f"schedule {t.schedule!r} / warmup")
        if problems:
            raise ValueError(f"path {i}: the batched path optimizer does not support {', '.join(problems)}")
        if t.optimizer == "nesterov" and (t.momentum <= 0 or t.dampening != 0):
            raise ValueError(f"path {i}: nesterov needs momentum > 0 and dampening = 0")
    return {
        "algorithm": [t.optimizer for t in train],
        "lr": [t.lr for t in train],
        "momentum": [t.momentum for t in train],
        "dampening": [t.dampening if t.optimizer == "momentum" else 0.0 for t in train],
        "alpha": [t.alpha for t in train],
        "betas": ([t.beta1 for t in train], [t.beta2 for t in train]),
        "eps": [t.eps for t in train],
        "lr_decay": [t.adagrad_lr_decay for t in train],
        "weight_decay": [t.weight_decay for t in train],
        "clip_norm": [t.clip_norm if t.clip_norm is not None else np.inf for t in train],
        "clip_value": [t.clip_value if t.clip_value is not None else np.inf for t in train],
    }
