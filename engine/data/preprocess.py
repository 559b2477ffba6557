"""Input preprocessing fitted on the training split only: centering, scaling, PCA and whitening.

Every method is an affine map of the flattened features, ``(x - offset) / scale`` or
``(x - mean) @ matrix``. Statistics are computed in float64 (in row chunks, so large image sets
need no float64 copy); the projections run in float64 too (float32 on MPS); the result is
float32, reshaped back to the per-sample shape (PCA changes it to ``(k,)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from engine.data.base import DatasetError

METHODS = ("none", "center", "standardize", "minmax", "pca", "pca_whiten", "zca_whiten")
_CHUNK = 8192
_TINY = 1e-12


def _chunks(flat: torch.Tensor, dtype: torch.dtype = torch.float64) -> Iterator[torch.Tensor]:
    for start in range(0, flat.shape[0], _CHUNK):
        yield flat[start : start + _CHUNK].to(dtype)


def _compute_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


class Preprocessor:
    """A fitted feature transform: ``Preprocessor("zca_whiten").fit(x_train).transform(x)``.

    Attributes after ``fit`` (float64, on the CPU): ``mean`` (the training mean, also for minmax:
    there ``offset`` is the minimum), ``offset`` and ``scale`` for center / standardize / minmax,
    ``matrix`` (features × outputs) and ``eigenvalues`` (descending) for PCA / whitening.
    """

    def __init__(self, method: str = "none", n_components: int | None = None, eps: float = 1e-5) -> None:
        if method not in METHODS:
            raise DatasetError(f"unknown preprocessing {method!r}; choose one of {', '.join(METHODS)}")
        if n_components is not None and n_components < 1:
            raise DatasetError(f"pca_components must be positive, got {n_components}")
        if eps <= 0:
            raise DatasetError(f"whiten_eps must be positive, got {eps}")
        self.method = method
        self.n_components = n_components
        self.eps = eps
        self.input_shape: tuple[int, ...] | None = None
        self.n_fit = 0
        self.mean: torch.Tensor | None = None
        self.offset: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None
        self.matrix: torch.Tensor | None = None
        self.eigenvalues: torch.Tensor | None = None
        self.explained_variance = 1.0

    @property
    def fitted(self) -> bool:
        return self.input_shape is not None

    @property
    def n_features(self) -> int:
        assert self.input_shape is not None, "fit first"
        return math.prod(self.input_shape)

    def output_shape(self) -> tuple[int, ...]:
        """Per-sample shape of transformed inputs (``(k,)`` for PCA, the input shape otherwise)."""
        assert self.input_shape is not None, "fit first"
        if self.matrix is not None and self.method in ("pca", "pca_whiten"):
            return (self.matrix.shape[1],)
        return self.input_shape

    def fit(self, x: torch.Tensor) -> Preprocessor:
        """Compute the statistics of ``x`` (N, *shape); returns self."""
        if x.shape[0] < 1:
            raise DatasetError("cannot fit preprocessing on an empty training split")
        self.input_shape = tuple(int(s) for s in x.shape[1:])
        self.n_fit = int(x.shape[0])
        flat = x.detach().flatten(1).cpu()
        dim = flat.shape[1]
        if self.n_components is not None and self.n_components > dim:
            raise DatasetError(f"pca_components={self.n_components} exceeds the {dim} input features")
        if self.method == "none":
            return self
        n = flat.shape[0]
        mean = sum(c.sum(0) for c in _chunks(flat)) / n
        self.mean = mean
        if self.method == "center":
            self.offset, self.scale = mean, torch.ones_like(mean)
        elif self.method == "standardize":
            var = sum(((c - mean) ** 2).sum(0) for c in _chunks(flat)) / n
            std = var.sqrt()
            self.offset, self.scale = mean, torch.where(std > _TINY, std, torch.ones_like(std))
        elif self.method == "minmax":
            lo = torch.stack([c.amin(0) for c in _chunks(flat)]).amin(0)
            hi = torch.stack([c.amax(0) for c in _chunks(flat)]).amax(0)
            span = hi - lo
            self.offset, self.scale = lo, torch.where(span > _TINY, span, torch.ones_like(span))
        else:
            self._fit_eigen(flat, mean)
        return self

    def _fit_eigen(self, flat: torch.Tensor, mean: torch.Tensor) -> None:
        n, dim = flat.shape
        cov = torch.zeros(dim, dim, dtype=torch.float64)
        for c in _chunks(flat):
            c = c - mean
            cov += c.T @ c
        cov /= max(n - 1, 1)
        evals, evecs = torch.linalg.eigh(cov)
        evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
        # a deterministic sign: the largest-magnitude entry of each component is positive
        pivot = evecs.abs().argmax(0)
        signs = torch.sign(evecs[pivot, torch.arange(dim)])
        evecs = evecs * torch.where(signs == 0, torch.ones_like(signs), signs)
        k = self.n_components or dim
        total = float(evals.sum())
        self.explained_variance = float(evals[:k].sum()) / total if total > 0 else 1.0
        self.eigenvalues = evals[:k]
        inv_sqrt = 1.0 / torch.sqrt(evals + self.eps)
        if self.method == "pca":
            self.matrix = evecs[:, :k]
        elif self.method == "pca_whiten":
            self.matrix = evecs[:, :k] * inv_sqrt[:k]
        else:  # zca_whiten keeps every component and rotates back
            self.matrix = (evecs * inv_sqrt) @ evecs.T

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the fitted map to ``x`` (N, *input_shape) on its own device; returns float32."""
        if not self.fitted:
            raise RuntimeError("Preprocessor.transform called before fit")
        assert self.input_shape is not None
        if tuple(x.shape[1:]) != self.input_shape:
            raise DatasetError(f"expected inputs of shape (N, {self.input_shape}), got {tuple(x.shape)}")
        n = x.shape[0]
        if self.method == "none":
            return x.to(torch.float32)
        flat = x.flatten(1).to(torch.float32)
        if self.matrix is None:  # elementwise: float32 is exact enough
            off, scale = self.offset.to(x.device, torch.float32), self.scale.to(x.device, torch.float32)
            return ((flat - off) / scale).reshape(x.shape)
        dtype = _compute_dtype(x.device)
        mean, mat = self.mean.to(x.device, dtype), self.matrix.to(x.device, dtype)
        parts = [((c - mean) @ mat).float() for c in _chunks(flat, dtype)]
        if not parts:  # an empty split (e.g. val_fraction = 0)
            return x.new_zeros((0, *self.output_shape()), dtype=torch.float32)
        return torch.cat(parts).reshape(n, *self.output_shape())

    def fit_transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.fit(x).transform(x)

    def describe(self) -> dict:
        """What was applied, JSON-able (for ``DataSplits.info``)."""
        out: dict = {"method": self.method, "fitted_on": "train", "n_fit": self.n_fit}
        if self.method in ("pca", "pca_whiten"):
            out["n_components"] = self.output_shape()[0] if self.fitted else self.n_components
            out["explained_variance"] = self.explained_variance
        if self.method in ("pca_whiten", "zca_whiten"):
            out["eps"] = self.eps
        return out


@dataclass
class InputPipeline:
    """Raw inputs → model inputs: the feature scaling, then the fitted preprocessing."""

    raw_shape: tuple[int, ...]
    scale_features: float
    preprocessor: Preprocessor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.preprocessor.transform(scale_every_second(x.to(torch.float32), self.scale_features))


def scale_every_second(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Multiply flattened features 1, 3, 5, … by ``factor`` (a new tensor; the input is untouched)."""
    if factor == 1.0:
        return x
    flat = x.flatten(1).clone()
    flat[:, 1::2] *= factor
    return flat.reshape(x.shape)
