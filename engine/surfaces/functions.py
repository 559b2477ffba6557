"""2-D test functions for optimizer paths, with their gradients and known minima.

Every function takes a tensor ``xy`` of shape ``(..., 2)`` and returns ``f`` of shape ``(...)``;
``grad`` is the analytic gradient (same shape as ``xy``), held equal to autograd by the tests.
Each knows where its global minima are (or, for the saddle, its critical point), a plotting
window, a usual start point and which axis is the steep one (for counting zig-zags).

=============  =========================================================  =====================
name           f(x, y)                                                    global minimum
=============  =========================================================  =====================
rosenbrock     (1 − x)² + 100·(y − x²)²                                   (1, 1), f = 0
rastrigin      20 + x² − 10·cos 2πx + y² − 10·cos 2πy                     (0, 0), f = 0
beale          (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²   (3, 0.5), f = 0
himmelblau     (x² + y − 11)² + (x + y² − 7)²                             four, all f = 0
saddle         x² − y²                                                    none: (0, 0) a saddle
quadratic      ½·(x² + κ·y²), κ = `kappa` (default 50)                     (0, 0), f = 0
cliff          0.05·(x² + y²) + 25·(1 + tanh(50·(x − 2)))                  (0, 0), f ≈ 0
tiny_net       (1 − x·y)²: the 1-1-1 linear net y = w2·w1·x on the single  the curve x·y = 1
               sample (x = 1, ŷ = 1), with (x, y) = (w1, w2)
=============  =========================================================  =====================

The cliff is a gentle bowl with a 50-high step at x = 2; the wall's slope reaches 1250, so one
plain gradient step down it throws the point far away (gradient clipping's textbook case).

Importing this module does not import torch: ``value_at(x, y)`` evaluates one point with Python's
``math`` (the dashboard draws level sets with it); the tensor methods import torch when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

Fn = Callable[..., Any]


@dataclass(frozen=True)
class SurfaceFunction:
    """One test function: value, analytic gradient, minima and how to show it."""

    name: str
    formula: str
    _value: Fn
    _grad: Fn
    minima: tuple[tuple[float, float], ...]
    """Global minima (empty for the saddle, whose `reference` is its critical point)."""
    start: tuple[float, float]
    """The usual start point of the demos."""
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    steep_axis: int = 1
    """0 for x, 1 for y: the axis whose step signs `zigzag` counts."""
    reference: tuple[float, float] | None = None
    """The point distances are measured to when there is no minimum (the saddle's (0, 0))."""
    unbounded: bool = False
    """f goes to −∞: a path that leaves the window has escaped and its run ends there."""
    kappa: float = 50.0
    description: str = ""
    _dist: Fn | None = field(default=None, repr=False)

    def value(self, xy: Tensor) -> Tensor:
        """f at each point of a tensor of shape (..., 2)."""
        import torch

        return self._value(xy[..., 0], xy[..., 1], self.kappa, torch)

    def grad(self, xy: Tensor) -> Tensor:
        """The analytic gradient at each point, shape (..., 2)."""
        return self._grad(xy[..., 0], xy[..., 1], self.kappa)

    def value_at(self, x: float, y: float) -> float:
        """f at one point, in plain Python floats (no torch)."""
        return float(self._value(float(x), float(y), self.kappa, math))

    __call__ = value

    @property
    def targets(self) -> tuple[tuple[float, float], ...]:
        """The points `dist_to_min` measures to: the minima, else the reference point."""
        return self.minima or ((self.reference,) if self.reference else ((0.0, 0.0),))

    def dist_to_min(self, xy: Tensor) -> Tensor:
        """Euclidean distance of each point to the nearest global minimum (shape ``(...)``)."""
        import torch

        if self._dist is not None:
            return self._dist(xy[..., 0], xy[..., 1])
        targets = torch.tensor(self.targets, dtype=xy.dtype, device=xy.device)
        return (xy.unsqueeze(-2) - targets).norm(dim=-1).amin(dim=-1)

    def with_kappa(self, kappa: float | None) -> SurfaceFunction:
        if kappa is None or kappa == self.kappa:
            return self
        from dataclasses import replace

        return replace(self, kappa=float(kappa), formula=self.formula.replace(f"{self.kappa:g}", f"{kappa:g}"))


# --- values and gradients -----------------------------------------------------------------

def _stack(a, b):
    import torch

    return torch.stack((a, b), dim=-1)


def _rosenbrock(x, y, k, m):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _rosenbrock_grad(x, y, k):
    r = y - x * x
    return _stack(-2 * (1 - x) - 400 * x * r, 200 * r)


_TWO_PI = 2 * math.pi


def _rastrigin(x, y, k, m):
    return 20 + x * x - 10 * m.cos(_TWO_PI * x) + y * y - 10 * m.cos(_TWO_PI * y)


def _rastrigin_grad(x, y, k):
    import torch

    return _stack(2 * x + 10 * _TWO_PI * torch.sin(_TWO_PI * x), 2 * y + 10 * _TWO_PI * torch.sin(_TWO_PI * y))


def _beale_terms(x, y):
    return 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y**3


def _beale(x, y, k, m):
    t1, t2, t3 = _beale_terms(x, y)
    return t1 * t1 + t2 * t2 + t3 * t3


def _beale_grad(x, y, k):
    t1, t2, t3 = _beale_terms(x, y)
    gx = 2 * t1 * (y - 1) + 2 * t2 * (y * y - 1) + 2 * t3 * (y**3 - 1)
    gy = 2 * t1 * x + 4 * t2 * x * y + 6 * t3 * x * y * y
    return _stack(gx, gy)


def _himmelblau(x, y, k, m):
    return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2


def _himmelblau_grad(x, y, k):
    a, b = x * x + y - 11, x + y * y - 7
    return _stack(4 * x * a + 2 * b, 2 * a + 4 * y * b)


def _saddle(x, y, k, m):
    return x * x - y * y


def _saddle_grad(x, y, k):
    return _stack(2 * x, -2 * y)


def _quadratic(x, y, k, m):
    return 0.5 * (x * x + k * y * y)


def _quadratic_grad(x, y, k):
    return _stack(x, k * y)


CLIFF_HEIGHT, CLIFF_SHARPNESS, CLIFF_AT = 25.0, 50.0, 2.0


def _cliff(x, y, k, m):
    return 0.05 * (x * x + y * y) + CLIFF_HEIGHT * (1 + m.tanh(CLIFF_SHARPNESS * (x - CLIFF_AT)))


def _cliff_grad(x, y, k):
    import torch

    t = torch.tanh(CLIFF_SHARPNESS * (x - CLIFF_AT))
    return _stack(0.1 * x + CLIFF_HEIGHT * CLIFF_SHARPNESS * (1 - t * t), 0.1 * y)


def _tiny_net(x, y, k, m):
    return (1 - x * y) ** 2


def _tiny_net_grad(x, y, k):
    r = 1 - x * y
    return _stack(-2 * r * y, -2 * r * x)


def _tiny_net_dist(x, y):
    """Distance to the curve x·y = 1, to first order: |1 − xy| / ‖∇(xy)‖ (exact on the curve)."""
    return (1 - x * y).abs() / (x * x + y * y).sqrt().clamp_min(1e-12)


_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.283185991286170),
    (3.584428340330492, -1.848126526964404),
)

