"""Optimizer paths over a 2-D surface, many at once, and what to measure on a path.

``run_paths_batched(function, hparams, start, steps)`` moves P points at once (one (P, 2) tensor,
one :class:`~engine.surfaces.optim.PathOptimizer`) and returns every point of every path as a
``(steps + 1, P, 2)`` tensor. ``bench_surface_paths`` times it against the same paths run one by
one with ``torch.optim`` (what ``dllab bench`` reports).

Path measures (pure functions of a path, used as run metrics):

* ``zigzag``: sign flips of consecutive steps along one axis (steps of exactly 0 are skipped);
* ``overshoot``: how far the path crosses to the far side of the target, per axis, measured
  from the target towards where the path started (0 when it never crosses);
* ``steps_to_escape``: the first step at which |coordinate − reference| along an axis exceeds a
  radius (the saddle's descending axis, radius 1), ``inf`` when it never does.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from engine.surfaces.functions import SurfaceFunction, get_surface
from engine.surfaces.optim import PathOptimizer, path_hparams


def _as_function(function: SurfaceFunction | str) -> SurfaceFunction:
    return get_surface(function) if isinstance(function, str) else function


def _starts(start: Any, n: int, dtype: torch.dtype, device: torch.device | str) -> Tensor:
    s = torch.as_tensor(start, dtype=dtype, device=device)
    if s.dim() == 1:
        s = s.expand(n, 2)
    if s.shape != (n, 2):
        raise ValueError(f"start must be (2,) or ({n}, 2), got {tuple(s.shape)}")
    return s.clone()


def make_gradient(function: SurfaceFunction, mode: str = "analytic"):
    """A callable (P, 2) points → (values (P,), gradients (P, 2)), analytic or by autograd."""
    if mode == "analytic":
        return lambda p: (function.value(p), function.grad(p))
    if mode == "autograd":

        def by_autograd(p: Tensor) -> tuple[Tensor, Tensor]:
            with torch.enable_grad():
                q = p.detach().requires_grad_(True)
                f = function.value(q)
                (g,) = torch.autograd.grad(f.sum(), q)
            return f.detach(), g

        return by_autograd
    raise ValueError(f"gradient must be 'analytic' or 'autograd', got {mode!r}")


def run_paths_batched(
    function: SurfaceFunction | str,
    hparams: Sequence[Any],
    start: Any,
    steps: int,
    *,
    gradient: str = "analytic",
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> Tensor:
    """All P paths as one tensor: returns the points, shape ``(steps + 1, P, 2)``.

    `hparams`: one TrainSpec (or dict of TrainSpec fields: ``optimizer``, ``lr``, ``momentum``,
    ``beta1`` …) per path. `start`: one (x, y) for all paths or a (P, 2) array.
    """
    fn = _as_function(function)
    kwargs = path_hparams(hparams)
    p = _starts(start, len(hparams), dtype, device)
    opt = PathOptimizer([p], **kwargs)
    grad = make_gradient(fn, gradient)
    out = torch.empty((steps + 1, *p.shape), dtype=dtype, device=device)
    out[0] = p
    for t in range(steps):
        _, p.grad = grad(p)
        opt.update()
        out[t + 1] = p
    return out


def run_paths_torch(
    function: SurfaceFunction | str,
    hparams: Sequence[Any],
    start: Any,
    steps: int,
    *,
    dtype: torch.dtype = torch.float64,
    foreach: bool | None = None,
) -> Tensor:
    """The reference: each path alone with its ``torch.optim`` optimizer and autograd, one by one."""
    from engine.recipe.config import TrainSpec
    from engine.recipe.optim import optimizer_kwargs

    fn = _as_function(function)
    specs = [h if isinstance(h, TrainSpec) else TrainSpec(**dict(h)) for h in hparams]
    starts = _starts(start, len(specs), dtype, "cpu")
    out = torch.empty((steps + 1, len(specs), 2), dtype=dtype)
    for i, spec in enumerate(specs):
        cls, kw = optimizer_kwargs(spec)
        if foreach is not None:
            kw["foreach"] = foreach
        q = torch.nn.Parameter(starts[i].clone())
        opt = cls([q], **kw)
        out[0, i] = q.detach()
        for t in range(steps):
            opt.zero_grad()
            fn.value(q).backward()
            if spec.clip_value is not None:
                torch.nn.utils.clip_grad_value_([q], spec.clip_value)
            if spec.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_([q], spec.clip_norm)
            opt.step()
            out[t + 1, i] = q.detach()
    return out


def bench_hparams(n_paths: int = 64) -> list[dict[str, Any]]:
    """`n_paths` (optimizer, LR) pairs: six optimizers, each at LRs spread on a log grid."""
    names = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]
    base_lr = {"sgd": 1e-3, "momentum": 1e-4, "nesterov": 1e-4, "adagrad": 1e-1, "rmsprop": 1e-3, "adam": 1e-2}
    per = math.ceil(n_paths / len(names))
    out = []
    for i in range(n_paths):
        name = names[i % len(names)]
        k = i // len(names)
        out.append({"optimizer": name, "lr": base_lr[name] * 10 ** (k / max(per - 1, 1) - 0.5)})
    return out


def bench_surface_paths(
    n_paths: int = 64, steps: int = 1000, function: str = "rosenbrock", gradient: str = "autograd",
    repeats: int = 1,
) -> tuple[float, float]:
    """(batched seconds, sequential seconds) for `n_paths` (optimizer, LR) paths of `steps` steps.

    Batched: one (P, 2) tensor and one PathOptimizer; sequential: each path alone with
    ``torch.optim`` and autograd. Both in float64 on the CPU; the best of `repeats` timings.
    With ``gradient="analytic"`` the batched side uses the closed-form gradient.
    """
    fn = get_surface(function)
    hp = bench_hparams(n_paths)
    start = fn.start

    def best(f) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f()
            times.append(time.perf_counter() - t0)
        return min(times)

    batched = best(lambda: run_paths_batched(fn, hp, start, steps, gradient=gradient))
    sequential = best(lambda: run_paths_torch(fn, hp, start, steps))
    return batched, sequential


# --- measures of one path -------------------------------------------------------------------

def zigzag(path: Tensor, axis: int) -> int:
    """Sign flips between consecutive nonzero steps along `axis`; `path` is (T, 2)."""
    d = path[1:, axis] - path[:-1, axis]
    s = torch.sign(d)
    s = s[(s != 0) & torch.isfinite(d)]
    return int((s[1:] != s[:-1]).sum()) if len(s) > 1 else 0


def overshoot(path: Tensor, target: Sequence[float], axis: int) -> float:
    """How far the path passes beyond `target` along `axis`, away from its start side (≥ 0)."""
    side = float(path[0, axis]) - float(target[axis])
    if side == 0:
        return 0.0
    beyond = -(path[:, axis] - float(target[axis])) * math.copysign(1.0, side)
    beyond = beyond[torch.isfinite(beyond)]
    return max(0.0, float(beyond.max())) if len(beyond) else 0.0


def steps_to_escape(path: Tensor, reference: Sequence[float], axis: int, radius: float = 1.0) -> float:
    """First step at which |x_axis − reference| > radius; ``inf`` when the path never gets there."""
    away = (path[:, axis] - float(reference[axis])).abs() > radius
    hits = torch.nonzero(away)
    return float(hits[0, 0]) if len(hits) else math.inf
