"""What the surface view draws: each run's path over its 2-D function, and the function's level sets.

Pure data (no Textual, no torch): the paths come from a comparison's runs (``x``, ``y``, ``loss``,
``dist_to_min`` of their EvalMetrics), the level sets from :meth:`SurfaceFunction.value_at` on a
grid the size of the canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from engine.surfaces.functions import SurfaceFunction, get_surface


@dataclass
class SurfacePath:
    """One run's path: where it went and where it stands."""

    label: str
    """The run's title (the variant, with " s<seed>" when the comparison has several seeds)."""
    variant: str
    color: int
    """Index into the series colours (one per variant)."""
    function: str
    kappa: float = 50.0
    seed: int = 0
    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    loss: float | None = None
    dist: float | None = None
    status: str = "pending"

    @property
    def key(self) -> tuple[str, float]:
        return (self.function, self.kappa)

    @property
    def step(self) -> int:
        return self.steps[-1] if self.steps else 0


def surface_key(spec: Any) -> tuple[str, float] | None:
    """(function name, κ) of a RunSpec on a surface, else None."""
    data = getattr(getattr(spec, "recipe", None), "data", None)
    if data is None or getattr(data, "name", None) != "surface" or data.surface is None:
        return None
    return data.surface, float(data.kappa if data.surface == "quadratic" else 50.0)


def function_of(key: tuple[str, float]) -> SurfaceFunction:
    name, kappa = key
    return get_surface(name, kappa if name == "quadratic" else None)


def _spec_for(comparison: Any, run: Any) -> Any:
    specs = list(getattr(comparison, "specs", []))
    if len(specs) == len(comparison.runs) and specs[run.index].variant == run.variant:
        return specs[run.index]
    return next((s for s in specs if s.variant == run.variant and s.seed == run.seed), None)


def paths_from_comparison(comparison: Any) -> list[SurfacePath]:
    """A SurfacePath for every run of `comparison` that trains a point on a surface."""
    out = []
    for run in comparison.runs:
        key = surface_key(_spec_for(comparison, run))
        if key is None:
            continue
        path = SurfacePath(comparison.run_title(run), run.label, comparison.color_of(run), key[0], key[1], run.seed,
                           status=run.status)
        for step, metrics in zip(run.evals["step"], run.eval_metrics, strict=False):
            x, y = metrics.get("x"), metrics.get("y")
            if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
                continue
            path.xs.append(x)
            path.ys.append(y)
            path.steps.append(int(step))
            path.loss, path.dist = metrics.get("loss"), metrics.get("dist_to_min")
        out.append(path)
    return out


def surfaces_in(paths: list[SurfacePath]) -> list[tuple[str, float]]:
    """The distinct (function, κ) of the paths, in first-seen order."""
    seen: list[tuple[str, float]] = []
    for p in paths:
        if p.key not in seen:
            seen.append(p.key)
    return seen


@lru_cache(maxsize=32)
def level_sets(key: tuple[str, float], cols: int, rows: int, n_levels: int = 9) -> tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]:
    """Level sets of the function over its window as points, one (xs, ys) per level.

    f is sampled at the centre of each cell of a `cols` × `rows` grid; levels are evenly spaced in
    log(f − min f + δ) (so valleys and bumps get lines, not just the steep walls); a cell is on
    level k's line when a right or lower neighbour falls in another band.
    """
    fn = function_of(key)
    cols, rows = max(cols, 4), max(rows, 4)
    (x0, x1), (y0, y1) = fn.xlim, fn.ylim
    dx, dy = (x1 - x0) / cols, (y1 - y0) / rows
    xs = [x0 + (i + 0.5) * dx for i in range(cols)]
    ys = [y0 + (j + 0.5) * dy for j in range(rows)]
    grid = [[fn.value_at(x, y) for x in xs] for y in ys]
    flat = [v for row in grid for v in row if math.isfinite(v)]
    if not flat:
        return ()
    lo, hi = min(flat), max(flat)
    delta = max((hi - lo) * 1e-4, 1e-12)
    top = math.log(hi - lo + delta)
    bottom = math.log(delta)
    width = (top - bottom) / n_levels

    def band(v: float) -> int:
        if not math.isfinite(v):
            return n_levels - 1
        return min(n_levels - 1, max(0, int((math.log(v - lo + delta) - bottom) / width)))

    bands = [[band(v) for v in row] for row in grid]
    points: list[tuple[list[float], list[float]]] = [([], []) for _ in range(n_levels)]
    for j in range(rows):
        for i in range(cols):
            b = bands[j][i]
            right = bands[j][i + 1] if i + 1 < cols else b
            down = bands[j + 1][i] if j + 1 < rows else b
            if right != b or down != b:
                k = max(b, right, down)
                points[k][0].append(xs[i])
                points[k][1].append(ys[j])
    return tuple((tuple(px), tuple(py)) for px, py in points)
