"""Seeded splitting: stratified orderings, fraction counts and the covariate-shift selection.

A *stratified ordering* lists the samples so that every prefix and every contiguous chunk holds
the classes in (nearly) their overall proportions; the train / val / test splits are chunks of it,
and "keep a prefix of the training split" then stays stratified and nested (10% ⊂ 25% ⊂ 100%).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """Independent random streams derived from one data seed."""

    GENERATE = 0
    SPLIT = 1
    SHIFT = 2
    OUTLIERS = 3


def rng_for(seed: int, stream: Stream) -> np.random.Generator:
    """A numpy Generator for one purpose; any Python int seed (negative too) is accepted."""
    return np.random.default_rng([seed % 2**64, int(stream)])


def count(n: int, fraction: float) -> int:
    """round(n * fraction), rounding halves up (not to even), so counts grow with the fraction."""
    return int(np.floor(n * fraction + 0.5))


def stratified_order(y: np.ndarray, rng: np.random.Generator, classification: bool) -> np.ndarray:
    """A random ordering of ``range(len(y))`` whose prefixes keep the class proportions.

    Each sample of class c with random rank r among the n_c samples of its class gets the key
    (r + u) / n_c with u ~ U(0, 1); sorting by key interleaves the classes evenly. Regression
    targets get a plain permutation.
    """
    n = len(y)
    if not classification:
        return rng.permutation(n)
    key = np.empty(n)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        key[idx] = (rng.permutation(len(idx)) + rng.uniform(size=len(idx))) / len(idx)
    return np.argsort(key, kind="stable")


def shift_direction(dim: int) -> np.ndarray:
    """The fixed unit direction of covariate shift: (0.8, 0.6) in 2-D, (1,) in 1-D, the diagonal else."""
    if dim == 2:
        return np.array([0.8, 0.6])
    return np.ones(dim) / np.sqrt(dim)


def shift_sides(x: np.ndarray, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Assign each pool sample to the training side (True) or the test side (False).

    z = (x·d - median) / std over the pool; a sample goes to the training side with probability
    sigmoid(strength * z) and to the test side otherwise, i.e. with sigmoid(-strength * z).
    """
    flat = x.reshape(len(x), -1)
    d = shift_direction(flat.shape[1])
    proj = flat @ d
    center, scale = float(np.median(proj)), float(proj.std()) or 1.0
    z = (proj - center) / scale
    p_train = 0.5 * (1.0 + np.tanh(0.5 * strength * z))  # sigmoid(strength * z), overflow-free
    sides = rng.uniform(size=len(x)) < p_train
    info = {
        "strength": strength,
        "direction": [float(v) for v in d],
        "center": center,
        "scale": scale,
        "rule": "z = (x·direction - center) / scale; train and val drawn with p = sigmoid(strength * z), "
        "test with p = sigmoid(-strength * z); same labelling rule",
    }
    return sides, info
