"""Critical points of a small loss: where the gradient vanishes, and what kind of point it is.

At a critical point w* (∇L(w*) = 0) the second-order Taylor expansion is
L(w* + v) ≈ L(w*) + ½·vᵀHv, so the Hessian H decides:

* every eigenvalue > 0: a local **minimum**; every eigenvalue < 0: a local **maximum**;
* eigenvalues of both signs: a **saddle**: along an eigenvector u with λ < 0 the loss goes down,
  L(w* + t·u) ≈ L(w*) + ½·λ·t², so a step along u escapes the saddle;
* some eigenvalue ≈ 0 and the others of one sign: **degenerate**: the second-order test cannot
  tell (the point may be a flat minimum, or a saddle of higher order).

The notes' example is the 1-1-1 linear net y = w2·w1·x on one sample (x = 1, ŷ = 1):
L = (1 − w1·w2)². At (0, 0) the gradient is 0 and H = [[0, −2], [−2, 0]], eigenvalues −2 and +2:
a saddle; stepping t = 1 along (1, 1)/√2 lowers the loss from 1 to (1 − ½)² = 0.25. The minima
are the whole curve w1·w2 = 1, where H has eigenvalues 0 (along the curve) and 2·(w1² + w2²)
(4 at (1, 1)): degenerate, though they are minima (L = 0 is the lowest possible value).

``find_critical_points`` minimizes ½‖∇L‖² from many random starts (L-BFGS, float64), polishes
with Newton steps on ∇L = 0, keeps the points whose gradient norm is below a tolerance,
merges near-duplicates and labels each from ``torch.func.hessian``'s eigenvalues.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

LossFn = Callable[[Tensor], Tensor]
"""A loss of one flat parameter vector (shape (n,)) → a scalar tensor."""

EIG_TOL = 1e-6
"""|λ| below this counts as zero (degenerate), relative to max(1, the largest |λ|)."""
GRAD_TOL = 1e-8
"""‖∇L‖ below this counts as a critical point."""


@dataclass(frozen=True)
class CriticalPoint:
    point: tuple[float, ...]
    loss: float
    grad_norm: float
    eigenvalues: tuple[float, ...]
    """Hessian eigenvalues, ascending."""
    kind: str
    """minimum, maximum, saddle or degenerate."""
    detail: str = ""
    escape_direction: tuple[float, ...] | None = None
    """For a saddle: the unit eigenvector of the most negative eigenvalue."""
    count: int = 0
    """How many starts ended here (after merging near-duplicates); 0 for a reference point no start
    reached (and for a point only described)."""
    reference: bool = False
    """A reference point (a known critical point handed to the search), listed whether or not a start
    reached it; `count` still counts only the starts."""


DROP_REASONS = ("non-finite", "not converged")
"""Why a start gives no point: its end point, loss or gradient is NaN / inf; or its ‖∇L‖ stayed above
the tolerance."""


@dataclass(frozen=True)
class CriticalSearch:
    """What one search found: the points, the number of random starts, and the starts dropped by reason."""

    points: list[CriticalPoint]
    n_starts: int
    dropped: dict[str, int] = field(default_factory=dict)
    """reason (one of `DROP_REASONS`) → how many starts; reasons with none are left out."""
    grad_tol: float = GRAD_TOL

    @property
    def n_dropped(self) -> int:
        return sum(self.dropped.values())

    @property
    def n_found(self) -> int:
        """Distinct points that at least one start reached."""
        return sum(1 for p in self.points if p.count > 0)

    @property
    def n_reference_only(self) -> int:
        """Reference points listed though no start reached them."""
        return sum(1 for p in self.points if p.count == 0)

    def summary(self) -> str:
        """'48 starts, 3 dropped: 2 non-finite, 1 not converged (‖∇L‖ > 1e-08)' or '48 starts, none dropped'."""
        head = f"{self.n_starts} start{'s' if self.n_starts != 1 else ''}"
        if not self.n_dropped:
            return f"{head}, none dropped"
        parts = []
        for reason in DROP_REASONS:
            n = self.dropped.get(reason, 0)
            if n:
                parts.append(reason if len(self.dropped) == 1 else f"{n} {reason}")
                if reason == "not converged":
                    parts[-1] += f" (‖∇L‖ > {self.grad_tol:.0e})"
        every = " (all of them)" if self.n_dropped == self.n_starts else ""
        return f"{head}, {self.n_dropped} dropped{every}: {', '.join(parts)}"


# --- the Hessian and the label ----------------------------------------------------------------

def hessian(loss_fn: LossFn, w: Tensor, method: str = "func") -> Tensor:
    """The Hessian of `loss_fn` at `w` (n × n) in w's dtype.

    ``method="func"``: ``torch.func.hessian`` (forward-over-reverse); ``"autograd"``: one
    double-backward pass per row, which avoids torch.func's one-off import cost (seconds) where
    only a 2 × 2 Hessian is needed (the surface trainer). The tests hold the two equal.
    """
    if method == "func":
        with warnings.catch_warnings():  # torch's forward-AD decompositions use torch.jit.script once
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
            return torch.func.hessian(loss_fn)(w.detach())
    if method != "autograd":
        raise ValueError(f"method must be 'func' or 'autograd', got {method!r}")
    with torch.enable_grad():
        q = w.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(q), q, create_graph=True)
        rows = [torch.autograd.grad(g[i], q, retain_graph=True, allow_unused=True)[0] for i in range(len(q))]
    return torch.stack([torch.zeros_like(q) if r is None else r for r in rows]).detach()


def hessian_eigs(loss_fn: LossFn, w: Tensor, method: str = "func") -> tuple[Tensor, Tensor]:
    """(eigenvalues ascending, eigenvectors as columns) of the symmetrized Hessian at `w`."""
    h = hessian(loss_fn, w, method)
    h = 0.5 * (h + h.T)
    return torch.linalg.eigh(h)


def classify(eigenvalues: Tensor | list[float], tol: float = EIG_TOL) -> tuple[str, str]:
    """(kind, detail) from the Hessian's eigenvalues: minimum / maximum / saddle / degenerate."""
    ev = torch.as_tensor(eigenvalues, dtype=torch.float64)
    scale = max(1.0, float(ev.abs().max())) if len(ev) else 1.0
    zero = ev.abs() <= tol * scale
    pos, neg = int(((ev > 0) & ~zero).sum()), int(((ev < 0) & ~zero).sum())
    n_zero = int(zero.sum())
    if pos and neg:
        return "saddle", f"{neg} negative and {pos} positive eigenvalue(s): the loss goes down along the negative ones"
    if n_zero == 0 and pos:
        return "minimum", "every eigenvalue is positive"
    if n_zero == 0 and neg:
        return "maximum", "every eigenvalue is negative"
    if pos:
        return "degenerate", f"{n_zero} eigenvalue(s) ≈ 0, the rest positive: minimum-like, the second-order test cannot tell"
    if neg:
        return "degenerate", f"{n_zero} eigenvalue(s) ≈ 0, the rest negative: maximum-like, the second-order test cannot tell"
    return "degenerate", "every eigenvalue ≈ 0: the second-order test says nothing (look at higher orders)"


