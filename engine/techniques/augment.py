"""Data augmentation: random label-preserving transforms of each training batch, on its device.

Every op transforms a whole batch at once with tensor ops (no per-sample Python loop), drawing
its randomness from one ``torch.Generator`` on the batch's device, so a run's augmentations are
the same for the same seed and no host sync happens in the hot path.

Inputs are ``(N, L)`` or ``(N, C, L)`` 1-D signals (mnist1d) or ``(N, C, H, W)`` images (digits).

==========  ===========================================  =============================================
op          1-D signals                                  images
==========  ===========================================  =============================================
``noise``   ``x + σ·ε``, ε ~ N(0, 1) per value            the same
``scale``   ``x · a``, a ~ U(1 − s, 1 + s) per sample      the same (a contrast change)
``shift``   circular roll by k ∈ {−m..m} steps            translate by (dy, dx) ∈ {−m..m}², zero fill
``hflip``   time reversal with probability ½              left-right mirror with probability ½
``negate``  ``−x`` with probability ½                     the same
``cutout``  a random segment of c steps set to 0          a random c×c square set to 0 (may overhang)
==========  ===========================================  =============================================

Whether an op preserves the label is a property of the data, not of the op: mnist1d makes its
signals by rolling and scaling templates, so ``shift`` and ``scale`` are natural there, while a
reversed or negated mnist1d signal is a different pattern; a mirrored digit is not the same digit
(a 2 mirrored is no 2), so ``hflip`` is for photos, never for digits. Zero is the fill value of
``shift`` and ``cutout``, which is the data mean once inputs are centered or standardized.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from engine.recipe.config import TrainSpec

OPS = ("noise", "scale", "shift", "hflip", "negate", "cutout")


class Augmenter:
    """Applies the ops of ``TrainSpec.augment`` in order to a batch: ``xb = augmenter(xb)``."""

    def __init__(
        self,
        ops: Sequence[str],
        input_shape: tuple[int, ...],
        generator: torch.Generator,
        *,
        noise: float = 0.1,
        scale: float = 0.2,
        shift: int = 2,
        cutout: int = 4,
    ) -> None:
        unknown = [op for op in ops if op not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(OPS)}")
        self.input_shape = tuple(int(s) for s in input_shape)
        if len(self.input_shape) not in (1, 2, 3):
            raise ValueError(f"augmentation needs 1-D signals or images, got inputs of shape {input_shape}")
        self.ops = list(ops)
        self.generator = generator
        self.noise, self.scale, self.shift, self.cutout = noise, scale, shift, cutout

    @property
    def image(self) -> bool:
        return len(self.input_shape) == 3

    def __call__(self, x: Tensor) -> Tensor:
        for op in self.ops:
            x = getattr(self, f"_{op}")(x)
        return x

    # --- helpers ---------------------------------------------------------------------------

    def _uniform(self, n: int) -> Tensor:
        return torch.rand(n, generator=self.generator, device=self.generator.device)

    def _ints(self, low: int, high: int, n: int) -> Tensor:
        """n integers in [low, high], inclusive."""
        return torch.randint(low, high + 1, (n,), generator=self.generator, device=self.generator.device)

    def _per_sample(self, values: Tensor, x: Tensor) -> Tensor:
        """(N,) → (N, 1, …, 1) on x's device, to broadcast over one sample."""
        return values.to(x.device, x.dtype).reshape(-1, *([1] * (x.ndim - 1)))

    # --- ops ---------------------------------------------------------------------------------

    def _noise(self, x: Tensor) -> Tensor:
        eps = torch.randn(x.shape, generator=self.generator, device=self.generator.device, dtype=x.dtype)
        return x + self.noise * eps.to(x.device)

    def _scale(self, x: Tensor) -> Tensor:
        a = 1.0 + self.scale * (2.0 * self._uniform(len(x)) - 1.0)
        return x * self._per_sample(a, x)

    def _negate(self, x: Tensor) -> Tensor:
        sign = torch.where(self._uniform(len(x)) < 0.5, -1.0, 1.0)
        return x * self._per_sample(sign, x)

    def _hflip(self, x: Tensor) -> Tensor:
        flip = self._per_sample((self._uniform(len(x)) < 0.5).float(), x).bool()
        return torch.where(flip, x.flip(-1), x)

    def _shift(self, x: Tensor) -> Tensor:
        m = self.shift
        if m == 0:
            return x
        n = len(x)
        if not self.image:  # circular roll along the last axis: out[t] = x[(t - k) mod L]
            length = x.shape[-1]
            k = self._ints(-m, m, n).to(x.device)
            idx = (torch.arange(length, device=x.device) - k[:, None]) % length  # (N, L)
            idx = idx.reshape(n, *([1] * (x.ndim - 2)), length).expand_as(x)
            return x.gather(-1, idx)
        h, w = x.shape[-2:]
        dy, dx = self._ints(-m, m, n).to(x.device), self._ints(-m, m, n).to(x.device)
        padded = torch.nn.functional.pad(x, (m, m, m, m))  # zero fill
        rows = torch.arange(h, device=x.device) + m - dy[:, None]  # (N, H): out[i] = x[i - dy]
        cols = torch.arange(w, device=x.device) + m - dx[:, None]  # (N, W)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]

    def _cutout(self, x: Tensor) -> Tensor:
        c, n = self.cutout, len(x)
        if not self.image:  # a segment [start, start + c) inside the signal
            length = x.shape[-1]
            c = min(c, length)
            start = self._ints(0, length - c, n).to(x.device)
            t = torch.arange(length, device=x.device)
            keep = (t < start[:, None]) | (t >= start[:, None] + c)  # (N, L)
            return x * keep.reshape(n, *([1] * (x.ndim - 2)), length).to(x.dtype)
        h, w = x.shape[-2:]
        # a square centred anywhere in the image, clipped at the borders (DeVries & Taylor 2017)
        cy, cx = self._ints(0, h - 1, n).to(x.device), self._ints(0, w - 1, n).to(x.device)
        top, left = cy - c // 2, cx - c // 2
        r, q = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        in_rows = (r >= top[:, None]) & (r < top[:, None] + c)  # (N, H)
        in_cols = (q >= left[:, None]) & (q < left[:, None] + c)  # (N, W)
        hole = in_rows[:, :, None] & in_cols[:, None, :]  # (N, H, W)
        return x * (~hole)[:, None].to(x.dtype)


AUGMENT_SEED_OFFSET = 15485863
"""Added to the run's seed for the augmentation generator (its own stream: batches stay the same)."""


def build_augmenter(spec: TrainSpec, input_shape: tuple[int, ...], device: torch.device) -> Augmenter | None:
    """The run's augmenter, or None when ``spec.augment`` is empty."""
    if not spec.augment:
        return None
    generator = torch.Generator(device=device).manual_seed(spec.seed + AUGMENT_SEED_OFFSET)
    return Augmenter(spec.augment, input_shape, generator, noise=spec.augment_noise,
                     scale=spec.augment_scale, shift=spec.augment_shift, cutout=spec.augment_cutout)
