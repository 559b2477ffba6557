"""The recipe schema: what one training run is made of.

Every field a preset, the Builder or the command line can set lives here, validated once at
the edge (pydantic, ``extra="forbid"``), so that a typo is a clear message naming the field and
the allowed values, never a traceback from deep inside the loop.

A ``RunSpec`` is one fully resolved run (data + model + train + the variant's name); a
comparison expands into one RunSpec per variant and seed (see ``engine.presets``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OpenFraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


DATASETS = (
    "spiral",
    "moons",
    "circles",
    "xor",
    "blobs",
    "regression_outliers",
    "digits",
    "mnist1d",
    "mnist",
    "fashion_mnist",
    "cifar10",
    "random",
)
Preprocess = Literal["none", "center", "standardize", "minmax", "pca", "pca_whiten", "zca_whiten"]


class DataSpec(Strict):
    """Which data, how much of it, and how it is prepared (fitted on the training split only)."""

    name: Literal[DATASETS]  # type: ignore[valid-type]
    n_samples: PositiveInt | None = None
    """Total samples to generate (toy sets, random); the dataset's own size otherwise."""
    n_classes: Annotated[int, Field(ge=2, le=100)] | None = None
    """Classes for toy sets that have a choice (spiral arms, blobs, random)."""
    n_features: PositiveInt | None = None
    """Input size for `random` (and a flattened-size hint for others)."""
    noise: Annotated[float, Field(ge=0.0)] | None = None
    """Noise level of generated sets (toy sets, mnist1d's corruption scale factor)."""
    outlier_fraction: Fraction = 0.1
    """Share of regression targets replaced by gross outliers (`regression_outliers`)."""
    val_fraction: OpenFraction = 0.2
    test_fraction: OpenFraction = 0.2
    train_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    """Keep this share of the training split (the rest is dropped): for "more data" studies."""
    n_train: PositiveInt | None = None
    """Keep at most this many training samples (after train_fraction)."""
    n_unlabeled: Annotated[int, Field(ge=0)] = 0
    """Move this many training samples to an unlabeled pool (semi-supervised)."""
    scale_features: Annotated[float, Field(gt=0.0)] = 1.0
    """Multiply every second input feature by this factor (mixed-scale inputs for preprocessing)."""
    shift: Annotated[float, Field(ge=0.0)] = 0.0
    """Covariate shift: how strongly train inputs are drawn from a different region than test."""
    preprocess: Preprocess = "none"
    pca_components: PositiveInt | None = None
    whiten_eps: Annotated[float, Field(gt=0.0)] = 1e-5
    root: str | None = None
    """Folder with downloaded files for mnist / fashion_mnist / cifar10 (never fetched by default)."""
    split_seed: int | None = None
    """Seed of the train/val/test split; defaults to the run's seed."""

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> DataSpec:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% for training")
        return self


Activation = Literal["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "maxout"]
Init = Literal[
    "default",
    "zeros",
    "constant",
    "normal",
    "uniform",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "sparse",
]


class ModelSpec(Strict):
    """The network: an MLP or CNN body, its activation, normalization, noise and initial weights."""

    kind: Literal["mlp", "cnn", "linear"] = "mlp"
    hidden: list[PositiveInt] = Field(default_factory=lambda: [100, 100])
    """Hidden widths of the MLP (or of the CNN's dense head)."""
    depth: PositiveInt | None = None
    width: PositiveInt | None = None
    """Shortcut: `depth` hidden layers of `width` units (overrides `hidden`)."""
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 32, 32])
    """CNN: channels of each conv layer (1-D for vector inputs, 2-D for images)."""
    kernel_size: PositiveInt = 5
    stride: PositiveInt = 2
    padding: Annotated[int, Field(ge=0)] | None = None
    """CNN padding; defaults to kernel_size // 2."""
    activation: Activation = "relu"
    leaky_slope: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.01
    maxout_pieces: Annotated[int, Field(ge=2, le=8)] = 2
    norm: Literal["none", "batch", "layer"] = "none"
    dropout: OpenFraction = 0.0
    input_dropout: OpenFraction = 0.0
    dropconnect: OpenFraction = 0.0
    residual: bool = False
    """Residual blocks: h + f(h) between hidden layers of equal width."""
    init: Init = "default"
    init_std: Annotated[float, Field(gt=0.0)] = 0.01
    """std of `normal`; half-width of `uniform`."""
    init_value: float = 0.1
    """The value for `constant` init."""
    init_gain: Annotated[float, Field(gt=0.0)] | None = None
    """Gain for Xavier / Kaiming (defaults: torch's recommended gain for the activation)."""
    sparse_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.9
    """Share of each unit's incoming weights that `sparse` init sets to zero."""
    bias_init: float = 0.0

    @property
    def hidden_sizes(self) -> list[int]:
        if self.depth is not None or self.width is not None:
            return [self.width or 100] * (self.depth if self.depth is not None else 2)
        return list(self.hidden)