def describe_point(loss_fn: LossFn, w: Tensor, tol: float = EIG_TOL) -> CriticalPoint:
    """Loss, gradient norm, Hessian eigenvalues and label of the point `w`."""
    w = w.detach()
    with torch.enable_grad():
        q = w.clone().requires_grad_(True)
        loss = loss_fn(q)
        (g,) = torch.autograd.grad(loss, q)
    ev, vecs = hessian_eigs(loss_fn, w)
    kind, detail = classify(ev, tol)
    escape = None
    if kind == "saddle":
        u = vecs[:, 0]
        u = u if float(u.sum()) >= 0 else -u  # a fixed sign, for stable output
        escape = tuple(float(x) for x in u)
    return CriticalPoint(tuple(float(x) for x in w), float(loss.detach()), float(g.norm()),
                         tuple(float(x) for x in ev), kind, detail, escape)


def negative_curvature_step(loss_fn: LossFn, w: Tensor, length: float = 1.0) -> tuple[Tensor, float, float, Tensor]:
    """Step `length` along the eigenvector of the most negative Hessian eigenvalue at `w`.

    Returns (new point, loss before, loss after, the unit direction). Raises ``ValueError`` when
    the Hessian has no negative eigenvalue (nothing to escape along).
    """
    ev, vecs = hessian_eigs(loss_fn, w)
    if float(ev[0]) >= 0:
        raise ValueError(f"no negative curvature at this point (smallest eigenvalue {float(ev[0]):.3g})")
    u = vecs[:, 0]
    u = u if float(u.sum()) >= 0 else -u
    new = w.detach() + length * u
    return new, float(loss_fn(w.detach())), float(loss_fn(new)), u


