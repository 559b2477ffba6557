"""Pure functions that turn metric series into what a plot draws: smoothing, log scale,
seed aggregation and downsampling. Every point is kept upstream; these only shape a view of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean


def is_finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def ema(ys: Sequence[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard-style smoothing).

    ``weight`` 0 returns the series unchanged; non-finite values pass through without entering
    the average, so a divergence still shows where it happened.
    """
    if weight <= 0:
        return list(ys)
    out: list[float] = []
    avg, n = 0.0, 0
    for y in ys:
        if not is_finite(y):
            out.append(y)
            continue
        n += 1
        avg = weight * avg + (1 - weight) * y
        out.append(avg / (1 - weight**n))
    return out


def log10_series(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    """(x, log10 y) for the positive, finite points (the rest cannot be drawn on a log scale)."""
    keep = [(x, math.log10(y)) for x, y in zip(xs, ys, strict=True) if is_finite(y) and y > 0]
    return [x for x, _ in keep], [y for _, y in keep]


def finite_points(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    keep = [(x, y) for x, y in zip(xs, ys, strict=True) if is_finite(x) and is_finite(y)]
    return [x for x, _ in keep], [y for _, y in keep]


def downsample_indices(n: int, limit: int) -> list[int]:
    """At most ``limit`` evenly spread indices of ``range(n)``, always with the first and last."""
    if n <= limit or limit < 2:
        return list(range(n))
    return sorted({round(i * (n - 1) / (limit - 1)) for i in range(limit)})


def downsample(xs: Sequence[float], ys: Sequence[float], limit: int) -> tuple[list[float], list[float]]:
    idx = downsample_indices(len(xs), limit)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def aggregate(
    runs: Sequence[tuple[Sequence[int], Sequence[float], Sequence[float]]],
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Mean, min and max over seeds, aligned on the step.

    ``runs`` holds one (steps, xs, ys) per seed. Only steps every seed has reached are kept (the
    mean of a partial set of seeds would jump), x is the mean x there (elapsed time differs by
    seed). Returns (xs, mean, lo, hi).
    """
    if not runs:
        return [], [], [], []
    tables = []
    for steps, xs, ys in runs:
        tables.append({s: (x, y) for s, x, y in zip(steps, xs, ys, strict=True)})
    common = sorted(set.intersection(*(set(t) for t in tables)))
    out_x, mean, lo, hi = [], [], [], []
    for s in common:
        points = [t[s] for t in tables]
        values = [y for _, y in points]
        out_x.append(fmean(x for x, _ in points))
        if all(is_finite(v) for v in values):
            mean.append(fmean(values))
            lo.append(min(values))
            hi.append(max(values))
        else:
            mean.append(math.nan)
            lo.append(math.nan)
            hi.append(math.nan)
    return out_x, mean, lo, hi
