"""How much memory one run needs, estimated from its recipe and its data's shape before anything
is built (``engine.catalogue.preflight`` refuses what cannot fit the device).

The estimate, in float32 (4 bytes a number):

* **parameters**: counted exactly from the architecture, as ``engine.models`` builds it (dense
  and conv weights and biases, Maxout's pieces, BatchNorm / LayerNorm / GroupNorm scales and
  shifts, the head); ``tests/test_preflight.py`` compares the count with built models;
* **parameters, gradients and optimizer state**: parameters × 4 bytes × (1 + 1 gradient + 1 copy
  of the gradients (the loop keeps them on the steps it diagnoses; the optimizers' foreach
  temporaries) + the optimizer's state per parameter: 0 for sgd, 1 for momentum, nesterov,
  adagrad and rmsprop (2 with its momentum), 2 for adam and adamw (3 with amsgrad), 2 × history
  + 3 for lbfgs), for each of the `ensemble` copies, plus one copy of the weights for EMA and one
  per checkpoint-ensemble snapshot;
* **activations**: samples × the outputs of every layer × 4 bytes × the tensors autograd keeps
  per layer (the linear output and the activation; the norm's output, dropout's output and mask
  where there are norms and dropout), plus two gradient buffers of the widest layer and the
  inputs, for each ensemble copy; the samples are the training batch or the diagnostics' probe
  (up to PROBE_SIZE training samples), whichever is larger; evaluation runs in small chunks and
  is left out;
* **data**: every split's samples × their raw features × 4 bytes × 2 (the float32 tensors and a
  working copy while they are preprocessed), plus PCA / whitening's float64 covariance.

It is meant to tell a model that fits from one that cannot (a dense layer of a billion units, a
conv layer of a million channels), not to the byte, and it errs low: on a CPU, a run's peak
resident memory grew about 1.9 times the estimate (under Adam, an MLP of two 8000-unit layers:
1.3 GiB estimated, 2.4 GiB measured; a 1-D CNN of 2000 channels on mnist1d: 0.4 GiB and 0.75
GiB), the rest being the allocator's caches and torch's temporary buffers. What it refuses
cannot fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.recipe.config import ModelSpec, Recipe

BYTES = 4
"""float32."""
PROBE_SIZE = 512
"""Training samples the per-layer diagnostics run forward at once (``engine.training.loop.PROBE_SIZE``)."""


@dataclass(frozen=True)
class Footprint:
    """One run's memory, in bytes (see the module docstring)."""

    params: int
    """Parameters of one copy of the network."""
    state_bytes: int
    """Parameters, gradients, optimizer state, and the EMA / snapshot / ensemble copies."""
    activation_bytes: int
    data_bytes: int
    samples: int
    """The samples whose activations are counted: the training batch or the diagnostics' probe."""

    @property
    def total(self) -> int:
        return self.state_bytes + self.activation_bytes + self.data_bytes

    def describe(self) -> str:
        """The figure and its parts in words: "about 37 GiB: 30 GiB for … parameters, …"."""
        return (f"about {size(self.total)}: {size(self.state_bytes)} for {self.params:,} parameters, their "
                f"gradients and optimizer state, {size(self.activation_bytes)} for the activations of "
                f"{self.samples:,} samples, {size(self.data_bytes)} for the data")


def size(n: float) -> str:
    """Bytes in words: "12 KiB", "512 MiB", "2.5 GiB", "37 GiB", "3.6 TiB"."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale or unit == "KiB":
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    raise AssertionError  # pragma: no cover


def conv_out(length: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis (as ``engine.models.cnn.conv_out``)."""
    return (length + 2 * padding - kernel) // stride + 1