SURFACES: dict[str, SurfaceFunction] = {
    s.name: s
    for s in (
        SurfaceFunction("rosenbrock", "(1 − x)² + 100·(y − x²)²", _rosenbrock, _rosenbrock_grad,
                        ((1.0, 1.0),), (-1.5, 2.0), (-2.0, 2.0), (-1.0, 3.0),
                        description="a curved, flat-bottomed valley (the banana)"),
        SurfaceFunction("rastrigin", "20 + x² − 10·cos 2πx + y² − 10·cos 2πy", _rastrigin, _rastrigin_grad,
                        ((0.0, 0.0),), (-4.5, 4.5), (-5.12, 5.12), (-5.12, 5.12),
                        description="a bowl covered in regularly spaced local minima"),
        SurfaceFunction("beale", "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²", _beale, _beale_grad,
                        ((3.0, 0.5),), (1.0, 1.5), (-4.5, 4.5), (-4.5, 4.5),
                        description="flat plateaus and sharp ridges around a single minimum"),
        SurfaceFunction("himmelblau", "(x² + y − 11)² + (x + y² − 7)²", _himmelblau, _himmelblau_grad,
                        _HIMMELBLAU_MINIMA, (0.0, 0.0), (-5.0, 5.0), (-5.0, 5.0),
                        description="four global minima; which one a path finds depends on the start"),
        SurfaceFunction("saddle", "x² − y²", _saddle, _saddle_grad, (), (1.0, 1e-3), (-2.0, 2.0), (-2.0, 2.0),
                        reference=(0.0, 0.0), unbounded=True,
                        description="a saddle at (0, 0): a minimum along x, a maximum along y"),
        SurfaceFunction("quadratic", "½·(x² + 50·y²)", _quadratic, _quadratic_grad,
                        ((0.0, 0.0),), (-5.0, 1.0), (-6.0, 6.0), (-1.5, 1.5),
                        description="an ill-conditioned bowl: curvatures 1 and κ"),
        SurfaceFunction("cliff", "0.05·(x² + y²) + 25·(1 + tanh(50·(x − 2)))", _cliff, _cliff_grad,
                        ((0.0, 0.0),), (4.0, 1.0), (-6.0, 6.0), (-3.0, 3.0), steep_axis=0,
                        description="a gentle bowl with a 50-high step at x = 2 (slope up to 1250)"),
        SurfaceFunction("tiny_net", "(1 − w1·w2)²", _tiny_net, _tiny_net_grad,
                        ((1.0, 1.0), (-1.0, -1.0)), (0.5, 0.25), (-2.0, 2.0), (-2.0, 2.0),
                        description="loss of the 1-1-1 linear net y = w2·w1·x on the sample (1, 1); "
                                    "minima on the curve w1·w2 = 1, a saddle at (0, 0)",
                        _dist=_tiny_net_dist),
    )
}
SURFACE_NAMES: tuple[str, ...] = tuple(SURFACES)


def get_surface(name: str, kappa: float | None = None) -> SurfaceFunction:
    """The function called `name` (with the quadratic's condition number set to `kappa`)."""
    try:
        surface = SURFACES[name]
    except KeyError:
        raise ValueError(f"unknown surface {name!r}; choose one of {', '.join(SURFACES)}") from None
    return surface.with_kappa(kappa)