Optimizer = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "lbfgs"]
Schedule = Literal["constant", "step", "exponential", "inverse_time", "cosine", "plateau"]
Loss = Literal[
    "cross_entropy", "mse_onehot", "mse_softmax", "hinge", "mse", "l1", "smooth_l1"
]


class TrainSpec(Strict):
    """How the network is trained: optimizer, schedule, budget, penalties and the loss."""

    optimizer: Optimizer = "sgd"
    lr: Annotated[float, Field(gt=0.0)] = 0.05
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    """Used by momentum and nesterov (and rmsprop's optional momentum when rmsprop_momentum)."""
    dampening: Fraction = 0.0
    beta1: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    beta2: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999
    alpha: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.99
    """RMSProp's decay rate of the squared-gradient average."""
    eps: Annotated[float, Field(gt=0.0)] = 1e-8
    rmsprop_momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    adagrad_lr_decay: Annotated[float, Field(ge=0.0)] = 0.0
    amsgrad: bool = False
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.0
    """The optimizer's own weight decay (coupled for sgd/adam, decoupled for adamw)."""
    lbfgs_history: PositiveInt = 10
    lbfgs_max_iter: PositiveInt = 20
    lbfgs_line_search: bool = True

    schedule: Schedule = "constant"
    step_size: PositiveInt = 1000
    """Steps between decays of the `step` schedule."""
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    """Decay factor: per step_size for `step`, per step for `exponential`."""
    decay: Annotated[float, Field(ge=0.0)] = 1e-3
    """`inverse_time`: lr / (1 + decay * step)."""
    min_lr: Annotated[float, Field(ge=0.0)] = 0.0
    plateau_patience: PositiveInt = 5
    """Evaluations without val-loss improvement before `plateau` cuts the LR by gamma."""
    warmup_steps: Annotated[int, Field(ge=0)] = 0

    batch_size: Annotated[int, Field(ge=0)] = 100
    """0 means full batch."""
    steps: PositiveInt | None = None
    epochs: PositiveInt | None = None
    """Budget: `steps` optimizer updates, or `epochs` passes over the training split."""

    loss: Loss = "cross_entropy"
    hinge_margin: Annotated[float, Field(gt=0.0)] = 1.0
    smooth_l1_beta: Annotated[float, Field(gt=0.0)] = 1.0
    l1: Annotated[float, Field(ge=0.0)] = 0.0
    l2: Annotated[float, Field(ge=0.0)] = 0.0
    """Penalties added to the loss: l1 * sum|w| + l2/2 * sum w^2 over weights (not biases)."""
    clip_norm: Annotated[float, Field(gt=0.0)] | None = None
    clip_value: Annotated[float, Field(gt=0.0)] | None = None
    early_stopping: bool = False
    patience: PositiveInt = 10
    """Evaluations without val-loss improvement before early stopping ends the run."""
    restore_best: bool = True
    ema: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    """Decay of an exponential moving average of the weights, evaluated beside the raw weights."""
    mixup: Annotated[float, Field(ge=0.0)] = 0.0
    """Beta(alpha, alpha) mixing of input pairs and their targets; 0 turns it off."""

    seed: int = 0
    eval_every: PositiveInt | None = None
    """Steps between evaluations (default: once per epoch, at most 50 evaluations)."""
    log_every: PositiveInt = 10
    """Steps between step metrics read from the device (a host sync)."""
    diagnostics_every: PositiveInt | None = None
    """Steps between per-layer diagnostics (default: every evaluation)."""
    diverge_threshold: Annotated[float, Field(gt=0.0)] = 1e6
    """A loss above this (or NaN/inf) ends the run as diverged."""

    @model_validator(mode="after")
    def _one_budget(self) -> TrainSpec:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either steps or epochs, not both")
        return self

    @property
    def uses_momentum(self) -> bool:
        return self.optimizer in ("momentum", "nesterov")


class Recipe(Strict):
    """data + model + train: everything one run needs."""

    data: DataSpec
    model: ModelSpec = Field(default_factory=ModelSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)


class RunSpec(Strict):
    """One resolved run: a recipe, the variant it belongs to, and where it came from."""

    recipe: Recipe
    variant: str
    preset: str = "custom"
    comparison: str = ""
    """An id shared by every run of one comparison (set by the runner)."""

    @property
    def seed(self) -> int:
        return self.recipe.train.seed

    def key(self) -> str:
        """A short stable hash of the resolved recipe."""
        blob = json.dumps(self.recipe.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def deep_merge(base: dict, override: dict) -> dict:
    """Merge `override` into a copy of `base`, section by section (dicts merge, values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