def sequence_shape(input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(steps, values per step) of an input read as a sequence."""
    if len(input_shape) == 1:
        return input_shape[0], 1
    if len(input_shape) == 2:
        return input_shape[1], input_shape[0]
    if len(input_shape) == 3:
        return input_shape[1], input_shape[0] * input_shape[2]
    raise ValueError(f"gru needs an input shape (L,), (C, L) or (C, H, W), got {tuple(input_shape)}")


def layers(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int) -> list[tuple[int, int]]:
    """(parameters, outputs per sample) of each layer the network would have, in order: hidden
    blocks (their weight layer's outputs, before Maxout pools them), then the head.

    A ValueError, in ``engine.models.cnn``'s words, for a conv stack that shrinks the input to nothing."""
    m = spec.maxout_pieces if spec.activation == "maxout" else 1
    norm = 2 if spec.norm in ("batch", "layer") else 0
    out: list[tuple[int, int]] = []
    width = math.prod(input_shape)
    if spec.kind == "cnn":
        if len(input_shape) == 3:
            in_ch, spatial = input_shape[0], list(input_shape[1:])
        elif len(input_shape) in (1, 2):
            in_ch, spatial = 1, list(input_shape)
        else:
            raise ValueError(f"cnn needs an input shape (L,), (H, W) or (C, H, W), got {tuple(input_shape)}")
        kernels = spec.kernel_sizes or [spec.kernel_size] * len(spec.channels)
        for i, (ch, k) in enumerate(zip(spec.channels, kernels, strict=True)):
            p = spec.padding if spec.padding is not None else k // 2
            new = [conv_out(n, k, spec.stride, p) for n in spatial]
            if min(new) < 1:
                raise ValueError(
                    f"conv layer {i + 1} (kernel {k}, stride {spec.stride}, padding {p}) shrinks the input "
                    f"{tuple(spatial)} to nothing: use fewer channels layers, a smaller stride or more padding"
                )
            units = ch * m
            out.append((in_ch * units * k ** len(spatial) + units + norm * units, units * math.prod(new)))
            in_ch, spatial = ch, new
        width = in_ch * math.prod(spatial)
    if spec.kind == "gru":
        steps, values = sequence_shape(tuple(input_shape))
        units = (spec.hidden_sizes or [64])[0]
        for k in range(len(spec.hidden_sizes or [64])):
            fan_in = values if k == 0 else units
            out.append((3 * (fan_in * units + units * units + 2 * units), steps * units))
        width = units
    elif spec.kind != "linear":
        for units in spec.hidden_sizes:
            out.append((width * units * m + units * m + norm * units * m, units * m))
            width = units
    out.append((width * n_outputs + n_outputs, n_outputs))
    return out


def optimizer_slots(recipe: Recipe) -> int:
    """Numbers the optimizer keeps per parameter (see the module docstring)."""
    t = recipe.train
    if t.optimizer == "lbfgs":
        return 2 * t.lbfgs_history + 3
    if t.optimizer in ("adam", "adamw"):
        return 2 + t.amsgrad
    if t.optimizer == "rmsprop":
        return 1 + (t.rmsprop_momentum > 0)
    return 0 if t.optimizer == "sgd" else 1


def estimate(recipe: Recipe, input_shape: tuple[int, ...], n_outputs: int, *, n_train: int,
             raw_values: int = 0, features: int = 0) -> Footprint:
    """The footprint of one run of `recipe` on inputs of `input_shape` (as the model sees them) with
    `n_outputs` outputs and `n_train` training samples; `raw_values`: the numbers of every split
    before preprocessing (samples × raw features), `features`: the raw features (for PCA's
    covariance). A ValueError for an architecture that cannot be built (see ``layers``)."""
    model, t, d = recipe.model, recipe.train, recipe.data
    shapes = layers(model, input_shape, n_outputs)
    params = sum(p for p, _ in shapes)
    copies = model.ensemble
    state = params * BYTES * ((3 + optimizer_slots(recipe)) * copies + (t.ema is not None) + t.checkpoint_ensemble)
    batch = n_train if t.batch_size == 0 else min(t.batch_size, n_train)
    if t.unlabeled_loss != "none":
        batch += t.unlabeled_batch_size if t.unlabeled_batch_size is not None else batch
    samples = max(batch, min(PROBE_SIZE, n_train))
    kept = 2 + (model.norm != "none") + 2 * (model.dropout > 0)
    outputs = sum(o for _, o in shapes)
    widest = max([o for _, o in shapes] + [math.prod(input_shape)])
    activations = samples * BYTES * copies * (outputs * kept + 2 * widest + math.prod(input_shape))
    data = raw_values * BYTES * 2
    if d.preprocess in ("pca", "pca_whiten", "zca_whiten"):
        data += 2 * features * features * 8
    return Footprint(params, state, activations, data, samples)