# --- finding critical points ------------------------------------------------------------------

def _grad_fn(loss_fn: LossFn) -> Callable[[Tensor], Tensor]:
    return torch.func.grad(loss_fn)


def _descend_grad_norm(loss_fn: LossFn, w0: Tensor, iters: int) -> Tensor:
    """Minimize ½‖∇L(w)‖² from w0 with L-BFGS (Hessian-vector products by double backward)."""
    w = w0.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-20, tolerance_change=1e-24)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = loss_fn(w)
        (g,) = torch.autograd.grad(loss, w, create_graph=True)
        obj = 0.5 * (g * g).sum()
        obj.backward()
        return obj

    with torch.enable_grad():
        opt.step(closure)
    return w.detach()


def _newton_polish(loss_fn: LossFn, w: Tensor, steps: int = 20) -> Tensor:
    """Newton steps on ∇L(w) = 0 with a pseudo-inverse (degenerate Hessians allowed)."""
    grad = _grad_fn(loss_fn)
    for _ in range(steps):
        g = grad(w)
        if not torch.isfinite(g).all() or float(g.norm()) < 1e-15:
            break
        h = hessian(loss_fn, w)
        step = torch.linalg.pinv(0.5 * (h + h.T), hermitian=True, rtol=1e-10) @ g
        if not torch.isfinite(step).all():
            break
        new = w - step
        if float(grad(new).norm()) >= float(g.norm()):
            break
        w = new
    return w


def search_critical_points(
    loss_fn: LossFn,
    dim: int,
    *,
    n_starts: int = 64,
    box: float = 2.0,
    seed: int = 0,
    grad_tol: float = GRAD_TOL,
    merge_tol: float = 1e-3,
    iters: int = 200,
    extra_starts: list[list[float]] | None = None,
    reference_points: list[list[float]] | None = None,
) -> CriticalSearch:
    """Critical points of `loss_fn` found from `n_starts` uniform starts in [−box, box]^dim.

    Each start is driven to ‖∇L‖ ≈ 0 (L-BFGS on ½‖∇L‖², then Newton polishing); points with
    ‖∇L‖ ≤ `grad_tol` are kept, points closer than `merge_tol` merged (their `count` adds up); the
    other starts are counted in `dropped` by reason (non-finite, not converged). `extra_starts` are
    starts too (counted in `n_starts`). `reference_points` are not starts: each one that is a
    critical point is marked `reference` on the found point it coincides with, or listed with
    count 0 when no start reached it. Points are ordered by kind (saddles and maxima first), then
    loss. Found points are a sample: where the critical points form a curve (the minima of
    w1·w2 = 1), each start lands somewhere on it.
    """
    g = torch.Generator().manual_seed(seed)
    starts = (torch.rand(n_starts, dim, generator=g, dtype=torch.float64) * 2 - 1) * box
    if extra_starts:
        starts = torch.cat([torch.tensor(extra_starts, dtype=torch.float64).reshape(-1, dim), starts])
    grad = _grad_fn(loss_fn)
    found: list[tuple[Tensor, int]] = []
    dropped: Counter[str] = Counter()
    for w0 in starts:
        if not torch.isfinite(w0).all():
            dropped["non-finite"] += 1
            continue
        w = _descend_grad_norm(loss_fn, w0, iters)
        w = _newton_polish(loss_fn, w)
        gn = float(grad(w).norm())
        if not math.isfinite(gn) or not torch.isfinite(w).all() or not math.isfinite(float(loss_fn(w))):
            dropped["non-finite"] += 1
            continue
        if gn > grad_tol:
            dropped["not converged"] += 1
            continue
        for i, (other, count) in enumerate(found):
            if float((other - w).norm()) < merge_tol:
                found[i] = (other, count + 1)
                break
        else:
            found.append((w, 1))
    marked = [False] * len(found)
    for ref in reference_points or []:
        r = torch.tensor(ref, dtype=torch.float64).reshape(dim)
        near = [i for i, (other, _) in enumerate(found) if float((other - r).norm()) < merge_tol]
        if near:
            for i in near:
                marked[i] = True
            continue
        gn = float(grad(r).norm())
        if math.isfinite(gn) and gn <= grad_tol:  # a reference point that is not critical is no point of the list
            found.append((r, 0))
            marked.append(True)
    points = []
    for (w, count), ref in zip(found, marked, strict=True):
        cp = describe_point(loss_fn, w)
        points.append(CriticalPoint(cp.point, cp.loss, cp.grad_norm, cp.eigenvalues, cp.kind, cp.detail,
                                    cp.escape_direction, count, ref))
    order = {"saddle": 0, "maximum": 1, "degenerate": 2, "minimum": 3}
    points.sort(key=lambda p: (order[p.kind], p.loss, p.point))
    return CriticalSearch(points, len(starts), {r: dropped[r] for r in DROP_REASONS if r in dropped}, grad_tol)


