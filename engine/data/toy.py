"""Generated sets: 2-D classification toys, 1-D regression with outliers, a random linear teacher.

Every generator is ``make(n, n_classes, noise, n_features, rng) -> (x, y)`` with ``x`` float64 of
shape ``(n, d)``; all randomness comes from the numpy ``Generator`` it is given (sklearn generators
get an integer ``random_state`` drawn from it), so the same seed gives the same arrays.
sklearn is imported inside the generators: importing it is slow and pulls in UI libraries
(``rich``) that the engine must not load just by being imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray]
Maker = Callable[[int, int, float, int, np.random.Generator], Arrays]

DEFAULT_SAMPLES = 1000
OUTLIER_OFFSET = (5.0, 10.0)
"""Gross outliers of `regression_outliers`: the clean target plus Uniform(5, 10) (one-sided)."""


@dataclass(frozen=True)
class ToySet:
    """A generated dataset: how to make it and what its options mean."""

    name: str
    summary: str
    task: str
    make: Maker
    default_noise: float
    noise_meaning: str
    fixed_classes: int | None = None
    """Class count the set always has (None: it takes ``n_classes``, defaulting to default_classes)."""
    default_classes: int = 2


def _state(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def _per_class(n: int, k: int) -> list[int]:
    return [n // k + (1 if c < n % k else 0) for c in range(k)]


def spiral(n: int, k: int, noise: float, n_features: int, rng: np.random.Generator) -> Arrays:
    """``k`` interleaved spiral arms in [-1, 1]^2; noise is the std of the angle jitter (radians)."""
    xs, ys = [], []
    for c, m in enumerate(_per_class(n, k)):
        t = rng.uniform(0.0, 1.0, m)
        theta = 2 * np.pi * c / k + 4.0 * t + noise * rng.standard_normal(m)
        xs.append(np.stack([t * np.cos(theta), t * np.sin(theta)], axis=1))
        ys.append(np.full(m, c))
    return np.concatenate(xs), np.concatenate(ys)


def moons(n: int, k: int, noise: float, n_features: int, rng: np.random.Generator) -> Arrays:
    """sklearn's two interleaving half circles; noise is the std of gaussian jitter."""
    from sklearn.datasets import make_moons

    return make_moons(n_samples=n, noise=noise, random_state=_state(rng))


def circles(n: int, k: int, noise: float, n_features: int, rng: np.random.Generator) -> Arrays:
    """sklearn's two concentric circles (inner radius 0.5); noise is the std of gaussian jitter."""
    from sklearn.datasets import make_circles

    return make_circles(n_samples=n, noise=noise, factor=0.5, random_state=_state(rng))


def xor(n: int, k: int, noise: float, n_features: int, rng: np.random.Generator) -> Arrays:
    """Uniform points in [-1, 1]^2, class 1 where x0 * x1 > 0; noise jitters inputs after labelling."""
    x = rng.uniform(-1.0, 1.0, (n, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return x + noise * rng.standard_normal((n, 2)), y


def blobs(n: int, k: int, noise: float, n_features: int, rng: np.random.Generator) -> Arrays:
    """sklearn's gaussian blobs, one per class; noise is the cluster std."""
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n, centers=k, n_features=2, cluster_std=noise, random_state=_state(rng))
    return x, y


def regression_target(x: np.ndarray) -> np.ndarray:
    """The smooth function behind `regression_outliers`: sin(1.5 x) + 0.3 x."""
    return np.sin(1.5 * x) + 0.3 * x


def regression(n: int, k: int, noise: float, n_features: int, rng: np.random.Generator) -> Arrays:
    """x ~ U(-3, 3), y = sin(1.5 x) + 0.3 x + noise * N(0, 1) (outliers come later, train only)."""
    x = rng.uniform(-3.0, 3.0, (n, 1))
    y = regression_target(x[:, 0]) + noise * rng.standard_normal(n)
    return x, y


def random_teacher(n: int, k: int, noise: float, n_features: int, rng: np.random.Generator) -> Arrays:
    """Gaussian inputs, labels = argmax of a random linear teacher (+ noise * N(0, 1) on its logits)."""
    x = rng.standard_normal((n, n_features))
    w = rng.standard_normal((n_features, k)) / np.sqrt(n_features)
    b = 0.1 * rng.standard_normal(k)
    logits = x @ w + b + noise * rng.standard_normal((n, k))
    return x, logits.argmax(axis=1)


def add_outliers(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replace round(fraction * n) targets by gross outliers; returns the new targets and their mask."""
    n = len(y)
    count = int(np.floor(fraction * n + 0.5))
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=count, replace=False)] = True
    out = y.copy()
    out[mask] = y[mask] + rng.uniform(*OUTLIER_OFFSET, size=count)
    return out, mask


TOY_SETS: dict[str, ToySet] = {
    s.name: s
    for s in (
        ToySet("spiral", "interleaved spiral arms in 2-D", "classification", spiral, 0.2,
               "std of the angle jitter (radians)", default_classes=3),
        ToySet("moons", "two interleaving half circles in 2-D", "classification", moons, 0.1,
               "std of gaussian input jitter", fixed_classes=2),
        ToySet("circles", "two concentric circles in 2-D", "classification", circles, 0.05,
               "std of gaussian input jitter", fixed_classes=2),
        ToySet("xor", "the XOR quadrants in 2-D", "classification", xor, 0.05,
               "std of gaussian input jitter (after labelling)", fixed_classes=2),
        ToySet("blobs", "gaussian blobs in 2-D, one per class", "classification", blobs, 1.0,
               "cluster std", default_classes=3),
        ToySet("regression_outliers", "1-D regression with gross outliers in the training targets",
               "regression", regression, 0.1, "std of the target noise", fixed_classes=0),
        ToySet("random", "gaussian inputs labelled by a random linear teacher", "classification",
               random_teacher, 0.0, "std of noise on the teacher's logits", default_classes=2),
    )
}