def find_critical_points(loss_fn: LossFn, dim: int, **kwargs) -> list[CriticalPoint]:
    """The points of `search_critical_points` (same arguments), without the count of dropped starts."""
    return search_critical_points(loss_fn, dim, **kwargs).points


# --- the tiny nets of the notes ---------------------------------------------------------------

@dataclass(frozen=True)
class TinyNet:
    """A small loss of a flat weight vector, with what the notes (or algebra) say about it."""

    name: str
    description: str
    dim: int
    loss: LossFn
    names: tuple[str, ...]
    known: list[tuple[tuple[float, ...], str]] = field(default_factory=list)
    """Reference critical points (point, expected kind) checked by the tests and shown by the tool."""


def _chain2(w: Tensor) -> Tensor:
    return (1 - w[0] * w[1]) ** 2


def _chain3(w: Tensor) -> Tensor:
    return (1 - w[0] * w[1] * w[2]) ** 2


_X2 = torch.tensor([1.0, 2.0], dtype=torch.float64)
_Y2 = torch.tensor([0.5, 0.8], dtype=torch.float64)


def _tanh_121(w: Tensor) -> Tensor:
    """A 1-2-1 tanh net without biases, y = v1·tanh(u1·x) + v2·tanh(u2·x), on two samples."""
    u, v = w[:2], w[2:]
    pred = (v[None, :] * torch.tanh(_X2[:, None].to(w.dtype) * u[None, :])).sum(1)
    return ((pred - _Y2.to(w.dtype)) ** 2).mean()


TINY_NETS: dict[str, TinyNet] = {
    n.name: n
    for n in (
        TinyNet("chain2", "y = w2·w1·x on one sample (x = 1, ŷ = 1): L = (1 − w1·w2)²", 2, _chain2, ("w1", "w2"),
                [((0.0, 0.0), "saddle"), ((1.0, 1.0), "degenerate"), ((-1.0, -1.0), "degenerate")]),
        TinyNet("chain3", "y = w3·w2·w1·x on one sample: L = (1 − w1·w2·w3)²", 3, _chain3, ("w1", "w2", "w3"),
                [((0.0, 0.0, 1.0), "saddle"), ((0.0, 0.0, 0.0), "degenerate"), ((1.0, 1.0, 1.0), "degenerate")]),
        TinyNet("tanh_121", "y = v1·tanh(u1·x) + v2·tanh(u2·x) on the samples (1, 0.5), (2, 0.8): mean squared error",
                4, _tanh_121, ("u1", "u2", "v1", "v2"), [((0.0, 0.0, 0.0, 0.0), "saddle")]),
    )
}
